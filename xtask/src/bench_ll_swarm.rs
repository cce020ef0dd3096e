//! `cargo xtask bench --only swarm`, its Low-Latency part: 2 000 native
//! viewers of the `hlsjs` profile on the local LL origin (blocking
//! reloads, parts) — are they all served in real time, what they cost,
//! what limits them.

use std::path::Path;

use anyhow::Result;

use crate::bench::{measure_swarm, Figure};
use crate::bench_ll::Origin;

const VIEWERS: u32 = 2000;

pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let light = [
        "--set",
        "tls.enable=false",
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
    let origin = Origin::start(&bin, &light)?;
    let url = format!("http://127.0.0.1:{}/video/stream.m3u8", origin.port);
    let clients = format!("clients={VIEWERS}");
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
            format!("{} / {VIEWERS}", t["viewersStarted"]),
        ),
        (
            area(),
            "errors (HTTP, timeouts, connect), rebuffers".into(),
            format!(
                "{} / {} / {}, {}",
                t["httpErrors"]
                    .as_object()
                    .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum::<u64>()),
                t["timeouts"],
                t["connectErrors"],
                n["rebuffers"]
            ),
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
                all * f64::from(VIEWERS)
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
                u.swarm_rss_kb as f64 / f64::from(VIEWERS)
            ),
        ),
        (
            area(),
            "CPU: swarm / origin (encoder, nginx, LL server)".into(),
            format!("{:.2} / {:.2} cores", u.cpu_cores, u.origin_cores),
        ),
    ])
}
