//! `cargo xtask soak`: the lab for a long while — a local test origin that
//! logs every request, and a native swarm on it — and what a long run must
//! show: no listed segment answered 404, the swarm's body bytes match the
//! bytes nginx logged, the swarm's memory and open files stay flat after the
//! warm-up, and how often anything restarted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The options of `cargo xtask soak`.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// How long the swarm runs, in minutes
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub minutes: u32,
    /// Native viewers in the swarm
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=20000))]
    pub viewers: u32,
    /// Build and run the release binaries (what the figures in
    /// docs/BENCHMARKS.md come from); the default is the debug build
    #[arg(long)]
    pub release: bool,
    /// Keep the logs, the swarm's results and output, and soak.json in DIR
    /// (default: a temp dir, removed at the end)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Growth of the swarm's own memory or open files after the warm-up that
/// fails the soak.
pub const MAX_GROWTH: f64 = 0.05;
/// Difference between the swarm's and nginx's body bytes that fails the soak.
pub const MAX_BYTES_DIFF: f64 = 0.005;
/// Seconds between two samples of the swarm's memory and open files.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// One sample of the swarm process.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub sec: u64,
    /// Resident set (VmRSS), the mapped code of the binary included.
    pub rss_kb: u64,
    /// The swarm's own memory: its anonymous resident pages (RssAnon) —
    /// heap, stacks, buffers; what a leak grows. The binary's code pages
    /// (most of a debug build's RSS) are paged in as code paths first run
    /// and say nothing about leaks.
    pub mem_kb: u64,
    pub fds: u64,
}

/// What `soak.json` holds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub minutes: u32,
    pub viewers: u32,
    pub viewers_started: u64,
    pub segments: u64,
    /// Listed segments that answered 404/410 (must be 0).
    pub listed_segments_404: u64,
    pub http_errors: u64,
    pub rebuffers: u64,
    pub swarm_body_bytes: u64,
    pub nginx_body_bytes: u64,
    /// |swarm − nginx| / nginx.
    pub bytes_diff: f64,
    /// From this second on, growth counts.
    pub warm_up_sec: u64,
    /// Growth of `memKb` (RssAnon) after the warm-up.
    pub memory_growth: f64,
    pub fd_growth: f64,
    pub viewer_restarts: u64,
    /// nginx or FFmpeg restarted by the origin's supervisor.
    pub origin_restarts: u64,
    pub samples: Vec<Sample>,
    /// Each check that failed, in words (none: the soak passed).
    pub failed: Vec<String>,
}

fn proc_sample(pid: u32, sec: u64) -> Option<Sample> {
    let rss_kb = testkit::procs::kb(pid, "status", "VmRSS:");
    let mem_kb = testkit::procs::kb(pid, "status", "RssAnon:");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    // before its exec the child has no memory of its own yet
    (rss_kb > 0).then_some(Sample {
        sec,
        rss_kb,
        mem_kb,
        fds,
    })
}

/// The value at the warm-up (the first sample at or after `warm_up`
/// seconds) and at the end (the median of the last three samples).
pub fn span(samples: &[Sample], warm_up: u64, f: fn(&Sample) -> u64) -> Option<(u64, u64)> {
    let start = samples.iter().find(|s| s.sec >= warm_up)?;
    let mut tail: Vec<u64> = samples.iter().rev().take(3).map(f).collect();
    tail.sort_unstable();
    Some((f(start), tail[tail.len() / 2]))
}

/// Growth from the warm-up to the end, as [`span`] measures them.
pub fn growth(samples: &[Sample], warm_up: u64, f: fn(&Sample) -> u64) -> f64 {
    span(samples, warm_up, f).map_or(0.0, |(base, end)| {
        let base = base.max(1) as f64;
        (end as f64 - base) / base
    })
}

/// Sums the `$body_bytes_sent` of every line of nginx's `timing` and
/// `hls_perf` access logs in `dir`.
pub fn logged_body_bytes(dir: &Path) -> Result<(u64, usize)> {
    let mut bytes = 0;
    let mut lines = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        let text = std::fs::read_to_string(e.path())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            // timing: addr [time zone] "GET /x HTTP/1.1" status bytes request_time "cmcd"…
            // hls_perf: iso_time status request_time bytes uri "cmcd"…
            let n = if f.get(1).is_some_and(|w| w.starts_with('[')) {
                line.split('"')
                    .nth(2)
                    .and_then(|rest| rest.split_whitespace().nth(1))
            } else {
                f.get(3).copied()
            };
            bytes += n
                .and_then(|n| n.parse::<u64>().ok())
                .with_context(|| format!("a log line without a byte count: {line:?}"))?;
            lines += 1;
        }
    }
    Ok((bytes, lines))
}

/// Runs the soak and prints its table; `Ok(false)` when a check failed.
pub fn run(root: &Path, o: &Options) -> Result<bool> {
    let r = soak(root, o)?;
    print!("{}", table(&r));
    if let Some(dir) = &o.dir {
        println!("logs, results and soak.json in {}", dir.display());
    }
    Ok(r.failed.is_empty())
}

/// The soak's figures as rows of docs/BENCHMARKS.md.
pub fn rows(r: &Report) -> Vec<(String, String, String)> {
    let mem = span(&r.samples, r.warm_up_sec, |s| s.mem_kb).unwrap_or_default();
    let fds = span(&r.samples, r.warm_up_sec, |s| s.fds).unwrap_or_default();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let gb = |b: u64| b as f64 / 1e9;
    let row = |f: &str, v: String| ("soak".to_owned(), f.to_owned(), v);
    vec![
        row(
            "native viewers × minutes (release)",
            format!(
                "{} × {} ({} started)",
                r.viewers, r.minutes, r.viewers_started
            ),
        ),
        row(
            "listed segments that answered 404",
            r.listed_segments_404.to_string(),
        ),
        row(
            "body bytes, swarm vs nginx's access log",
            format!(
                "{:.3} GB vs {:.3} GB ({:.4} %)",
                gb(r.swarm_body_bytes),
                gb(r.nginx_body_bytes),
                r.bytes_diff * 100.0
            ),
        ),
        row(
            "swarm memory (RssAnon) from minute 2 to the end",
            format!(
                "{:.1} → {:.1} MB ({:+.1} %)",
                mb(mem.0),
                mb(mem.1),
                r.memory_growth * 100.0
            ),
        ),
        row(
            "swarm open files from minute 2 to the end",
            format!("{} → {} ({:+.1} %)", fds.0, fds.1, r.fd_growth * 100.0),
        ),
        row(
            "segments; rebuffers; HTTP errors",
            format!("{}; {}; {}", r.segments, r.rebuffers, r.http_errors),
        ),
        row(
            "restarts: viewers, origin (nginx or FFmpeg)",
            format!("{}, {}", r.viewer_restarts, r.origin_restarts),
        ),
        row(
            "checks",
            if r.failed.is_empty() {
                "all passed".to_owned()
            } else {
                format!("FAILED: {}", r.failed.join("; "))
            },
        ),
    ]
}

/// Runs the soak and returns its report (written to DIR/soak.json too).
pub fn soak(root: &Path, o: &Options) -> Result<Report> {
    let bin = crate::lab::build(root, o.release)?;
    let tmp = tempfile::tempdir()?;
    let dir = match &o.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log_dir = logs.to_str().context("the log dir is not UTF-8")?;
    println!(
        "== soak: {} native viewers for {} min",
        o.viewers, o.minutes
    );
    let mut origin = crate::lab::origin(
        &bin,
        &[
            "-p",
            "debug",
            "--log-dir",
            log_dir,
            "--set",
            "logging.gzip=0",
            "--set",
            "logging.flushInterval=\"1s\"",
        ],
        true,
    )?;
    let json = dir.join("summary.json");
    let out = std::fs::File::create(dir.join("swarm.log"))?;
    let duration = Duration::from_secs(u64::from(o.minutes) * 60);
    // all started within 30 s (at 10/s at least)
    let ramp = (o.viewers / 30).clamp(10, 200).to_string();
    let mut swarm = Command::new(bin.join("swarm-client"))
        .args([
            "run",
            &origin.url(),
            "--plain",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--set", &format!("clients={}", o.viewers)])
        .args(["--set", &format!("rampRate={ramp}")])
        .args(["--duration", &format!("{}s", duration.as_secs())])
        .arg("--summary-json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("cannot start swarm-client")?;
    let pid = swarm.id();
    let started = Instant::now();
    let limit = duration + Duration::from_secs(120);
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let status = loop {
        if let Some(s) = swarm.try_wait()? {
            break s;
        }
        let t = started.elapsed();
        if t >= limit {
            let _ = swarm.kill();
            bail!(
                "the swarm did not end within {} s; see {}",
                limit.as_secs(),
                dir.join("swarm.log").display()
            );
        }
        // while the viewers play (not as the swarm stops them)
        if t >= next_sample && t < duration {
            if let Some(s) = proc_sample(pid, t.as_secs()) {
                if s.sec % 60 < SAMPLE_EVERY.as_secs() {
                    println!(
                        "[{:>3} min] swarm memory {:.1} MB (RSS {:.1} MB), {} open files",
                        s.sec / 60,
                        s.mem_kb as f64 / 1024.0,
                        s.rss_kb as f64 / 1024.0,
                        s.fds
                    );
                }
                samples.push(s);
            }
            next_sample += SAMPLE_EVERY;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // nginx writes what is left in its log buffers as it stops
    let origin_output = origin.output();
    origin.stop();
    if !status.success() {
        bail!(
            "the swarm failed ({status}); see {}",
            dir.join("swarm.log").display()
        );
    }
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&json).with_context(|| format!("no {}", json.display()))?,
    )?;
    let t = &v["totals"];
    let n = &t["native"];
    let count = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
    let swarm_bytes = count(&n["bodyBytes"]);
    let (nginx_bytes, _) = logged_body_bytes(&logs)?;
    let bytes_diff = (nginx_bytes as f64 - swarm_bytes as f64).abs() / (nginx_bytes.max(1) as f64);
    let warm_up_sec = (u64::from(o.minutes) * 60 / 2).min(120);
    let mut r = Report {
        minutes: o.minutes,
        viewers: o.viewers,
        viewers_started: count(&t["viewersStarted"]),
        segments: count(&t["segments"]),
        listed_segments_404: count(&n["segmentsGone"]),
        http_errors: t["httpErrors"]
            .as_object()
            .map(|m| m.values().map(count).sum())
            .unwrap_or(0),
        rebuffers: count(&n["rebuffers"]),
        swarm_body_bytes: swarm_bytes,
        nginx_body_bytes: nginx_bytes,
        bytes_diff,
        warm_up_sec,
        memory_growth: growth(&samples, warm_up_sec, |s| s.mem_kb),
        fd_growth: growth(&samples, warm_up_sec, |s| s.fds),
        viewer_restarts: count(&t["restarts"]),
        origin_restarts: origin_output.matches("; restart #").count() as u64,
        samples,
        failed: Vec::new(),
    };
    r.failed = checks(&r);
    let text = serde_json::to_string_pretty(&r)? + "\n";
    common::artifact::write_atomic(&dir.join("soak.json"), text.as_bytes())?;
    Ok(r)
}

/// The checks a soak must pass, as the failures' descriptions.
pub fn checks(r: &Report) -> Vec<String> {
    let mut failed = Vec::new();
    if r.listed_segments_404 > 0 {
        failed.push(format!(
            "{} listed segments answered 404",
            r.listed_segments_404
        ));
    }
    if r.bytes_diff > MAX_BYTES_DIFF {
        failed.push(format!(
            "the swarm's body bytes differ from nginx's by {:.3} % (limit 0.5 %)",
            r.bytes_diff * 100.0
        ));
    }
    if r.memory_growth > MAX_GROWTH {
        failed.push(format!(
            "the swarm's memory (RssAnon) grew {:.1} % after the warm-up (limit 5 %)",
            r.memory_growth * 100.0
        ));
    }
    if r.fd_growth > MAX_GROWTH {
        failed.push(format!(
            "the swarm's open files grew {:.1} % after the warm-up (limit 5 %)",
            r.fd_growth * 100.0
        ));
    }
    if r.viewers_started < u64::from(r.viewers) {
        failed.push(format!(
            "{} of {} viewers started",
            r.viewers_started, r.viewers
        ));
    }
    failed
}

fn table(r: &Report) -> String {
    let mem = span(&r.samples, r.warm_up_sec, |s| s.mem_kb).unwrap_or_default();
    let fds = span(&r.samples, r.warm_up_sec, |s| s.fds).unwrap_or_default();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let mut o = String::new();
    use std::fmt::Write;
    let _ = writeln!(o, "\nsoak: {} viewers, {} min", r.viewers, r.minutes);
    let _ = writeln!(
        o,
        "  viewers started      {}\n  segments             {}\n  listed segments 404  {}\n  HTTP errors          {}\n  rebuffers            {}",
        r.viewers_started, r.segments, r.listed_segments_404, r.http_errors, r.rebuffers
    );
    let _ = writeln!(
        o,
        "  body bytes           swarm {} / nginx {} (difference {:.4} %)",
        r.swarm_body_bytes,
        r.nginx_body_bytes,
        r.bytes_diff * 100.0
    );
    let _ = writeln!(
        o,
        "  swarm memory         {:.1} MB at {} s → {:.1} MB at the end ({:+.1} %), RssAnon",
        mb(mem.0),
        r.warm_up_sec,
        mb(mem.1),
        r.memory_growth * 100.0
    );
    let _ = writeln!(
        o,
        "  swarm open files     {} → {} ({:+.1} %)",
        fds.0,
        fds.1,
        r.fd_growth * 100.0
    );
    let _ = writeln!(
        o,
        "  restarts             viewers {}, origin {}",
        r.viewer_restarts, r.origin_restarts
    );
    if r.failed.is_empty() {
        let _ = writeln!(o, "  PASS");
    }
    for f in &r.failed {
        let _ = writeln!(o, "  FAIL: {f}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(sec: u64, mem_kb: u64) -> Sample {
        Sample {
            sec,
            rss_kb: mem_kb + 20_000,
            mem_kb,
            fds: 10,
        }
    }

    #[test]
    fn growth_is_from_the_warm_up_to_the_median_of_the_end() {
        let flat = [
            s(0, 10),
            s(60, 100),
            s(120, 100),
            s(180, 101),
            s(190, 100),
            s(200, 102),
        ];
        assert!((growth(&flat, 120, |s| s.mem_kb) - 0.01).abs() < 1e-9);
        // one spike at the end does not count; a rise does
        let spike = [s(120, 100), s(130, 100), s(140, 200), s(150, 100)];
        assert_eq!(growth(&spike, 120, |s| s.mem_kb), 0.0);
        let rise = [s(120, 100), s(130, 110), s(140, 120), s(150, 130)];
        assert!((growth(&rise, 120, |s| s.mem_kb) - 0.2).abs() < 1e-9);
    }

    #[test]
    fn checks_name_each_failure() {
        let mut r = Report {
            minutes: 2,
            viewers: 10,
            viewers_started: 10,
            segments: 100,
            listed_segments_404: 0,
            http_errors: 0,
            rebuffers: 0,
            swarm_body_bytes: 1000,
            nginx_body_bytes: 1000,
            bytes_diff: 0.0,
            warm_up_sec: 60,
            memory_growth: 0.01,
            fd_growth: 0.0,
            viewer_restarts: 0,
            origin_restarts: 0,
            samples: Vec::new(),
            failed: Vec::new(),
        };
        assert!(checks(&r).is_empty());
        r.listed_segments_404 = 2;
        r.bytes_diff = 0.006;
        r.memory_growth = 0.06;
        let f = checks(&r);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].contains("2 listed segments answered 404"));
    }
}
