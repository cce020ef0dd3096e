//! `cargo xtask bench --only capacity`: a real capacity search on this
//! machine — `swarm-client capacity` (release) against the local test
//! origin with a light stream — and how busy the machine's cores were at
//! each step (from /proc/stat, sampled every second), which says what
//! limited it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

type Figure = (String, String, String);

/// The machine's CPU counters: (busy, total) jiffies over every core.
fn cpu_now() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The search's steps and the share of the machine's cores busy within
/// each one's window.
pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let origin = crate::lab::origin(&bin, crate::bench_swarm::LIGHT, true)?;
    // (unix second, busy, total) every second
    let samples: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, done) = (Arc::clone(&samples), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some((busy, total)) = cpu_now() {
                    let t = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    samples.lock().unwrap().push((t, busy, total));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // 40 000 viewers want 80 000 descriptors; raise the limit where this
    // user may (the swarm says so when it is still too low)
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        100_000,
        100_000,
    );
    // kept for `swarm-client report` and the README's picture
    let json = root.join("target/capacity-bench.json");
    let report = root.join("target/capacity-bench.html");
    let out = std::process::Command::new(bin.join("swarm-client"))
        .args(["capacity", &origin.url(), "--plain", "--seed", "1"])
        .args(["--start", "4000", "--step", "4000", "--max", "40000"])
        .args(["--step-time", "45s", "--settle", "20s"])
        .args([
            "--set",
            "rampRate=1000",
            "--set",
            "rampJitter=0",
            "--set",
            "timeout=30",
        ])
        .args(["--slo", "segmentTtfbP99=1s", "--slo", "errorRate=0.001"])
        .args([
            "--slo",
            "rebufferRatio=0.01",
            "--slo",
            "minActiveViewers=0.99",
        ])
        .args(["--metrics-addr", "127.0.0.1:0", "--summary-json"])
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run swarm-client capacity")?;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    drop(origin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!(
        "{}",
        stdout
            .lines()
            .filter(|l| !l.starts_with('['))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&json).with_context(|| format!("no results:\n{stdout}"))?,
    )?;
    let c = &r["capacity"];
    let samples = samples.lock().unwrap().clone();
    let busy_in = |from: u64, to: u64| {
        let inside: Vec<&(u64, u64, u64)> = samples
            .iter()
            .filter(|s| s.0 >= from && s.0 <= to)
            .collect();
        match (inside.first(), inside.last()) {
            (Some(a), Some(b)) if b.2 > a.2 => {
                Some(100.0 * (b.1 - a.1) as f64 / (b.2 - a.2) as f64)
            }
            _ => None,
        }
    };
    let area = || "capacity (local origin, 160x90 ≈64 kbit/s, 2 s segments)".to_owned();
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((0, 0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    let mut rows = vec![(
        area(),
        "open-file limit of the swarm (soft / hard); its warnings".into(),
        format!(
            "{soft} / {hard}; {}",
            if warnings.is_empty() {
                "none".to_owned()
            } else {
                warnings.join(" ")
            }
        ),
    )];
    rows.push((
        area(),
        "answer".into(),
        c["breaking"]["figure"].as_str().map_or_else(
            || format!("{} viewers held (the most asked for)", c["held"]),
            |f| {
                format!(
                    "{} viewers held; {} failed on {f} = {} (limit {})",
                    c["held"],
                    c["failed"],
                    c["breaking"]["measured"]
                        .as_f64()
                        .map_or("-".to_owned(), |m| format!("{}", (m * 1e4).round() / 1e4)),
                    c["breaking"]["limit"]
                )
            },
        ),
    ));
    for s in c["steps"].as_array().into_iter().flatten() {
        let (from, to) = (
            s["from"].as_u64().unwrap_or(0),
            s["to"].as_u64().unwrap_or(0),
        );
        let figure = |key: &str| {
            s["verdicts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["figure"] == key)
                .and_then(|v| v["measured"].as_f64())
                .map_or("-".to_owned(), |m| format!("{}", (m * 1e4).round() / 1e4))
        };
        rows.push((
            area(),
            format!("step of {} viewers", s["viewers"]),
            format!(
                "{}: segment TTFB p99 {} ms, rebuffer ratio {}, error rate {}, fewest active {}; cores busy {}",
                if s["pass"] == true { "held" } else { "FAILED" },
                figure("segmentTtfbP99"),
                figure("rebufferRatio"),
                figure("errorRate"),
                figure("minActiveViewers"),
                busy_in(from, to).map_or("-".to_owned(), |b| format!("{b:.0} %")),
            ),
        ));
    }
    Ok(rows)
}
