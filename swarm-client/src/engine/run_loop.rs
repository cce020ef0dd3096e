//! The one run loop of both engines: the [`Conductor`] driven by the clock
//! and the signals, an [`Engine`] doing what it says — start these viewers,
//! sample them, stop them — and the display, the metrics and the
//! checkpoints fed from it.

use std::time::{Duration, Instant};

use super::conductor::{stop, Conductor, Edge, Plan, Sample, Status};
use super::display::{Display, Frame};
use super::shape::Span;
use super::{metrics::MetricsAt, Checkpoint, Control, Outcome};
use crate::config::Config;
use crate::results::capacity::{Capacity, Step};
use crate::results::window::{self, Reading};
use crate::results::{Recorder, Results, Shard, ViewerFigures};

/// How a run is set up, whichever engine plays it.
pub struct Setup {
    pub profile: String,
    pub config: Config,
    pub url: String,
    pub duration: Option<Duration>,
    pub seed: u64,
    /// The part of the run this process plays.
    pub shard: Shard,
    /// A wall-clock time to wait for before the ramp (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
    pub metrics_addr: MetricsAt,
    /// Status once a second: a rewritten line on a terminal, plain lines otherwise.
    pub tty: bool,
    /// Status lines even on a terminal (no live view).
    pub plain: bool,
    /// Whether the preflight reached the URL; if not, the run ends (exit 3)
    /// when no viewer has reached it within the timeout either.
    pub reachable_at_start: bool,
    /// The origin's figures, read beside the run.
    pub origin: Option<crate::origin::Watcher>,
    /// Called with the results so far every few seconds.
    pub checkpoint: Option<Checkpoint>,
    /// A capacity search, and the objectives its steps are judged by.
    pub search: Option<(super::search::Search, crate::results::slo::Slo)>,
    /// Where to push the metrics (Prometheus remote write), and how often.
    pub remote_write: Option<(url::Url, Duration)>,
}

impl Setup {
    /// Starts the metrics endpoint and the signal handlers, and waits for
    /// `--start-at`.
    pub async fn control(&self) -> anyhow::Result<Control> {
        let c = &self.config;
        let mut control = Control::start(self.metrics_addr, c.clients).await?;
        control
            .metrics
            .preset(c.networks.keys().map(String::as_str));
        if let Some(reason) = control.wait_until(self.start_at).await {
            anyhow::bail!("{reason} while waiting for --start-at");
        }
        Ok(control)
    }

    /// The results of `viewers` after `ran_for`.
    fn results(
        &self,
        ran_for: Duration,
        stopped_by: &str,
        viewers: Vec<ViewerFigures>,
        recorder: Option<&Recorder>,
        series: crate::results::Seconds,
    ) -> Results {
        Results::new(
            super::run_of(
                &self.profile,
                &self.url,
                &self.config,
                self.seed,
                ran_for,
                stopped_by,
            ),
            viewers,
            recorder,
            series,
        )
    }
}

/// What a swarm of one kind of viewer does for the run loop. Its viewers
/// are numbered from 0 in this process.
#[allow(async_fn_in_trait)] // driven on one current-thread runtime
pub trait Engine {
    /// `native` or `ffmpeg`.
    const NAME: &'static str;
    /// How long before its start a viewer is handed over: an engine whose
    /// viewers wait for their own start time takes them a tick early.
    const LOOKAHEAD: Duration;

    /// Starts viewer `i`, which plays `spans` of the run: from the first's
    /// start (`now` or soon) to its stop, and so on; it leaves at a span's
    /// stop and counts a departure.
    fn start(&mut self, i: usize, spans: &[Span], now: Instant);
    /// What is due every tick besides starts (restarts).
    fn tick(&mut self, _now: Instant) {}
    /// Waits for the engine's own events and handles them; an engine with
    /// none waits forever.
    async fn event(&mut self) {
        std::future::pending::<()>().await
    }
    /// The second's sample.
    async fn sample(&mut self, now: Instant) -> Sample;
    /// Whether any viewer has read the stream.
    fn reached(&self) -> bool;
    /// Viewers that played the stream to its end.
    fn finished(&self) -> usize {
        0
    }
    /// Asks the viewers for copies of their figures (for the next second's
    /// checkpoint).
    fn ask_figures(&mut self) {}
    /// The figures of every viewer so far.
    fn figures(&self) -> Vec<ViewerFigures>;
    /// The histograms behind the distributions (native viewers).
    fn recorder(&self) -> Option<Recorder> {
        None
    }
    /// Stops every viewer; their figures.
    async fn stop(&mut self) -> Vec<ViewerFigures>;
    /// The running totals after the stop: bytes, requests, failed requests.
    fn totals(&self) -> (u64, u64, u64);
    /// No viewer read anything.
    fn never_reached(&self) -> bool;
}

/// An engine as the conductor asks it.
struct Viewers<'a, E>(&'a E);

impl<E: Engine> super::conductor::Progress for Viewers<'_, E> {
    fn reached(&self) -> bool {
        self.0.reached()
    }
    fn finished(&self) -> usize {
        self.0.finished()
    }
    fn failed(&self) -> u64 {
        self.0.totals().2
    }
}

/// Plays the run `setup` describes with `engine`, whose clock started at
/// `start`, until its duration, a signal or the conductor ends it; `quiet`:
/// no status (`--check` prints requests instead).
pub async fn run<E: Engine>(
    setup: &mut Setup,
    control: &mut Control,
    engine: &mut E,
    start: Instant,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    let c = &setup.config;
    let search = setup.search.as_ref().map(|s| &s.0);
    let (spans, aim, windows) =
        super::conductor::who_plays_when(c, setup.seed, setup.shard, search);
    let mut capacity = search.map(|s| Capacity {
        start: s.start,
        step: s.step,
        max: s.max,
        step_sec: s.step_time.as_secs_f64(),
        settle_sec: s.settle.as_secs_f64(),
        ..Default::default()
    });
    // each window's opening: its Unix second and the figures then
    let mut opened: Vec<(u64, Reading)> = Vec::new();
    let mut conductor = Conductor::new(Plan {
        spans,
        aim,
        windows,
        gates: crate::results::gate::gates(&c.slo).unwrap_or_default(),
        duration: setup.duration,
        reach_within: (!setup.reachable_at_start)
            .then(|| Duration::from_secs(u64::from(c.timeout))),
        checkpoints: setup.checkpoint.is_some(),
    });
    let mut remote = match &setup.remote_write {
        Some((url, every)) => {
            let mut labels = vec![
                ("job".to_owned(), "hls-swarm".to_owned()),
                // as a scrape would name it: two swarms on a host differ
                (
                    "instance".to_owned(),
                    format!("{}:{}", instance(), control.metrics_addr.port()),
                ),
            ];
            if setup.shard.is_part() {
                labels.push((
                    "shard".to_owned(),
                    format!("{}/{}", setup.shard.index, setup.shard.count),
                ));
            }
            let rw = super::remote_write::RemoteWrite::new(
                url.clone(),
                control.metrics.registry(),
                labels,
                *every,
            )
            .map_err(|e| anyhow::anyhow!("--remote-write {url}: {e}"))?;
            Some(rw)
        }
        None => None,
    };
    let mut display = if quiet {
        Display::Lines { tty: false }
    } else {
        Display::choose(setup.tty, setup.plain)
    };
    let metrics = control.metrics.clone();
    let end = setup.duration.map(|d| start + d);
    // look 10 times a second; act once per wall-clock second
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // whether a live gate stopped it
    let mut aborted = false;
    let stop_reason = 'run: loop {
        let now = Instant::now();
        let elapsed = now - start;
        for (i, _) in conductor.starts(elapsed + E::LOOKAHEAD) {
            engine.start(i, conductor.spans(i), now);
        }
        engine.tick(now);
        if let Some(rw) = remote.as_mut() {
            rw.tick(now);
        }
        for edge in conductor.edges(elapsed) {
            let (Some(cap), Some((_, objectives))) = (capacity.as_mut(), &setup.search) else {
                break;
            };
            let reading = Reading::of(&engine.figures(), engine.recorder());
            match edge {
                Edge::Opens(_) => opened.push((super::unix_now(), reading)),
                Edge::Closes(i) => {
                    let (from, start) = &opened[i];
                    let to = super::unix_now();
                    let seconds = conductor
                        .series()
                        .iter()
                        .filter(|s| s.t > *from && s.t <= to)
                        .collect();
                    let w = conductor.window(i);
                    let totals = window::between(start, &reading, &seconds, w.viewers);
                    let step = Step::judged(w.viewers, (from + 1, to), totals, objectives);
                    step_judged(i, &step);
                    let pass = step.pass;
                    cap.steps.push(step);
                    if !pass {
                        break 'run stop::STEP_FAILED.to_owned();
                    }
                    if conductor.last_window(i) {
                        break 'run stop::LAST_STEP_HELD.to_owned();
                    }
                }
            }
        }
        if let Some(r) = conductor.stop(elapsed, &Viewers(&*engine)) {
            break r.to_owned();
        }
        if let Some(second) = conductor.due(super::unix_now()) {
            let sample = engine.sample(now).await;
            metrics.viewers_active.set(sample.active as i64);
            metrics.viewers_stalled.set(sample.stalled as i64);
            metrics.viewers_target.set(conductor.target(elapsed) as i64);
            let due = conductor.record(second, elapsed, &sample);
            if let Some(why) = due.abort.clone() {
                aborted = true;
                break 'run why;
            }
            if let Some(w) = &setup.origin {
                conductor.origin(w.latest());
            }
            if due.ask_figures {
                engine.ask_figures();
            }
            if due.checkpoint {
                let series = conductor.lend_series();
                let recorder = engine.recorder();
                let mut r = setup.results(
                    elapsed,
                    stop::CHECKPOINT,
                    engine.figures(),
                    recorder.as_ref(),
                    series,
                );
                r.capacity = capacity.clone().map(concluded);
                if let Some(write) = setup.checkpoint.as_mut() {
                    write(&mut r);
                }
                conductor.give_back(std::mem::take(&mut r.series));
            }
            if !quiet {
                display.show(&Frame {
                    url: &setup.url,
                    engine: E::NAME,
                    elapsed,
                    duration: setup.duration,
                    target: due.status.target,
                    active: due.status.active,
                    ramp: due.status.ramp,
                    stage: due.status.stage,
                    restarts: due.status.restarts,
                    stalled: due.status.stalled,
                    rebuffers: due.status.rebuffers,
                    errors: metrics.error_kinds(),
                    received: due.status.received,
                    series: conductor.series(),
                    line: status_line(&due.status),
                });
            }
        }
        // the engine's own events between ticks
        loop {
            let wake = async {
                match end {
                    Some(e) => tokio::time::sleep_until(e.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => break,
                _ = wake => break,
                r = control.signalled() => break 'run r.to_owned(),
                _ = engine.event() => {}
            }
        }
    };
    display.finish();
    crate::log::stopping(&stop_reason);
    let ran_for = start.elapsed();
    let figures = engine.stop().await;
    if let (Some(rw), Some((url, _))) = (remote.as_mut(), &setup.remote_write) {
        rw.finish().await;
        let o = &rw.outcomes;
        let failed = o.failed.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "remote write: {} pushes to {url}{}",
            o.pushed.load(std::sync::atomic::Ordering::Relaxed),
            if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            }
        );
    }
    control.finish();
    // what came in after the last second's sample
    let series = conductor.close(super::unix_now(), ran_for, engine.totals());
    let recorder = engine.recorder();
    let mut results = setup.results(ran_for, &stop_reason, figures, recorder.as_ref(), series);
    results.capacity = capacity.map(concluded);
    Ok(Outcome {
        results,
        never_reached: engine.never_reached(),
        aborted: aborted.then_some(stop_reason),
    })
}

/// A capacity search with its answer.
fn concluded(mut c: Capacity) -> Capacity {
    c.conclude();
    c
}

/// Says how step `i` went: held, or failed and on what.
fn step_judged(i: usize, s: &Step) {
    let failed: Vec<String> = s
        .verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| v.line())
        .collect();
    let message = if s.pass {
        format!("capacity step {}: {} viewers held", i + 1, s.viewers)
    } else {
        format!(
            "capacity step {}: {} viewers failed: {}",
            i + 1,
            s.viewers,
            failed.join(", ")
        )
    };
    crate::log::emit(
        crate::log::Level::Info,
        "capacity-step",
        &message,
        serde_json::json!({ "step": i + 1, "viewers": s.viewers, "pass": s.pass, "failed": failed }),
    );
}

/// The status line of a second (what is printed when there is no live view).
pub fn status_line(s: &Status) -> String {
    let mut line = format!(
        "[{:>4.0}s] viewers {}/{} ({}) | restarts {} | {} | {:.1} seg/s | errors {} | stalled {}",
        s.elapsed.as_secs_f64(),
        s.active,
        s.target,
        progress(s),
        s.restarts,
        crate::table::rate(s.byte_rate),
        s.segment_rate,
        s.failed,
        s.stalled,
    );
    if let Some(r) = s.rebuffers {
        line.push_str(&format!(" | rebuffers {r}"));
    }
    line
}

/// How far the run is along its ramp, or its load shape.
pub fn progress(s: &Status) -> String {
    match s.stage {
        Some((i, n)) => format!("stage {} of {n}", i + 1),
        None => format!("ramp {:.0} %", 100.0 * s.ramp),
    }
}

/// This machine's name, for the `instance` label of pushed metrics.
fn instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hls-swarm".to_owned())
}
