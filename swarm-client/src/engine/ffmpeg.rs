//! The FFmpeg engine: each viewer an `ffmpeg` process, started on the ramp,
//! supervised and measured from its progress pipe, its log and the kernel's
//! TCP counters.
//!
//! Everything runs on one thread (a current-thread tokio runtime): the
//! parent-death signal of a child is tied to the thread that spawned it, so the
//! thread that spawns viewers lives as long as the swarm.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::supervise::{prepare_in_group, signal_group};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::ffmpeg_viewer::ViewerState;
use super::metrics::{Metrics, StatusLabel};
use super::progress::{classify, split_level, LogEvent, ProgressParser};
use super::{netbytes, progress, ramp_schedule, Outcome, VIEWER_BACKOFF};
use crate::config::Config;
use crate::results::{Results, ViewerFigures};
use crate::viewer::{verbosity, viewer_args, ViewerOptions, PROGRESS_FD};

/// How a run is set up.
pub struct Swarm {
    pub profile: String,
    pub config: Config,
    pub url: String,
    pub ffmpeg: PathBuf,
    pub viewer: ViewerOptions,
    pub duration: Option<Duration>,
    pub seed: u64,
    /// The part of the run this process plays.
    pub shard: super::Shard,
    /// A wall-clock time to wait for before the ramp (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
    pub metrics_addr: super::metrics::MetricsAt,
    /// Status once a second: a rewritten line on a terminal, plain lines otherwise.
    pub tty: bool,
    /// Status lines even on a terminal (no live view).
    pub plain: bool,
    /// Called with the results so far every few seconds.
    pub checkpoint: Option<super::Checkpoint>,
    /// The origin's figures, read beside the run.
    pub origin: Option<crate::origin::Watcher>,
    /// Append each viewer's log to DIR/viewer-<id>.log.
    pub viewer_logs: Option<PathBuf>,
    /// Whether the preflight reached the URL; if not, the run ends (exit 3)
    /// when no viewer has reached it within the timeout either.
    pub reachable_at_start: bool,
}

enum Msg {
    Progress {
        id: usize,
        gen: u64,
        p: progress::Progress,
    },
    Log {
        id: usize,
        gen: u64,
        e: LogEvent,
    },
    Exit {
        id: usize,
        gen: u64,
        status: std::process::ExitStatus,
    },
}

impl Swarm {
    /// Runs until the duration ends or SIGINT/SIGTERM; then stops every viewer.
    pub fn run(self) -> Result<Outcome> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        rt.block_on(self.run_async())
    }

    fn spawn_viewer(
        &self,
        id: usize,
        v: &mut ViewerState,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<()> {
        let args = viewer_args(&self.config, &self.url, id as u32, &self.viewer);
        let (read_end, write_end) = nix::unistd::pipe().context("cannot create a progress pipe")?;
        let mut cmd = std::process::Command::new(&self.ffmpeg);
        cmd.args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        prepare_in_group(&mut cmd);
        let write_fd = write_end.as_raw_fd();
        #[allow(unsafe_code)]
        // SAFETY: runs between fork and exec; dup2(2) is async-signal-safe and
        // only makes the pipe's write end the child's fd 3.
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::dup2(write_fd, PROGRESS_FD as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(false)
            .spawn()
            .with_context(|| format!("cannot start viewer {id} ({})", self.ffmpeg.display()))?;
        drop(write_end);
        let gen = v.started(child.id(), Instant::now());

        let stderr = child.stderr.take().expect("piped stderr");
        let t = tx.clone();
        let wanted = verbosity(self.config.log_level);
        let mut log_file = match &self.viewer_logs {
            Some(dir) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("viewer-{id}.log")))
                    .with_context(|| format!("cannot write viewer logs in {}", dir.display()))?,
            ),
            None => None,
        };
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(tagged)) = lines.next_line().await {
                let (level, line) = split_level(&tagged);
                if let Some(f) = &mut log_file {
                    // the viewer logs at `info` at least (to count requests);
                    // keep what the configured level asked for
                    if level.is_none_or(|l| verbosity(l) <= wanted) {
                        use std::io::Write;
                        let _ = writeln!(f, "{line}");
                    }
                }
                if let Some(e) = classify(&line) {
                    let _ = t.send(Msg::Log { id, gen, e });
                }
            }
        });
        let t = tx.clone();
        tokio::spawn(async move {
            let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end) else {
                return;
            };
            let mut lines = BufReader::new(pipe).lines();
            let mut parser = ProgressParser::default();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = parser.feed(&line) {
                    let _ = t.send(Msg::Progress { id, gen, p });
                }
            }
        });
        let t = tx.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = t.send(Msg::Exit { id, gen, status });
            }
        });
        Ok(())
    }

    async fn run_async(mut self) -> Result<Outcome> {
        let c = &self.config;
        let n = c.clients as usize;
        let mut control = super::Control::start(self.metrics_addr, c.clients).await?;
        let metrics = control.metrics.clone();
        metrics.preset(c.networks.keys().map(String::as_str));
        if let Some(reason) = control.wait_until(self.start_at).await {
            return Err(anyhow::anyhow!("{reason} while waiting for --start-at"));
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let schedule = ramp_schedule(c, self.seed, self.shard);
        let mut series = super::Series::new(&schedule, c.clients);
        let mut display = super::display::Display::choose(self.tty, self.plain);
        let mut rng = fastrand::Rng::with_seed(self.seed.wrapping_add(1));
        let mut viewers: Vec<ViewerState> = (0..n).map(|_| ViewerState::default()).collect();
        let mut next = 0usize;
        let start = Instant::now();
        let end = self.duration.map(|d| start + d);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_status = start;
        let mut status_bytes = 0u64;
        let mut status_segments = 0u64;
        let mut ever_reached = false;
        let mut net = netbytes::NetBytes::default();
        let mut net_warned = false;
        let mut stop_reason = "duration reached";
        let mut seconds = 0u64;

        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = control.signalled() => { stop_reason = r; break; }
                Some(msg) = rx.recv() => {
                    self.handle(msg, &mut viewers, &metrics, &mut rng, &mut ever_reached);
                    while let Ok(m) = rx.try_recv() {
                        self.handle(m, &mut viewers, &metrics, &mut rng, &mut ever_reached);
                    }
                    continue;
                }
            }
            let now = Instant::now();
            if end.is_some_and(|e| now >= e) {
                break;
            }
            if !ever_reached
                && !self.reachable_at_start
                && now - start >= Duration::from_secs(u64::from(c.timeout))
            {
                stop_reason = "stream never reachable";
                break;
            }
            // ramp
            while next < n && now - start >= schedule[next] {
                if let Err(e) = self.spawn_viewer(next, &mut viewers[next], &tx) {
                    crate::log::warning("viewer-start", &format!("{e:#}"));
                    viewers[next].ended(&VIEWER_BACKOFF, now, rng.f64());
                } else {
                    metrics.starts.inc();
                }
                next += 1;
            }
            // restarts
            for (id, v) in viewers.iter_mut().enumerate() {
                if v.restart_due(now) {
                    match self.spawn_viewer(id, v, &tx) {
                        Ok(()) => {
                            v.figures.counts.restarts += 1;
                            metrics.starts.inc();
                            metrics.restarts.inc();
                        }
                        Err(e) => {
                            crate::log::warning("viewer-start", &format!("{e:#}"));
                            v.ended(&VIEWER_BACKOFF, now, rng.f64());
                        }
                    }
                }
            }
            if let Some(second) = series.due(super::unix_now()) {
                let pids: std::collections::BTreeSet<u32> =
                    viewers.iter().filter_map(|v| v.pid).collect();
                match netbytes::snapshot().await {
                    Some(snap) => {
                        let viewer_sockets = snap
                            .values()
                            .filter(|(owners, _)| owners.iter().any(|p| pids.contains(p)))
                            .count();
                        let with_counters = snap
                            .values()
                            .filter(|(owners, b)| *b > 0 && owners.iter().any(|p| pids.contains(p)))
                            .count();
                        if viewer_sockets > 0
                            && with_counters == 0
                            && !net_warned
                            && now - start > Duration::from_secs(10)
                        {
                            net_warned = true;
                            crate::log::warning("byte-counters", "the kernel reports no TCP byte counters (load the tcp_diag module); bytes are not measured");
                        }
                        let delta = net.update(&snap, &pids);
                        for v in viewers.iter_mut() {
                            if let Some(d) = v.pid.and_then(|p| delta.get(&p)) {
                                v.figures.counts.bytes += d;
                                metrics.bytes.inc_by(*d);
                            }
                        }
                    }
                    None if !net_warned => {
                        net_warned = true;
                        crate::log::warning(
                            "byte-counters",
                            "`ss` (package iproute2) is missing; bytes are not measured",
                        );
                    }
                    None => {}
                }
                let mut active = 0;
                let mut stalled = 0;
                for v in viewers.iter_mut() {
                    if v.pid.is_some() {
                        active += 1;
                    }
                    if v.check_stall(now) {
                        stalled += 1;
                    }
                }
                metrics.viewers_active.set(active);
                metrics.viewers_stalled.set(stalled);
                let sum = |f: fn(&ViewerFigures) -> u64| {
                    viewers.iter().map(|v| f(&v.figures)).sum::<u64>()
                };
                series.sample(
                    second,
                    now - start,
                    (active as u64, stalled as u64),
                    (
                        sum(|f| f.counts.bytes),
                        sum(|f| f.counts.segments + f.counts.playlists),
                        sum(|f| {
                            f.counts.http_errors.values().sum::<u64>()
                                + f.counts.timeouts
                                + f.counts.connect_errors
                        }),
                    ),
                    None,
                );
                if let Some(w) = &self.origin {
                    series.origin(w.latest());
                }
                seconds += 1;
                if super::checkpoint_due(seconds).1 && self.checkpoint.is_some() {
                    let mut summary = Results::new(
                        super::run_of(
                            &self.profile,
                            &self.url,
                            &self.config,
                            self.seed,
                            now - start,
                            super::CHECKPOINT_STOP,
                        ),
                        viewers.iter().map(|v| v.figures.clone()).collect(),
                        None,
                        std::mem::take(&mut series.seconds),
                    );
                    if let Some(write) = self.checkpoint.as_mut() {
                        write(&mut summary);
                    }
                    series.seconds = std::mem::take(&mut summary.series);
                }
                let secs = (now - last_status).as_secs_f64();
                let bytes: u64 = viewers.iter().map(|v| v.figures.counts.bytes).sum();
                let segments: u64 = viewers.iter().map(|v| v.figures.counts.segments).sum();
                let errors: u64 = viewers
                    .iter()
                    .map(|v| {
                        v.figures.counts.http_errors.values().sum::<u64>()
                            + v.figures.counts.timeouts
                            + v.figures.counts.connect_errors
                    })
                    .sum();
                let restarts: u64 = viewers.iter().map(|v| v.figures.counts.restarts).sum();
                let line = format!(
                    "[{:>4.0}s] viewers {active}/{n} (ramp {:.0} %) | restarts {restarts} | {} | {:.1} seg/s | errors {errors} | stalled {stalled}",
                    (now - start).as_secs_f64(),
                    100.0 * next as f64 / n as f64,
                    crate::table::rate((bytes - status_bytes) as f64 / secs),
                    (segments - status_segments) as f64 / secs,
                );
                display.show(&super::display::Frame {
                    url: &self.url,
                    engine: "ffmpeg",
                    elapsed: now - start,
                    duration: self.duration,
                    target: n as u64,
                    active: active as u64,
                    ramp: next as f64 / n as f64,
                    restarts,
                    stalled: stalled as u64,
                    rebuffers: None,
                    errors: metrics.error_kinds(),
                    received: bytes,
                    series: &series.seconds,
                    line,
                });
                status_bytes = bytes;
                status_segments = segments;
                last_status = now;
            }
        }
        display.finish();
        crate::log::stopping(stop_reason);
        let ran_for = start.elapsed();
        // the bytes of the last second
        let pids: std::collections::BTreeSet<u32> = viewers.iter().filter_map(|v| v.pid).collect();
        if let Some(snap) = netbytes::snapshot().await {
            let delta = net.update(&snap, &pids);
            for v in viewers.iter_mut() {
                if let Some(d) = v.pid.and_then(|p| delta.get(&p)) {
                    v.figures.counts.bytes += d;
                    metrics.bytes.inc_by(*d);
                }
            }
        }

        // Stop: TERM to every viewer group, then KILL what is left after 3 s.
        for v in &viewers {
            if let Some(pid) = v.pid {
                signal_group(pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while viewers.iter().any(|v| v.pid.is_some()) && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Some(Msg::Exit { id, gen, .. })) if viewers[id].gen == gen => {
                    viewers[id].pid = None;
                }
                Ok(Some(m)) => self.handle(m, &mut viewers, &metrics, &mut rng, &mut ever_reached),
                _ => {}
            }
        }
        for v in &mut viewers {
            if let Some(pid) = v.pid.take() {
                signal_group(pid, Signal::SIGKILL);
            }
        }
        control.finish();
        // what came in after the last second's sample
        let sum = |f: fn(&ViewerFigures) -> u64| viewers.iter().map(|v| f(&v.figures)).sum::<u64>();
        series.close(
            super::unix_now(),
            ran_for,
            (
                sum(|f| f.counts.bytes),
                sum(|f| f.counts.segments + f.counts.playlists),
                sum(|f| {
                    f.counts.http_errors.values().sum::<u64>()
                        + f.counts.timeouts
                        + f.counts.connect_errors
                }),
            ),
        );

        let figures: Vec<ViewerFigures> = viewers.into_iter().map(|v| v.figures).collect();
        let summary = Results::new(
            super::run_of(
                &self.profile,
                &self.url,
                &self.config,
                self.seed,
                ran_for,
                stop_reason,
            ),
            figures,
            None,
            series.seconds,
        );
        Ok(Outcome {
            results: summary,
            never_reached: !ever_reached,
        })
    }

    fn handle(
        &self,
        msg: Msg,
        viewers: &mut [ViewerState],
        m: &Metrics,
        rng: &mut fastrand::Rng,
        reached: &mut bool,
    ) {
        match msg {
            Msg::Progress { id, gen, p } => {
                if viewers[id].on_progress(gen, &p, Instant::now()) {
                    *reached = true;
                }
            }
            Msg::Log { id, gen, e } => {
                if !viewers[id].on_log(gen, &e) {
                    return;
                }
                match e {
                    LogEvent::Segment => {
                        m.segments.inc();
                        *reached = true;
                    }
                    LogEvent::Playlist => {
                        m.playlists.inc();
                    }
                    LogEvent::InputOpened => {
                        m.playlists.inc();
                        *reached = true;
                    }
                    LogEvent::HttpError(code) => {
                        m.tally(format!("HTTP {code}"));
                        m.http_errors
                            .get_or_create(&StatusLabel {
                                status: code.to_string(),
                            })
                            .inc();
                    }
                    LogEvent::Timeout => {
                        m.tally("timeout".into());
                        m.timeouts.inc();
                    }
                    LogEvent::ConnectError => {
                        m.tally("connection".into());
                        m.connect_errors.inc();
                    }
                }
            }
            Msg::Exit { id, gen, status } => {
                let v = &mut viewers[id];
                if v.gen != gen {
                    return;
                }
                if let Some(pid) = v.pid {
                    // the group may hold nothing else, but make sure
                    signal_group(pid, Signal::SIGKILL);
                }
                let (ran, delay) = v.ended(&VIEWER_BACKOFF, Instant::now(), rng.f64());
                crate::log::emit(
                    crate::log::Level::Info,
                    "viewer-exit",
                    &format!(
                        "viewer {id} exited ({status}) after {:.1} s; restarting in {:.2} s",
                        ran.as_secs_f64(),
                        delay.as_secs_f64()
                    ),
                    serde_json::json!({
                        "viewer": id, "status": status.to_string(),
                        "ranSec": ran.as_secs_f64(), "restartInSec": delay.as_secs_f64(),
                    }),
                );
            }
        }
    }
}
