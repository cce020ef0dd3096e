//! The figures of a viewer, of a network class and of the whole run, and
//! how they add up: [`Counters`] (both engines) and [`NativeCounts`] (the
//! native player's) are kept alike by a viewer and by the totals, added
//! with `+=`.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::recorder::{Encoded, Recorder, Stats, RATIO_SCALE};
use super::seconds::Seconds;

/// `a.f += b.f` for each named field, and the maps of counts merged key by
/// key: the one way counters add up.
macro_rules! add_fields {
    ($a:ident, $b:ident; $($f:ident),* $(; maps $($m:ident),*)?) => {
        $($a.$f += $b.$f;)*
        $($(for (k, n) in &$b.$m {
            *$a.$m.entry(k.clone()).or_default() += n;
        })*)?
    };
}

/// `a.f -= b.f` for each field (never below 0), and each map's counts.
macro_rules! sub_fields {
    ($a:ident, $b:ident; $($f:ident),* $(; maps $($m:ident),*)?) => {
        $($a.$f = Sub::since($a.$f, $b.$f);)*
        $($(for (k, n) in &$b.$m {
            if let Some(mine) = $a.$m.get_mut(k) {
                *mine = mine.saturating_sub(*n);
            }
        })*)?
        $($($a.$m.retain(|_, n| *n > 0);)*)?
    };
}

/// `$m!(a, b; fields…; maps …)` over every field of [`Counters`]: one list
/// for adding them up and for taking an earlier reading off.
macro_rules! counter_fields {
    ($m:ident, $a:ident, $b:ident) => {
        $m!($a, $b;
            starts, restarts, departures, bytes, segments, playlists, timeouts, connect_errors,
            stalls;
            maps http_errors)
    };
}

/// The same over every field of [`NativeCounts`].
macro_rules! native_count_fields {
    ($m:ident, $a:ident, $b:ident) => {
        $m!($a, $b;
            body_bytes, segments_gone, segments_skipped, segments_failed, segments_abandoned,
            sequence_resets,
            viewer_failures, never_played, variants_not_followed, play_sec, rebuffers,
            rebuffer_sec, micro_gaps, switches_up, switches_down, blocked_reloads_503,
            blocked_reloads_400, delta_updates, delta_refetches, hints_gone;
            maps errors, connections)
    };
}

/// A running figure less an earlier reading of it.
trait Sub: Sized {
    fn since(self, earlier: Self) -> Self;
}

impl Sub for u64 {
    fn since(self, earlier: u64) -> u64 {
        self.saturating_sub(earlier)
    }
}

impl Sub for f64 {
    fn since(self, earlier: f64) -> f64 {
        (self - earlier).max(0.0)
    }
}

/// A map keyed by HTTP status, read back: JSON writes the keys as strings,
/// and through a flattened struct serde hands them over as strings too,
/// which `u16` alone refuses.
fn status_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, u64>, D::Error> {
    BTreeMap::<String, u64>::deserialize(d)?
        .into_iter()
        .map(|(k, n)| match k.parse::<u16>() {
            Ok(status) if (100..=999).contains(&status) => Ok((status, n)),
            _ => Err(serde::de::Error::custom(format!(
                "`{k}` is not an HTTP status (100 to 999)"
            ))),
        })
        .collect()
}

/// The counters of both engines: a viewer's (over all its processes or
/// playbacks), or their sum over viewers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Processes (native: playbacks) started: 1 + restarts, and 1 more
    /// for each return after a departure.
    pub starts: u64,
    pub restarts: u64,
    /// Times the viewer left as a load shape's target fell (not failures).
    #[serde(default)]
    pub departures: u64,
    /// Bytes its processes read (network reads, HTTP headers included).
    pub bytes: u64,
    pub segments: u64,
    pub playlists: u64,
    /// HTTP error responses by status.
    #[serde(deserialize_with = "status_keys")]
    pub http_errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Episodes of reading below 0.9× real time (or not at all) for over 5 s.
    pub stalls: u64,
}

impl AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, o: &Counters) {
        counter_fields!(add_fields, self, o);
    }
}

impl Counters {
    /// What was counted after `earlier` (an earlier reading of the same
    /// running counters).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut c = self.clone();
        counter_fields!(sub_fields, c, earlier);
        c
    }

    /// HTTP errors, timeouts and connection errors.
    pub fn failed_requests(&self) -> u64 {
        self.http_errors.values().sum::<u64>() + self.timeouts + self.connect_errors
    }
}

/// Failed requests of every kind: HTTP errors, timeouts, connection errors
/// and the native engine's other failures.
fn failed(counts: &Counters, native: Option<&NativeCounts>) -> u64 {
    counts.failed_requests() + native.map_or(0, |n| n.errors.values().sum::<u64>())
}

/// What one viewer did over the whole run (all its processes).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerFigures {
    pub id: u32,
    #[serde(flatten)]
    pub counts: Counters,
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
    /// Its CMCD session id (`sid`), when it sent CMCD: CDN and origin logs
    /// join to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl ViewerFigures {
    /// Its failed requests of every kind.
    pub fn failed_requests(&self) -> u64 {
        failed(&self.counts, self.native.as_ref().map(|n| &n.counts))
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
        self.viewers_started += u64::from(v.counts.starts > 0);
        self.segments += v.counts.segments;
        self.bytes += v.counts.bytes;
        self.failed_requests += v.failed_requests();
        if let Some(n) = &v.native {
            let n = &n.counts;
            add_fields!(self, n; play_sec, rebuffers, rebuffer_sec, switches_up, switches_down);
        }
    }
}

/// Another run's counters of the class (the distributions come from the
/// merged histograms, not from here).
impl AddAssign<&NetworkTotals> for NetworkTotals {
    fn add_assign(&mut self, o: &NetworkTotals) {
        add_fields!(self, o;
            viewers, viewers_started, segments, bytes, failed_requests, play_sec, rebuffers,
            rebuffer_sec, switches_up, switches_down);
    }
}

impl NetworkTotals {
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
    /// Segment loads given up as too slow for the buffer and loaded again
    /// from a lower variant (hls.js's emergency switch down, `hlsjs` ABR
    /// viewers); their bytes count among the body bytes.
    #[serde(default)]
    pub segments_abandoned: u64,
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
    /// Blocking playlist reloads answered 503 (the server could not hold
    /// them) and 400 (asked beyond its limits) — counted among the HTTP
    /// errors too.
    #[serde(default)]
    pub blocked_reloads_503: u64,
    #[serde(default)]
    pub blocked_reloads_400: u64,
    /// Delta updates (`_HLS_skip`) merged, and whole playlists loaded
    /// because one left out segments not queued.
    #[serde(default)]
    pub delta_updates: u64,
    #[serde(default)]
    pub delta_refetches: u64,
    /// Hinted parts (`EXT-X-PRELOAD-HINT`, `avplayer`) that did not come:
    /// answered 404, or not in within a part target of the reload that
    /// waited for the same part (the request is given up). A server may so
    /// treat a part it finds will not be made (e.g. hinted past the last
    /// part of a segment that then ended), so they are not failed requests;
    /// the part, if listed later, is loaded as any.
    #[serde(default)]
    pub hints_gone: u64,
    /// Failures other than HTTP statuses, timeouts and refused connections, by message.
    pub errors: BTreeMap<String, u64>,
    /// Connections opened, by protocol (`http/1.1`, `h2`).
    #[serde(default)]
    pub connections: BTreeMap<String, u64>,
}

impl AddAssign<&NativeCounts> for NativeCounts {
    fn add_assign(&mut self, o: &NativeCounts) {
        native_count_fields!(add_fields, self, o);
    }
}

impl NativeCounts {
    /// What was counted after `earlier` (an earlier reading of the same
    /// running counters).
    pub fn since(&self, earlier: &NativeCounts) -> NativeCounts {
        let mut c = self.clone();
        native_count_fields!(sub_fields, c, earlier);
        c
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
    /// The latency the viewers aimed at, at each live-latency sample:
    /// `PART-HOLD-BACK` (else 3 target durations), plus 1 s a stall for
    /// the hls.js profile (at most a target duration).
    #[serde(default)]
    pub live_latency_target_ms: Stats,
    /// Low-Latency HLS (PLAYER.md §7): blocking reloads' hold time
    /// (request written → response head) and overshoot (response head −
    /// the end of the part asked for, by the program date-time), and the
    /// playlist advance lag (a part's end → the viewer has a playlist
    /// listing it).
    #[serde(default)]
    pub reload_hold_ms: Stats,
    #[serde(default)]
    pub reload_overshoot_ms: Stats,
    #[serde(default)]
    pub advance_lag_ms: Stats,
    /// Part download time / its `DURATION`.
    #[serde(default)]
    pub part_download_ratio: Stats,
    /// The histograms behind these figures, in a form that merges exactly
    /// (timings in µs, the ratio in thousandths).
    pub histograms: BTreeMap<String, Encoded>,
    /// Per network class (`networks` of the config), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, NetworkTotals>,
}

impl NativeTotals {
    /// Requests of `kind` per viewer per second of playback (time played
    /// and stalled), PLAYER.md §7; `None` before any playback.
    pub fn per_viewer_second(&self, kind: &str) -> Option<f64> {
        let secs = self.counts.play_sec + self.counts.rebuffer_sec;
        let n = self.requests.get(kind).map_or(0, |k| k.ttfb_ms.count);
        (secs > 0.0).then(|| n as f64 / secs)
    }

    /// The Low-Latency HLS counts and request rates (PLAYER.md §7), as
    /// (what, value) lines for the summary and the report.
    pub fn low_latency_facts(&self) -> [(&'static str, String); 3] {
        let rate = |kind: &str| {
            self.per_viewer_second(kind)
                .map_or("-".into(), |r| format!("{r:.2}"))
        };
        let c = &self.counts;
        [
            (
                "requests per viewer per second: playlists, parts, hints, segments",
                format!(
                    "{}, {}, {}, {}",
                    rate("playlist"),
                    rate("part"),
                    rate("hint"),
                    rate("segment")
                ),
            ),
            (
                "delta updates (refetched)",
                format!("{} ({})", c.delta_updates, c.delta_refetches),
            ),
            (
                "blocking reloads refused 503, 400; hinted parts 404",
                format!(
                    "{}, {}; {}",
                    c.blocked_reloads_503, c.blocked_reloads_400, c.hints_gone
                ),
            ),
        ]
    }

    /// Whether the viewers played Low-Latency HLS (held blocking reloads
    /// or loaded parts).
    pub fn low_latency(&self) -> bool {
        self.reload_hold_ms.count > 0
            || self
                .requests
                .get("part")
                .is_some_and(|k| k.ttfb_ms.count > 0)
    }
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
            counts += &v.counts;
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
        t.live_latency_target_ms = Stats::of(&r.live_latency_target, 1000.0);
        t.reload_hold_ms = Stats::of(&r.reload_hold, 1000.0);
        t.reload_overshoot_ms = Stats::of(&r.reload_overshoot, 1000.0);
        t.advance_lag_ms = Stats::of(&r.advance_lag, 1000.0);
        t.part_download_ratio = Stats::of(&r.part_download_ratio, RATIO_SCALE);
        t.histograms = r.encoded();
        t
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub viewers: u32,
    pub viewers_started: u32,
    #[serde(flatten)]
    pub counts: Counters,
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
        t.viewers_started += u32::from(v.counts.starts > 0);
        t.counts += &v.counts;
        media += v.media_seconds;
    }
    t.media_rate = media / secs.max(1e-9);
    t.min_active_share = super::min_active_share(series);
    t.native = recorder.map(|r| NativeTotals::new(viewers, r));
    t
}

impl Totals {
    /// Adds the counters of `o` (another run's totals; not `viewers`, the
    /// shares or the native figures, which come from merged data).
    pub fn add_counts(&mut self, o: &Totals) {
        self.viewers_started += o.viewers_started;
        self.counts += &o.counts;
        // runs side by side: their media rates add up
        self.media_rate += o.media_rate;
    }

    /// HTTP errors, timeouts, connection errors and the native engine's
    /// other failures.
    pub fn failed_requests(&self) -> u64 {
        failed(&self.counts, self.native.as_ref().map(|n| &n.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// HTTP statuses as keys survive a round trip through JSON text inside
    /// the structs that flatten `Counters` (serde hands them over as
    /// strings there); a key that is no status is refused by name.
    #[test]
    fn http_errors_are_read_back_where_counters_are_flattened() {
        let mut v = ViewerFigures::default();
        v.counts.http_errors.insert(404, 3);
        v.counts.http_errors.insert(503, 1);
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""httpErrors":{"404":3,"503":1}"#), "{text}");
        let back: ViewerFigures = serde_json::from_str(&text).unwrap();
        assert_eq!(back.counts, v.counts);
        let mut t = Totals::default();
        t.counts.http_errors.insert(410, 2);
        let back: Totals = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back.counts.http_errors.get(&410), Some(&2));
        let bad = text.replace(r#""404""#, r#""oops""#);
        let e = serde_json::from_str::<ViewerFigures>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`oops` is not an HTTP status"), "{e}");
    }

    /// `T` with every counter at 1 (and one key of each map at 1), except
    /// the `skip` keys.
    fn ones<T: Default + Serialize + DeserializeOwned>(skip: &[&str]) -> T {
        let mut v = serde_json::to_value(T::default()).unwrap();
        for (k, x) in v.as_object_mut().unwrap() {
            if skip.contains(&k.as_str()) {
                continue;
            }
            match x {
                Value::Number(_) => *x = 1.into(),
                Value::Object(m) => {
                    m.insert("404".into(), 1.into());
                }
                _ => {}
            }
        }
        serde_json::from_value(v).unwrap()
    }

    /// Every counter of `t` (but the `skip` keys) is `n`.
    fn all_are<T: Serialize>(t: &T, n: u64, skip: &[&str]) {
        let v = serde_json::to_value(t).unwrap();
        for (k, x) in v.as_object().unwrap() {
            if skip.contains(&k.as_str()) {
                continue;
            }
            let got = match x {
                Value::Number(_) => x.as_f64().unwrap(),
                Value::Object(m) => m["404"].as_f64().unwrap(),
                _ => continue,
            };
            assert_eq!(got, n as f64, "`{k}` did not add up");
        }
    }

    #[test]
    fn every_counter_adds_up() {
        let mut c: Counters = ones(&[]);
        c += &ones(&[]);
        all_are(&c, 2, &[]);
        let mut n: NativeCounts = ones(&[]);
        n += &ones(&[]);
        all_are(&n, 2, &[]);
        // the ratio and the distributions are made, not added
        let made = ["rebufferRatio", "segmentTtfbMs", "startupMs"];
        let mut t: NetworkTotals = ones(&made);
        t += &ones(&made);
        all_are(&t, 2, &made);
        // a viewer's figures into its class
        let mut class = NetworkTotals::default();
        let v = ViewerFigures {
            counts: ones(&[]),
            native: Some(NativeFigures {
                counts: ones(&[]),
                ..Default::default()
            }),
            ..Default::default()
        };
        class.add_viewer(&v);
        class.add_viewer(&v);
        all_are(&class, 2, &[&made[..], &["failedRequests"]].concat());
        // HTTP errors, timeouts, connection errors and the other failures
        assert_eq!(class.failed_requests, 2 * 4);
    }
}
