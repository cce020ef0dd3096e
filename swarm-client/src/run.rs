//! `swarm-client run`: preflight checks, then the swarm engine, then the summary.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use common::cli::{ProfileArgs, UsageError};
use common::host::find_program;

use crate::config::{Config, Engine, VariantMode};
use crate::engine::run_loop::Setup;
use crate::engine::{ffmpeg, native, Outcome};
use crate::viewer::{Capabilities, StreamMap, ViewerOptions, PROGRESS_FD};
use crate::SwarmClient;

/// No viewer played the stream — it was never reachable, every playlist
/// was refused, or no segment came in: exit status 3, with why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NothingPlayed(pub String);

/// Why no viewer of a finished run played anything, or `None` when one
/// did (a shard or a run without viewers is never judged here).
pub fn nothing_played(summary: &crate::results::Results, never_reached: bool) -> Option<String> {
    let t = &summary.totals;
    let url = &summary.url;
    if never_reached {
        return Some(format!(
            "the stream at {url} was never reachable: no viewer read anything"
        ));
    }
    if t.viewers_started == 0 {
        return None;
    }
    let played = match &t.native {
        Some(n) => u64::from(t.viewers_started) > n.counts.never_played,
        None => t.counts.segments > 0,
    };
    if played {
        return None;
    }
    // the failures, most frequent first
    let mut why: Vec<(u64, String)> = t
        .counts
        .http_errors
        .iter()
        .map(|(s, n)| (*n, format!("HTTP {s}")))
        .chain((t.counts.timeouts > 0).then(|| (t.counts.timeouts, "timeout".to_owned())))
        .chain(
            (t.counts.connect_errors > 0)
                .then(|| (t.counts.connect_errors, "connection".to_owned())),
        )
        .chain(
            t.native
                .iter()
                .flat_map(|n| n.counts.errors.iter().map(|(k, v)| (*v, k.clone()))),
        )
        .collect();
    why.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let listed = why
        .iter()
        .take(4)
        .map(|(n, k)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let listed = if listed.is_empty() {
        "no request failed: the run ended before a segment came in".to_owned()
    } else {
        listed
    };
    let read = crate::table::bytes(t.counts.bytes);
    Some(if t.counts.playlists == 0 {
        format!(
            "the stream at {url} answered ({read} read) but no viewer could use a playlist of it: {listed}"
        )
    } else {
        format!("no viewer played a segment of the stream at {url} ({read} read): {listed}")
    })
}

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
    #[command(flatten)]
    pub viewer: RequestFlags,
    #[command(flatten)]
    pub part: Part,
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
pub struct Part {
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

/// Whether this FFmpeg's HLS demuxer has `-seg_max_retry`.
pub fn probe_capabilities(ffmpeg: &Path) -> Capabilities {
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-h", "demuxer=hls"])
        .output();
    let seg_max_retry = out
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("seg_max_retry"))
        .unwrap_or(false);
    Capabilities { seg_max_retry }
}

/// The program of the highest or lowest bandwidth variant, by one ffprobe of
/// the master playlist.
pub fn probe_program(
    ffprobe: &Path,
    url: &str,
    mode: VariantMode,
    timeout: Duration,
) -> Result<u32, String> {
    let out = std::process::Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-rw_timeout",
            &timeout.as_micros().to_string(),
        ])
        .args([
            "-show_entries",
            "program=program_id:program_tags=variant_bitrate",
            "-of",
            "json",
            url,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let programs: Vec<(u32, u64)> = v["programs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let id = p["program_id"].as_u64()? as u32;
            let bw = p["tags"]["variant_bitrate"].as_str()?.parse().ok()?;
            Some((id, bw))
        })
        .collect();
    let pick = match mode {
        VariantMode::Highest => programs.iter().max_by_key(|p| p.1),
        _ => programs.iter().min_by_key(|p| p.1),
    };
    pick.map(|p| p.0)
        .ok_or_else(|| "the playlist has no variants with a bandwidth".to_owned())
}

/// Raises the open-file limit toward `wanted`; warns when it stays below.
fn check_fd_limit(wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let target = wanted.min(hard);
    if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() && target >= wanted
    {
        return;
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|l| l.0)
        .unwrap_or(soft);
    crate::log::warning(
        "open-file-limit",
        &format!("the open-file limit is {now}, below the {wanted} this swarm may need; raise it with `ulimit -n {wanted}`"),
    );
}

/// The map of streams each viewer reads.
fn stream_map(c: &Config, url: &str) -> StreamMap {
    match c.variant {
        VariantMode::All => StreamMap::All,
        VariantMode::First => StreamMap::First,
        VariantMode::Abr => {
            crate::log::warning(
                "variant",
                "variant `abr` needs the native engine; FFmpeg viewers read the first variant",
            );
            StreamMap::First
        }
        mode => {
            let timeout = Duration::from_secs(u64::from(c.timeout));
            let probed = find_program("ffprobe", "ffmpeg")
                .map_err(|e| e.to_string())
                .and_then(|p| probe_program(&p, url, mode, timeout));
            match probed {
                Ok(id) => {
                    println!("variant {}: program {id}", mode.as_str());
                    StreamMap::Program(id)
                }
                Err(e) => {
                    crate::log::warning(
                        "variant",
                        &format!(
                            "cannot pick the {} variant ({e}); reading the first",
                            mode.as_str()
                        ),
                    );
                    StreamMap::First
                }
            }
        }
    }
}

/// The headers every request carries, in order: no-cache, the config's, the
/// command line's.
fn request_headers(c: &Config, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::new();
    if c.no_cache {
        h.push(("Cache-Control".into(), "no-cache".into()));
        h.push(("Pragma".into(), "no-cache".into()));
    }
    h.extend(c.headers.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    h.extend(extra.iter().cloned());
    h
}

pub fn run(a: RunArgs) -> Result<()> {
    crate::log::set(a.log_format);
    check_url(&a.url)?;
    for u in a.origin.status.iter().chain(&a.origin.node) {
        check_url(u)?;
    }
    let headers = a
        .viewer
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut profile = a.profile.clone();
    if a.viewer.no_cache {
        profile.set.push("noCache=true".into());
    }
    if a.check {
        profile.set.push("clients=1".into());
        profile.set.push("engine=\"native\"".into());
    } else if let Some(e) = a.engine {
        profile.set.push(format!("engine=\"{}\"", e.as_str()));
    }
    for o in &a.slo {
        profile.set.push(slo_set(o)?);
    }
    let mut loaded = profile.load::<SwarmClient>()?;
    let objectives = loaded.config.slo.clone();
    let shard = match &a.part.shard {
        None => crate::results::Shard::whole(loaded.config.clients),
        Some(text) => {
            if a.seed.is_none() {
                return Err(UsageError(format!(
                    "--shard {text} needs --seed: every shard of a run takes the same seed"
                ))
                .into());
            }
            crate::results::Shard::parse(text, loaded.config.clients)
                .map_err(|e| UsageError(format!("{e} (clients = {})", loaded.config.clients)))?
        }
    };
    loaded.config.clients = shard.viewers;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    // the profile's port, unless the user chose one, gives way to a free
    // port when taken
    let chosen_port = matches!(
        loaded.provenance.source_of("metricsPort"),
        Some(common::profile::Source::Set(_))
            | Some(common::profile::Source::OverridesFile(_))
            | Some(common::profile::Source::UserProfile { .. })
    );
    let metrics_addr = crate::engine::metrics::MetricsAt {
        addr: a.metrics_addr.unwrap_or_else(|| {
            SocketAddr::from(([127, 0, 0, 1], loaded.config.metrics_port as u16))
        }),
        or_any_free: a.metrics_addr.is_none() && !chosen_port,
    };
    let duration = if a.check {
        Some(a.duration.unwrap_or(CHECK_DURATION))
    } else {
        a.duration
    };
    let c = &loaded.config;
    let banner = format!(
        "swarm-client: {} {} viewers of {} at {}/s (±{} ms), profile {}, seed {seed}{}",
        c.clients,
        c.engine.as_str(),
        a.url,
        c.ramp_rate,
        c.ramp_jitter,
        loaded.profile,
        duration
            .map(|d| format!(", for {} s", d.as_secs()))
            .unwrap_or_default()
    ) + &if shard.is_part() {
        format!(
            "; shard {} of {} (viewers {}–{} of {})",
            shard.index,
            shard.count,
            shard.first_viewer,
            shard.first_viewer + shard.viewers - 1,
            shard.total_viewers
        )
    } else {
        String::new()
    };
    println!("{banner}");
    crate::log::record(
        "start",
        &banner,
        serde_json::json!({
            "url": a.url, "engine": c.engine.as_str(), "clients": c.clients,
            "rampRate": c.ramp_rate, "profile": loaded.profile, "seed": seed,
            "durationSec": duration.map(|d| d.as_secs()),
        }),
    );
    let results = Results {
        objectives,
        shard,
        no_viewer_details: a.part.no_viewer_details,
        summary_json: a.summary_json.clone(),
        report: a.report.clone(),
        request: request_settings(&headers, a.viewer.resolve),
    };
    let plan = Plan {
        headers,
        seed,
        shard,
        start_at: a.part.start_at,
        metrics_addr,
        duration,
        checkpoint: results.checkpoint(),
    };
    let outcome = match c.engine {
        Engine::Ffmpeg => run_ffmpeg(&a, loaded, plan)?,
        Engine::Native => run_native(&a, loaded, plan)?,
    };
    let mut summary = outcome.results;
    results.complete(&mut summary);
    print!("{}", crate::table::table(&summary));
    let t = &summary.totals;
    crate::log::record(
        "summary",
        &format!("{} of {} viewers started", t.viewers_started, t.viewers),
        serde_json::json!({
            "durationSec": summary.duration_sec, "viewersStarted": t.viewers_started,
            "segments": t.counts.segments, "playlists": t.counts.playlists, "bytes": t.counts.bytes,
            "failedRequests": summary.totals.failed_requests(),
        }),
    );
    crate::log::verdicts(&summary.slo);
    for line in results.write(&summary)? {
        println!("{line}");
    }
    if a.part.print_results {
        println!("{}", crate::merge::printed(&summary)?);
    }
    if let Some(why) = nothing_played(&summary, outcome.never_reached) {
        return Err(NothingPlayed(why).into());
    }
    if shard.is_part() {
        // one shard's figures are not the run's: merge judges the objectives
        return Ok(());
    }
    Ok(crate::results::slo::gate(&summary.slo)?)
}

/// What becomes of a run's results: made complete (shard, details,
/// verdicts) and written to the files asked for, at the end and at each
/// checkpoint.
struct Results {
    objectives: crate::results::slo::Slo,
    shard: crate::results::Shard,
    no_viewer_details: bool,
    summary_json: Option<PathBuf>,
    report: Option<PathBuf>,
    /// What of the command line shaped the requests (`settings.request`).
    request: serde_json::Value,
}

/// Header names whose values are credentials: written `<redacted>` in
/// results (the name stays, so a run can be made again with one's own).
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "session",
        "signature",
        "key",
        "jwt",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A header's value as results record it.
pub fn recorded_header(name: &str, value: &str) -> String {
    let starts = |p: &str| {
        value
            .get(..p.len())
            .is_some_and(|v| v.eq_ignore_ascii_case(p))
    };
    let looks_secret = starts("bearer ") || starts("basic ") || starts("digest ");
    if secret_header(name) || looks_secret {
        "<redacted>".into()
    } else {
        value.to_owned()
    }
}

/// `settings.request` of the results: the `--header`s (credentials
/// redacted) and `--resolve`, which the config does not hold.
fn request_settings(headers: &[(String, String)], resolve: Option<IpAddr>) -> serde_json::Value {
    let h: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), recorded_header(k, v).into()))
        .collect();
    serde_json::json!({ "headers": h, "resolve": resolve.map(|ip| ip.to_string()) })
}

impl Results {
    /// Numbers the viewers as in the whole run, leaves details out when
    /// asked, and checks the objectives.
    fn complete(&self, summary: &mut crate::results::Results) {
        summary.set_shard(self.shard);
        if let Some(settings) = summary.settings.as_object_mut() {
            settings.insert("request".into(), self.request.clone());
            // the config's own headers, redacted as the command line's are
            if let Some(serde_json::Value::Object(h)) = settings.get_mut("headers") {
                for (k, v) in h.iter_mut() {
                    if let Some(text) = v.as_str() {
                        *v = recorded_header(k, text).into();
                    }
                }
            }
        }
        if self.no_viewer_details {
            summary.viewers.clear();
        }
        summary.slo = crate::results::slo::evaluate(&self.objectives, summary);
    }

    /// Writes the summary JSON and the report, each atomically (a reader
    /// sees the last complete file, never a part); returns a line for each
    /// file it wrote.
    fn write(&self, summary: &crate::results::Results) -> Result<Vec<String>> {
        let mut wrote = Vec::new();
        if let Some(path) = &self.summary_json {
            // streamed: a long run's results are megabytes
            common::artifact::write_atomic_with(path, 0o644, |w| {
                serde_json::to_writer_pretty(&mut *w, summary)?;
                w.write_all(b"\n")
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
            wrote.push(format!("summary written to {}", path.display()));
        }
        if let Some(path) = &self.report {
            crate::report::write(summary, path)?;
            wrote.push(format!("report written to {}", path.display()));
        }
        Ok(wrote)
    }

    /// The engine's checkpoint: the same completion and files, every
    /// [`crate::engine::conductor::CHECKPOINT_EVERY_SECS`]; a failed write is a
    /// warning (once) and the run goes on.
    fn checkpoint(&self) -> Option<crate::engine::Checkpoint> {
        if self.summary_json.is_none() && self.report.is_none() {
            return None;
        }
        let me = Results {
            objectives: self.objectives.clone(),
            shard: self.shard,
            no_viewer_details: self.no_viewer_details,
            summary_json: self.summary_json.clone(),
            report: self.report.clone(),
            request: self.request.clone(),
        };
        let mut warned = false;
        Some(Box::new(move |summary| {
            me.complete(summary);
            if let Err(e) = me.write(summary) {
                if !std::mem::replace(&mut warned, true) {
                    crate::log::warning("checkpoint", &format!("{e:#}; the run goes on"));
                }
            }
        }))
    }
}

/// `--slo FIGURE=LIMIT` as the `--set slo.FIGURE=LIMIT` it stands for.
pub fn slo_set(arg: &str) -> Result<String, UsageError> {
    match crate::results::slo::parse_flag(arg).map_err(UsageError)? {
        (key, crate::results::slo::Limit::Number(n)) => Ok(format!("slo.{key}={n}")),
        (key, crate::results::slo::Limit::Text(t)) => Ok(format!("slo.{key}=\"{t}\"")),
    }
}

/// Checks that the URL answers now; a warning if not.
fn preflight_reachable(url: &str, c: &Config) -> bool {
    let timeout = Duration::from_secs(u64::from(c.timeout).min(10));
    match common::probe::http_get(url, timeout) {
        Ok((200, _)) => true,
        Ok((status, _)) => {
            crate::log::warning("preflight", &format!("{url} answered HTTP {status}"));
            false
        }
        Err(e) => {
            crate::log::warning(
                "preflight",
                &format!("{url} is not reachable now ({e}); starting anyway"),
            );
            false
        }
    }
}

/// The same check with the native engine's own HTTP client (so HTTPS, the
/// CA file, `--resolve` and the headers apply), following redirects;
/// bounded as a viewer's playlist request is: the whole check within the
/// timeout (10 s at most), and no more of the body read than a playlist
/// may have.
fn native_preflight(url: &url::Url, client: &crate::native::http::ClientConfig) -> bool {
    use crate::native::http::Client;
    let mut cfg = client.clone();
    cfg.timeout = cfg.timeout.min(Duration::from_secs(10));
    let deadline = cfg.timeout;
    let began = std::time::Instant::now();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    let result = rt.block_on(async {
        let mut c = Client::new(std::sync::Arc::new(cfg), "hls-swarm-preflight");
        let mut at = url.clone();
        for _ in 0..=crate::native::viewer::MAX_REDIRECTS {
            let left = deadline.saturating_sub(began.elapsed());
            let keep = crate::native::playlist::MAX_PLAYLIST_BYTES + 1;
            let r = c.get(&at, keep, left, &mut |_| {}).await?;
            match r.location.as_deref().and_then(|l| at.join(l).ok()) {
                Some(next) if (300..400).contains(&r.status) => at = next,
                _ => return Ok(r.status),
            }
        }
        Err(crate::native::player::Failure::TooManyRedirects)
    });
    match result {
        Ok(200) => true,
        Ok(status) => {
            crate::log::warning("preflight", &format!("{url} answered HTTP {status}"));
            false
        }
        Err(f) => {
            crate::log::warning(
                "preflight",
                &format!(
                    "{url} is not reachable now ({}); starting anyway",
                    f.message()
                ),
            );
            false
        }
    }
}

type Loaded = common::component::Loaded<SwarmClient>;

/// What `run` settled for either engine.
struct Plan {
    /// Headers from the command line.
    headers: Vec<(String, String)>,
    seed: u64,
    shard: crate::results::Shard,
    start_at: Option<std::time::SystemTime>,
    metrics_addr: crate::engine::metrics::MetricsAt,
    duration: Option<Duration>,
    checkpoint: Option<crate::engine::Checkpoint>,
}

impl Plan {
    /// The run loop's setup of a run of `url` (reached by the preflight or
    /// not), and the command line's headers.
    fn setup(
        self,
        a: &RunArgs,
        loaded: Loaded,
        url: String,
        reachable: bool,
    ) -> (Setup, Vec<(String, String)>) {
        let setup = Setup {
            profile: loaded.profile.clone(),
            url,
            duration: self.duration,
            seed: self.seed,
            shard: self.shard,
            start_at: self.start_at,
            metrics_addr: self.metrics_addr,
            tty: std::io::stdout().is_terminal(),
            plain: a.plain,
            origin: crate::origin::Watcher::start(a.origin.clone()),
            reachable_at_start: reachable,
            checkpoint: self.checkpoint,
            config: loaded.config,
        };
        (setup, self.headers)
    }
}

fn run_native(a: &RunArgs, loaded: Loaded, plan: Plan) -> Result<Outcome> {
    let c = &loaded.config;
    let url = url::Url::parse(&a.url)
        .map_err(|e| UsageError(format!("`{}` is not a stream URL: {e}", a.url)))?;
    check_fd_limit(loaded.derived.recommended_fd_limit);
    let header_map =
        crate::native::http::headers(&request_headers(c, &plan.headers)).map_err(UsageError)?;
    if let Some(f) = &a.ca_file {
        if !f.is_file() {
            return Err(UsageError(format!(
                "--ca-file {}: no such file; expected a PEM file of CA certificates",
                f.display()
            ))
            .into());
        }
    }
    // built for every run: a redirect may lead from http to https
    let tls = Some(crate::native::http::tls_config(a.ca_file.as_deref()).map_err(UsageError)?);
    let client = crate::native::http::ClientConfig {
        resolve: a.viewer.resolve,
        resolve_host: url.host_str().map(str::to_owned),
        headers: header_map,
        timeout: Duration::from_secs(u64::from(c.timeout)),
        tls,
    };
    let reachable = native_preflight(&url, &client);
    if a.check {
        println!("checking {url}: one viewer, every request as it happens");
    }
    let (setup, _) = plan.setup(a, loaded, url.to_string(), reachable);
    native::Swarm {
        setup,
        url,
        client,
        check: a.check,
    }
    .run()
}

fn run_ffmpeg(a: &RunArgs, loaded: Loaded, plan: Plan) -> Result<Outcome> {
    let (c, d) = (&loaded.config, &loaded.derived);
    let ffmpeg = find_program("ffmpeg", "ffmpeg")?;
    let caps = probe_capabilities(&ffmpeg);
    if !caps.seg_max_retry {
        crate::log::note(
            "ffmpeg-capability",
            "this FFmpeg has no -seg_max_retry (FFmpeg 6.1+); segments are not retried",
        );
    }
    check_fd_limit(d.recommended_fd_limit);
    if let Some(dir) = &a.viewer_logs {
        common::host::ensure_writable_dir(dir, "--viewer-logs")?;
    }
    let reachable = preflight_reachable(&a.url, c);
    let map = stream_map(c, &a.url);
    let (setup, headers) = plan.setup(a, loaded, a.url.clone(), reachable);
    ffmpeg::Swarm {
        setup,
        ffmpeg,
        viewer: ViewerOptions {
            map,
            progress_fd: Some(PROGRESS_FD),
            resolve: a.viewer.resolve,
            headers,
            caps,
        },
        viewer_logs: a.viewer_logs.clone(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        for (name, value, want) in [
            ("Authorization", "Bearer abc", "<redacted>"),
            ("cookie", "a=b", "<redacted>"),
            ("X-Api-Key", "k1", "<redacted>"),
            ("X-Auth-Token", "t", "<redacted>"),
            ("X-Session-Id", "s", "<redacted>"),
            ("X-Custom", "bearer xyz", "<redacted>"),
            ("X-Custom", "Basic dXNlcjpwdw==", "<redacted>"),
            ("X-Test-Run", "42", "42"),
            ("Accept", "*/*", "*/*"),
            ("X-Cdn", "b", "b"),
        ] {
            assert_eq!(recorded_header(name, value), want, "{name}: {value}");
        }
        let r = request_settings(
            &[
                ("X-Test-Run".into(), "42".into()),
                ("Cookie".into(), "c=1".into()),
            ],
            Some("192.0.2.10".parse().unwrap()),
        );
        assert_eq!(
            r,
            serde_json::json!({
                "headers": { "X-Test-Run": "42", "Cookie": "<redacted>" },
                "resolve": "192.0.2.10"
            })
        );
    }
}
