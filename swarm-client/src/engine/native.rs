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

use super::conductor::Sample;
use super::native_shared::{Shared, Slot, ViewerSpec};
use super::native_viewer as viewer;
use super::run_loop::Setup;
use super::Outcome;
use crate::config::Config;
use crate::ffmpeg_args::user_agent;
use crate::native::http::ClientConfig;
use crate::native::player::PlayerConfig;
use crate::results::{Recorder, ViewerFigures};

/// How a native run is set up.
pub struct Swarm {
    pub setup: Setup,
    pub url: Url,
    pub client: ClientConfig,
    /// Print every request as it happens (and no status line).
    pub check: bool,
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
        let mut control = self.setup.control().await?;
        let c = &self.setup.config;
        let n = self.setup.shard.viewers as usize;
        let start = Instant::now();
        let shared = Arc::new(Shared {
            recorder: Mutex::new(Recorder::default()),
            metrics: control.metrics.clone(),
            client: Arc::new(self.client.clone()),
            slots: (0..n).map(|_| Slot::new()).collect(),
            epoch: start,
            check: self.check,
            failures: Default::default(),
            checkpoint: Default::default(),
            told_variants: Default::default(),
            finished: Default::default(),
            cmcd: c.cmcd,
            content_id: c
                .cmcd_content_id
                .as_ref()
                // the URL's path, cut to the 64 characters CTA-5004 allows
                .map_or_else(
                    || {
                        self.url
                            .path()
                            .chars()
                            .take(crate::native::cmcd::MAX_CONTENT_ID)
                            .collect()
                    },
                    |id| id.0.clone(),
                ),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
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
        let mut engine = Native {
            player: PlayerConfig {
                url: self.url.clone(),
                variant: c.variant,
                seg_max_retry: c.seg_max_retry,
                timeout: Duration::from_secs(u64::from(c.timeout)),
                profile: c.player,
                pipeline: c.player.pipeline(),
            },
            seeds: super::viewer_seeds(self.setup.seed, self.setup.shard),
            classes,
            shares: c.networks.values().map(|n| n.share).collect(),
            seed: self.setup.seed,
            first: self.setup.shard.first_viewer,
            config: c.clone(),
            workers,
            handles: (0..n).map(|_| None).collect(),
            shared,
            stop_tx,
            stop_rx,
        };
        let quiet = self.check;
        super::run_loop::run(&mut self.setup, &mut control, &mut engine, start, quiet).await
    }
}

/// The native viewers of a run, for the run loop.
struct Native<'a> {
    config: Config,
    player: PlayerConfig,
    seeds: Vec<u64>,
    /// Network classes: name and link.
    classes: Vec<(Arc<str>, crate::native::http::Link)>,
    shares: Vec<f64>,
    seed: u64,
    /// This process's first viewer in the whole run.
    first: u32,
    workers: &'a [tokio::runtime::Handle],
    handles: Vec<Option<tokio::task::JoinHandle<ViewerFigures>>>,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

impl Native<'_> {
    /// The class of this process's viewer `i`.
    fn network(&self, i: usize) -> Option<usize> {
        super::network_index(self.seed, self.first + i as u32, &self.shares)
    }

    /// Figures of viewer `i` that never handed any in.
    fn empty(&self, i: usize) -> ViewerFigures {
        ViewerFigures {
            id: i as u32,
            network: self.network(i).map(|k| self.classes[k].0.to_string()),
            ..Default::default()
        }
    }

    fn running_totals(&self) -> (u64, u64, u64) {
        let m = &self.shared.metrics;
        (
            m.bytes.get(),
            m.segments.get() + m.playlists.get(),
            self.shared.failures.load(Ordering::Relaxed),
        )
    }
}

impl super::run_loop::Engine for Native<'_> {
    const NAME: &'static str = "native";
    // a viewer waits for its own start time
    const LOOKAHEAD: Duration = Duration::from_millis(200);

    fn start(&mut self, i: usize, spans: &[super::shape::Span], _now: Instant) {
        let id = self.first + i as u32;
        let spec = ViewerSpec {
            id,
            slot: i,
            plays: super::native_shared::Plays::of(spans),
            player: self.player.clone(),
            user_agent: user_agent(&self.config, id),
            seed: self.seeds[i],
            network: self.network(i).map(|k| self.classes[k].clone()),
            // its own stream of random numbers, apart from the player's
            sid: crate::native::cmcd::session_id(&mut fastrand::Rng::with_seed(
                self.seeds[i] ^ 0x5151_d5e5_c3c3_0001,
            )),
        };
        self.handles[i] = Some(self.workers[i % self.workers.len()].spawn(viewer::run(
            spec,
            Arc::clone(&self.shared),
            self.stop_rx.clone(),
        )));
    }

    async fn sample(&mut self, now: Instant) -> Sample {
        let shared = &self.shared;
        let now_ns = (now - shared.epoch).as_nanos() as u64;
        let active = shared
            .slots
            .iter()
            .filter(|s| s.active.load(Ordering::Relaxed))
            .count();
        let stalled = shared.slots.iter().filter(|s| s.stalled(now_ns)).count();
        let ttfb = shared
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kinds
            .get(&crate::results::Kind::Segment)
            .map(|k| k.ttfb.clone());
        let (bytes, requests, failed) = self.running_totals();
        let m = &shared.metrics;
        Sample {
            active: active as u64,
            stalled: stalled as u64,
            bytes,
            requests,
            segments: m.segments.get(),
            failed,
            restarts: m.restarts.get(),
            rebuffers: Some(m.rebuffers.get()),
            ttfb,
        }
    }

    fn reached(&self) -> bool {
        self.shared.metrics.playlists.get() > 0
    }

    fn finished(&self) -> usize {
        self.shared.finished.load(Ordering::Relaxed) as usize
    }

    fn ask_figures(&mut self) {
        self.shared.checkpoint.fetch_add(1, Ordering::Relaxed);
    }

    fn figures(&self) -> Vec<ViewerFigures> {
        (0..self.handles.len())
            .map(|i| {
                self.shared.slots[i]
                    .figures()
                    .unwrap_or_else(|| self.empty(i))
            })
            .collect()
    }

    fn recorder(&self) -> Option<Recorder> {
        Some(
            self.shared
                .recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    async fn stop(&mut self) -> Vec<ViewerFigures> {
        let _ = self.stop_tx.send(true);
        let mut figures = Vec::with_capacity(self.handles.len());
        for i in 0..self.handles.len() {
            let f = match self.handles[i].take() {
                Some(h) => match tokio::time::timeout(Duration::from_secs(5), h).await {
                    Ok(Ok(f)) => Some(f),
                    _ => None,
                },
                None => None,
            };
            figures.push(f.unwrap_or_else(|| self.empty(i)));
        }
        figures
    }

    fn totals(&self) -> (u64, u64, u64) {
        self.running_totals()
    }

    fn never_reached(&self) -> bool {
        self.shared.metrics.bytes.get() == 0
    }
}
