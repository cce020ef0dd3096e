//! The flags of `run` (and those `viewer-args` shares) as clap reads them,
//! and the checks of their values.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use common::cli::ProfileArgs;
use common::error::UsageError;

use crate::config::Engine;

/// What `run` was asked to do: its flags, as clap reads them.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The stream, e.g. http://127.0.0.1:17080/stream.m3u8
    pub url: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Stop after this long (`30s`, `5m`, `1h`); default: until Ctrl-C
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Also write the summary as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Seed of the ramp jitter and backoff (printed at start; replays a run)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Serve metrics here instead of 127.0.0.1:<metricsPort>; use
    /// 0.0.0.0:9090 to let another host scrape them
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// Append each viewer's FFmpeg log to DIR/viewer-<id>.log (ffmpeg engine)
    #[arg(long, value_name = "DIR")]
    pub viewer_logs: Option<PathBuf>,
    /// How viewers are simulated: `native` (async players, the default)
    /// or `ffmpeg` (a process each); overrides the config's `engine`
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Play the stream with one native viewer for 10 s (or --duration)
    /// and print each request as it happens: URL, status, TTFB, bytes, time
    #[arg(long)]
    pub check: bool,
    /// Also trust the CA certificates in this PEM file for HTTPS (native
    /// engine; the system's trust store is always used)
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// A status line a second even on a terminal, instead of the live view
    #[arg(long)]
    pub plain: bool,
    /// The swarm's own log lines (start, stop, warnings, SLO verdicts,
    /// errors) on stderr: `text`, or `json`, one object a line
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::log::Format,
    #[command(flatten)]
    pub origin: crate::origin::Sources,
    /// Also write the HTML report of the run to FILE (as `report` does)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// A service-level objective, FIGURE=LIMIT: a duration for times
    /// (`segmentTtfbP99=300ms`, `startupP95=2s`), a number otherwise
    /// (`errorRate=0.001`, `rebufferRatio=0.005`,
    /// `segmentDownloadRatioP99=0.5`, `minActiveViewers=0.99`). Repeatable;
    /// the same as `--set slo.FIGURE=LIMIT`. Exit status 4 when one fails
    #[arg(long, value_name = "FIGURE=LIMIT")]
    pub slo: Vec<String>,
    /// A live gate, FIGURE=LIMIT: the objective, and the run stops (exit
    /// status 4) as soon as it fails over the last --abort-window of the
    /// run, judged once a second from --abort-delay on: errorRate,
    /// minActiveViewers and segmentTtfbP50…P999. Repeatable
    #[arg(long, value_name = "FIGURE=LIMIT")]
    pub abort_on: Vec<String>,
    /// The window --abort-on judges, the run's last seconds
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = humantime::parse_duration)]
    pub abort_window: Duration,
    /// How long into the run before --abort-on judges (the ramp, say)
    #[arg(long, value_name = "TIME", default_value = "0s", value_parser = humantime::parse_duration)]
    pub abort_delay: Duration,
    /// Push the metrics to this Prometheus remote-write receiver (remote
    /// write 1.0: Prometheus with --web.enable-remote-write-receiver, e.g.
    /// http://127.0.0.1:9090/api/v1/write; Mimir, Thanos, VictoriaMetrics),
    /// labelled job="hls-swarm" and instance=<host>:<metrics port>
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<url::Url>,
    /// How often to push with --remote-write
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = humantime::parse_duration)]
    pub remote_write_every: Duration,
    #[command(flatten)]
    pub viewer: RequestFlags,
    #[command(flatten)]
    pub distributed: DistributedFlags,
}

/// The steps of `capacity` (each overrides the config's `capacity` table).
#[derive(Clone, Debug, Default, clap::Args)]
#[command(next_help_heading = "Capacity search")]
pub struct SearchFlags {
    /// Viewers of the first step [default: --step]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub start: Option<u32>,
    /// Viewers added at each step [default: a tenth of --max]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub step: Option<u32>,
    /// The most viewers a step may have [default: the config's clients]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max: Option<u32>,
    /// How long each step lasts, its ramp included [default: 60s]
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub step_time: Option<Duration>,
    /// How long into a step its objectives begin to be judged: the ramp
    /// and the viewers' startup are left out [default: 15s]
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub settle: Option<Duration>,
}

/// How each viewer asks: the flags `run` and `viewer-args` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RequestFlags {
    /// Connect to this IP address instead of the URL's host (the Host header
    /// keeps the URL's host), e.g. to load one CDN node
    #[arg(long, value_name = "IP")]
    pub resolve: Option<IpAddr>,
    /// Extra request header `Name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Send `Cache-Control: no-cache` and `Pragma: no-cache`
    #[arg(long)]
    pub no_cache: bool,
}

/// How a run takes part in a bigger one (a Kubernetes Indexed Job's pods,
/// or machines started by hand): the flags of `run` for it.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DistributedFlags {
    /// Play only shard INDEX of COUNT of the run: viewers
    /// [INDEX·clients/COUNT, (INDEX+1)·clients/COUNT) of the config's
    /// `clients`, numbered, timed and seeded as in the whole run. Needs
    /// --seed, the same on every shard: then the shards together are
    /// exactly the run one machine would make. A shard's SLO verdicts are
    /// not its exit status: `merge` judges the whole run
    #[arg(long, value_name = "INDEX/COUNT", help_heading = "Distributed runs")]
    pub shard: Option<String>,
    /// Wait until this wall-clock time (RFC 3339, e.g.
    /// 2026-11-26T18:00:00Z) before the ramp, so that shards on many
    /// machines ramp as one; /readyz answers 200 from then on
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak,
          help_heading = "Distributed runs")]
    pub start_at: Option<std::time::SystemTime>,
    /// At the end, print the results (JSON, one line) on stdout between
    /// two marker lines, for `merge --from-logs`
    #[arg(long, help_heading = "Distributed runs")]
    pub print_results: bool,
    /// Leave the per-viewer figures out of the results (totals, histograms
    /// and the series stay): a shard of 10 000 viewers writes about 6 MB
    /// of them
    #[arg(long, help_heading = "Distributed runs")]
    pub no_viewer_details: bool,
}

/// How long `run --check` lasts unless --duration says otherwise.
pub const CHECK_DURATION: Duration = Duration::from_secs(10);

/// Checks a stream URL: http(s), no spaces or control characters.
pub fn check_url(url: &str) -> Result<(), UsageError> {
    let ok_scheme = url.starts_with("http://") || url.starts_with("https://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok_scheme && clean && url.len() > "http://".len() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "`{url}` is not a stream URL; expected http://HOST[:PORT]/PATH.m3u8 without spaces"
        )))
    }
}

/// Parses `--header "Name: value"`.
pub fn parse_header(h: &str) -> Result<(String, String), UsageError> {
    let bad = || {
        UsageError(format!(
            "--header `{}`: expected `Name: value` on one line",
            h.escape_debug()
        ))
    };
    let (k, v) = h.split_once(':').ok_or_else(bad)?;
    let k = k.trim();
    let token = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if !token || v.contains(['\r', '\n', '\0']) {
        return Err(bad());
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

/// `--slo FIGURE=LIMIT` as the `--set slo.FIGURE=LIMIT` it stands for.
pub fn slo_set(arg: &str) -> Result<String, UsageError> {
    match crate::results::slo::parse_flag(arg).map_err(UsageError)? {
        (key, crate::results::slo::Limit::Number(n)) => Ok(format!("slo.{key}={n}")),
        (key, crate::results::slo::Limit::Text(t)) => Ok(format!("slo.{key}=\"{t}\"")),
        (_, crate::results::slo::Limit::Gate(_)) => {
            Err(UsageError(format!("--slo {arg}: expected FIGURE=LIMIT")))
        }
    }
}

/// `--abort-on FIGURE=LIMIT` as the `--set` of a live gate: the objective,
/// stopping the run when it fails over the last `window`, from `delay`
/// into the run.
pub fn gate_set(arg: &str, window: Duration, delay: Duration) -> Result<String, UsageError> {
    let limit = match crate::results::slo::parse_flag(arg)
        .map_err(|e| UsageError(e.replacen("--slo", "--abort-on", 1)))?
    {
        (key, crate::results::slo::Limit::Number(n)) => (key, n.to_string()),
        (key, crate::results::slo::Limit::Text(t)) => (key, format!("\"{t}\"")),
        (_, crate::results::slo::Limit::Gate(_)) => {
            return Err(UsageError(format!(
                "--abort-on {arg}: expected FIGURE=LIMIT"
            )))
        }
    };
    let (key, value) = limit;
    if !crate::results::gate::live(&key) {
        return Err(UsageError(format!(
            "--abort-on {arg}: `{key}` is judged only at the end of a run; live gates judge \
             errorRate, minActiveViewers and segmentTtfbP50…P999"
        )));
    }
    Ok(format!(
        "slo.{key}={{limit={value}, abortOnFail=true, window=\"{}s\", delayAbortEval=\"{}s\"}}",
        window.as_secs(),
        delay.as_secs()
    ))
}
