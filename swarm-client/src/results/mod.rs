//! The results of a run, and of runs merged: the document `run
//! --summary-json` writes and `merge`, `report`, the SLO gate and the tests
//! read (its JSON Schema is `swarm-client schema --results`). The bottom
//! layer of the swarm client: it imports nothing else of the crate.
//!
//! - `figures`: the counters and figures of a viewer, of a network class and
//!   of the whole run, and how they add up;
//! - `recorder`: the histograms behind the distributions, and their exact
//!   encoding;
//! - `seconds`: the per-second series, packed;
//! - `slo`: the objectives, the figures they read and their verdicts;
//! - `gate`: objectives that stop a run early, judged on the series;
//! - `window`: the figures of a stretch of a run, between two readings;
//! - `capacity`: a capacity search's steps and its answer;
//! - `compare`: two runs figure by figure, regressions flagged;
//! - `merge`: the arithmetic of merging runs.

pub mod capacity;
pub mod compare;
pub mod figures;
pub mod gate;
pub mod merge;
pub mod recorder;
pub mod seconds;
pub mod series_csv;
pub mod slo;
pub mod window;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use figures::{
    totals, Counters, KindStats, Latency, NativeCounts, NativeFigures, NativeTotals, NetworkTotals,
    Totals, ViewerFigures,
};
pub use recorder::{Encoded, Kind, Recorder, RequestSample, Stats};
pub use seconds::Seconds;

/// What a run was: the head of its results.
pub struct Run {
    /// `native` or `ffmpeg`.
    pub engine: String,
    pub url: String,
    pub profile: String,
    pub seed: u64,
    /// The config it ran with.
    pub settings: serde_json::Value,
    /// The viewers it aims at (`clients`).
    pub clients: u32,
    pub ran_for: Duration,
    /// Why it ended.
    pub stopped_by: String,
}

/// The name of the results format, in every results file.
pub const RESULTS_FORMAT: &str = "hls-swarm-results";
/// Its version: a reader refuses others.
pub const RESULTS_VERSION: u32 = 1;

/// One wall-clock second of a run: for charts, and for merging runs from
/// many machines by time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Second {
    /// Unix time of the second's end, in whole seconds.
    pub t: u64,
    /// Viewers running, and stalled, at that moment.
    pub active: u64,
    pub stalled: u64,
    /// Viewers the run aims at (`clients`, or a load shape's target line).
    pub target: u64,
    /// Whether the ramp's last start was at least a second before (with a
    /// load shape: the target has held for the last second).
    pub after_ramp: bool,
    /// Within the second: bytes received, requests loaded (segments and
    /// playlists), failed requests.
    pub bytes: u64,
    pub requests: u64,
    pub errors: u64,
    /// TTFB of the segment requests answered within the second, in ms
    /// (native engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_p99_ms: Option<f64>,
    /// The histogram those come from (µs), so merged seconds have true
    /// percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb: Option<Encoded>,
    /// The origin beside the swarm (`run --origin-status`, `--origin-node`):
    /// nginx's active connections, requests it served per second, CPU of
    /// its machine in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_connections: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_requests: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_cpu: Option<f64>,
}

/// The `minActiveViewers` figure of a series: the fewest viewers active in
/// any second after the ramp (of a load shape: on a plateau), as a share of
/// the target; the last second's share when the run ended before that. A
/// second that aims at no viewer counts as a share of 1.
pub fn min_active_share(series: &Seconds) -> Option<f64> {
    let share = |s: &Second| {
        if s.target == 0 {
            1.0
        } else {
            s.active as f64 / s.target as f64
        }
    };
    series
        .iter()
        .filter(|s| s.after_ramp)
        .map(|s| share(&s))
        .reduce(f64::min)
        .or_else(|| series.last().map(|s| share(&s)))
}

/// The results of a run (or of runs merged): settings, totals, every
/// viewer's figures, the series of seconds and the SLO verdicts. Its JSON
/// Schema is `swarm-client schema --results`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// `hls-swarm-results`.
    pub format: String,
    /// The format's version (1).
    pub version: u32,
    /// `native` or `ffmpeg`.
    pub engine: String,
    pub url: String,
    pub profile: String,
    pub seed: u64,
    pub duration_sec: f64,
    /// Why the run ended (`duration reached`, `SIGTERM`, `interrupted`,
    /// `stream never reachable`), or `checkpoint (the run was still going)`
    /// in results written while it ran.
    pub stopped_by: String,
    pub settings: serde_json::Value,
    pub totals: Totals,
    pub viewers: Vec<ViewerFigures>,
    /// One entry per wall-clock second.
    #[serde(default)]
    pub series: Seconds,
    /// Each objective of the `slo` table, checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<slo::Verdict>,
    /// The part of a bigger run these results are (`run --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// A capacity search's steps and answer (`swarm-client capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::Capacity>,
}

impl Results {
    /// The results of `run`: its viewers' figures, the native engine's
    /// histograms (`None` for FFmpeg viewers) and its series.
    pub fn new(
        run: Run,
        mut viewers: Vec<ViewerFigures>,
        recorder: Option<&Recorder>,
        series: Seconds,
    ) -> Self {
        let secs = run.ran_for.as_secs_f64().max(1e-9);
        for (i, v) in viewers.iter_mut().enumerate() {
            v.id = i as u32;
            v.media_seconds += v.current_media_us as f64 / 1e6;
            v.current_media_us = 0;
        }
        Results {
            format: RESULTS_FORMAT.into(),
            version: RESULTS_VERSION,
            engine: run.engine,
            url: run.url,
            profile: run.profile,
            seed: run.seed,
            duration_sec: (secs * 10.0).round() / 10.0,
            stopped_by: run.stopped_by,
            settings: run.settings,
            totals: totals(&viewers, run.clients, secs, recorder, &series),
            viewers,
            series,
            slo: Vec::new(),
            shard: None,
            capacity: None,
        }
    }

    /// Marks these results as `shard` of a bigger run: viewers numbered
    /// from the shard's first.
    pub fn set_shard(&mut self, shard: Shard) {
        for (i, v) in self.viewers.iter_mut().enumerate() {
            v.id = shard.first_viewer + i as u32;
        }
        self.shard = shard.is_part().then_some(shard);
    }
}

/// The part of a run one process plays (`run --shard I/N`): viewers
/// `firstViewer..firstViewer + viewers` of `totalViewers`, numbered, timed
/// and seeded as in the whole run, so that the shards together are exactly
/// the run one machine would have made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// This shard's index, from 0.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
    pub first_viewer: u32,
    pub viewers: u32,
    pub total_viewers: u32,
}

impl Shard {
    /// The part of the whole run's viewers this shard plays (0–1).
    pub fn share(&self) -> f64 {
        f64::from(self.viewers) / f64::from(self.total_viewers.max(1))
    }

    /// The whole run of `total` viewers as one shard.
    pub fn whole(total: u32) -> Shard {
        Shard {
            index: 0,
            count: 1,
            first_viewer: 0,
            viewers: total,
            total_viewers: total,
        }
    }

    /// Shard `index` of `count` of a run of `total` viewers: viewers
    /// `[index·total/count, (index+1)·total/count)`.
    pub fn of(index: u32, count: u32, total: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("0 shards: expected at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count}: the index counts from 0 to {}",
                count - 1
            ));
        }
        if count > total {
            return Err(format!(
                "{count} shards for {total} viewers: every shard needs a viewer; use at most \
                 {total} shards or more clients"
            ));
        }
        let at = |i: u32| (u64::from(i) * u64::from(total) / u64::from(count)) as u32;
        Ok(Shard {
            index,
            count,
            first_viewer: at(index),
            viewers: at(index + 1) - at(index),
            total_viewers: total,
        })
    }

    /// Parses `--shard I/N` for a run of `total` viewers.
    pub fn parse(text: &str, total: u32) -> Result<Shard, String> {
        let bad = || format!("--shard `{text}`: expected INDEX/COUNT, e.g. 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::of(i, n, total).map_err(|e| format!("--shard {text}: {e}"))
    }

    /// Whether this is a part of a bigger run.
    pub fn is_part(&self) -> bool {
        self.count > 1
    }
}

/// A results document, checked: its format and version first, then the
/// rest straight into its types (no tree of values in between: a shard's
/// results may be megabytes).
pub fn parse(text: &str) -> Result<Results, String> {
    #[derive(serde::Deserialize)]
    struct Header {
        format: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    }
    // as this swarm-client writes them, the header is their first bytes
    let ours = format!("{{\"format\":\"{RESULTS_FORMAT}\",\"version\":{RESULTS_VERSION},");
    if text.starts_with(&ours) {
        return serde_json::from_str(text).map_err(|e| format!("not valid results ({e})"));
    }
    let h: Header = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    if h.format.as_ref().and_then(|f| f.as_str()) != Some(RESULTS_FORMAT) {
        return Err(format!(
            "not hls-swarm results (expected \"format\": \"{RESULTS_FORMAT}\"; write them with \
             `swarm-client run --summary-json FILE`)"
        ));
    }
    if h.version.as_ref().and_then(|v| v.as_u64()) != Some(u64::from(RESULTS_VERSION)) {
        return Err(format!(
            "results version {} (this swarm-client reads version {RESULTS_VERSION})",
            h.version.unwrap_or_default()
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("not valid results ({e})"))
}
