//! The run loop both engines share, as a state machine that does no IO:
//! the ramp (a value: who plays when, from a ramp or a load shape's
//! spans), the target line, when a run stops, the
//! once-a-second sample into the series, the status of each second and the
//! checkpoints. Time is given to it, so it is tested with simulated time;
//! `engine::run_loop` drives it with the real clock, the signals and an
//! [`super::Engine`].

use std::time::Duration;

use super::search::Window;
use super::shape::{Aim, Span};
use super::Series;
use crate::results::Seconds;

/// Who starts when: viewer `i` of this process at the start of its first
/// span, handed out in the order of their start times (a viewer with no
/// span never starts).
pub struct Ramp {
    /// (start time, viewer), sorted.
    starts: Vec<(Duration, usize)>,
    /// How many are handed out.
    next: usize,
}

impl Ramp {
    /// A ramp of the viewers' spans (`spans[i]`: viewer `i`'s).
    pub fn new(spans: &[Vec<Span>]) -> Ramp {
        let mut starts: Vec<(Duration, usize)> = spans
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.first()?.start, i)))
            .collect();
        starts.sort();
        Ramp { starts, next: 0 }
    }

    /// The viewers whose start comes by `until`, with their start times,
    /// each handed out once.
    pub fn due(&mut self, until: Duration) -> Vec<(usize, Duration)> {
        let end = self.next + self.starts[self.next..].partition_point(|(at, _)| *at <= until);
        let out = self.starts[self.next..end]
            .iter()
            .map(|(at, i)| (*i, *at))
            .collect();
        self.next = end;
        out
    }

    /// The share of the viewers (that ever start) whose first start has
    /// passed at `elapsed`.
    pub fn share(&self, elapsed: Duration) -> f64 {
        let passed = self.starts.partition_point(|(at, _)| *at <= elapsed);
        passed as f64 / self.starts.len().max(1) as f64
    }

    /// The first start.
    pub fn first(&self) -> Duration {
        self.starts.first().map(|s| s.0).unwrap_or_default()
    }

    /// How many viewers ever start.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// Who plays when, the target line and the windows judged, for the
/// viewers of `shard`: their share of every target of the capacity
/// `search`'s steps or of the config's load shape, or `clients` started at
/// `rampRate` (with the seeded jitter) and held.
pub fn who_plays_when(
    c: &crate::config::Config,
    seed: u64,
    shard: crate::results::Shard,
    search: Option<&super::search::Search>,
) -> (Vec<Vec<Span>>, Aim, Vec<Window>) {
    let share = shard.share();
    let windows = search.map_or_else(Vec::new, |s| {
        s.windows()
            .into_iter()
            .map(|w| Window {
                viewers: (f64::from(w.viewers) * share + 1e-9).floor() as u32,
                ..w
            })
            .collect()
    });
    match search.map(|s| s.shape()).or_else(|| c.shape()) {
        Some(whole) => {
            let part = whole.scaled(share);
            let spans = (0..shard.viewers).map(|i| part.spans(i)).collect();
            (spans, Aim::Shape(part), windows)
        }
        None => {
            let schedule = super::ramp_schedule(c, seed, shard);
            (super::shape::held(&schedule), Aim::held(&schedule), windows)
        }
    }
}

/// What an engine's viewers did, sampled once a second: the viewers
/// running and stalled, and running totals since the start.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub active: u64,
    pub stalled: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Segments and playlists loaded.
    pub requests: u64,
    pub segments: u64,
    /// Failed requests of every kind.
    pub failed: u64,
    pub restarts: u64,
    /// Rebuffers (native viewers only).
    pub rebuffers: Option<u64>,
    /// The running histogram of segment TTFB (native viewers only).
    pub ttfb: Option<hdrhistogram::Histogram<u64>>,
}

/// What the conductor asks of the viewers between samples.
pub trait Progress {
    /// Whether any viewer has read the stream.
    fn reached(&self) -> bool;
    /// Viewers that played the stream to its end.
    fn finished(&self) -> usize;
    /// Failed requests so far.
    fn failed(&self) -> u64;
}

/// How a run is conducted.
#[derive(Clone, Debug)]
pub struct Plan {
    /// When each viewer of this process plays: from the start of each of
    /// its spans to the stop (they leave then; none: to the end of the run).
    pub spans: Vec<Vec<Span>>,
    /// The viewers it aims at, moment by moment.
    pub aim: Aim,
    /// Stop after this long; `None`: until a signal.
    pub duration: Option<Duration>,
    /// When the stream was not reachable before the run: how long after
    /// the first start a run that reached nothing ends.
    pub reach_within: Option<Duration>,
    /// Results written every few seconds while it runs.
    pub checkpoints: bool,
    /// The windows a capacity search judges (none for other runs).
    pub windows: Vec<Window>,
    /// Objectives that stop the run when they fail on its last seconds.
    pub gates: Vec<crate::results::gate::Live>,
}

/// A capacity window's edge, crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Window `i` opens: read the figures it starts from.
    Opens(usize),
    /// Window `i` closes: judge what came in since it opened.
    Closes(usize),
}

/// Why a run stops, when it does.
pub mod stop {
    pub const DURATION: &str = "duration reached";
    pub const FINISHED: &str = "every viewer finished";
    pub const NEVER_REACHED: &str = "stream never reachable";
    /// A capacity search's step failed its objectives: the search is over.
    pub const STEP_FAILED: &str = "a capacity step failed";
    /// Every step of a capacity search, up to its max, held.
    pub const LAST_STEP_HELD: &str = "the last capacity step held";
    /// What `stoppedBy` says in a checkpoint: the run was still going.
    pub const CHECKPOINT: &str = "checkpoint (the run was still going)";
}

/// The status of one second, for the display.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub elapsed: Duration,
    pub active: u64,
    pub stalled: u64,
    /// The viewers aimed at.
    pub target: u64,
    /// Share of the viewers whose first start has passed.
    pub ramp: f64,
    /// The load shape's stage under way (from 0) and how many it has.
    pub stage: Option<(usize, usize)>,
    pub restarts: u64,
    pub rebuffers: Option<u64>,
    pub failed: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Bytes per second and segments per second since the last status.
    pub byte_rate: f64,
    pub segment_rate: f64,
}

/// What else a second's sample calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// Ask viewers for copies of their figures (a checkpoint is next second).
    pub ask_figures: bool,
    /// Write a checkpoint now.
    pub checkpoint: bool,
    pub status: Status,
    /// A live gate failed: why the run stops.
    pub abort: Option<String>,
}

/// Seconds between two checkpoints.
pub const CHECKPOINT_EVERY_SECS: u64 = 5;

/// The state of a run.
pub struct Conductor {
    plan: Plan,
    ramp: Ramp,
    /// The windows' edges in time order, and how many are crossed.
    edges: Vec<(Duration, Edge)>,
    crossed: usize,
    series: Series,
    /// Samples taken.
    seconds: u64,
    /// The last status's time, bytes and segments.
    last: (Duration, u64, u64),
}

impl Conductor {
    pub fn new(plan: Plan) -> Conductor {
        let mut edges: Vec<(Duration, Edge)> = plan
            .windows
            .iter()
            .enumerate()
            .flat_map(|(i, w)| [(w.from, Edge::Opens(i)), (w.to, Edge::Closes(i))])
            .collect();
        edges.sort_by_key(|e| e.0);
        Conductor {
            edges,
            crossed: 0,
            ramp: Ramp::new(&plan.spans),
            series: Series::new(plan.aim.clone()),
            seconds: 0,
            last: (Duration::ZERO, 0, 0),
            plan,
        }
    }

    /// The viewers to start now (those whose first start comes by
    /// `until`), with their first start.
    pub fn starts(&mut self, until: Duration) -> Vec<(usize, Duration)> {
        self.ramp.due(until)
    }

    /// When viewer `i` plays.
    pub fn spans(&self, i: usize) -> &[Span] {
        &self.plan.spans[i]
    }

    /// The capacity windows' edges crossed by `elapsed`, each once, in
    /// order.
    pub fn edges(&mut self, elapsed: Duration) -> Vec<Edge> {
        let end = self.crossed + self.edges[self.crossed..].partition_point(|e| e.0 <= elapsed);
        let out = self.edges[self.crossed..end].iter().map(|e| e.1).collect();
        self.crossed = end;
        out
    }

    /// Window `i` of the capacity search.
    pub fn window(&self, i: usize) -> Window {
        self.plan.windows[i]
    }

    /// Whether it is the last window.
    pub fn last_window(&self, i: usize) -> bool {
        i + 1 == self.plan.windows.len()
    }

    /// Whether an edge comes within the next 1.5 s: the viewers are asked
    /// for their figures so that the edge reads fresh ones.
    fn edge_soon(&self, elapsed: Duration) -> bool {
        self.edges
            .get(self.crossed)
            .is_some_and(|e| e.0 <= elapsed + Duration::from_millis(1500))
    }

    /// The viewers aimed at `elapsed` into the run.
    pub fn target(&self, elapsed: Duration) -> u64 {
        self.plan.aim.target(elapsed)
    }

    /// Whether the run stops at `elapsed`, and why: its duration is up,
    /// every viewer finished (a VOD played to its end), or nothing was
    /// reached in time — once a request has failed (so the results say
    /// how), or twice that time.
    pub fn stop(&self, elapsed: Duration, engine: &impl Progress) -> Option<&'static str> {
        if self.plan.duration.is_some_and(|d| elapsed >= d) {
            return Some(stop::DURATION);
        }
        let finished = engine.finished();
        if finished == self.ramp.len() && !self.ramp.is_empty() {
            return Some(stop::FINISHED);
        }
        if let Some(within) = self.plan.reach_within {
            let due = self.ramp.first() + within;
            if elapsed >= due
                && !engine.reached()
                && (engine.failed() > 0 || elapsed >= due + within)
            {
                return Some(stop::NEVER_REACHED);
            }
        }
        None
    }

    /// The wall-clock second (Unix time) to sample now, if one is due.
    pub fn due(&self, unix: u64) -> Option<u64> {
        self.series.due(unix)
    }

    /// Records the sample of wall-clock second `second`, `elapsed` into the
    /// run; says what else this second calls for.
    pub fn record(&mut self, second: u64, elapsed: Duration, s: &Sample) -> Due {
        self.series.sample(
            second,
            elapsed,
            (s.active, s.stalled),
            (s.bytes, s.requests, s.failed),
            s.ttfb.as_ref(),
        );
        self.seconds += 1;
        let phase = self.seconds % CHECKPOINT_EVERY_SECS;
        let (t0, b0, s0) = self.last;
        let secs = (elapsed.saturating_sub(t0)).as_secs_f64().max(1e-9);
        self.last = (elapsed, s.bytes, s.segments);
        Due {
            ask_figures: (self.plan.checkpoints && phase == CHECKPOINT_EVERY_SECS - 1)
                || self.edge_soon(elapsed),
            checkpoint: self.plan.checkpoints && phase == 0,
            abort: self.gate_failed(elapsed),
            status: Status {
                elapsed,
                active: s.active,
                stalled: s.stalled,
                target: self.plan.aim.target(elapsed),
                ramp: self.ramp.share(elapsed),
                stage: match &self.plan.aim {
                    Aim::Shape(shape) => shape.stage_at(elapsed),
                    Aim::Held { .. } => None,
                },
                restarts: s.restarts,
                rebuffers: s.rebuffers,
                failed: s.failed,
                received: s.bytes,
                byte_rate: s.bytes.saturating_sub(b0) as f64 / secs,
                segment_rate: s.segments.saturating_sub(s0) as f64 / secs,
            },
        }
    }

    /// The first live gate that fails on the run's last seconds at
    /// `elapsed` (each judged from its delay on), as why the run stops.
    fn gate_failed(&self, elapsed: Duration) -> Option<String> {
        let series = &self.series.seconds;
        for g in self.plan.gates.iter().filter(|g| elapsed >= g.delay) {
            let n = g.window.as_secs().max(1) as usize;
            let last: Vec<crate::results::Second> =
                series.iter_from(series.len().saturating_sub(n)).collect();
            if let Some(v) = g.judge(&last).filter(|v| !v.pass) {
                return Some(g.reason(&v, elapsed));
            }
        }
        None
    }

    /// The origin's figures of the second just sampled.
    pub fn origin(&mut self, o: crate::origin::OriginSample) {
        self.series.origin(o);
    }

    /// The series so far.
    pub fn series(&self) -> &Seconds {
        &self.series.seconds
    }

    /// Lends the series out (for a checkpoint's results) until
    /// [`Conductor::give_back`].
    pub fn lend_series(&mut self) -> Seconds {
        std::mem::take(&mut self.series.seconds)
    }

    pub fn give_back(&mut self, seconds: Seconds) {
        self.series.seconds = seconds;
    }

    /// The series at the end: what came in after the last sample (the
    /// running totals `(bytes, requests, failed)` as of the stop) added.
    pub fn close(mut self, unix: u64, elapsed: Duration, totals: (u64, u64, u64)) -> Seconds {
        self.series.close(unix, elapsed, totals);
        self.series.seconds
    }
}

#[cfg(test)]
mod tests {
    use super::super::shape::held;
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn plan(schedule: &[u64]) -> Plan {
        let schedule: Vec<Duration> = schedule.iter().map(|m| MS(*m)).collect();
        Plan {
            spans: super::super::shape::held(&schedule),
            aim: Aim::held(&schedule),
            duration: Some(Duration::from_secs(10)),
            reach_within: None,
            checkpoints: true,
            windows: vec![],
            gates: vec![],
        }
    }

    #[test]
    fn the_ramp_hands_out_each_viewer_once_in_start_order() {
        // viewer 1's jitter puts it after viewer 2
        let mut r = Ramp::new(&held(&[MS(0), MS(700), MS(500), MS(1500)]));
        assert_eq!(r.due(MS(0)), [(0, MS(0))]);
        assert_eq!(r.due(MS(400)), []);
        assert_eq!(r.due(MS(700)), [(2, MS(500)), (1, MS(700))]);
        assert_eq!(r.share(MS(600)), 0.5);
        assert_eq!(r.due(MS(5000)), [(3, MS(1500))]);
        assert_eq!(r.due(MS(9000)), []);
        assert_eq!(r.first(), MS(0));
        assert_eq!(Ramp::new(&[]).share(MS(1)), 0.0);
        // a viewer with no span is never handed out
        let mut r = Ramp::new(&[vec![], held(&[MS(300)]).remove(0)]);
        assert_eq!(r.due(MS(9000)), [(1, MS(300))]);
        assert_eq!(r.len(), 1);
    }

    /// Viewers as the conductor sees them: (reached, finished, failed).
    struct Seen(bool, usize, u64);

    impl Progress for Seen {
        fn reached(&self) -> bool {
            self.0
        }
        fn finished(&self) -> usize {
            self.1
        }
        fn failed(&self) -> u64 {
            self.2
        }
    }

    #[test]
    fn a_run_stops_at_its_duration_when_all_finished_or_never_reached() {
        let c = Conductor::new(plan(&[0, 100]));
        assert_eq!(c.stop(MS(9999), &Seen(true, 1, 0)), None);
        assert_eq!(c.stop(MS(10_000), &Seen(true, 0, 0)), Some(stop::DURATION));
        assert_eq!(c.stop(MS(10), &Seen(true, 2, 0)), Some(stop::FINISHED));
        let mut p = plan(&[300, 400]);
        p.duration = None;
        p.reach_within = Some(Duration::from_secs(2));
        let c = Conductor::new(p);
        // counted from the first start, not the run's, and once a request
        // failed: the results say why
        assert_eq!(c.stop(MS(2299), &Seen(false, 0, 1)), None);
        assert_eq!(
            c.stop(MS(2300), &Seen(false, 0, 1)),
            Some(stop::NEVER_REACHED)
        );
        assert_eq!(c.stop(MS(2300), &Seen(false, 0, 0)), None, "no failure yet");
        assert_eq!(
            c.stop(MS(4300), &Seen(false, 0, 0)),
            Some(stop::NEVER_REACHED)
        );
        assert_eq!(
            c.stop(MS(60_000), &Seen(true, 0, 5)),
            None,
            "it reached the stream"
        );
        let mut p = plan(&[]);
        p.duration = None;
        assert_eq!(Conductor::new(p).stop(MS(60_000), &Seen(false, 0, 0)), None);
    }

    #[test]
    fn each_second_is_sampled_once_with_its_status_and_checkpoints_every_five() {
        let mut c = Conductor::new(plan(&[0, 1500]));
        let mut dues = Vec::new();
        for s in 1..=10u64 {
            let unix = 1000 + s;
            assert_eq!(c.due(unix), Some(unix));
            let d = c.record(
                unix,
                Duration::from_secs(s),
                &Sample {
                    active: 1 + u64::from(s > 1),
                    bytes: 1000 * s,
                    requests: 3 * s,
                    segments: 2 * s,
                    ..Default::default()
                },
            );
            assert_eq!(c.due(unix), None, "one sample a second");
            dues.push(d);
        }
        let asks: Vec<u64> = (1..=10)
            .filter(|s| dues[*s as usize - 1].ask_figures)
            .collect();
        let writes: Vec<u64> = (1..=10)
            .filter(|s| dues[*s as usize - 1].checkpoint)
            .collect();
        assert_eq!(asks, [4, 9], "viewers are asked a second before");
        assert_eq!(writes, [5, 10]);
        let s = &dues[2].status;
        assert_eq!((s.byte_rate, s.segment_rate, s.ramp), (1000.0, 2.0, 1.0));
        assert_eq!(dues[0].status.ramp, 0.5);
        assert_eq!(c.series().len(), 10);
        let closed = c.close(1011, Duration::from_millis(10_300), (10_500, 31, 0));
        // the last partial second is a second of its own
        assert_eq!(closed.len(), 11);
        assert_eq!(closed.last().unwrap().bytes, 500);
    }

    /// A profile's config.
    fn profile(name: &str) -> crate::config::Config {
        common::component::load::<crate::SwarmClient>(&common::Request {
            profile: name.into(),
            ..Default::default()
        })
        .expect("the profile loads")
        .config
    }

    /// Plays `plan` with simulated time, ticking every 100 ms as the run
    /// loop does, viewers starting when handed out and each playing its
    /// spans; the series, and the departures (stops passed).
    fn simulate(
        (spans, aim, _): (Vec<Vec<Span>>, Aim, Vec<Window>),
        secs: u64,
    ) -> (Seconds, usize) {
        let mut c = Conductor::new(Plan {
            spans,
            aim,
            duration: None,
            reach_within: None,
            checkpoints: false,
            windows: vec![],
            gates: vec![],
        });
        let mut started = Vec::new();
        for tick in 0..=secs * 10 {
            let t = MS(tick * 100);
            started.extend(c.starts(t).into_iter().map(|(i, _)| i));
            if tick % 10 == 0 && tick > 0 {
                let active = started
                    .iter()
                    .filter(|&&i| {
                        c.spans(i)
                            .iter()
                            .any(|s| s.start <= t && s.stop.is_none_or(|e| t < e))
                    })
                    .count() as u64;
                c.record(
                    1000 + tick / 10,
                    t,
                    &Sample {
                        active,
                        ..Default::default()
                    },
                );
            }
        }
        let end = MS(secs * 1000);
        let departures = (0..c.plan.spans.len())
            .map(|i| {
                c.spans(i)
                    .iter()
                    .filter(|s| s.stop.is_some_and(|e| e <= end))
                    .count()
            })
            .sum();
        (c.series().clone(), departures)
    }

    /// The target and active viewers of the series at second `s` (from 1).
    fn at(series: &Seconds, s: u64) -> (u64, u64) {
        let x = series.iter().find(|x| x.t == 1000 + s).expect("sampled");
        (x.target, x.active)
    }

    #[test]
    fn the_step_profile_climbs_in_steps_and_comes_down() {
        let c = profile("step");
        assert_eq!(c.viewers(), 100);
        let shard = crate::results::Shard::whole(c.viewers());
        let (series, departures) = simulate(who_plays_when(&c, 1, shard, None), 330);
        // the active viewers are the target line, second by second
        for s in series.iter() {
            assert_eq!(s.active, s.target, "at {}", s.t - 1000);
        }
        assert_eq!(at(&series, 15), (12, 12), "half way up the first ramp");
        assert_eq!(at(&series, 60), (25, 25));
        assert_eq!(at(&series, 95), (37, 37), "half way up the second step");
        assert_eq!(at(&series, 200), (75, 75));
        assert_eq!(at(&series, 299), (100, 100));
        assert_eq!(at(&series, 315), (49, 49), "half way down: 50 is leaving");
        assert_eq!(at(&series, 330), (0, 0));
        // every viewer left once, on the ramp down
        assert_eq!(departures, 100);
        // held seconds: the plateaus, a second after they are reached
        let settled: Vec<u64> = series
            .iter()
            .filter(|s| s.after_ramp)
            .map(|s| s.t - 1000)
            .collect();
        assert!(settled.contains(&31) && !settled.contains(&30));
        assert!(!settled.contains(&95) && settled.contains(&250));
        assert_eq!(crate::results::min_active_share(&series), Some(1.0));
    }

    #[test]
    fn the_spike_profile_starts_the_viewers_above_the_base_and_stops_them_again() {
        let c = profile("spike");
        assert_eq!(c.viewers(), 500);
        let (spans, aim, _) = who_plays_when(&c, 1, crate::results::Shard::whole(500), None);
        // a base viewer plays from the first ramp to the last; a spike
        // viewer only while the spike is above it
        assert_eq!(spans[0].len(), 1);
        assert_eq!(spans[0][0].stop, Some(MS(259_400)));
        assert_eq!(
            (spans[499][0].start, spans[499][0].stop),
            (MS(100_000), Some(MS(160_000)))
        );
        let (series, departures) = simulate((spans, aim, vec![]), 260);
        for s in series.iter() {
            assert_eq!(s.active, s.target, "at {}", s.t - 1000);
        }
        assert_eq!(at(&series, 90), (50, 50));
        assert_eq!(at(&series, 95), (275, 275), "half way up the spike");
        assert_eq!(at(&series, 130), (500, 500));
        assert_eq!(
            at(&series, 165),
            (274, 274),
            "half way down: 275 is leaving"
        );
        assert_eq!(at(&series, 200), (50, 50));
        // the 450 above the base left after the spike, the 50 on the ramp
        // down
        assert_eq!(departures, 450 + 50);
    }

    #[test]
    fn the_soak_profile_holds_its_viewers_for_an_hour() {
        let c = profile("soak");
        let (spans, aim, _) =
            who_plays_when(&c, 1, crate::results::Shard::whole(c.viewers()), None);
        assert_eq!(c.viewers(), 200);
        assert_eq!(aim.target(Duration::from_secs(1800)), 200);
        assert!(spans.iter().all(|s| s.len() == 1
            && s[0].start <= MS(120_000)
            && s[0].stop >= Some(MS(3_720_000))));
    }

    #[test]
    fn shards_of_a_shape_each_play_their_share_of_every_target() {
        let mut c = profile("spike");
        c.stages.truncate(3); // 0 → 50, hold, → 500
        let total = c.viewers();
        let mut sum = vec![0u64; 101];
        for i in 0..3 {
            let shard = crate::results::Shard::of(i, 3, total).unwrap();
            let (spans, aim, _) = who_plays_when(&c, 1, shard, None);
            assert_eq!(spans.len(), shard.viewers as usize);
            assert!(
                spans.iter().all(|s| !s.is_empty()),
                "each plays at the peak"
            );
            for (t, n) in sum.iter_mut().enumerate() {
                *n += aim.target(Duration::from_secs(t as u64));
            }
        }
        let whole = c.shape().unwrap();
        for (t, n) in sum.iter().enumerate() {
            let w = u64::from(whole.playing(Duration::from_secs(t as u64)));
            // each rounds its share down: at most one short each
            assert!(*n <= w && w - n <= 2, "at {t}: {n} of {w}");
        }
        assert_eq!(sum[100], 500);
    }

    #[test]
    fn capacity_windows_open_and_close_once_each_with_fresh_figures_asked_before() {
        let search = super::super::search::Search {
            start: 2,
            step: 2,
            max: 6,
            step_time: Duration::from_secs(5),
            settle: Duration::from_secs(2),
            ramp_rate: 10,
        };
        let mut p = plan(&[]);
        p.windows = search.windows();
        p.checkpoints = false;
        let mut c = Conductor::new(p);
        let mut seen = Vec::new();
        let mut asked = Vec::new();
        for tick in 0..=160u64 {
            let t = MS(tick * 100);
            seen.extend(c.edges(t).into_iter().map(|e| (tick, e)));
            if tick % 10 == 0
                && tick > 0
                && c.record(1000 + tick / 10, t, &Sample::default())
                    .ask_figures
            {
                asked.push(tick / 10);
            }
        }
        assert_eq!(
            seen,
            [
                (20, Edge::Opens(0)),
                (50, Edge::Closes(0)),
                (70, Edge::Opens(1)),
                (100, Edge::Closes(1)),
                (120, Edge::Opens(2)),
                (150, Edge::Closes(2)),
            ]
        );
        // asked a second before each edge (and at it: the edge is read
        // within the tick)
        for edge in [2, 5, 7, 10, 12, 15] {
            assert!(asked.contains(&(edge - 1)), "{edge}: {asked:?}");
        }
        assert!(!asked.contains(&16), "no edge after the last");
        assert_eq!(c.window(1).viewers, 4);
        assert!(c.last_window(2) && !c.last_window(1));
    }

    #[test]
    fn a_live_gate_stops_the_run_within_its_window_of_the_crossing() {
        let slo: crate::results::slo::Slo = serde_json::from_value(serde_json::json!({
            "errorRate": { "limit": 0.2, "abortOnFail": true, "window": "5s", "delayAbortEval": "6s" }
        }))
        .unwrap();
        let mut p = plan(&[0]);
        p.checkpoints = false;
        p.gates = crate::results::gate::gates(&slo).unwrap();
        let mut c = Conductor::new(p);
        // all requests fail from the second one, and again from 20 s on
        let mut failed = 0u64;
        let mut requests = 0u64;
        let mut stop = None;
        for s in 1..=40u64 {
            let bad = s == 2 || s >= 20;
            if bad {
                failed += 10;
            } else {
                requests += 10;
            }
            let d = c.record(
                1000 + s,
                Duration::from_secs(s),
                &Sample {
                    requests,
                    failed,
                    ..Default::default()
                },
            );
            if let Some(why) = d.abort {
                stop = Some((s, why));
                break;
            }
        }
        let (at, why) = stop.expect("the gate fires");
        // second 2 is judged only from 6 s on, in a window of 1 bad second
        // of 5 (20 %: at the limit, held); from 20 s on, 21 s has 2 bad of
        // 5 (40 %): the run stops then, within the window + 1 s
        assert_eq!(at, 21, "{why}");
        assert_eq!(
            why,
            "SLO gate errorRate ≤ 0.2: 0.4 FAIL over the last 5 s, at 21 s"
        );
    }

    #[test]
    fn no_checkpoints_unless_asked() {
        let mut p = plan(&[0]);
        p.checkpoints = false;
        let mut c = Conductor::new(p);
        for s in 1..=10u64 {
            let d = c.record(1000 + s, Duration::from_secs(s), &Sample::default());
            assert!(!d.ask_figures && !d.checkpoint);
        }
    }
}
