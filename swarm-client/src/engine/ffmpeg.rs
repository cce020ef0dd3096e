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

use super::conductor::Sample;
use super::ffmpeg_viewer::ViewerState;
use super::metrics::{Metrics, StatusLabel};
use super::progress::{classify, split_level, LogEvent, ProgressParser};
use super::run_loop::Setup;
use super::{netbytes, progress, Outcome, VIEWER_BACKOFF};
use crate::config::Config;
use crate::ffmpeg_args::{verbosity, viewer_args, ViewerOptions, PROGRESS_FD};
use crate::results::ViewerFigures;

/// How an FFmpeg run is set up.
pub struct Swarm {
    pub setup: Setup,
    pub ffmpeg: PathBuf,
    pub viewer: ViewerOptions,
    /// Append each viewer's log to DIR/viewer-<id>.log.
    pub viewer_logs: Option<PathBuf>,
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

    async fn run_async(self) -> Result<Outcome> {
        let Swarm {
            mut setup,
            ffmpeg,
            viewer,
            viewer_logs,
        } = self;
        let mut control = setup.control().await?;
        let n = setup.config.clients as usize;
        let (tx, rx) = mpsc::unbounded_channel::<Msg>();
        let mut engine = Ffmpeg {
            launcher: Launcher {
                config: setup.config.clone(),
                url: setup.url.clone(),
                ffmpeg,
                viewer,
                viewer_logs,
            },
            rng: fastrand::Rng::with_seed(setup.seed.wrapping_add(1)),
            viewers: (0..n).map(|_| ViewerState::default()).collect(),
            metrics: control.metrics.clone(),
            start: Instant::now(),
            tx,
            rx,
            reached: false,
            net: netbytes::NetBytes::default(),
            net_warned: false,
        };
        let start = engine.start;
        super::run_loop::run(&mut setup, &mut control, &mut engine, start, false).await
    }
}

/// What starts an FFmpeg viewer.
struct Launcher {
    config: Config,
    url: String,
    ffmpeg: PathBuf,
    viewer: ViewerOptions,
    viewer_logs: Option<PathBuf>,
}

impl Launcher {
    fn spawn(&self, id: usize, v: &mut ViewerState, tx: &mpsc::UnboundedSender<Msg>) -> Result<()> {
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
}

/// The FFmpeg viewers of a run, for the run loop.
struct Ffmpeg {
    launcher: Launcher,
    rng: fastrand::Rng,
    viewers: Vec<ViewerState>,
    metrics: Metrics,
    start: Instant,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// A viewer has read the stream.
    reached: bool,
    net: netbytes::NetBytes,
    net_warned: bool,
}

impl Ffmpeg {
    /// Starts viewer `id`'s process, or schedules its restart when it
    /// cannot start.
    fn launch(&mut self, id: usize, now: Instant) -> bool {
        let started = self.launcher.spawn(id, &mut self.viewers[id], &self.tx);
        match started {
            Ok(()) => {
                self.metrics.starts.inc();
                true
            }
            Err(e) => {
                crate::log::warning("viewer-start", &format!("{e:#}"));
                let unit = self.rng.f64();
                self.viewers[id].ended(&VIEWER_BACKOFF, now, unit);
                false
            }
        }
    }

    /// Adds the TCP bytes each viewer's sockets read since the last time.
    async fn count_bytes(&mut self, now: Instant) {
        let pids: std::collections::BTreeSet<u32> =
            self.viewers.iter().filter_map(|v| v.pid).collect();
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
                    && !self.net_warned
                    && now - self.start > Duration::from_secs(10)
                {
                    self.net_warned = true;
                    crate::log::warning("byte-counters", "the kernel reports no TCP byte counters (load the tcp_diag module); bytes are not measured");
                }
                let delta = self.net.update(&snap, &pids);
                for v in self.viewers.iter_mut() {
                    if let Some(d) = v.pid.and_then(|p| delta.get(&p)) {
                        v.figures.counts.bytes += d;
                        self.metrics.bytes.inc_by(*d);
                    }
                }
            }
            None if !self.net_warned => {
                self.net_warned = true;
                crate::log::warning(
                    "byte-counters",
                    "`ss` (package iproute2) is missing; bytes are not measured",
                );
            }
            None => {}
        }
    }

    fn sum(&self, f: fn(&ViewerFigures) -> u64) -> u64 {
        self.viewers.iter().map(|v| f(&v.figures)).sum()
    }

    fn handle(&mut self, msg: Msg) {
        let (viewers, m, rng, reached) = (
            &mut self.viewers,
            &self.metrics,
            &mut self.rng,
            &mut self.reached,
        );
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

impl super::run_loop::Engine for Ffmpeg {
    const NAME: &'static str = "ffmpeg";
    const LOOKAHEAD: Duration = Duration::ZERO;

    // no departures: load shapes are played by native viewers
    fn start(&mut self, i: usize, _spans: &[super::shape::Span], now: Instant) {
        self.launch(i, now);
    }

    fn tick(&mut self, now: Instant) {
        for id in 0..self.viewers.len() {
            if self.viewers[id].restart_due(now) && self.launch(id, now) {
                self.viewers[id].figures.counts.restarts += 1;
                self.metrics.restarts.inc();
            }
        }
    }

    async fn event(&mut self) {
        if let Some(msg) = self.rx.recv().await {
            self.handle(msg);
            while let Ok(m) = self.rx.try_recv() {
                self.handle(m);
            }
        }
    }

    async fn sample(&mut self, now: Instant) -> Sample {
        self.count_bytes(now).await;
        let mut active = 0;
        let mut stalled = 0;
        for v in self.viewers.iter_mut() {
            if v.pid.is_some() {
                active += 1;
            }
            if v.check_stall(now) {
                stalled += 1;
            }
        }
        let (bytes, requests, failed) = self.totals();
        Sample {
            active,
            stalled,
            bytes,
            requests,
            segments: self.sum(|f| f.counts.segments),
            failed,
            restarts: self.sum(|f| f.counts.restarts),
            rebuffers: None,
            ttfb: None,
        }
    }

    fn reached(&self) -> bool {
        self.reached
    }

    fn figures(&self) -> Vec<ViewerFigures> {
        self.viewers.iter().map(|v| v.figures.clone()).collect()
    }

    /// The bytes of the last second, then TERM to every viewer group, and
    /// KILL to what is left after 3 s.
    async fn stop(&mut self) -> Vec<ViewerFigures> {
        self.count_bytes(Instant::now()).await;
        for v in &self.viewers {
            if let Some(pid) = v.pid {
                signal_group(pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.viewers.iter().any(|v| v.pid.is_some()) && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(100), self.rx.recv()).await {
                Ok(Some(Msg::Exit { id, gen, .. })) if self.viewers[id].gen == gen => {
                    self.viewers[id].pid = None;
                }
                Ok(Some(m)) => self.handle(m),
                _ => {}
            }
        }
        for v in &mut self.viewers {
            if let Some(pid) = v.pid.take() {
                signal_group(pid, Signal::SIGKILL);
            }
        }
        self.figures()
    }

    fn totals(&self) -> (u64, u64, u64) {
        (
            self.sum(|f| f.counts.bytes),
            self.sum(|f| f.counts.segments + f.counts.playlists),
            self.sum(|f| f.counts.failed_requests()),
        )
    }

    fn never_reached(&self) -> bool {
        !self.reached
    }
}
