//! `cargo xtask bench --only artifacts`: the packaging measured side by
//! side in one run — the origin's image (gzip and zstd) against `tar |
//! gzip -6` of the same files, `build-all` cold and warm with its size, the
//! origin microVM from `microvm-run` to `/health`, and a push to a local
//! registry with TLS and a password.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

/// (area, figure, value): a row of docs/BENCHMARKS.md.
type Figure = (String, String, String);

const AREA: &str = "artifacts";

fn row(figure: impl Into<String>, value: impl Into<String>) -> Figure {
    (AREA.to_owned(), figure.into(), value.into())
}

/// The seconds `cmd` took; an error when it failed.
fn timed(cmd: &mut Command) -> Result<f64> {
    let t = std::time::Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let tmp = tempfile::tempdir()?;
    let mut rows = images(&bin, tmp.path())?;
    rows.extend(build_all(root)?);
    rows.extend(microvm(&bin, tmp.path())?);
    rows.extend(push(&bin, tmp.path())?);
    Ok(rows)
}

/// Cold (gzip, zstd), warm and another profile's builds of the origin
/// image, against `tar -c | gzip -6` of its files.
fn images(bin: &Path, tmp: &Path) -> Result<Vec<Figure>> {
    let build = |profile: &str, out: &Path, cache: &Path, codec: &str| {
        let mut c = Command::new(bin.join("test-origin"));
        c.args(["container", "-p", profile, "--compression", codec, "-o"])
            .arg(out)
            .arg("--cache-dir")
            .arg(cache);
        c
    };
    let out = tmp.join("origin.tar");
    let cache = tmp.join("cache-gzip");
    let cold = timed(&mut build("default", &out, &cache, "gzip"))?;
    let size = std::fs::metadata(&out)?.len();
    let warm = timed(&mut build("default", &out, &cache, "gzip"))?;
    let other = timed(&mut build(
        "low-latency",
        &tmp.join("other.tar"),
        &cache,
        "gzip",
    ))?;
    let zout = tmp.join("origin-zstd.tar");
    let zstd = timed(&mut build(
        "default",
        &zout,
        &tmp.join("cache-zstd"),
        "zstd",
    ))?;
    let zsize = std::fs::metadata(&zout)?.len();
    // the same files: the layers unpacked, then tar | gzip -6
    let layout = tmp.join("layout");
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(&layout)?;
    std::fs::create_dir_all(&rootfs)?;
    timed(
        Command::new("tar")
            .arg("-xf")
            .arg(&out)
            .arg("-C")
            .arg(&layout),
    )?;
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json"))?)?;
    let digest = |v: &serde_json::Value| {
        v["digest"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
            .to_owned()
    };
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest(&index["manifests"][0])),
    )?)?;
    for l in manifest["layers"].as_array().into_iter().flatten() {
        timed(
            Command::new("tar")
                .arg("-xzf")
                .arg(layout.join("blobs/sha256").join(digest(l)))
                .arg("-C")
                .arg(&rootfs),
        )?;
    }
    let gz = tmp.join("plain.tar.gz");
    let plain = timed(Command::new("sh").arg("-c").arg(format!(
        "tar -C '{}' -cf - . | gzip -6 > '{}'",
        rootfs.display(),
        gz.display()
    )))?;
    let plain_size = std::fs::metadata(&gz)?.len();
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    Ok(vec![
        row(
            "origin image, cold, gzip (against `tar -c | gzip -6` of the same files)",
            format!(
                "{cold:.1} s, {} ({:.2}× of {plain:.1} s, {})",
                mb(size),
                cold / plain,
                mb(plain_size)
            ),
        ),
        row(
            "origin image, cold, zstd",
            format!("{zstd:.1} s, {} ({:.2}×)", mb(zsize), zstd / plain),
        ),
        row(
            "origin image, rebuilt with nothing changed",
            format!("{warm:.2} s"),
        ),
        row(
            "origin image of another profile (its config layer)",
            format!("{other:.2} s"),
        ),
    ])
}

/// Bytes on disk under `dir`, a file linked more than once counted once.
fn disk_use(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut total = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let m = std::fs::symlink_metadata(&p)?;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// `build-all` into an empty directory, then again with nothing changed.
fn build_all(root: &Path) -> Result<Vec<Figure>> {
    let out = tempfile::tempdir()?;
    let options = crate::build_all::Options {
        out: out.path().to_path_buf(),
        component: None,
        profile: None,
        targets: Vec::new(),
        debug: false,
    };
    // compile first, so that the timings are the builds alone
    crate::build_all::build_binaries(root, &crate::registry::components(), false)?;
    let t = std::time::Instant::now();
    if !crate::build_all::run(root, &options)? {
        bail!("build-all failed");
    }
    let cold = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    if !crate::build_all::run(root, &options)? {
        bail!("build-all failed the second time");
    }
    let warm = t.elapsed().as_secs_f64();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json"))?)?;
    let artifacts = index["artifacts"].as_array().map(Vec::len).unwrap_or(0);
    let listed: u64 = index["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["files"].as_array().into_iter().flatten())
        .filter_map(|f| f["size"].as_u64())
        .sum();
    let disk = disk_use(out.path())?;
    Ok(vec![
        row("build-all: artifacts", artifacts.to_string()),
        row(
            "build-all: size (files listed in index.json; on disk, layer cache included)",
            format!("{:.2} GB; {:.2} GB", listed as f64 / 1e9, disk as f64 / 1e9),
        ),
        row("build-all: cold", format!("{cold:.1} s")),
        row("build-all: again, nothing changed", format!("{warm:.1} s")),
    ])
}

/// The origin microVM from `microvm-run` to its return with `/health`
/// answering.
fn microvm(bin: &Path, tmp: &Path) -> Result<Vec<Figure>> {
    let dir = tmp.join("vm");
    timed(
        Command::new(bin.join("test-origin"))
            .args(["microvm", "-o"])
            .arg(&dir),
    )?;
    let t = std::time::Instant::now();
    let run = Command::new(dir.join("bin/microvm-run"))
        .env("HTTP_PORT", testkit::free_port().to_string())
        .env("SERIAL_PORT", testkit::free_port().to_string())
        .env("WAIT_SECS", "120")
        .output();
    let boot = t.elapsed().as_secs_f64();
    let _ = Command::new(dir.join("bin/microvm-stop")).output();
    let run = run?;
    if !run.status.success() {
        bail!(
            "microvm-run failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let printed = String::from_utf8_lossy(&run.stdout).into_owned();
    let accel = if printed.contains("started with kvm") {
        "KVM"
    } else {
        "TCG"
    };
    let base = std::fs::metadata(dir.join("base/root.img"))?.len()
        + std::fs::metadata(dir.join("base/initramfs.cpio"))?.len();
    let config = std::fs::metadata(dir.join("config.cpio"))?.len();
    Ok(vec![row(
        format!(
            "origin microVM: microvm-run to /health ({accel}; base {:.0} MB, config {:.0} kB)",
            base as f64 / 1e6,
            config as f64 / 1e3
        ),
        format!("{boot:.1} s"),
    )])
}

/// A push of the origin image to a local docker-registry with TLS and
/// htpasswd, then of another profile.
fn push(bin: &Path, tmp: &Path) -> Result<Vec<Figure>> {
    let d = tmp.join("registry");
    std::fs::create_dir_all(&d)?;
    // a password made for this run only
    let password = format!("bench-{}-{}", std::process::id(), fastrand::u64(..));
    let (registry, certs) =
        testkit::registry::Registry::with_tls_and_password(&d, "bench", &password);
    let port = registry.port;
    testkit::registry::auth_file(
        &d.join("auth.json"),
        &format!("127.0.0.1:{port}"),
        "bench",
        &password,
    );
    let cache = tmp.join("cache-gzip");
    let push = |profile: &str| -> Result<(f64, String)> {
        let t = std::time::Instant::now();
        let out = Command::new(bin.join("test-origin"))
            .args(["container", "-p", profile, "-o"])
            .arg(d.join(format!("{profile}.tar")))
            .arg("--cache-dir")
            .arg(&cache)
            .args([
                "--push",
                &format!("127.0.0.1:{port}/hls-swarm-test-origin:{profile}"),
            ])
            .arg("--cert-dir")
            .arg(&certs)
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .output()?;
        if !out.status.success() {
            bail!("push failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.split_once(": ").filter(|(a, _)| a.contains("pushed to")))
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((t.elapsed().as_secs_f64(), line))
    };
    let first = push("default");
    let second = push("low-latency");
    drop(registry);
    let ((t1, l1), (t2, l2)) = (first?, second?);
    Ok(vec![
        row(
            "push to a local registry with TLS and a password (image in the layer cache)",
            format!("{t1:.1} s: {l1}"),
        ),
        row("push of another profile", format!("{t2:.1} s: {l2}")),
    ])
}
