//! `swarm-client merge`: the results of runs on several machines — shards of
//! one test — as the results of one run. Counters add up, histograms merge
//! (so the percentiles are those of every sample together, not averages of
//! percentiles), seconds merge by wall-clock time, and the SLOs are checked
//! again on the merged figures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use common::cli::UsageError;

use crate::engine::summary::{
    self, Second, Summary, ViewerFigures, RESULTS_FORMAT, RESULTS_VERSION,
};
use crate::native::recorder::{Encoded, Recorder};

/// Reads one results file (`--summary-json` of `run`, or a merge), checking
/// its format and version.
pub fn read(path: &Path) -> Result<Summary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())).into())
}

/// A results document, checked.
pub fn parse(text: &str) -> Result<Summary, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    if v["format"] != RESULTS_FORMAT {
        return Err(format!(
            "not hls-swarm results (expected \"format\": \"{RESULTS_FORMAT}\"; write them with \
             `swarm-client run --summary-json FILE`)"
        ));
    }
    if v["version"] != RESULTS_VERSION {
        return Err(format!(
            "results version {} (this swarm-client reads version {RESULTS_VERSION})",
            v["version"]
        ));
    }
    serde_json::from_value(v).map_err(|e| format!("not valid results ({e})"))
}

/// Distinct values in order of first appearance, joined.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// The seconds of several runs merged by wall-clock second: counts add up,
/// TTFB histograms merge; a second is after the ramp when it is in every
/// run that has it, and counts for `minActiveViewers` only when every run
/// has a sample in it.
pub fn merge_series(runs: &[&[Second]]) -> Result<Vec<Second>, String> {
    let mut by_t: BTreeMap<u64, (Second, usize, Option<hdrhistogram::Histogram<u64>>)> =
        BTreeMap::new();
    for run in runs {
        for s in *run {
            let e = by_t.entry(s.t).or_insert_with(|| {
                (
                    Second {
                        t: s.t,
                        after_ramp: true,
                        ..Default::default()
                    },
                    0,
                    None,
                )
            });
            e.0.active += s.active;
            e.0.stalled += s.stalled;
            e.0.target += s.target;
            e.0.after_ramp &= s.after_ramp;
            e.0.bytes += s.bytes;
            e.0.requests += s.requests;
            e.0.errors += s.errors;
            // shards watch one origin: its figures are the same, not added
            e.0.origin_connections = e.0.origin_connections.max(s.origin_connections);
            e.0.origin_requests = max_f(e.0.origin_requests, s.origin_requests);
            e.0.origin_cpu = max_f(e.0.origin_cpu, s.origin_cpu);
            e.1 += 1;
            if let Some(enc) = &s.ttfb {
                let h = enc.decode().ok_or_else(|| {
                    format!("the TTFB histogram of second {} does not decode", s.t)
                })?;
                match &mut e.2 {
                    Some(all) => all
                        .add(&h)
                        .map_err(|_| format!("second {}: histograms of other bounds", s.t))?,
                    None => e.2 = Some(h),
                }
            }
        }
    }
    let total = runs
        .iter()
        .map(|r| r.first().map_or(0, |s| s.target))
        .sum::<u64>();
    Ok(by_t
        .into_values()
        .map(|(mut s, n, h)| {
            // a second some run has no sample of: its viewers are not
            // counted, so it cannot tell the fewest active
            if n < runs.len() {
                s.after_ramp = false;
                s.target = total;
            }
            if let Some(h) = h.filter(|h| !h.is_empty()) {
                let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                s.ttfb_p50_ms = Some(ms(0.5));
                s.ttfb_p99_ms = Some(ms(0.99));
                s.ttfb = Some(Encoded::of(&h));
            }
            s
        })
        .collect())
}

fn max_f(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The results of `runs` as one run's.
pub fn merge(runs: &[Summary]) -> Result<Summary, String> {
    let first = runs.first().ok_or("nothing to merge")?;
    if let Some(other) = runs.iter().find(|r| r.engine != first.engine) {
        return Err(format!(
            "runs of different engines ({} and {}) measure different figures; merge the \
             runs of one engine",
            first.engine, other.engine
        ));
    }
    let mut viewers: Vec<ViewerFigures> = runs.iter().flat_map(|r| r.viewers.clone()).collect();
    viewers.sort_by_key(|v| v.id);
    let recorder = match runs
        .iter()
        .map(|r| r.totals.native.as_ref().map(|n| &n.histograms))
        .collect::<Option<Vec<_>>>()
    {
        Some(all) => {
            let mut merged = Recorder::default();
            for h in all {
                merged.merge(&Recorder::from_encoded(h)?);
            }
            Some(merged)
        }
        None => None,
    };
    let series = merge_series(&runs.iter().map(|r| r.series.as_slice()).collect::<Vec<_>>())?;
    // the runs ran side by side: the merged run lasts from the first
    // second to the last, or as long as the longest run without seconds
    let duration = match (series.first(), series.last()) {
        (Some(a), Some(b)) => (b.t - a.t + 1) as f64,
        _ => runs.iter().map(|r| r.duration_sec).fold(0.0, f64::max),
    };
    let target: u32 = runs.iter().map(|r| r.totals.viewers).sum();
    let mut settings = first.settings.clone();
    if let Some(c) = settings.get_mut("clients") {
        *c = target.into();
    }
    Ok(Summary {
        format: RESULTS_FORMAT.into(),
        version: RESULTS_VERSION,
        engine: first.engine.clone(),
        url: distinct(runs.iter().map(|r| r.url.as_str())),
        profile: distinct(runs.iter().map(|r| r.profile.as_str())),
        seed: first.seed,
        duration_sec: duration,
        stopped_by: distinct(runs.iter().map(|r| r.stopped_by.as_str())),
        settings,
        totals: summary::totals(&viewers, target, duration, recorder.as_ref(), &series),
        viewers,
        series,
        slo: Vec::new(),
    })
}

/// `swarm-client merge FILE… [-o OUT] [--slo FIGURE=LIMIT…]`: reads the
/// results, merges them, checks the SLOs (the first run's, with `slo`
/// flags replacing or adding objectives), prints the summary and writes the
/// merged results to `out`. Exit status 4 (`SloFailed`) when one fails.
pub fn run(
    files: &[std::path::PathBuf],
    out: Option<&Path>,
    slo: &[String],
    log_format: crate::log::Format,
) -> Result<()> {
    crate::log::set(log_format);
    let runs = files.iter().map(|f| read(f)).collect::<Result<Vec<_>>>()?;
    let mut merged = merge(&runs).map_err(UsageError)?;
    let mut objectives: crate::slo::Slo =
        serde_json::from_value(runs[0].settings.get("slo").cloned().unwrap_or_default())
            .unwrap_or_default();
    for flag in slo {
        let (k, v) = crate::slo::parse_flag(flag).map_err(UsageError)?;
        objectives.0.insert(k, v);
    }
    let problems = crate::slo::check(&objectives, merged.engine == "native");
    if let Some((path, message)) = problems.first() {
        return Err(UsageError(format!("{path}: {message}")).into());
    }
    if let Some(s) = merged.settings.as_object_mut() {
        s.insert("slo".into(), serde_json::to_value(&objectives)?);
    }
    merged.slo = crate::slo::evaluate(&objectives, &merged);
    crate::log::verdicts(&merged.slo);
    println!(
        "merged {} results: {} viewers, {} seconds",
        runs.len(),
        merged.viewers.len(),
        merged.series.len()
    );
    print!("{}", merged.human());
    if let Some(path) = out {
        let json = serde_json::to_string_pretty(&merged)? + "\n";
        common::artifact::write_atomic(path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("merged results written to {}", path.display());
    }
    Ok(crate::slo::gate(&merged.slo)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::player::Kind;
    use crate::native::recorder::RequestSample;
    use std::time::Duration;

    /// A run of the viewers `ids`, each with its own requests, as `run` would
    /// summarise it; and the recorder of those requests.
    fn shard(ids: std::ops::Range<u32>, t0: u64, secs: u64) -> Summary {
        let mut r = Recorder::default();
        let mut viewers = Vec::new();
        let mut seconds = Vec::new();
        for id in ids.clone() {
            for i in 0..50u64 {
                r.request(&RequestSample {
                    kind: Kind::Segment,
                    connect: None,
                    ttfb: Duration::from_micros(200 + u64::from(id) * 37 + i * 11),
                    download: Duration::from_millis(1 + i),
                    download_ratio: Some(0.001 * i as f64),
                });
            }
            r.startup(Duration::from_millis(100 + u64::from(id)));
            viewers.push(ViewerFigures {
                id,
                starts: 1,
                segments: 50,
                playlists: 40,
                bytes: 1000 * u64::from(id + 1),
                timeouts: u64::from(id % 2),
                native: Some(Default::default()),
                ..Default::default()
            });
        }
        let n = ids.len() as u64;
        for t in t0..t0 + secs {
            seconds.push(Second {
                t,
                active: if t == t0 + 3 { n - 1 } else { n },
                target: n,
                after_ramp: t > t0,
                bytes: 100 * n,
                requests: 9 * n,
                ..Default::default()
            });
        }
        let mut s = Summary::new(
            "default",
            "http://o/s.m3u8",
            &serde_json::from_value(serde_json::json!({
                "clients": n, "rampRate": 10, "rampJitter": 0, "logLevel": "info",
                "variant": "all", "reconnect": true, "reconnectDelayMax": 5,
                "segMaxRetry": 3, "timeout": 10, "metricsPort": 9090
            }))
            .unwrap(),
            1,
            Duration::from_secs(secs),
            "duration reached",
            viewers,
            Some(&r),
            seconds,
        );
        // Summary::new numbers viewers from 0; a shard keeps its own ids
        for (v, id) in s.viewers.iter_mut().zip(ids) {
            v.id = id;
        }
        s
    }

    #[test]
    fn shards_merge_to_the_whole() {
        let whole = shard(0..10, 1000, 8);
        // the same viewers in three shards, one starting a second later
        let parts = [
            shard(0..3, 1000, 8),
            shard(3..7, 1000, 8),
            shard(7..10, 1001, 7),
        ];
        let merged = merge(&parts).unwrap();
        let (m, w) = (&merged.totals, &whole.totals);
        assert_eq!(m.viewers, 10);
        assert_eq!(
            (
                m.segments,
                m.playlists,
                m.bytes,
                m.timeouts,
                m.viewers_started
            ),
            (
                w.segments,
                w.playlists,
                w.bytes,
                w.timeouts,
                w.viewers_started
            )
        );
        // percentiles of all samples, as one machine would have measured them
        let (mn, wn) = (m.native.as_ref().unwrap(), w.native.as_ref().unwrap());
        assert_eq!(mn.requests["segment"], wn.requests["segment"]);
        assert_eq!(mn.startup_ms, wn.startup_ms);
        assert_eq!(mn.segment_download_ratio, wn.segment_download_ratio);
        assert_eq!(mn.histograms, wn.histograms);
        // seconds by wall clock; the second the third shard misses does
        // not count for the fewest active
        assert_eq!(merged.series.len(), 8);
        assert_eq!(merged.series[0].active, 7);
        assert!(!merged.series[0].after_ramp);
        assert_eq!(merged.series[2].bytes, 1000);
        // each shard had one viewer fewer in its fourth second: 1003 for
        // the first two, 1004 for the third
        assert_eq!(merged.series[3].active, 8);
        assert_eq!(merged.series[4].active, 9);
        assert_eq!(m.min_active_share, Some(0.8));
        let ids: Vec<u32> = merged.viewers.iter().map(|v| v.id).collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert_eq!(merged.settings["clients"], 10);
        // a merge of merges is the same merge
        let again = merge(&[merge(&parts[..2]).unwrap(), parts[2].clone()]).unwrap();
        assert_eq!(again.totals.native.unwrap().histograms, mn.histograms);
    }

    #[test]
    fn what_is_not_results_is_refused_clearly() {
        assert!(parse("{").unwrap_err().starts_with("not JSON"));
        assert!(parse("{\"a\": 1}")
            .unwrap_err()
            .contains("not hls-swarm results"));
        let mut v = serde_json::to_value(shard(0..1, 1, 1)).unwrap();
        v["version"] = 9.into();
        assert!(parse(&v.to_string())
            .unwrap_err()
            .contains("results version 9"));
        let mut ff = shard(0..1, 1, 1);
        ff.engine = "ffmpeg".into();
        assert!(merge(&[shard(1..2, 1, 1), ff])
            .unwrap_err()
            .contains("different engines"));
        // a written results file reads back the same
        let s = shard(0..2, 5, 3);
        let back = parse(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(
            back.totals.native.unwrap().histograms,
            s.totals.native.unwrap().histograms
        );
    }
}
