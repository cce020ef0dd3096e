//! The typed config of the swarm client (keys as in SPEC §4, camelCase).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::native::cmcd::CmcdMode;
pub use crate::native::http::HttpVersion;
pub use crate::native::player::{PlayerProfile, VariantMode};

/// A swarm of simulated HLS viewers: native players (async tasks) or `ffmpeg`
/// processes reading the stream.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// How viewers are simulated: `native` (an async player per viewer that
    /// times every request and simulates the buffer) or `ffmpeg` (an FFmpeg
    /// process per viewer).
    #[serde(default)]
    pub engine: Engine,
    /// Number of simulated viewers (with `stages`: not used; the highest
    /// target is).
    #[schemars(range(min = 1, max = 100000))]
    pub clients: u32,
    /// A load shape, as k6's stages: each stage ramps the viewers linearly
    /// from the previous stage's target (0 before the first) to its own
    /// over its duration. Viewers above a falling target leave (counted as
    /// departures, not failures); the last to come is the first to go. A
    /// run lasts as long as its stages unless `--duration` says otherwise.
    /// None: `clients` started at `rampRate` and held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub stages: Vec<Stage>,
    /// Viewers started per second during the ramp (not used with `stages`).
    #[schemars(range(min = 1, max = 10000))]
    pub ramp_rate: u32,
    /// Random extra delay before each start, up to this many milliseconds.
    #[schemars(range(max = 600000))]
    pub ramp_jitter: u32,
    /// FFmpeg log level of each viewer.
    pub log_level: LogLevel,
    /// Which renditions a viewer reads.
    pub variant: VariantMode,
    /// Which player a native viewer behaves like on a Low-Latency HLS
    /// stream: `hlsjs` (blocking playlist reloads, parts near the live edge,
    /// no preload hints), `avplayer` (the same, and the hinted part asked
    /// for beside each blocking reload) or `classic` (LL-HLS ignored: polled
    /// reloads, whole segments). Plain HLS plays the same with any.
    #[serde(default)]
    pub player: PlayerProfile,
    /// Common Media Client Data (CTA-5004) with each request of a native
    /// viewer: `off`, `headers` (`CMCD-Object`, `-Request`, `-Session`,
    /// `-Status`) or `query` (one `CMCD=` argument — it changes cache keys
    /// unless the CDN strips it). Each viewer's session id (`sid`) is in its
    /// results, to join CDN and origin logs to them.
    #[serde(default)]
    pub cmcd: CmcdMode,
    /// The CMCD content id (`cid`); none: the stream URL's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmcd_content_id: Option<ContentId>,
    /// The HTTP versions a native viewer speaks, on one connection per
    /// viewer: `auto` (over TLS, HTTP/2 when the origin chooses it by ALPN,
    /// else HTTP/1.1 — as a browser; plain HTTP is HTTP/1.1), `"1.1"` or
    /// `"2"` (an `https` origin that does not choose HTTP/2 fails the
    /// request).
    #[serde(default)]
    pub http: HttpVersion,
    /// Reconnect inside FFmpeg on network errors.
    pub reconnect: bool,
    /// Longest reconnect delay in seconds.
    #[schemars(range(max = 3600))]
    pub reconnect_delay_max: u32,
    /// Retries of one segment before FFmpeg gives up on it.
    #[schemars(range(max = 100))]
    pub seg_max_retry: u32,
    /// Network read/write timeout in seconds.
    #[schemars(range(min = 1, max = 3600))]
    pub timeout: u32,
    /// TCP port of the Prometheus metrics endpoint.
    #[schemars(range(min = 1, max = 65535))]
    pub metrics_port: u32,
    /// Send `Cache-Control: no-cache` and `Pragma: no-cache` with every request.
    #[serde(default)]
    pub no_cache: bool,
    /// The user agent's base; each viewer sends `<userAgent>/client-<id>`.
    #[serde(default = "default_user_agent")]
    pub user_agent: UserAgent,
    /// Extra HTTP headers sent by every viewer (name → value; at most 32
    /// headers, names up to 64 characters).
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$", "description": "A header name of 1 to 64 letters, digits and !#$%&'*+.^_`|~-" }, "maxProperties" = 32))]
    pub headers: BTreeMap<String, HeaderValue>,
    /// Network classes (native engine): name → the share of viewers on such
    /// a link and the link itself. Shares add up to 1; none: every viewer
    /// reads at full speed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$", "description": "A class name of 1 to 32 lower-case letters, digits, _ and -, starting with a letter or digit" }, "maxProperties" = 16))]
    pub networks: BTreeMap<String, Network>,
    /// Service-level objectives: figure → limit, checked at the end of a run.
    #[serde(default, skip_serializing_if = "crate::results::slo::Slo::is_empty")]
    pub slo: crate::results::slo::Slo,
    /// The steps of `swarm-client capacity` (its flags override these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityPlan>,
}

/// The steps of a capacity search: `start` viewers, then `step` more at a
/// time up to `max`, each held for `stepTime` and judged by the objectives
/// (`slo`) from `settle` into it to its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityPlan {
    /// Viewers of the first step (default: `step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub start: Option<u32>,
    /// Viewers added at each step (default: a tenth of `max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub step: Option<u32>,
    /// The most viewers a step may have (default: `clients`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max: Option<u32>,
    /// How long each step lasts, its ramp included (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_time: Option<StageDuration>,
    /// How long into a step its judged window begins (default `15s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<StageDuration>,
}

/// One stage of a load shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts, e.g. `30s`, `2m`, `1h`, `1m30s`.
    pub duration: StageDuration,
    /// The viewers aimed at by its end.
    #[schemars(range(max = 100000))]
    pub target: u32,
}

/// A stage's length: `30s`, `2m`, `1h`, `1m30s` (whole seconds, at most a week).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct StageDuration(
    #[schemars(regex(pattern = r"^([0-9]{1,6}[hms]){1,3}$"), length(max = 24))] pub String,
);

impl StageDuration {
    /// The length, when it reads as one.
    pub fn duration(&self) -> Option<std::time::Duration> {
        humantime::parse_duration(&self.0).ok()
    }
}

/// The longest a stage, or a whole shape, may last.
pub const MAX_SHAPE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl Config {
    /// The load shape of `stages`, if any (every duration read; see
    /// [`check_stages`]).
    pub fn shape(&self) -> Option<crate::engine::shape::Shape> {
        if self.stages.is_empty() {
            return None;
        }
        Some(crate::engine::shape::Shape::new(
            self.stages
                .iter()
                .map(|s| crate::engine::shape::Stage {
                    duration: s.duration.duration().unwrap_or_default(),
                    target: s.target,
                })
                .collect(),
        ))
    }

    /// The viewers of the run at its peak: the highest stage target, or
    /// `clients`.
    pub fn viewers(&self) -> u32 {
        self.shape().map_or(self.clients, |s| s.peak())
    }
}

/// The rules of `stages` (and `capacity`) the schema cannot say: durations
/// that read as times, a shape that aims at someone, the native engine.
pub fn check_stages(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if c.engine != Engine::Native && !c.stages.is_empty() {
        out.push((
            "stages".into(),
            "load shapes are played by native viewers; use engine = \"native\" (or --engine native), or clients and rampRate".into(),
        ));
    }
    let mut total = std::time::Duration::ZERO;
    for (i, s) in c.stages.iter().enumerate() {
        match s.duration.duration() {
            Some(d) if d.is_zero() => out.push((
                format!("stages[{i}].duration"),
                "must be above 0 (leave the stage out instead)".into(),
            )),
            Some(d) => total += d,
            None => out.push((
                format!("stages[{i}].duration"),
                format!(
                    "`{}` is not a length of time; expected e.g. 30s, 2m, 1m30s",
                    s.duration.0
                ),
            )),
        }
    }
    if total > MAX_SHAPE {
        out.push((
            "stages".into(),
            format!(
                "the stages last {} in all, more than the limit of a week",
                humantime::format_duration(total)
            ),
        ));
    }
    if let Some(p) = &c.capacity {
        for (key, d) in [("stepTime", &p.step_time), ("settle", &p.settle)] {
            if let Some(d) = d {
                if d.duration().is_none_or(|t| t.is_zero() || t > MAX_SHAPE) {
                    out.push((
                        format!("capacity.{key}"),
                        format!(
                            "`{}` is not a length of time from 1s to a week; expected e.g. 60s, 2m",
                            d.0
                        ),
                    ));
                }
            }
        }
    }
    if c.stages.is_empty() {
        return out;
    }
    if c.stages.iter().all(|s| s.target == 0) {
        out.push((
            "stages".into(),
            "every target is 0: no viewer would play; give a stage a target above 0".into(),
        ));
    }
    out
}

/// A class of viewers' network link, simulated by each viewer's own client:
/// the rate its reads are paced to, a delay before each request (and each
/// new connection), and a share of requests whose connection is cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// The share of viewers in this class (0–1; the classes' shares add up to 1).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub share: f64,
    /// The link's downstream rate, e.g. `1.5mbit`, `800kbit` (16kbit–10gbit);
    /// none: unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<LinkRate>,
    /// Round-trip time added before each request and each new connection,
    /// e.g. `150ms` (at most 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Rtt>,
    /// The share of requests whose connection is cut while the response
    /// arrives (0–0.5): the viewer sees a broken connection and retries.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub drop: f64,
}

/// A link rate: `1.5mbit`, `800kbit`, `1gbit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct LinkRate(
    #[schemars(
        regex(pattern = r"^[0-9]{1,6}(\.[0-9]{1,3})?(kbit|mbit|gbit)$"),
        length(max = 14)
    )]
    pub String,
);

impl LinkRate {
    /// The rate in bits per second.
    pub fn bits_per_sec(&self) -> u64 {
        let s = self.0.as_str();
        let (num, mult) = if let Some(n) = s.strip_suffix("kbit") {
            (n, 1e3)
        } else if let Some(n) = s.strip_suffix("mbit") {
            (n, 1e6)
        } else {
            (s.strip_suffix("gbit").unwrap_or(s), 1e9)
        };
        (num.parse::<f64>().unwrap_or(0.0) * mult).round() as u64
    }
}

/// A round-trip time: `150ms`, `2s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Rtt(#[schemars(regex(pattern = r"^[0-9]{1,5}(ms|s)$"), length(max = 7))] pub String);

impl Rtt {
    pub fn duration(&self) -> std::time::Duration {
        let s = self.0.as_str();
        match s.strip_suffix("ms") {
            Some(n) => std::time::Duration::from_millis(n.parse().unwrap_or(0)),
            None => std::time::Duration::from_secs(s.trim_end_matches('s').parse().unwrap_or(0)),
        }
    }
}

/// The slowest and fastest link rates, in bits per second.
pub const LINK_RATE_BOUNDS: (u64, u64) = (16_000, 10_000_000_000);
/// The longest round-trip time.
pub const MAX_RTT: std::time::Duration = std::time::Duration::from_secs(10);

/// CMCD is sent, and HTTP/2 spoken, by native viewers only.
pub fn check_native_only(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if c.engine != Engine::Native && (c.cmcd != CmcdMode::Off || c.cmcd_content_id.is_some()) {
        out.push((
            "cmcd".into(),
            "CMCD is sent by native viewers; use engine = \"native\" (or --engine native), or cmcd = \"off\"".into(),
        ));
    }
    if c.engine != Engine::Native && c.http == HttpVersion::Http2 {
        out.push((
            "http".into(),
            "FFmpeg viewers speak HTTP/1.1; use engine = \"native\" (or --engine native) for HTTP/2, or http = \"auto\"".into(),
        ));
    }
    out
}

/// The rules of `networks` the schema cannot say: shares add up to 1,
/// rates and delays within bounds, the native engine.
pub fn check_networks(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if c.networks.is_empty() {
        return out;
    }
    if c.engine != Engine::Native {
        out.push((
            "networks".into(),
            "network classes are simulated by native viewers; use engine = \"native\" (or --engine native)".into(),
        ));
    }
    let sum: f64 = c.networks.values().map(|n| n.share).sum();
    if (sum - 1.0).abs() > 1e-6 {
        let list: Vec<String> = c
            .networks
            .iter()
            .map(|(k, n)| format!("{k} {}", n.share))
            .collect();
        out.push((
            "networks".into(),
            format!(
                "the shares add up to {sum} ({}); they must add up to 1",
                list.join(" + ")
            ),
        ));
    }
    for (name, n) in &c.networks {
        if n.share <= 0.0 {
            out.push((
                format!("networks.{name}.share"),
                "must be above 0 (leave the class out instead)".into(),
            ));
        }
        if let Some(r) = &n.rate {
            let bps = r.bits_per_sec();
            let (lo, hi) = LINK_RATE_BOUNDS;
            if !(lo..=hi).contains(&bps) {
                out.push((
                    format!("networks.{name}.rate"),
                    format!("{} is outside 16kbit–10gbit", r.0),
                ));
            }
        }
        if let Some(rtt) = &n.rtt {
            if rtt.duration() > MAX_RTT {
                out.push((
                    format!("networks.{name}.rtt"),
                    format!("{} is above the limit of 10s", rtt.0),
                ));
            }
        }
    }
    out
}

/// The default user agent base: `hls-swarm/<version>`.
pub fn default_user_agent() -> UserAgent {
    UserAgent(format!("hls-swarm/{}", env!("CARGO_PKG_VERSION")))
}

/// A user agent: 1–200 visible ASCII characters and spaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct UserAgent(#[schemars(regex(pattern = r"^[!-~][ -~]{0,199}$"))] pub String);

/// A CMCD content id: 1–64 characters, no control characters, quotes or
/// backslashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ContentId(
    #[schemars(regex(pattern = r#"^[^"\\\u0000-\u001f\u007f]{1,64}$"#))] pub String,
);

/// A header value: printable, no CR or LF, at most 1024 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct HeaderValue(
    #[schemars(regex(pattern = r"^[^\r\n\u0000]*$"), length(max = 1024))] pub String,
);

common::word_enum!(
    /// FFmpeg `-loglevel`.
    LogLevel {
        Quiet = "quiet", Panic = "panic", Fatal = "fatal", Error = "error", Warning = "warning",
        Info = "info", Verbose = "verbose", Debug = "debug", Trace = "trace",
    }
);

common::word_enum!(
    /// How each viewer is simulated.
    Engine { Native = "native", Ffmpeg = "ffmpeg" }
);

/// `--engine native|ffmpeg`.
impl clap::ValueEnum for Engine {
    fn value_variants<'a>() -> &'a [Self] {
        &[Engine::Native, Engine::Ffmpeg]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

// the enum comes from a macro, which takes no `#[default]` on a variant
#[allow(clippy::derivable_impls)]
impl Default for Engine {
    fn default() -> Self {
        Engine::Native
    }
}
