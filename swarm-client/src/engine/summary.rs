//! The report at the end of a run: a table for people, JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::seconds::Seconds;
use crate::config::Config;
use crate::native::recorder::{Encoded, Recorder, Stats, RATIO_SCALE};

/// What one viewer did over the whole run (all its processes).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerFigures {
    pub id: u32,
    /// Processes started (1 + restarts).
    pub starts: u64,
    pub restarts: u64,
    /// Bytes its processes read (network reads, HTTP headers included).
    pub bytes: u64,
    pub segments: u64,
    pub playlists: u64,
    /// HTTP error responses by status.
    pub http_errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Episodes of reading below 0.9× real time (or not at all) for over 5 s.
    pub stalls: u64,
    /// The last speed FFmpeg reported (1.0 = real time).
    pub last_speed: Option<f64>,
    /// Media time read by processes that have ended, in seconds.
    pub media_seconds: f64,
    #[serde(skip)]
    pub current_media_us: u64,
    /// What a native viewer measured (PLAYER.md); absent for FFmpeg viewers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeFigures>,
    /// Its network class (`networks` of the config), when there are classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl ViewerFigures {
    /// Its failed requests of every kind.
    pub fn failed_requests(&self) -> u64 {
        self.http_errors.values().sum::<u64>()
            + self.timeouts
            + self.connect_errors
            + self
                .native
                .as_ref()
                .map_or(0, |n| n.counts.errors.values().sum::<u64>())
    }
}

/// One network class's figures: its viewers' counters added up, and the
/// distributions of what they saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTotals {
    /// Viewers in the class, and those of them that started.
    pub viewers: u64,
    pub viewers_started: u64,
    pub segments: u64,
    /// Bytes read off the wire.
    pub bytes: u64,
    /// Failed requests of every kind (HTTP errors, timeouts, connections
    /// refused or cut, playlist problems).
    pub failed_requests: u64,
    pub play_sec: f64,
    pub rebuffers: u64,
    pub rebuffer_sec: f64,
    /// `rebufferSec / (playSec + rebufferSec)` of the class.
    pub rebuffer_ratio: f64,
    pub switches_up: u64,
    pub switches_down: u64,
    /// Segment TTFB and startup of the class's viewers, in ms.
    pub segment_ttfb_ms: Stats,
    pub startup_ms: Stats,
}

impl NetworkTotals {
    /// Adds one viewer's figures in.
    fn add_viewer(&mut self, v: &ViewerFigures) {
        self.viewers += 1;
        self.viewers_started += u64::from(v.starts > 0);
        self.segments += v.segments;
        self.bytes += v.bytes;
        self.failed_requests += v.failed_requests();
        if let Some(n) = &v.native {
            self.play_sec += n.counts.play_sec;
            self.rebuffers += n.counts.rebuffers;
            self.rebuffer_sec += n.counts.rebuffer_sec;
            self.switches_up += n.counts.switches_up;
            self.switches_down += n.counts.switches_down;
        }
    }

    /// Adds another run's counters of the class in (the distributions come
    /// from the merged histograms).
    pub fn add_counts(&mut self, o: &NetworkTotals) {
        self.viewers += o.viewers;
        self.viewers_started += o.viewers_started;
        self.segments += o.segments;
        self.bytes += o.bytes;
        self.failed_requests += o.failed_requests;
        self.play_sec += o.play_sec;
        self.rebuffers += o.rebuffers;
        self.rebuffer_sec += o.rebuffer_sec;
        self.switches_up += o.switches_up;
        self.switches_down += o.switches_down;
    }

    /// Fills in the ratio and the distributions from `r`.
    fn complete(&mut self, name: &str, r: &Recorder) {
        self.rebuffer_ratio = rebuffer_ratio(self.play_sec, self.rebuffer_sec);
        if let Some(h) = r.networks.get(name) {
            self.segment_ttfb_ms = Stats::of(&h.segment_ttfb, 1000.0);
            self.startup_ms = Stats::of(&h.startup, 1000.0);
        }
    }
}

/// `rebuffer / (play + rebuffer)` (PLAYER.md); 0 before any playback.
fn rebuffer_ratio(play_sec: f64, rebuffer_sec: f64) -> f64 {
    let watched = play_sec + rebuffer_sec;
    if watched > 0.0 {
        rebuffer_sec / watched
    } else {
        0.0
    }
}

/// Counters of native viewers (PLAYER.md §1–3): a viewer's, or their sum.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NativeCounts {
    /// Response body bytes (what the origin's access log calls body bytes).
    pub body_bytes: u64,
    /// Listed segments that answered 404/410 and were skipped.
    pub segments_gone: u64,
    /// Segments the playlist window moved past before they were loaded.
    pub segments_skipped: u64,
    /// Segments skipped after `segMaxRetry` failed tries.
    pub segments_failed: u64,
    /// Media-sequence resets followed (the viewer started again at the live edge).
    pub sequence_resets: u64,
    /// Playlist unreachable for `timeout`: the viewer started over.
    pub viewer_failures: u64,
    /// Viewers (for one viewer: 1 or 0) that were started but never
    /// played: no segment came in before the run ended.
    #[serde(default)]
    pub never_played: u64,
    /// Playlists of a master that were not followed: a viewer follows at
    /// most 16 (variants and renditions).
    #[serde(default)]
    pub variants_not_followed: u64,
    /// Seconds the playout clock advanced.
    pub play_sec: f64,
    pub rebuffers: u64,
    pub rebuffer_sec: f64,
    /// Times the buffer ran dry and media came within a frame interval:
    /// not stalls (PLAYER.md §2), counted apart.
    #[serde(default)]
    pub micro_gaps: u64,
    pub switches_up: u64,
    pub switches_down: u64,
    /// Failures other than HTTP statuses, timeouts and refused connections, by message.
    pub errors: BTreeMap<String, u64>,
}

impl NativeCounts {
    pub fn add(&mut self, o: &NativeCounts) {
        self.body_bytes += o.body_bytes;
        self.segments_gone += o.segments_gone;
        self.segments_skipped += o.segments_skipped;
        self.segments_failed += o.segments_failed;
        self.sequence_resets += o.sequence_resets;
        self.viewer_failures += o.viewer_failures;
        self.never_played += o.never_played;
        self.variants_not_followed += o.variants_not_followed;
        self.play_sec += o.play_sec;
        self.rebuffers += o.rebuffers;
        self.rebuffer_sec += o.rebuffer_sec;
        self.micro_gaps += o.micro_gaps;
        self.switches_up += o.switches_up;
        self.switches_down += o.switches_down;
        for (k, n) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
    }

    /// `rebuffer_sec / (play_sec + rebuffer_sec)`; 0 before any playback.
    pub fn rebuffer_ratio(&self) -> f64 {
        rebuffer_ratio(self.play_sec, self.rebuffer_sec)
    }
}

/// A native viewer's own figures, over all its playbacks.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NativeFigures {
    #[serde(flatten)]
    pub counts: NativeCounts,
    /// First request → first segment in, of the first playback.
    pub startup_ms: Option<f64>,
    /// `rebuffer_sec / (play_sec + rebuffer_sec)`.
    pub rebuffer_ratio: f64,
    /// Live latency at segment ends: the last, median and 95th percentile.
    pub live_latency_ms: Option<Latency>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    pub last: f64,
    pub p50: f64,
    pub p95: f64,
}

/// The native engine's totals and distributions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NativeTotals {
    #[serde(flatten)]
    pub counts: NativeCounts,
    /// Over all viewers: `Σ rebuffer / (Σ play + Σ rebuffer)`.
    pub rebuffer_ratio: f64,
    /// Per request kind: connect, TTFB and download times in ms.
    pub requests: BTreeMap<String, KindStats>,
    /// Segment download time / EXTINF.
    pub segment_download_ratio: Stats,
    pub startup_ms: Stats,
    pub rebuffer_ms: Stats,
    pub live_latency_ms: Stats,
    /// The histograms behind these figures, in a form that merges exactly
    /// (timings in µs, the ratio in thousandths).
    pub histograms: BTreeMap<String, Encoded>,
    /// Per network class (`networks` of the config), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, NetworkTotals>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindStats {
    pub connect_ms: Stats,
    pub ttfb_ms: Stats,
    pub download_ms: Stats,
}

impl NativeTotals {
    pub fn new(viewers: &[ViewerFigures], r: &Recorder) -> Self {
        let mut counts = NativeCounts::default();
        for v in viewers.iter().filter_map(|v| v.native.as_ref()) {
            counts.add(&v.counts);
        }
        let mut networks: BTreeMap<String, NetworkTotals> = BTreeMap::new();
        for v in viewers {
            if let Some(name) = &v.network {
                networks.entry(name.clone()).or_default().add_viewer(v);
            }
        }
        NativeTotals::of(counts, networks, r)
    }

    /// The totals of summed `counts` and network classes' counters, and the
    /// histograms of `r`.
    pub fn of(
        counts: NativeCounts,
        mut networks: BTreeMap<String, NetworkTotals>,
        r: &Recorder,
    ) -> Self {
        for (name, n) in networks.iter_mut() {
            n.complete(name, r);
        }
        let mut t = NativeTotals {
            counts,
            networks,
            ..Default::default()
        };
        t.rebuffer_ratio = t.counts.rebuffer_ratio();
        for (k, h) in &r.kinds {
            t.requests.insert(
                k.as_str().to_owned(),
                KindStats {
                    connect_ms: Stats::of(&h.connect, 1000.0),
                    ttfb_ms: Stats::of(&h.ttfb, 1000.0),
                    download_ms: Stats::of(&h.download, 1000.0),
                },
            );
        }
        t.segment_download_ratio = Stats::of(&r.download_ratio, RATIO_SCALE);
        t.startup_ms = Stats::of(&r.startup, 1000.0);
        t.rebuffer_ms = Stats::of(&r.rebuffer, 1000.0);
        t.live_latency_ms = Stats::of(&r.live_latency, 1000.0);
        t.histograms = r.encoded();
        t
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub viewers: u32,
    pub viewers_started: u32,
    pub starts: u64,
    pub restarts: u64,
    pub bytes: u64,
    pub segments: u64,
    pub playlists: u64,
    pub http_errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub stalls: u64,
    /// Media seconds read per second of run, summed over viewers (≈ viewers
    /// when every one keeps up).
    pub media_rate: f64,
    /// The fewest viewers active in any second after the ramp, as a share
    /// of `viewers` (the last second's share when the run ended first); see
    /// [`min_active_share`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_active_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeTotals>,
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
    /// Viewers the run aims at (`clients`).
    pub target: u64,
    /// Whether the ramp's last start was at least a second before.
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
/// any second after the ramp, as a share of the target; the last second's
/// share when the run ended before that.
pub fn min_active_share(series: &Seconds) -> Option<f64> {
    let share = |s: &Second| s.active as f64 / s.target.max(1) as f64;
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
pub struct Summary {
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
    pub slo: Vec<crate::slo::Verdict>,
    /// The part of a bigger run these results are (`run --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::Shard>,
}

/// The totals of `viewers` over `secs` of run, aiming at `target` viewers:
/// sums of their counters, and the native figures from `recorder`.
pub fn totals(
    viewers: &[ViewerFigures],
    target: u32,
    secs: f64,
    recorder: Option<&Recorder>,
    series: &Seconds,
) -> Totals {
    let mut t = Totals {
        viewers: target,
        ..Default::default()
    };
    let mut media = 0.0;
    for v in viewers {
        if v.starts > 0 {
            t.viewers_started += 1;
        }
        t.starts += v.starts;
        t.restarts += v.restarts;
        t.bytes += v.bytes;
        t.segments += v.segments;
        t.playlists += v.playlists;
        for (k, n) in &v.http_errors {
            *t.http_errors.entry(*k).or_default() += n;
        }
        t.timeouts += v.timeouts;
        t.connect_errors += v.connect_errors;
        t.stalls += v.stalls;
        media += v.media_seconds;
    }
    t.media_rate = media / secs.max(1e-9);
    t.min_active_share = min_active_share(series);
    t.native = recorder.map(|r| NativeTotals::new(viewers, r));
    t
}

impl Totals {
    /// Adds the counters of `o` (another run's totals; not `viewers`, the
    /// shares or the native figures, which come from merged data).
    pub fn add_counts(&mut self, o: &Totals) {
        self.viewers_started += o.viewers_started;
        self.starts += o.starts;
        self.restarts += o.restarts;
        self.bytes += o.bytes;
        self.segments += o.segments;
        self.playlists += o.playlists;
        for (k, n) in &o.http_errors {
            *self.http_errors.entry(*k).or_default() += n;
        }
        self.timeouts += o.timeouts;
        self.connect_errors += o.connect_errors;
        self.stalls += o.stalls;
        // runs side by side: their media rates add up
        self.media_rate += o.media_rate;
    }
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        profile: &str,
        url: &str,
        c: &Config,
        seed: u64,
        ran_for: Duration,
        stopped_by: &str,
        mut viewers: Vec<ViewerFigures>,
        recorder: Option<&Recorder>,
        series: Seconds,
    ) -> Self {
        let secs = ran_for.as_secs_f64().max(1e-9);
        for (i, v) in viewers.iter_mut().enumerate() {
            v.id = i as u32;
            v.media_seconds += v.current_media_us as f64 / 1e6;
            v.current_media_us = 0;
        }
        Summary {
            format: RESULTS_FORMAT.into(),
            version: RESULTS_VERSION,
            engine: c.engine.as_str().to_owned(),
            url: url.to_owned(),
            profile: profile.to_owned(),
            seed,
            duration_sec: (secs * 10.0).round() / 10.0,
            stopped_by: stopped_by.to_owned(),
            settings: serde_json::to_value(c).expect("configs serialize"),
            totals: totals(&viewers, c.clients, secs, recorder, &series),
            viewers,
            series,
            slo: Vec::new(),
            shard: None,
        }
    }

    /// Marks these results as `shard` of a bigger run: viewers numbered
    /// from the shard's first.
    pub fn set_shard(&mut self, shard: super::Shard) {
        for (i, v) in self.viewers.iter_mut().enumerate() {
            v.id = shard.first_viewer + i as u32;
        }
        self.shard = shard.is_part().then_some(shard);
    }

    /// A table for a terminal.
    pub fn human(&self) -> String {
        let t = &self.totals;
        let mut o = String::new();
        let errors = |m: &BTreeMap<u16, u64>| {
            if m.is_empty() {
                "0".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}×{v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let _ = writeln!(
            o,
            "summary: {} viewers of {} for {:.1} s ({}), profile {}",
            t.viewers, self.url, self.duration_sec, self.stopped_by, self.profile
        );
        let _ = writeln!(
            o,
            "  started {} of {} viewers, {} starts, {} restarts",
            t.viewers_started, t.viewers, t.starts, t.restarts
        );
        let _ = writeln!(
            o,
            "  read {} ({} average), {} segments, {} playlists",
            bytes(t.bytes),
            rate(t.bytes as f64 / self.duration_sec.max(1e-9)),
            t.segments,
            t.playlists
        );
        let _ = writeln!(
            o,
            "  media {:.2} s per second over all viewers ({:.2}× real time per viewer started)",
            t.media_rate,
            t.media_rate / f64::from(t.viewers_started.max(1))
        );
        let _ = writeln!(
            o,
            "  HTTP errors {}, timeouts {}, connection errors {}, stalls {}",
            errors(&t.http_errors),
            t.timeouts,
            t.connect_errors,
            t.stalls
        );
        if let Some(n) = &t.native {
            native_human(&mut o, n);
        }
        let native = t.native.is_some();
        if native {
            let _ = writeln!(
                o,
                "  {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10}",
                "viewer", "starts", "bytes", "segments", "errors", "startup", "rebuffer", "latency"
            );
        } else {
            let _ = writeln!(
                o,
                "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
                "viewer", "starts", "bytes", "segments", "playlists", "errors", "speed"
            );
        }
        for v in self.viewers.iter().take(MAX_VIEWER_ROWS) {
            let errs: u64 = v.http_errors.values().sum::<u64>() + v.timeouts + v.connect_errors;
            if let Some(q) = &v.native {
                let errs = errs + q.counts.errors.values().sum::<u64>();
                let startup = q
                    .startup_ms
                    .map_or("-".to_owned(), |s| format!("{:.0} ms", s));
                let latency = q
                    .live_latency_ms
                    .as_ref()
                    .map_or("-".to_owned(), |l| format!("{:.1} s", l.p50 / 1000.0));
                let _ = writeln!(
                    o,
                    "  {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10}",
                    v.id,
                    v.starts,
                    bytes(q.counts.body_bytes),
                    v.segments,
                    errs,
                    startup,
                    format!("{}×/{:.1}s", q.counts.rebuffers, q.counts.rebuffer_sec),
                    latency
                );
                continue;
            }
            let speed = v.last_speed.map_or("-".to_owned(), |s| format!("{s:.2}x"));
            let _ = writeln!(
                o,
                "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
                v.id,
                v.starts,
                bytes(v.bytes),
                v.segments,
                v.playlists,
                errs,
                speed
            );
        }
        if self.viewers.len() > MAX_VIEWER_ROWS {
            let _ = writeln!(
                o,
                "  … {} more viewers (all of them are in --summary-json)",
                self.viewers.len() - MAX_VIEWER_ROWS
            );
        }
        if !self.slo.is_empty() {
            let passed = self.slo.iter().filter(|v| v.pass).count();
            let _ = writeln!(o, "  SLOs: {passed} of {} passed", self.slo.len());
            for v in &self.slo {
                let _ = writeln!(o, "    {}", v.line());
            }
        }
        o
    }
}

/// Viewers listed one per line in the table.
pub const MAX_VIEWER_ROWS: usize = 50;

fn native_human(o: &mut String, n: &NativeTotals) {
    let _ = writeln!(
        o,
        "  {:<9} {:>8} {:>21} {:>21} {:>21}",
        "requests", "count", "connect p50/p99 ms", "TTFB p50/p99 ms", "download p50/p99 ms"
    );
    for (kind, k) in &n.requests {
        if k.ttfb_ms.count == 0 {
            continue;
        }
        let pair = |s: &Stats| {
            if s.count == 0 {
                "-".to_owned()
            } else {
                format!("{:.2} / {:.2}", s.p50, s.p99)
            }
        };
        let _ = writeln!(
            o,
            "  {:<9} {:>8} {:>21} {:>21} {:>21}",
            kind,
            k.ttfb_ms.count,
            pair(&k.connect_ms),
            pair(&k.ttfb_ms),
            pair(&k.download_ms)
        );
    }
    let r = &n.segment_download_ratio;
    let _ = writeln!(
        o,
        "  segment download ratio (download time / duration): p50 {:.3}, p99 {:.3}, max {:.3}",
        r.p50, r.p99, r.max
    );
    let _ = writeln!(
        o,
        "  startup p50 {:.0} ms, p95 {}; rebuffers {} ({:.1} s, ratio {:.4}); live latency p50 {:.2} s, p95 {:.2} s",
        n.startup_ms.p50,
        if n.startup_ms.count == 0 { "-".to_owned() } else { format!("{:.0} ms", n.startup_ms.p95) },
        n.counts.rebuffers,
        n.counts.rebuffer_sec,
        n.rebuffer_ratio,
        n.live_latency_ms.p50 / 1000.0,
        n.live_latency_ms.p95 / 1000.0,
    );
    let _ = writeln!(
        o,
        "  segments gone {}, skipped {}, failed {}; sequence resets {}; viewer failures {}; ABR switches up {}, down {}",
        n.counts.segments_gone,
        n.counts.segments_skipped,
        n.counts.segments_failed,
        n.counts.sequence_resets,
        n.counts.viewer_failures,
        n.counts.switches_up,
        n.counts.switches_down
    );
    for (msg, count) in &n.counts.errors {
        let _ = writeln!(o, "  error ×{count}: {msg}");
    }
    if !n.networks.is_empty() {
        let _ = writeln!(
            o,
            "  {:<10} {:>7} {:>9} {:>9} {:>7} {:>17} {:>10} {:>14} {:>9}",
            "network",
            "viewers",
            "segments",
            "bytes",
            "errors",
            "seg TTFB p50/p99",
            "startup",
            "rebuffers",
            "ABR down"
        );
        for (name, c) in &n.networks {
            let _ = writeln!(
                o,
                "  {:<10} {:>7} {:>9} {:>9} {:>7} {:>17} {:>10} {:>14} {:>9}",
                name,
                format!("{}/{}", c.viewers_started, c.viewers),
                c.segments,
                bytes(c.bytes),
                c.failed_requests,
                if c.segment_ttfb_ms.count == 0 {
                    "-".to_owned()
                } else {
                    format!(
                        "{:.0}/{:.0} ms",
                        c.segment_ttfb_ms.p50, c.segment_ttfb_ms.p99
                    )
                },
                if c.startup_ms.count == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.0} ms", c.startup_ms.p50)
                },
                format!("{} ({:.3})", c.rebuffers, c.rebuffer_ratio),
                c.switches_down
            );
        }
    }
}

/// `1.2 MB` and the like.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A byte rate as bits per second: `12.3 Mbit/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    let bits = bytes_per_sec * 8.0;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.0} kbit/s", bits / 1e3)
    }
}
