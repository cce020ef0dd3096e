//! The typed config of the swarm client (keys as in SPEC §4, camelCase).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Number of simulated viewers.
    #[schemars(range(min = 1, max = 100000))]
    pub clients: u32,
    /// Viewers started per second during the ramp.
    #[schemars(range(min = 1, max = 10000))]
    pub ramp_rate: u32,
    /// Random extra delay before each start, up to this many milliseconds.
    #[schemars(range(max = 600000))]
    pub ramp_jitter: u32,
    /// FFmpeg log level of each viewer.
    pub log_level: LogLevel,
    /// Which renditions a viewer reads.
    pub variant: VariantMode,
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
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" }, "maxProperties" = 32))]
    pub headers: BTreeMap<String, HeaderValue>,
    /// Service-level objectives: figure → limit, checked at the end of a run.
    #[serde(default, skip_serializing_if = "crate::slo::Slo::is_empty")]
    pub slo: crate::slo::Slo,
}

/// The default user agent base: `hls-swarm/<version>`.
pub fn default_user_agent() -> UserAgent {
    UserAgent(format!("hls-swarm/{}", env!("CARGO_PKG_VERSION")))
}

/// A user agent: 1–200 visible ASCII characters and spaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct UserAgent(#[schemars(regex(pattern = r"^[!-~][ -~]{0,199}$"))] pub String);

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
    /// Which renditions a viewer reads: every stream, the first variant, the
    /// highest/lowest bandwidth variant, or (native engine) the variant an
    /// hls.js-style bandwidth estimate picks.
    VariantMode { All = "all", First = "first", Highest = "highest", Lowest = "lowest", Abr = "abr" }
);

common::word_enum!(
    /// How each viewer is simulated.
    Engine { Native = "native", Ffmpeg = "ffmpeg" }
);

// the enum comes from a macro, which takes no `#[default]` on a variant
#[allow(clippy::derivable_impls)]
impl Default for Engine {
    fn default() -> Self {
        Engine::Native
    }
}
