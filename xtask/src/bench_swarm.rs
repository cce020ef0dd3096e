//! `cargo xtask bench --only swarm`: the swarm engines side by side, 10 000
//! native viewers on one box, and 2 000 Low-Latency HLS viewers — each a
//! real `swarm-client run` against a local origin, its CPU and memory
//! measured while it runs.

use std::path::Path;

use anyhow::{Context, Result};
use testkit::procs::{children_named, tree_cpu_ns, CpuGroup};

use crate::bench_ll::Origin;

type Figure = (String, String, String);

/// What one swarm run used, measured over a window after its ramp.
struct SwarmUse {
    viewers: usize,
    /// Swarm process plus its children (FFmpeg viewers), share of one core.
    cpu_cores: f64,
    /// How `cpu_cores` was counted.
    cpu_by: &'static str,
    /// The origin's processes (nginx, FFmpeg), share of one core.
    origin_cores: f64,
    /// Peak RSS of the swarm process.
    swarm_rss_kb: u64,
    /// Peak summed PSS of its FFmpeg children.
    viewers_pss_kb: u64,
    summary: serde_json::Value,
}

/// Runs `swarm-client run` with `args` against the stream at `url` for
/// `secs`, and measures CPU over [`settle`, `settle` + `window`) seconds.
fn measure_swarm(
    bin: &Path,
    url: &str,
    origin_pid: u32,
    args: &[&str],
    secs: u64,
    settle: u64,
    window: u64,
) -> Result<SwarmUse> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir()?;
    let json = tmp.path().join("summary.json");
    // a control group counts every process the swarm starts, even the ones
    // that have exited by the end of the window; without one, sample the tree
    let group = CpuGroup::create("bench-swarm");
    let mut swarm = match &group {
        Some(g) => g.command(&bin.join("swarm-client")),
        None => Command::new(bin.join("swarm-client")),
    };
    let mut swarm = swarm
        .arg("run")
        .arg(url)
        .args(args)
        .args([
            "--duration",
            &format!("{secs}s"),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--seed", "1", "--summary-json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = swarm.id();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(settle));
    let swarm_cpu = || {
        group
            .as_ref()
            .map_or_else(|| tree_cpu_ns(pid), CpuGroup::cpu_ns)
    };
    let (t0, o0) = (swarm_cpu(), tree_cpu_ns(origin_pid));
    let w0 = Instant::now();
    let mut rss = 0;
    let mut pss = 0;
    let mut viewers = 0;
    while w0.elapsed() < Duration::from_secs(window) {
        rss = rss.max(testkit::procs::kb(pid, "status", "VmRSS:"));
        let kids = children_named(pid, "ffmpeg");
        viewers = viewers.max(kids.len());
        pss = pss.max(
            kids.iter()
                .map(|k| testkit::procs::kb(*k, "smaps_rollup", "Pss:"))
                .sum::<u64>(),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let secs_measured = w0.elapsed().as_secs_f64();
    let cpu = swarm_cpu().saturating_sub(t0) as f64 / 1e9 / secs_measured;
    let origin_cpu = tree_cpu_ns(origin_pid).saturating_sub(o0) as f64 / 1e9 / secs_measured;
    while start.elapsed() < Duration::from_secs(secs + 30) {
        if swarm.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = swarm.kill();
    let _ = swarm.wait();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&json).context("the swarm wrote no summary")?,
    )?;
    Ok(SwarmUse {
        viewers,
        cpu_cores: cpu,
        cpu_by: if group.is_some() {
            "control group"
        } else {
            "process tree"
        },
        origin_cores: origin_cpu,
        swarm_rss_kb: rss,
        viewers_pss_kb: pss,
        summary,
    })
}

/// 200 viewers of one light stream, first native then FFmpeg: CPU and
/// memory per viewer of each engine.
pub fn engines(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let tiny = [
        "--set",
        "video.width=320",
        "--set",
        "video.height=180",
        "--set",
        "video.bitrate=350k",
        "--set",
        "video.maxrate=400k",
        "--set",
        "video.bufsize=700k",
        "--set",
        "encoder.framerate=10",
        "--set",
        "encoder.preset=ultrafast",
    ];
    let origin = crate::lab::origin(&bin, &tiny, true)?;
    let opid = origin.pid().context("the origin is not running")?;
    let common = [
        "--set",
        "clients=200",
        "--set",
        "rampRate=50",
        "--set",
        "logLevel=\"info\"",
    ];
    let mut native_args = vec!["--engine", "native"];
    native_args.extend(common);
    let mut ffmpeg_args = vec!["--engine", "ffmpeg"];
    ffmpeg_args.extend(common);
    let n = measure_swarm(&bin, &origin.url(), opid, &native_args, 45, 15, 25)?;
    let f = measure_swarm(&bin, &origin.url(), opid, &ffmpeg_args, 45, 15, 25)?;
    drop(origin);
    let area = || "swarm engines (200 viewers, 320x180 ≈430 kbit/s)".to_owned();
    let per = |x: f64| x / 200.0;
    let native_mem = n.swarm_rss_kb as f64 / 200.0;
    let ffmpeg_mem = (f.viewers_pss_kb + f.swarm_rss_kb) as f64 / 200.0;
    Ok(vec![
        (
            area(),
            "native: viewers started, rebuffers".into(),
            format!(
                "{}, {}",
                n.summary["totals"]["viewersStarted"], n.summary["totals"]["native"]["rebuffers"]
            ),
        ),
        (
            area(),
            "native: CPU per viewer".into(),
            format!(
                "{:.5} cores ({:.1} % of one core in all)",
                per(n.cpu_cores),
                n.cpu_cores * 100.0
            ),
        ),
        (
            area(),
            "native: memory per viewer (process RSS / viewers)".into(),
            format!(
                "{:.1} KB ({:.1} MB in all)",
                native_mem,
                n.swarm_rss_kb as f64 / 1024.0
            ),
        ),
        (
            area(),
            "ffmpeg: viewers running".into(),
            f.viewers.to_string(),
        ),
        (
            area(),
            "ffmpeg: CPU per viewer".into(),
            format!(
                "{:.5} cores ({:.1} % of one core in all)",
                per(f.cpu_cores),
                f.cpu_cores * 100.0
            ),
        ),
        (
            area(),
            "ffmpeg: memory per viewer (PSS of viewers + supervisor RSS)".into(),
            format!("{:.1} MB", ffmpeg_mem / 1024.0),
        ),
        (
            area(),
            "CPU counted by".into(),
            if n.cpu_by == f.cpu_by {
                n.cpu_by.to_owned()
            } else {
                format!("{} (native), {} (ffmpeg)", n.cpu_by, f.cpu_by)
            },
        ),
        (
            area(),
            "native vs ffmpeg".into(),
            format!(
                "CPU 1/{:.1}, memory 1/{:.0} (targets 1/10 and 1/100)",
                f.cpu_cores / n.cpu_cores.max(1e-9),
                ffmpeg_mem / native_mem.max(1e-9)
            ),
        ),
    ])
}

/// The stream of the scale and capacity benchmarks: 160x90, 10 fps,
/// ≈64 kbit/s with its audio, the profile's 2 s segments.
pub const LIGHT: &[&str] = &[
    "--set",
    "video.width=160",
    "--set",
    "video.height=90",
    "--set",
    "video.bitrate=48k",
    "--set",
    "video.maxrate=56k",
    "--set",
    "video.bufsize=96k",
    "--set",
    "video.audioBitrate=16k",
    "--set",
    "encoder.framerate=10",
    "--set",
    "encoder.preset=ultrafast",
];

/// 10 000 native viewers of a 160x90 stream on this machine.
pub fn scale(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let origin = crate::lab::origin(&bin, LIGHT, true)?;
    let opid = origin.pid().context("the origin is not running")?;
    let clients = 10_000;
    let args = [
        "--set",
        "clients=10000",
        "--set",
        "rampRate=400",
        "--set",
        "rampJitter=1000",
        "--set",
        "timeout=30",
    ];
    // ramp 25 s; measure 40 s of steady state
    let u = measure_swarm(&bin, &origin.url(), opid, &args, 80, 30, 40)?;
    drop(origin);
    let t = &u.summary["totals"];
    let n = &t["native"];
    let area = || "swarm scale (10 000 native viewers, 160x90 ≈64 kbit/s)".to_owned();
    let ratio = &n["segmentDownloadRatio"];
    Ok(vec![
        (
            area(),
            "viewers started / target".into(),
            format!("{} / {clients}", t["viewersStarted"]),
        ),
        (
            area(),
            "segments, errors (HTTP, timeouts, connect), rebuffers".into(),
            format!("{}, {}", t["segments"], errors_and_rebuffers(t)),
        ),
        (
            area(),
            "segment download ratio p50 / p99 / max".into(),
            format!("{} / {} / {}", ratio["p50"], ratio["p99"], ratio["max"]),
        ),
        (
            area(),
            "segment TTFB p50 / p99 (ms)".into(),
            format!(
                "{} / {}",
                n["requests"]["segment"]["ttfbMs"]["p50"],
                n["requests"]["segment"]["ttfbMs"]["p99"]
            ),
        ),
        (
            area(),
            "startup p50 / p95 (ms)".into(),
            format!("{} / {}", n["startupMs"]["p50"], n["startupMs"]["p95"]),
        ),
        (
            area(),
            "engine RSS (peak)".into(),
            format!(
                "{:.0} MB ({:.1} KB per viewer)",
                u.swarm_rss_kb as f64 / 1024.0,
                u.swarm_rss_kb as f64 / clients as f64
            ),
        ),
        (
            area(),
            "CPU: swarm / origin (nginx + FFmpeg)".into(),
            format!("{:.2} / {:.2} cores", u.cpu_cores, u.origin_cores),
        ),
    ])
}

/// Viewers of the Low-Latency part.
const LL_VIEWERS: u32 = 2000;

/// 2 000 native viewers of the `hlsjs` profile on the local LL origin
/// (blocking reloads, parts): are they all served in real time, what they
/// cost, what limits them.
pub fn low_latency(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let light = [&["--set", "tls.enable=false"][..], LIGHT_LL_STREAM].concat();
    let origin = Origin::start(&bin, &light)?;
    let url = format!("http://127.0.0.1:{}/video/stream.m3u8", origin.port);
    let clients = format!("clients={LL_VIEWERS}");
    let args = [
        "--set",
        &clients,
        "--set",
        "rampRate=200",
        "--set",
        "rampJitter=500",
        "--set",
        "timeout=30",
        "--set",
        "player=hlsjs",
    ];
    // ramp 10 s; measure 30 s of steady state
    let u = measure_swarm(&bin, &url, origin.proc.child.id(), &args, 70, 25, 30)?;
    drop(origin);
    let t = &u.summary["totals"];
    let n = &t["native"];
    let area = || "swarm LL-HLS (2 000 hls.js-profile viewers, 333 ms parts)".to_owned();
    let stats = |v: &serde_json::Value| format!("{} / {}", v["p50"], v["p99"]);
    // requests per viewer per second of playback, by kind
    let secs = n["playSec"].as_f64().unwrap_or(0.0) + n["rebufferSec"].as_f64().unwrap_or(0.0);
    let rate = |kind: &str| {
        n["requests"][kind]["ttfbMs"]["count"]
            .as_f64()
            .map_or(0.0, |c| c / secs.max(1e-9))
    };
    let all: f64 = ["playlist", "part", "segment", "init"]
        .iter()
        .map(|k| rate(k))
        .sum();
    Ok(vec![
        (
            area(),
            "viewers started / target".into(),
            format!("{} / {LL_VIEWERS}", t["viewersStarted"]),
        ),
        (
            area(),
            "errors (HTTP, timeouts, connect), rebuffers".into(),
            errors_and_rebuffers(t),
        ),
        (
            area(),
            "part download ratio p50 / p99".into(),
            stats(&n["partDownloadRatio"]),
        ),
        (
            area(),
            "requests per viewer per second: playlists / parts (all kinds, whole swarm)".into(),
            format!(
                "{:.2} / {:.2} ({:.0} requests/s)",
                rate("playlist"),
                rate("part"),
                all * f64::from(LL_VIEWERS)
            ),
        ),
        (
            area(),
            "reload hold, overshoot p50 / p99 (ms)".into(),
            format!(
                "{}, {}",
                stats(&n["reloadHoldMs"]),
                stats(&n["reloadOvershootMs"])
            ),
        ),
        (
            area(),
            "live latency p50 / p99 (ms)".into(),
            stats(&n["liveLatencyMs"]),
        ),
        (
            area(),
            "engine RSS (peak)".into(),
            format!(
                "{:.0} MB ({:.1} KB per viewer)",
                u.swarm_rss_kb as f64 / 1024.0,
                u.swarm_rss_kb as f64 / f64::from(LL_VIEWERS)
            ),
        ),
        (
            area(),
            "CPU: swarm / origin (encoder, nginx, LL server)".into(),
            format!("{:.2} / {:.2} cores", u.cpu_cores, u.origin_cores),
        ),
    ])
}

/// The LL benches' light stream: 320x180 at 30 fps, 300 kbit/s, 2 s
/// segments of 333 ms parts.
const LIGHT_LL_STREAM: &[&str] = &[
    "--set",
    "video.width=320",
    "--set",
    "video.height=180",
    "--set",
    "encoder.framerate=30",
    "--set",
    "video.bitrate=300k",
    "--set",
    "video.maxrate=330k",
    "--set",
    "video.bufsize=300k",
    "--set",
    "video.audioBitrate=64k",
    "--set",
    "lowLatency.partMs=333",
];

/// Viewers of each protocol in [`http_versions`].
const HTTP_VIEWERS: u32 = 500;

/// The same LL-HLS viewers over HTTP/2 and over HTTP/1.1, on one TLS
/// origin: the swarm's CPU per response, and its memory, by protocol.
pub fn http_versions(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let origin = Origin::start(&bin, LIGHT_LL_STREAM)?;
    let ca = origin
        .proc
        .output()
        .lines()
        .find_map(|l| l.strip_prefix("  CA "))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .context("the LL origin's banner names no CA: is TLS on?")?;
    let url = format!("https://127.0.0.1:{}/video/stream.m3u8", origin.port);
    let clients = format!("clients={HTTP_VIEWERS}");
    let secs = 40;
    let mut rows = Vec::new();
    for (version, name) in [("2", "HTTP/2"), ("1.1", "HTTP/1.1")] {
        let http = format!("http=\"{version}\"");
        let args = [
            "--set",
            &clients,
            "--set",
            "rampRate=500",
            "--set",
            "rampJitter=0",
            "--set",
            "timeout=30",
            "--set",
            "player=hlsjs",
            "--set",
            &http,
            "--ca-file",
            &ca,
        ];
        // ramp 1 s; measure 30 s of steady state
        let u = measure_swarm(&bin, &url, origin.proc.child.id(), &args, secs, 8, 30)?;
        let t = &u.summary["totals"];
        let n = &t["native"];
        let responses: f64 = n["requests"].as_object().map_or(0.0, |m| {
            m.values()
                .filter_map(|k| k["ttfbMs"]["count"].as_f64())
                .sum()
        });
        // the swarm's responses per second, over the run less its ramp
        let per_sec = responses / (secs as f64 - 1.0);
        let area =
            format!("swarm HTTP/2 vs HTTP/1.1 ({HTTP_VIEWERS} LL viewers over TLS, 333 ms parts)");
        rows.push((
            area.clone(),
            format!("{name}: connections opened, errors, rebuffers"),
            format!(
                "{}, {}",
                n["connections"].as_object().map_or(String::new(), |m| m
                    .iter()
                    .map(|(p, c)| format!("{p} {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")),
                errors_and_rebuffers(t)
            ),
        ));
        rows.push((
            area.clone(),
            format!("{name}: responses/s, swarm CPU per 1 000 responses"),
            format!(
                "{per_sec:.0}, {:.1} ms ({:.2} cores)",
                u.cpu_cores * 1e6 / per_sec.max(1e-9),
                u.cpu_cores
            ),
        ));
        rows.push((
            area,
            format!("{name}: engine RSS (peak), part TTFB p50 / p99"),
            format!(
                "{:.1} KB per viewer, {} / {} ms",
                u.swarm_rss_kb as f64 / f64::from(HTTP_VIEWERS),
                n["requests"]["part"]["ttfbMs"]["p50"],
                n["requests"]["part"]["ttfbMs"]["p99"]
            ),
        ));
    }
    drop(origin);
    Ok(rows)
}

/// "HTTP errors / timeouts / connection errors, rebuffers" of a run's totals.
fn errors_and_rebuffers(t: &serde_json::Value) -> String {
    format!(
        "{} / {} / {}, {}",
        t["httpErrors"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum::<u64>()),
        t["timeouts"],
        t["connectErrors"],
        t["native"]["rebuffers"]
    )
}
