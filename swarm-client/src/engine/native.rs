//! The native engine: each viewer an async task playing the stream as
//! PLAYER.md defines (`crate::native`). Viewers start on the ramp and run
//! until the duration ends or SIGINT/SIGTERM; then every one stops and hands
//! in its figures.
//!
//! Threads: one single-threaded runtime per core, each running its share of
//! the viewers (viewer i on runtime i mod cores), and one for the control loop
//! (ramp, status, metrics, signals). A viewer and its connection never move
//! between threads, so waking one costs no cross-thread handoff; a
//! work-stealing runtime spent most of its time in those at 200 viewers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use url::Url;

use super::{ramp_schedule, Outcome};
use crate::config::Config;
use crate::native::http::ClientConfig;
use crate::native::player::PlayerConfig;
use crate::native::viewer::{self, Shared, Slot, ViewerSpec};
use crate::results::recorder::Recorder;
use crate::results::{self, Results, ViewerFigures};
use crate::viewer::user_agent;

/// How a native run is set up.
pub struct Swarm {
    pub profile: String,
    pub config: Config,
    pub url: Url,
    pub client: ClientConfig,
    pub duration: Option<Duration>,
    pub seed: u64,
    /// The part of the run this process plays.
    pub shard: super::Shard,
    /// A wall-clock time to wait for before the ramp (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
    pub metrics_addr: super::metrics::MetricsAt,
    /// Status once a second: a rewritten line on a terminal, plain lines otherwise.
    pub tty: bool,
    /// Whether the preflight reached the URL; if not, the run ends (exit 3)
    /// when no viewer has reached it within the timeout either.
    pub reachable_at_start: bool,
    /// Print every request as it happens (and no status line).
    pub check: bool,
    /// Status lines even on a terminal (no live view).
    pub plain: bool,
    /// The origin's figures, read beside the run.
    pub origin: Option<crate::origin::Watcher>,
    /// Called with the results so far every few seconds.
    pub checkpoint: Option<super::Checkpoint>,
}

impl Swarm {
    /// Runs until the duration ends or SIGINT/SIGTERM; then stops every viewer.
    pub fn run(self) -> Result<Outcome> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (end_tx, end_rx) = watch::channel(false);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let mut end = end_rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("viewers-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = end.wait_for(|e| *e).await;
                    });
                })
                .context("cannot start a viewer thread")?;
            let handle = handle_rx
                .recv()
                .context("a viewer thread died")?
                .context("cannot start a viewer runtime")?;
            workers.push((handle, thread));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let handles: Vec<tokio::runtime::Handle> = workers.iter().map(|w| w.0.clone()).collect();
        let outcome = rt.block_on(self.run_async(&handles));
        let _ = end_tx.send(true);
        for (_, t) in workers {
            let _ = t.join();
        }
        outcome
    }

    async fn run_async(mut self, workers: &[tokio::runtime::Handle]) -> Result<Outcome> {
        let c = &self.config;
        let n = c.clients as usize;
        let mut control = super::Control::start(self.metrics_addr, c.clients).await?;
        let metrics = control.metrics.clone();
        metrics.preset(c.networks.keys().map(String::as_str));
        if let Some(reason) = control.wait_until(self.start_at).await {
            return Err(anyhow::anyhow!("{reason} while waiting for --start-at"));
        }

        let start = Instant::now();
        let shared = Arc::new(Shared {
            recorder: Mutex::new(Recorder::default()),
            metrics: metrics.clone(),
            client: Arc::new(self.client.clone()),
            slots: (0..n).map(|_| Slot::new()).collect(),
            epoch: start,
            check: self.check,
            failures: Default::default(),
            checkpoint: Default::default(),
            told_variants: Default::default(),
            finished: Default::default(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let player = PlayerConfig {
            url: self.url.clone(),
            variant: c.variant,
            seg_max_retry: c.seg_max_retry,
            timeout: Duration::from_secs(u64::from(c.timeout)),
        };
        let seeds = super::viewer_seeds(self.seed, self.shard);
        let classes: Vec<(Arc<str>, crate::native::http::Link)> = c
            .networks
            .iter()
            .map(|(name, n)| {
                let link = crate::native::http::Link {
                    bytes_per_sec: n.rate.as_ref().map(|r| r.bits_per_sec() / 8),
                    rtt: n.rtt.as_ref().map(|r| r.duration()).unwrap_or_default(),
                    drop: n.drop,
                };
                (Arc::from(name.as_str()), link)
            })
            .collect();
        let shares: Vec<f64> = c.networks.values().map(|n| n.share).collect();
        let schedule = ramp_schedule(c, self.seed, self.shard);
        let mut series = super::Series::new(&schedule, c.clients);
        let mut starts = schedule.clone();
        starts.sort();
        let first_start = starts.first().copied().unwrap_or_default();
        // --check prints requests, not a status
        let mut display = if self.check {
            super::display::Display::Lines { tty: false }
        } else {
            super::display::Display::choose(self.tty, self.plain)
        };
        let handles: Vec<_> = schedule
            .into_iter()
            .enumerate()
            .map(|(i, after)| {
                let id = self.shard.first_viewer + i as u32;
                let spec = ViewerSpec {
                    id,
                    slot: i,
                    start_after: after,
                    player: player.clone(),
                    user_agent: user_agent(c, id),
                    seed: seeds[i],
                    network: super::network_index(self.seed, id, &shares)
                        .map(|k| classes[k].clone()),
                };
                workers[i % workers.len()].spawn(viewer::run(
                    spec,
                    Arc::clone(&shared),
                    stop_rx.clone(),
                ))
            })
            .collect();

        // the class of this process's viewer i, for figures it never handed in
        let first = self.shard.first_viewer;
        let network_of = |i: usize| {
            super::network_index(self.seed, first + i as u32, &shares)
                .map(|k| classes[k].0.to_string())
        };
        let end = self.duration.map(|d| start + d);
        // look 10 times a second; act once per wall-clock second
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        let mut stop_reason = "duration reached";
        let (mut last_bytes, mut last_segments) = (0u64, 0u64);
        let mut last = start;
        let mut seconds = 0u64;
        loop {
            let wake = async {
                match end {
                    Some(e) => tokio::time::sleep_until(e.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake => break,
                r = control.signalled() => { stop_reason = r; break; }
            }
            if shared.finished.load(Ordering::Relaxed) == n as u64 && n > 0 {
                // a VOD played to its end by every viewer
                stop_reason = "every viewer finished";
                break;
            }
            let Some(second) = series.due(super::unix_now()) else {
                continue;
            };
            let now = Instant::now();
            let ever = metrics.playlists.get() > 0;
            if !ever
                && !self.reachable_at_start
                && now - start >= first_start + Duration::from_secs(u64::from(c.timeout))
            {
                stop_reason = "stream never reachable";
                break;
            }
            let now_ns = (now - start).as_nanos() as u64;
            let active = shared
                .slots
                .iter()
                .filter(|s| s.active.load(Ordering::Relaxed))
                .count();
            let stalled = shared.slots.iter().filter(|s| s.stalled(now_ns)).count();
            metrics.viewers_active.set(active as i64);
            metrics.viewers_stalled.set(stalled as i64);
            let ttfb = shared
                .recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .kinds
                .get(&crate::results::Kind::Segment)
                .map(|k| k.ttfb.clone());
            series.sample(
                second,
                now - start,
                (active as u64, stalled as u64),
                (
                    metrics.bytes.get(),
                    metrics.segments.get() + metrics.playlists.get(),
                    shared.failures.load(Ordering::Relaxed),
                ),
                ttfb.as_ref(),
            );
            if let Some(w) = &self.origin {
                series.origin(w.latest());
            }
            seconds += 1;
            if self.checkpoint.is_some() {
                let (ask, write) = super::checkpoint_due(seconds);
                if ask {
                    shared.checkpoint.fetch_add(1, Ordering::Relaxed);
                }
                if write {
                    let mut summary = self.results(
                        &shared,
                        now - start,
                        super::CHECKPOINT_STOP,
                        (0..n)
                            .map(|i| {
                                shared.slots[i].figures().unwrap_or_else(|| ViewerFigures {
                                    id: i as u32,
                                    network: network_of(i),
                                    ..Default::default()
                                })
                            })
                            .collect(),
                        std::mem::take(&mut series.seconds),
                    );
                    if let Some(write) = self.checkpoint.as_mut() {
                        write(&mut summary);
                    }
                    series.seconds = std::mem::take(&mut summary.series);
                }
            }
            if self.check {
                continue;
            }
            let secs = (now - last).as_secs_f64().max(1e-9);
            let bytes = metrics.bytes.get();
            let segments = metrics.segments.get();
            let errors = shared.failures.load(Ordering::Relaxed);
            let elapsed = now - start;
            let started = starts.partition_point(|s| *s <= elapsed) as f64 / n.max(1) as f64;
            let line = format!(
                "[{:>4.0}s] viewers {active}/{n} (ramp {:.0} %) | restarts {} | {} | {:.1} seg/s | errors {errors} | stalled {stalled} | rebuffers {}",
                elapsed.as_secs_f64(),
                100.0 * started,
                metrics.restarts.get(),
                crate::table::rate((bytes - last_bytes) as f64 / secs),
                (segments - last_segments) as f64 / secs,
                metrics.rebuffers.get(),
            );
            display.show(&super::display::Frame {
                url: self.url.as_str(),
                engine: "native",
                elapsed,
                duration: self.duration,
                target: n as u64,
                active: active as u64,
                ramp: started,
                restarts: metrics.restarts.get(),
                stalled: stalled as u64,
                rebuffers: Some(metrics.rebuffers.get()),
                errors: metrics.error_kinds(),
                received: bytes,
                series: &series.seconds,
                line,
            });
            last_bytes = bytes;
            last_segments = segments;
            last = now;
        }
        display.finish();
        crate::log::stopping(stop_reason);
        let ran_for = start.elapsed();
        let _ = stop_tx.send(true);
        let mut figures: Vec<ViewerFigures> = Vec::with_capacity(n);
        for (i, h) in handles.into_iter().enumerate() {
            match tokio::time::timeout(Duration::from_secs(5), h).await {
                Ok(Ok(f)) => figures.push(f),
                _ => figures.push(ViewerFigures {
                    id: i as u32,
                    network: network_of(i),
                    ..Default::default()
                }),
            }
        }
        control.finish();
        // what came in after the last second's sample
        series.close(
            super::unix_now(),
            ran_for,
            (
                metrics.bytes.get(),
                metrics.segments.get() + metrics.playlists.get(),
                shared.failures.load(Ordering::Relaxed),
            ),
        );
        let never_reached = metrics.bytes.get() == 0;
        let summary = self.results(&shared, ran_for, stop_reason, figures, series.seconds);
        Ok(Outcome {
            results: summary,
            never_reached,
        })
    }

    /// The results of the viewers' `figures` after `ran_for`.
    fn results(
        &self,
        shared: &Shared,
        ran_for: Duration,
        stopped_by: &str,
        figures: Vec<ViewerFigures>,
        series: results::Seconds,
    ) -> Results {
        let recorder = shared
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Results::new(
            super::run_of(
                &self.profile,
                self.url.as_str(),
                &self.config,
                self.seed,
                ran_for,
                stopped_by,
            ),
            figures,
            Some(&recorder),
            series,
        )
    }
}
