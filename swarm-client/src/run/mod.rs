//! `swarm-client run`: preflight checks, then the swarm engine, then the summary.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use common::error::UsageError;
use common::host::find_program;

use crate::config::{Config, Engine};
use crate::engine::run_loop::Setup;
use crate::engine::{ffmpeg, native, Outcome};
use crate::ffmpeg_args::{ViewerOptions, PROGRESS_FD};
use crate::SwarmClient;

mod ffmpeg_setup;
mod flags;
mod preflight;
mod results_files;

pub use ffmpeg_setup::{ffmpeg_capabilities, variant_program};
pub use flags::{
    check_url, parse_header, slo_set, DistributedFlags, RequestFlags, RunArgs, SearchFlags,
    CHECK_DURATION,
};
pub use results_files::recorded_header;

use ffmpeg_setup::stream_map;
use preflight::{check_fd_limit, native_preflight, preflight_reachable};
use results_files::{request_settings, ResultsFiles};

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

/// `swarm-client run`.
pub fn run(a: RunArgs) -> Result<()> {
    run_with(a, None)
}

/// `swarm-client capacity`: a run whose steps of viewers are judged one by
/// one until one fails.
pub fn capacity(a: RunArgs, search: SearchFlags) -> Result<()> {
    run_with(a, Some(search))
}

/// Defaults of a capacity search's step time and settle.
const STEP_TIME: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(15);

/// The capacity search of `flags` over the config's `capacity` table and
/// defaults, checked.
fn search_plan(
    a: &RunArgs,
    c: &Config,
    flags: &SearchFlags,
) -> Result<crate::engine::search::Search, UsageError> {
    let refuse = |m: String| Err(UsageError(format!("capacity: {m}")));
    if a.duration.is_some() {
        return refuse(
            "--duration: a search lasts as long as its steps; bound it with --max".into(),
        );
    }
    if a.check {
        return refuse("--check plays one viewer; use run --check".into());
    }
    if !c.stages.is_empty() {
        return refuse(
            "the config has `stages`, and a search makes its own steps; use a profile without              stages (or --set 'stages=[]')"
                .into(),
        );
    }
    if c.engine != Engine::Native {
        return refuse("steps are played by native viewers; use --engine native".into());
    }
    if c.slo.is_empty() {
        return refuse(
            "no objectives to judge the steps by; give some, e.g. --slo segmentTtfbP99=500ms              --slo errorRate=0.001 (or the config's slo table)"
                .into(),
        );
    }
    let t = c.capacity.clone().unwrap_or_default();
    let max = flags.max.or(t.max).unwrap_or(c.clients);
    let step = flags.step.or(t.step).unwrap_or((max / 10).max(1));
    let time = |d: &Option<crate::config::StageDuration>| d.as_ref().and_then(|d| d.duration());
    let search = crate::engine::search::Search {
        start: flags.start.or(t.start).unwrap_or(step),
        step,
        max,
        step_time: flags.step_time.or(time(&t.step_time)).unwrap_or(STEP_TIME),
        settle: flags.settle.or(time(&t.settle)).unwrap_or(SETTLE),
        ramp_rate: c.ramp_rate,
    };
    match search.problem() {
        Some(p) => refuse(p),
        None => Ok(search),
    }
}

fn run_with(a: RunArgs, search_flags: Option<SearchFlags>) -> Result<()> {
    crate::log::set(a.log_format);
    check_url(&a.url)?;
    if let Some(u) = &a.remote_write {
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(UsageError(format!(
                "--remote-write {u}: expected an http(s) URL of a remote-write receiver, e.g. \
                 http://127.0.0.1:9090/api/v1/write"
            ))
            .into());
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(UsageError(
                "--remote-write: credentials in the URL would be in the results and the logs; \
                 use a receiver on a trusted network (or a local agent that adds them)"
                    .into(),
            )
            .into());
        }
    }
    if a.remote_write_every < Duration::from_secs(1)
        || a.remote_write_every > Duration::from_secs(3600)
    {
        return Err(UsageError(format!(
            "--remote-write-every {}: expected from 1s to 1h",
            humantime::format_duration(a.remote_write_every)
        ))
        .into());
    }
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
        profile.set.push("stages=[]".into());
        profile.set.push("engine=\"native\"".into());
    } else if let Some(e) = a.engine {
        profile.set.push(format!("engine=\"{}\"", e.as_str()));
    }
    for o in &a.slo {
        profile.set.push(slo_set(o)?);
    }
    for g in &a.abort_on {
        profile
            .set
            .push(flags::gate_set(g, a.abort_window, a.abort_delay)?);
    }
    let mut loaded = profile.load::<SwarmClient>()?;
    let objectives = loaded.config.slo.clone();
    let search = match &search_flags {
        Some(f) => Some(search_plan(&a, &loaded.config, f)?),
        None => None,
    };
    // with stages, the peak of the shape; of a search, its max
    let viewers = search
        .as_ref()
        .map_or_else(|| loaded.config.viewers(), |s| s.max);
    let shard = match &a.distributed.shard {
        None => crate::results::Shard::whole(viewers),
        Some(text) => {
            if a.seed.is_none() {
                return Err(UsageError(format!(
                    "--shard {text} needs --seed: every shard of a run takes the same seed"
                ))
                .into());
            }
            crate::results::Shard::parse(text, viewers)
                .map_err(|e| UsageError(format!("{e} (viewers = {viewers})")))?
        }
    };
    loaded.config.clients = shard.viewers;
    // sized for what this process plays (a search's max, a shard's part)
    loaded.derived = crate::derive::derive(&loaded.config);
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
    let shape = loaded.config.shape();
    let duration = if a.check {
        Some(a.duration.unwrap_or(CHECK_DURATION))
    } else if let Some(s) = &search {
        // the last window closes at the end of the steps
        Some(s.duration() + Duration::from_secs(2))
    } else {
        // a shape lasts as long as its stages
        a.duration.or(shape.as_ref().map(|s| s.duration()))
    };
    let c = &loaded.config;
    let pace = match (&search, &shape) {
        (Some(s), _) => format!(
            "in steps of {} from {}, {} each, judged from {} into each",
            s.step,
            s.start,
            humantime::format_duration(s.step_time),
            humantime::format_duration(s.settle)
        ),
        (None, Some(_)) => format!("in {} stages", c.stages.len()),
        (None, None) => format!("at {}/s (±{} ms)", c.ramp_rate, c.ramp_jitter),
    };
    let banner = format!(
        "swarm-client: {} {} viewers{} of {} {pace}, profile {}, seed {seed}{}",
        c.clients,
        c.engine.as_str(),
        if search.is_some() {
            " at most"
        } else if shape.is_some() {
            " at the peak"
        } else {
            ""
        },
        a.url,
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
    let results = ResultsFiles {
        // a search judges its steps, not the whole run
        objectives: if search.is_some() {
            Default::default()
        } else {
            objectives.clone()
        },
        shard,
        no_viewer_details: a.distributed.no_viewer_details,
        summary_json: a.summary_json.clone(),
        report: a.report.clone(),
        request: request_settings(&headers, a.viewer.resolve),
    };
    let plan = Plan {
        headers,
        seed,
        shard,
        start_at: a.distributed.start_at,
        metrics_addr,
        duration,
        checkpoint: results.checkpoint(),
        search: search.map(|s| (s, objectives)),
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
    if a.distributed.print_results {
        println!("{}", crate::merge::printed(&summary)?);
    }
    if let Some(why) = nothing_played(&summary, outcome.never_reached) {
        return Err(NothingPlayed(why).into());
    }
    if let (Some(why), false) = (&outcome.aborted, shard.is_part()) {
        return Err(crate::results::slo::SloFailed(vec![why.clone()]).into());
    }
    if let Some(cap) = &summary.capacity {
        if shard.is_part() {
            // a shard's steps are not the run's: merge judges them
            return Ok(());
        }
        return match cap.held {
            Some(_) => Ok(()),
            None => Err(crate::results::slo::SloFailed(vec![cap.line()]).into()),
        };
    }
    if shard.is_part() {
        // one shard's figures are not the run's: merge judges the objectives
        return Ok(());
    }
    Ok(crate::results::slo::gate(&summary.slo)?)
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
    search: Option<(crate::engine::search::Search, crate::results::slo::Slo)>,
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
            search: self.search,
            remote_write: a.remote_write.clone().map(|u| (u, a.remote_write_every)),
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
    if c.http == crate::config::HttpVersion::Http2 && url.scheme() != "https" {
        return Err(UsageError(format!(
            "http = \"2\": `{url}` is not an https URL; HTTP/2 is chosen by TLS (ALPN) and \
             cleartext HTTP/2 is not spoken — use the https URL, or http = \"auto\""
        ))
        .into());
    }
    // built for every run: a redirect may lead from http to https
    let tls =
        Some(crate::native::http::tls_config(a.ca_file.as_deref(), c.http).map_err(UsageError)?);
    let client = crate::native::http::ClientConfig {
        resolve: a.viewer.resolve,
        resolve_host: url.host_str().map(str::to_owned),
        headers: header_map,
        timeout: Duration::from_secs(u64::from(c.timeout)),
        tls,
        http: c.http,
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
    let caps = ffmpeg_capabilities(&ffmpeg);
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
