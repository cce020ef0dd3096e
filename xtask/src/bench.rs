//! `cargo xtask bench`: run the criterion benchmarks and write docs/BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// One measured figure.
struct Row {
    name: String,
    mean_ns: f64,
    low_ns: f64,
    high_ns: f64,
}

/// One line of the results table: (area, figure, value).
type Figure = (String, String, String);

pub fn run(root: &Path) -> Result<bool> {
    if !crate::run("cargo", &["bench", "--workspace"])? {
        return Ok(false);
    }
    let rows = read_criterion(&crate::lab::target_dir(root).join("criterion"))?;
    eprintln!("== swarm: 100 viewers on a local origin (about a minute)");
    let swarm = swarm_bench(root)?;
    eprintln!("== container images: cold, warm and profile-change builds");
    let images = image_bench(root)?;
    eprintln!("== build-all: every artifact, cold and again with nothing changed");
    let build_all = build_all_bench(root)?;
    let mut figures: Vec<Figure> = rows
        .iter()
        .map(|r| {
            (
                "generators".to_owned(),
                format!("`{}` (criterion mean, 95 % interval)", r.name),
                format!(
                    "{} ({} – {})",
                    human(r.mean_ns),
                    human(r.low_ns),
                    human(r.high_ns)
                ),
            )
        })
        .collect();
    figures.extend(swarm);
    figures.extend(images);
    figures.extend(build_all);
    let mut table = String::from("| area | figure | value |\n|---|---|---|\n");
    for (area, figure, value) in &figures {
        writeln!(table, "| {area} | {figure} | {value} |")?;
    }
    println!("\n{table}");
    let doc = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench`.\n\n\
         ## Machine\n\n{}\n\n## Results\n\n{table}\n\
         ## What is measured\n\n\
         - `test-origin/generate-all-profiles`: every text artifact (FFmpeg arguments, nginx \
         config in both flavours, cache policy, sysctl file) of every test-origin profile, from \
         already validated configs. Target: under 50 ms in all.\n\
         - `test-origin/load-and-generate-all-profiles`: the same, plus merging and validating \
         each profile's config (JSON Schema compilation dominates).\n\
         - Swarm: release builds; a local test origin (320x180, 10 fps, ultrafast) and \
         `swarm-client run` with 100 viewers (ramp 50/s); RSS from /proc/PID/status (VmRSS), \
         CPU from utime+stime in /proc/PID/stat over a 20 s window after the ramp. \
         \"Supervisor\" is the swarm-client process alone; \"viewers\" sums its ffmpeg children. \
         Targets: supervisor under 30 MB RSS and under 5 % of one core.\n\
         - Images: `container` with a fresh layer cache (cold), again with nothing changed \
         (warm; target under 1 s), and with another profile (only the config layer is \
         compressed again). For comparison, the same files (the image's layers unpacked) \
         packed with `tar -c | gzip -6`.\n\
         - build-all: `cargo xtask build-all` into an empty directory with an empty layer \
         cache (cold), then again with nothing changed (every artifact reused).\n",
        machine()
    );
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/BENCHMARKS.md"), doc)?;
    println!("wrote docs/BENCHMARKS.md");
    Ok(true)
}

fn read_criterion(dir: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("no benchmark results in {}", dir.display()))?;
    for entry in entries {
        let new = entry?.path().join("new");
        let (Ok(b), Ok(e)) = (
            std::fs::read_to_string(new.join("benchmark.json")),
            std::fs::read_to_string(new.join("estimates.json")),
        ) else {
            continue;
        };
        let b: serde_json::Value = serde_json::from_str(&b)?;
        let e: serde_json::Value = serde_json::from_str(&e)?;
        let mean = &e["mean"];
        rows.push(Row {
            name: b["full_id"].as_str().unwrap_or("?").to_owned(),
            mean_ns: mean["point_estimate"].as_f64().unwrap_or(f64::NAN),
            low_ns: mean["confidence_interval"]["lower_bound"]
                .as_f64()
                .unwrap_or(f64::NAN),
            high_ns: mean["confidence_interval"]["upper_bound"]
                .as_f64()
                .unwrap_or(f64::NAN),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// CPU model, cores and memory of this machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "- CPU: {model}\n- cores: {cores}\n- memory: {:.1} GiB",
        mem_kb as f64 / 1048576.0
    )
}

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Proportional set size of a process (shared pages divided among sharers).
fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// Children of `parent` running `comm` (the swarm also runs `ss` now and then).
fn children(parent: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter(|pid| {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let name = stat
                        .find('(')
                        .zip(stat.rfind(')'))
                        .map(|(a, b)| &stat[a + 1..b]);
                    name == Some(comm)
                        && stat
                            .rfind(')')
                            .and_then(|c| stat[c + 2..].split(' ').nth(1)?.parse::<u32>().ok())
                            == Some(parent)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// 100 viewers against a local origin: the supervisor's own RSS and CPU, and
/// the viewers' total RSS.
fn swarm_bench(root: &Path) -> Result<Vec<Figure>> {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let bin = crate::lab::build(root, true)?;
    let tiny = [
        "--set",
        "video.width=320",
        "--set",
        "video.height=180",
        "--set",
        "encoder.framerate=10",
    ];
    let origin = crate::lab::Origin::start(&bin, &tiny, true)?;
    let mut swarm = Command::new(bin.join("swarm-client"))
        .args([
            "run",
            &origin.url(),
            "--set",
            "clients=100",
            "--set",
            "rampRate=50",
            "--set",
            "logLevel=info",
        ])
        .args([
            "--duration",
            "40s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--seed",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = swarm.id();
    std::thread::sleep(Duration::from_secs(12));
    let ticks0 = cpu_ticks(pid);
    let t0 = std::time::Instant::now();
    let mut peak_rss = 0;
    let mut viewers_rss = 0;
    let mut viewers_pss = 0;
    let mut viewers = 0;
    while t0.elapsed() < Duration::from_secs(20) {
        peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        let kids = children(pid, "ffmpeg");
        viewers = viewers.max(kids.len());
        viewers_rss = viewers_rss.max(
            kids.iter()
                .map(|k| proc_status_kb(*k, "VmRSS:"))
                .sum::<u64>(),
        );
        viewers_pss = viewers_pss.max(kids.iter().map(|k| pss_kb(*k)).sum::<u64>());
        std::thread::sleep(Duration::from_secs(1));
    }
    let ticks = cpu_ticks(pid) - ticks0;
    let secs = t0.elapsed().as_secs_f64();
    // clock ticks are 1/100 s on Linux
    let cpu_pct = ticks as f64 / 100.0 / secs * 100.0;
    let _ = swarm.wait();
    drop(origin);
    let each = |kb: u64| kb as f64 / 1024.0 / viewers.max(1) as f64;
    let area = || "swarm (100 viewers)".to_owned();
    Ok(vec![
        (area(), "viewers running".into(), viewers.to_string()),
        (
            area(),
            "supervisor RSS (peak)".into(),
            format!("{:.1} MB", peak_rss as f64 / 1024.0),
        ),
        (
            area(),
            "supervisor CPU".into(),
            format!("{cpu_pct:.1} % of one core"),
        ),
        (
            area(),
            "viewers' RSS (shared libraries counted in each)".into(),
            format!(
                "{:.0} MB ({:.1} MB each)",
                viewers_rss as f64 / 1024.0,
                each(viewers_rss)
            ),
        ),
        (
            area(),
            "viewers' PSS (shared pages split)".into(),
            format!(
                "{:.0} MB ({:.1} MB each)",
                viewers_pss as f64 / 1024.0,
                each(viewers_pss)
            ),
        ),
    ])
}

fn timed(mut cmd: std::process::Command) -> Result<f64> {
    let t = std::time::Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Cold, warm and profile-change builds of each image, against tar | gzip.
fn image_bench(root: &Path) -> Result<Vec<Figure>> {
    use std::process::Command;
    let bin = crate::lab::build(root, true)?;
    let tmp = std::env::temp_dir().join(format!("hls-swarm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut rows: Vec<Figure> = Vec::new();
    for (component, other) in [("test-origin", "low-latency"), ("swarm-client", "stress")] {
        let cache = tmp.join(format!("cache-{component}"));
        let out = tmp.join(format!("{component}.tar"));
        let build = |profile: &str, out: &Path| {
            let mut c = Command::new(bin.join(component));
            c.args(["container", "-p", profile, "-o"])
                .arg(out)
                .arg("--cache-dir")
                .arg(&cache);
            c
        };
        let cold = timed(build("default", &out))?;
        let size = std::fs::metadata(&out)?.len();
        let warm = timed(build("default", &out))?;
        let changed = timed(build(other, &tmp.join("other.tar")))?;
        // the same files with tar | gzip
        let layout = tmp.join(format!("layout-{component}"));
        let rootfs = tmp.join(format!("rootfs-{component}"));
        std::fs::create_dir_all(&layout)?;
        std::fs::create_dir_all(&rootfs)?;
        Command::new("tar")
            .arg("-xf")
            .arg(&out)
            .arg("-C")
            .arg(&layout)
            .status()?;
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json"))?)?;
        let mdigest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
            .to_owned();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&mdigest))?)?;
        for l in manifest["layers"].as_array().into_iter().flatten() {
            let d = l["digest"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("sha256:");
            Command::new("tar")
                .arg("-xzf")
                .arg(layout.join("blobs/sha256").join(d))
                .arg("-C")
                .arg(&rootfs)
                .status()?;
        }
        let gz = tmp.join("plain.tar.gz");
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "tar -C '{}' -cf - . | gzip -6 > '{}'",
            rootfs.display(),
            gz.display()
        ));
        let plain = timed(c)?;
        let plain_size = std::fs::metadata(&gz)?.len();
        let area = || format!("{component} image");
        rows.extend([
            (
                area(),
                "cold build (empty layer cache)".into(),
                format!("{cold:.1} s, {:.1} MB", size as f64 / 1e6),
            ),
            (
                area(),
                "rebuild, nothing changed".into(),
                format!("{warm:.2} s"),
            ),
            (
                area(),
                format!("build of profile {other}"),
                format!("{changed:.2} s"),
            ),
            (
                area(),
                "`tar -c` piped to `gzip -6`, the same files".into(),
                format!("{plain:.1} s, {:.1} MB", plain_size as f64 / 1e6),
            ),
        ]);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(rows)
}

/// A full `build-all` into an empty directory, then again with nothing changed.
fn build_all_bench(root: &Path) -> Result<Vec<Figure>> {
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
    crate::build_all::run(root, &options)?;
    let cold = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    crate::build_all::run(root, &options)?;
    let warm = t.elapsed().as_secs_f64();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json"))?)?;
    let artifacts = index["artifacts"].as_array().map(Vec::len).unwrap_or(0);
    let skipped = index["skipped"].as_array().map(Vec::len).unwrap_or(0);
    let bytes: u64 = index["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["files"].as_array().into_iter().flatten())
        .filter_map(|f| f["size"].as_u64())
        .sum();
    let area = || "build-all".to_owned();
    Ok(vec![
        (
            area(),
            "artifacts (skipped)".into(),
            format!("{artifacts} ({skipped})"),
        ),
        (
            area(),
            "their size".into(),
            format!("{:.2} GB", bytes as f64 / 1e9),
        ),
        (area(), "cold run".into(), format!("{cold:.0} s")),
        (
            area(),
            "again, nothing changed".into(),
            format!("{warm:.1} s"),
        ),
    ])
}
