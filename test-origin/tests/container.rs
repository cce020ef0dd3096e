//! The OCI images, checked with skopeo, umoci, podman and a local registry.
//! The swarm-client image comes from the sibling `swarm-client` binary that
//! `cargo test --workspace` builds.

mod support;
use support::{free_port, serial, TINY};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

fn swarm_bin() -> PathBuf {
    let p = Path::new(BIN).with_file_name("swarm-client");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p swarm-client` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

fn build(bin: &Path, out: &Path, cache: &Path, extra: &[&str]) -> String {
    testkit::run_ok(
        Command::new(bin)
            .arg("container")
            .arg("-o")
            .arg(out)
            .arg("--cache-dir")
            .arg(cache)
            .args(extra),
    )
}

fn sha256(p: &Path) -> String {
    testkit::run_ok(Command::new("sha256sum").arg(p))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn skopeo(args: &[&str]) -> Value {
    serde_json::from_str(&testkit::run_ok(
        testkit::tool("skopeo", "skopeo").args(args),
    ))
    .unwrap()
}

/// The image config of the OCI archive `archive`.
fn image_config(archive: &Path) -> Value {
    skopeo(&[
        "inspect",
        "--config",
        &format!("oci-archive:{}", archive.display()),
    ])
}

fn layers(archive: &Path) -> Vec<String> {
    let v = skopeo(&["inspect", &format!("oci-archive:{}", archive.display())]);
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

fn podman() -> Command {
    let mut c = testkit::tool("podman", "podman");
    c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    c
}

const LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1000:1000",
];

#[test]
fn images_are_reproducible_layered_and_have_the_spec_config() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a.tar"),
        tmp.path().join("b.tar"),
        tmp.path().join("c.tar"),
    );
    let report = build(Path::new(BIN), &a, &tmp.path().join("cache1"), &[]);
    assert!(report.contains("7 of 7 layers compressed"), "{report}");
    // a second cold build (fresh cache) and a warm one give the same bytes
    build(Path::new(BIN), &b, &tmp.path().join("cache2"), &[]);
    assert_eq!(sha256(&a), sha256(&b));
    let warm = build(Path::new(BIN), &b, &tmp.path().join("cache1"), &[]);
    assert!(warm.contains("0 of 7 layers compressed"), "{warm}");
    assert_eq!(sha256(&a), sha256(&b));
    let manifest =
        |p: &Path| skopeo(&["inspect", "--raw", &format!("oci-archive:{}", p.display())]);
    assert_eq!(manifest(&a), manifest(&b));

    // another profile changes only the generated-config layer
    build(
        Path::new(BIN),
        &c,
        &tmp.path().join("cache1"),
        &["-p", "low-latency"],
    );
    let (la, lc) = (layers(&a), layers(&c));
    assert_eq!(la.len(), lc.len());
    let differ: Vec<usize> = (0..la.len()).filter(|i| la[*i] != lc[*i]).collect();
    assert_eq!(differ, [la.len() - 1], "only the config layer differs");

    let cfg = image_config(&a);
    let conf = &cfg["config"];
    assert_eq!(conf["User"], "nginx");
    assert_eq!(conf["ExposedPorts"], serde_json::json!({"17080/tcp": {}}));
    assert_eq!(conf["Volumes"], serde_json::json!({"/var/hls": {}}));
    let env = testkit::strings(&conf["Env"]);
    assert!(
        env.contains(&"HLS_DIR=/var/hls") && env.contains(&"PORT=17080"),
        "{env:?}"
    );
    let labels = &conf["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.title"],
        "hls-swarm-test-origin"
    );
    assert_eq!(labels["hls.profile"], "default");
    assert_eq!(labels["hls.segment-duration"], "2");
    assert_eq!(labels["hls.list-size"], "10");
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(labels["org.opencontainers.image.description"]
        .as_str()
        .unwrap()
        .contains("default"));
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(cfg["os"], "linux");

    // umoci unpacks it; owners and modes are the SPEC's
    let layout = tmp.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    testkit::run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&a)
            .arg("-C")
            .arg(&layout),
    );
    let bundle = tmp.path().join("bundle");
    testkit::run_ok(
        testkit::tool("umoci", "umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:default", layout.display()))
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &str| {
        std::fs::symlink_metadata(root.join(p.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    for (path, mode, uid, gid) in [
        ("/var/hls", 0o775, 0, 1000),
        ("/var/log/nginx", 0o755, 1000, 1000),
        ("/var/cache/nginx", 0o755, 1000, 1000),
        ("/tmp", 0o1777, 0, 0),
        ("/etc/passwd", 0o644, 0, 0),
        ("/usr/local/bin/test-hls-origin", 0o755, 0, 0),
    ] {
        let m = meta(path);
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (mode, uid, gid),
            "{path}"
        );
    }
    for p in [
        "/usr/bin/ffmpeg",
        "/usr/bin/ffprobe",
        "/usr/sbin/nginx",
        "/usr/bin/bash",
        "/etc/nginx/mime.types",
        "/etc/nsswitch.conf",
    ] {
        assert!(meta(p).is_file(), "{p}");
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nginx:x:1000:1000:"), "{passwd}");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    for line in shadow.lines() {
        let hash = line.split(':').nth(1).unwrap();
        assert!(
            hash.starts_with('!') || hash.starts_with('*'),
            "usable password in {line}"
        );
    }
    let mut setid = Vec::new();
    walk(&root, &mut |p, m| {
        if m.mode() & 0o6000 != 0 {
            setid.push(p.to_path_buf());
        }
    });
    assert!(setid.is_empty(), "setuid/setgid files: {setid:?}");

    // the swarm-client image
    let s = tmp.path().join("s.tar");
    build(
        &swarm_bin(),
        &s,
        &tmp.path().join("cache1"),
        &["-p", "gentle"],
    );
    let cfg = image_config(&s);
    let conf = &cfg["config"];
    assert_eq!(conf["User"], "swarm");
    let env = testkit::strings(&conf["Env"]);
    for e in [
        "CLIENTS=20",
        "RAMP_RATE=1",
        "RAMP_JITTER=500",
        "METRICS_PORT=9090",
        "LOG_LEVEL=info",
        "VARIANT=first",
        "TIMEOUT=30",
    ] {
        assert!(env.contains(&e), "{e} not in {env:?}");
    }
    assert_eq!(conf["Labels"]["swarm.profile"], "gentle");
    assert_eq!(conf["Labels"]["swarm.clients.default"], "20");
    assert_eq!(conf["ExposedPorts"], serde_json::json!({"9090/tcp": {}}));
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        f(&p, &m);
        if m.is_dir() {
            walk(&p, f);
        }
    }
}

#[test]
fn bad_binaries_fail_clearly_and_leave_nothing() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img.tar");
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--binary", "nosuch=/usr/bin/ffmpeg", "-o"])
            .arg(&out),
        2,
    );
    assert!(err.contains("no program `nosuch`"), "{err}");
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--binary", "ffmpeg=/etc/passwd", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .arg("-o")
            .arg(&out),
        1,
    );
    assert!(err.contains("/etc/passwd"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Removes a container and an image when the test ends, whatever happens.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = podman().args(args).output();
        }
    }
}

#[test]
fn podman_runs_the_origin_image_and_the_swarm_image_plays_it() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let origin = tmp.path().join("origin.tar");
    let mut tiny = TINY.to_vec();
    tiny.extend(["-p", "low-latency"]);
    build(Path::new(BIN), &origin, &cache, &tiny);
    let swarm = tmp.path().join("swarm.tar");
    build(&swarm_bin(), &swarm, &cache, &[]);
    let tag = format!("t{}", std::process::id());
    let name = format!("hls-swarm-origin-test-{tag}");
    let _cleanup = Cleanup(vec![
        vec![
            "rm".into(),
            "-f".into(),
            "-t".into(),
            "1".into(),
            name.clone(),
        ],
        vec![
            "rmi".into(),
            "-f".into(),
            "localhost/hls-swarm-test-origin:low-latency".into(),
        ],
        vec![
            "rmi".into(),
            "-f".into(),
            "localhost/hls-swarm-swarm-client:default".into(),
        ],
    ]);
    let loaded = testkit::run_ok(podman().arg("load").arg("-i").arg(&origin));
    assert!(
        loaded.contains("hls-swarm-test-origin:low-latency"),
        "{loaded}"
    );
    testkit::run_ok(podman().arg("load").arg("-i").arg(&swarm));

    let port = free_port();
    let t = Instant::now();
    testkit::run_ok(
        podman()
            .args(["run", "-d", "--name", &name])
            .args(LIMITS)
            .args([
                "-p",
                &format!("127.0.0.1:{port}:17080"),
                "localhost/hls-swarm-test-origin:low-latency",
            ]),
    );
    let base = format!("http://127.0.0.1:{port}");
    let ready = loop {
        let health =
            common::http_check::http_get(&format!("{base}/health"), Duration::from_secs(2));
        let playlist =
            common::http_check::http_get(&format!("{base}/stream.m3u8"), Duration::from_secs(2));
        if matches!(health, Ok((200, ref b)) if b.trim() == "OK")
            && matches!(playlist, Ok((200, ref p)) if p.contains("#EXTINF"))
        {
            break true;
        }
        if t.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let logs = || {
        String::from_utf8_lossy(&podman().args(["logs", &name]).output().unwrap().stderr)
            .into_owned()
    };
    assert!(ready, "no stream within 60 s:\n{}", logs());
    eprintln!(
        "origin container served a playlist after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let top = testkit::run_ok(podman().args(["top", &name, "user", "args"]));
    assert!(
        top.lines().skip(1).all(|l| l.starts_with("nginx ")),
        "not all as nginx:\n{top}"
    );
    assert!(
        top.contains("ffmpeg") && top.contains("nginx: worker"),
        "{top}"
    );

    let out = testkit::run_ok(
        podman()
            .args(["run", "--rm", "--network", "host"])
            .args(LIMITS)
            .args([
                "-e",
                &format!("STREAM_URL={base}/stream.m3u8"),
                "-e",
                "CLIENTS=2",
                "-e",
                &format!("METRICS_PORT={}", free_port()),
            ])
            .args([
                "localhost/hls-swarm-swarm-client:default",
                "--duration",
                "10s",
            ]),
    );
    assert!(out.contains("started 2 of 2 viewers"), "{out}");
    assert!(!out.contains(" 0 B "), "every viewer read bytes:\n{out}");

    // podman stop: SIGTERM to the script, which stops both and exits 0
    testkit::run_ok(podman().args(["stop", "-t", "10", &name]));
    let code =
        testkit::run_ok(podman().args(["inspect", &name, "--format", "{{.State.ExitCode}}"]));
    assert_eq!(code.trim(), "0", "{}", logs());
}

#[test]
fn push_to_a_local_registry_matches_the_local_digest() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = tmp.path().join("registry.yml");
    std::fs::write(
        &conf,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let mut registry = testkit::tool("docker-registry", "docker-registry")
        .arg("serve")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry is installed");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "registry did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reference = format!("127.0.0.1:{port}/hls-swarm-test-origin:default");
    let archive = tmp.path().join("img.tar");
    let report = build(
        Path::new(BIN),
        &archive,
        &tmp.path().join("cache"),
        &["--push", &reference],
    );
    assert!(report.contains("pushed to"), "{report}");
    let remote = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    let local = skopeo(&["inspect", &format!("oci-archive:{}", archive.display())]);
    assert_eq!(remote["Digest"], local["Digest"]);
    assert_eq!(remote["Labels"], local["Labels"]);
    // a remote host is refused: there is no TLS here
    testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--push", "registry.example.com/x:y", "-o"])
            .arg(tmp.path().join("x.tar"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
        2,
    );
    let _ = registry.kill();
    let _ = registry.wait();
}

/// Whether the container `name` is running.
fn podman_running(name: &str) -> bool {
    let out = podman()
        .args(["inspect", name, "--format", "{{.State.Running}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// `curl --http2` of `url` trusting `ca` (`-k` when `None`): the HTTP
/// version and status it printed, or why it failed.
fn curl_h2(url: &str, ca: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http2", "--max-time", "5", "-o", "/dev/null"])
        .args(["-w", "%{http_version} %{http_code}"]);
    match ca {
        Some(ca) => cmd.arg("--cacert").arg(ca),
        None => cmd.arg("-k"),
    };
    let out = cmd.arg(url).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// An LL-HLS origin image (TLS on): the certificate is made when the
/// container starts (into a TLS_DIR the host mounted, so the host can trust
/// its CA), and a certificate mounted read-only is used as it is; the
/// image's own LL server answers blocking reloads through nginx.
#[test]
fn podman_runs_an_ll_hls_origin_with_a_certificate_made_at_start_or_mounted() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("origin.tar");
    let mut args = TINY.to_vec();
    args.extend(["-p", "ll-hls", "--set", "hls.segmentDuration=1"]);
    build(Path::new(BIN), &archive, &tmp.path().join("cache"), &args);
    let image = "localhost/hls-swarm-test-origin:ll-hls";
    let name = format!("hls-swarm-origin-tls-{}", std::process::id());
    let rm = |n: &str| {
        vec![
            "rm".to_owned(),
            "-f".into(),
            "-t".into(),
            "1".into(),
            n.to_owned(),
        ]
    };
    let _cleanup = Cleanup(vec![
        rm(&name),
        vec!["rmi".into(), "-f".into(), image.into()],
    ]);
    testkit::run_ok(podman().arg("load").arg("-i").arg(&archive));
    // the container's user (uid 1000) writes the certificate here
    let tls = tmp.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o777)).unwrap();
    let start = |mount: &str| -> String {
        let port = free_port();
        testkit::run_ok(
            podman()
                .args(["run", "-d", "--name", &name])
                .args(LIMITS)
                .args(["-p", &format!("127.0.0.1:{port}:17080")])
                .args(["-e", "TLS_DIR=/tls", "-v"])
                .arg(format!("{}:/tls:{mount}", tls.display()))
                .arg(image),
        );
        format!("https://127.0.0.1:{port}")
    };
    let wait = |url: &str, ca: Option<&Path>| {
        let t = Instant::now();
        loop {
            match curl_h2(url, ca) {
                Ok(r) if r == "2 200" => return,
                _ if !podman_running(&name) => {
                    let logs = podman().args(["logs", &name]).output().unwrap();
                    panic!(
                        "the container stopped:\n{}",
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
                r if t.elapsed() > Duration::from_secs(60) => {
                    let logs = podman().args(["logs", &name]).output().unwrap();
                    panic!(
                        "{r:?} after 60 s:\n{}",
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    };
    let base = start("rw");
    let url = format!("{base}/master.m3u8");
    let ca = tls.join("ca.pem");
    // the CA appears when the container has made the certificate
    wait(&url, Some(&ca));
    assert!(!tls.join("ca.key").exists(), "the CA's key was deleted");
    // the LL server in the image: a blocking reload for the next segment
    let pl = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "5", "--cacert"])
        .arg(&ca)
        .arg(format!("{base}/video/stream.m3u8"))
        .output()
        .unwrap();
    let pl = String::from_utf8_lossy(&pl.stdout).into_owned();
    let msn: u64 = pl
        .lines()
        .rfind(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .and_then(|l| l.trim_end_matches(".m4s").parse().ok())
        .unwrap_or_else(|| panic!("no segment in:\n{pl}"));
    let t = Instant::now();
    let blocked = curl_h2(
        &format!("{base}/video/stream.m3u8?_HLS_msn={}", msn + 1),
        Some(&ca),
    );
    assert_eq!(blocked.as_deref(), Ok("2 200"));
    assert!(
        t.elapsed() > Duration::from_millis(50),
        "it waited for the segment"
    );
    testkit::run_ok(podman().args(["rm", "-f", "-t", "10", &name]));

    // mounted read-only: used as it is, nothing made
    let cert = std::fs::read(tls.join("cert.pem")).unwrap();
    std::fs::remove_file(&ca).unwrap();
    let url = format!("{}/master.m3u8", start("ro"));
    wait(&url, None);
    assert!(!ca.exists());
    assert_eq!(std::fs::read(tls.join("cert.pem")).unwrap(), cert);
}
