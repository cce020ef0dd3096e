//! `cargo xtask bench --only merge`: `swarm-client merge --from-logs` of
//! 1000 shard results, each the histograms of 10 000 viewers and a
//! 10-minute series, as 1000 pods of an Indexed Job print them: wall time
//! and peak memory of the merge.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use swarm_client::results::{
    Counters, Encoded, Kind, NativeCounts, NativeTotals, Recorder, RequestSample, Results, Second,
    Shard, Totals, RESULTS_FORMAT, RESULTS_VERSION,
};

type Figure = (String, String, String);

const SHARDS: u32 = 1000;
const VIEWERS: u32 = 10_000;
const SECONDS: u64 = 600;

/// A duration of about `median_us` µs, log-normally spread (σ 0.7: 99 %
/// within a factor of 6 either way, with a long tail from the sum of
/// uniforms), as request timings under load are.
fn spread(rng: &mut fastrand::Rng, median_us: f64) -> Duration {
    let normal: f64 = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
    let tail = if rng.u32(0..1000) == 0 { 20.0 } else { 1.0 };
    Duration::from_micros((median_us * (0.7 * normal).exp() * tail).max(1.0) as u64)
}

/// The histograms of one shard: 20 000 requests of each kind drawn at
/// random fill about as many buckets as a long run of 10 000 viewers does.
fn recorder(rng: &mut fastrand::Rng) -> Recorder {
    let mut r = Recorder::default();
    for i in 0..60_000 {
        let kind = [Kind::Master, Kind::Playlist, Kind::Segment][i % 3];
        r.request(&RequestSample {
            kind,
            connect: (i % 50 == 0).then(|| spread(rng, 300.0)),
            ttfb: spread(rng, 2_000.0),
            download: spread(rng, 20_000.0),
            download_ratio: (kind == Kind::Segment).then(|| rng.f64() * 0.5),
        });
    }
    for _ in 0..2_000 {
        r.startup(spread(rng, 400_000.0));
        r.latency(spread(rng, 6_000_000.0), None);
        r.rebuffer(spread(rng, 500_000.0));
    }
    r
}

/// One second's segment TTFB histograms to draw from: 50 of them, each of
/// 2 500 requests (10 000 viewers, a 4 s segment and its playlist).
fn second_histograms(rng: &mut fastrand::Rng) -> Vec<Encoded> {
    (0..50)
        .map(|_| {
            let mut h =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            for _ in 0..2_500 {
                h.saturating_record(spread(rng, 2_000.0).as_micros() as u64);
            }
            // as the swarm writes a second's histogram
            Encoded::coarse(&h, swarm_client::engine::SECOND_TTFB_SIGFIG).unwrap()
        })
        .collect()
}

fn shard(index: u32, rng: &mut fastrand::Rng, pool: &[Encoded], t0: u64) -> Result<Results> {
    let shard = Shard::of(index, SHARDS, SHARDS * VIEWERS).map_err(anyhow::Error::msg)?;
    let rec = recorder(rng);
    let viewers = u64::from(shard.viewers);
    let series = (0..SECONDS)
        .map(|s| Second {
            t: t0 + s,
            active: viewers,
            target: viewers,
            after_ramp: s >= 20,
            bytes: viewers * 200_000,
            requests: viewers / 2,
            ttfb: Some(pool[rng.usize(..pool.len())].clone()),
            ttfb_p50_ms: Some(2.0),
            ttfb_p99_ms: Some(20.0),
            ..Default::default()
        })
        .collect();
    let counts = NativeCounts {
        body_bytes: viewers * 200_000 * SECONDS,
        play_sec: (viewers * SECONDS) as f64,
        ..Default::default()
    };
    Ok(Results {
        format: RESULTS_FORMAT.into(),
        version: RESULTS_VERSION,
        engine: "native".into(),
        url: "http://origin/stream.m3u8".into(),
        profile: "default".into(),
        seed: 1,
        duration_sec: SECONDS as f64,
        stopped_by: "duration reached".into(),
        settings: serde_json::json!({ "clients": viewers }),
        totals: Totals {
            viewers: shard.viewers,
            viewers_started: shard.viewers,
            counts: Counters {
                starts: viewers,
                bytes: viewers * 200_000 * SECONDS,
                segments: viewers * SECONDS / 4,
                playlists: viewers * SECONDS / 4,
                ..Default::default()
            },
            media_rate: viewers as f64,
            native: Some(NativeTotals::of(counts, Default::default(), &rec)),
            ..Default::default()
        },
        viewers: Vec::new(),
        series,
        slo: Vec::new(),
        shard: Some(shard),
        capacity: None,
    })
}

pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let tmp = tempfile::tempdir()?;
    let logs = tmp.path().join("logs.txt");
    eprintln!("   writing {SHARDS} shards' results ({VIEWERS} viewers, {SECONDS} s each)");
    let mut rng = fastrand::Rng::with_seed(3);
    let pool = second_histograms(&mut rng);
    // ten different shards, written out once each (drawing and writing
    // histograms is slow in this debug build); each of the 1000 is one of
    // them with its own index and viewers
    let templates = (0..10)
        .map(|i| {
            let s = shard(i, &mut rng, &pool, 1_800_000_000)?;
            let text = swarm_client::merge::printed(&s)?;
            let own = serde_json::to_string(&s.shard)?;
            Ok((text, own))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&logs)?);
    for i in 0..SHARDS {
        let (text, own) = &templates[(i % 10) as usize];
        let mine = Shard::of(i, SHARDS, SHARDS * VIEWERS).map_err(anyhow::Error::msg)?;
        // what a pod prints, after a line of its own output
        writeln!(out, "swarm-client: shard {i} done")?;
        writeln!(
            out,
            "{}",
            text.replace(own.as_str(), &serde_json::to_string(&Some(mine))?)
        )?;
    }
    out.flush()?;
    drop(out);
    let size = std::fs::metadata(&logs)?.len();
    eprintln!("   merging them ({} MB of logs)", size / 1_000_000);
    let merged = tmp.path().join("merged.json");
    let t = Instant::now();
    let mut child = Command::new(bin.join("swarm-client"))
        .args(["merge", "--from-logs"])
        .arg(&logs)
        .arg("-o")
        .arg(&merged)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("cannot run swarm-client merge")?;
    // the kernel's peak RSS of the process (VmHWM), read until it exits
    let mut peak_kb = 0;
    let status = loop {
        peak_kb = peak_kb.max(testkit::procs::kb(child.id(), "status", "VmHWM:"));
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the merge failed ({status})");
    }
    let peak_mb = peak_kb as f64 / 1024.0;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged)?)?;
    let total = v["totals"]["viewers"].as_u64().unwrap_or(0);
    if total != u64::from(SHARDS * VIEWERS) {
        bail!("the merge has {total} viewers, not {}", SHARDS * VIEWERS);
    }
    let area = || format!("merge ({SHARDS} shards × {VIEWERS} viewers, {SECONDS}-s series)");
    Ok(vec![
        (
            area(),
            "input: `kubectl logs` of the Job".into(),
            format!("{} MB", size / 1_000_000),
        ),
        (
            area(),
            "`swarm-client merge --from-logs`: wall time, peak RSS".into(),
            format!("{secs:.1} s, {peak_mb:.0} MB (targets: under 5 s and 500 MB)"),
        ),
        (
            area(),
            "merged: viewers, seconds".into(),
            format!("{total}, {}", v["series"].as_array().map_or(0, Vec::len)),
        ),
    ])
}
