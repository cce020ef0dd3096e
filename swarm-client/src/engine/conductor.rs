//! The run loop both engines share, as a state machine that does no IO:
//! the ramp (a value: who starts when), when a run stops, the
//! once-a-second sample into the series, the status of each second and the
//! checkpoints. Time is given to it, so it is tested with simulated time;
//! `engine::run_loop` drives it with the real clock, the signals and an
//! [`super::Engine`].

use std::time::Duration;

use super::Series;
use crate::results::Seconds;

/// Who starts when: viewer `i` of this process at `at[i]` into the run,
/// handed out in the order of their start times.
pub struct Ramp {
    /// (start time, viewer), sorted.
    starts: Vec<(Duration, usize)>,
    /// How many are handed out.
    next: usize,
}

impl Ramp {
    /// A ramp of the viewers' start times (`schedule[i]`: viewer `i`'s).
    pub fn new(schedule: &[Duration]) -> Ramp {
        let mut starts: Vec<(Duration, usize)> =
            schedule.iter().copied().zip(0..schedule.len()).collect();
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

    /// The share of the viewers whose start time has passed at `elapsed`.
    pub fn share(&self, elapsed: Duration) -> f64 {
        let passed = self.starts.partition_point(|(at, _)| *at <= elapsed);
        passed as f64 / self.starts.len().max(1) as f64
    }

    /// The first start.
    pub fn first(&self) -> Duration {
        self.starts.first().map(|s| s.0).unwrap_or_default()
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
    /// Viewers of this process.
    pub viewers: usize,
    /// Each one's start time.
    pub schedule: Vec<Duration>,
    /// Viewers the run aims at (`clients`).
    pub target: u32,
    /// Stop after this long; `None`: until a signal.
    pub duration: Option<Duration>,
    /// When the stream was not reachable before the run: how long after
    /// the first start a run that reached nothing ends.
    pub reach_within: Option<Duration>,
    /// Results written every few seconds while it runs.
    pub checkpoints: bool,
}

/// Why a run stops, when it does.
pub mod stop {
    pub const DURATION: &str = "duration reached";
    pub const FINISHED: &str = "every viewer finished";
    pub const NEVER_REACHED: &str = "stream never reachable";
    /// What `stoppedBy` says in a checkpoint: the run was still going.
    pub const CHECKPOINT: &str = "checkpoint (the run was still going)";
}

/// The status of one second, for the display.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub elapsed: Duration,
    pub active: u64,
    pub stalled: u64,
    /// Share of the viewers whose start has passed.
    pub ramp: f64,
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
}

/// Seconds between two checkpoints.
pub const CHECKPOINT_EVERY_SECS: u64 = 5;

/// The state of a run.
pub struct Conductor {
    plan: Plan,
    ramp: Ramp,
    series: Series,
    /// Samples taken.
    seconds: u64,
    /// The last status's time, bytes and segments.
    last: (Duration, u64, u64),
}

impl Conductor {
    pub fn new(plan: Plan) -> Conductor {
        Conductor {
            ramp: Ramp::new(&plan.schedule),
            series: Series::new(&plan.schedule, plan.target),
            seconds: 0,
            last: (Duration::ZERO, 0, 0),
            plan,
        }
    }

    /// The viewers to start now (those whose start comes by `until`).
    pub fn starts(&mut self, until: Duration) -> Vec<(usize, Duration)> {
        self.ramp.due(until)
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
        if finished == self.plan.viewers && self.plan.viewers > 0 {
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
            ask_figures: self.plan.checkpoints && phase == CHECKPOINT_EVERY_SECS - 1,
            checkpoint: self.plan.checkpoints && phase == 0,
            status: Status {
                elapsed,
                active: s.active,
                stalled: s.stalled,
                ramp: self.ramp.share(elapsed),
                restarts: s.restarts,
                rebuffers: s.rebuffers,
                failed: s.failed,
                received: s.bytes,
                byte_rate: s.bytes.saturating_sub(b0) as f64 / secs,
                segment_rate: s.segments.saturating_sub(s0) as f64 / secs,
            },
        }
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
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn plan(schedule: &[u64]) -> Plan {
        Plan {
            viewers: schedule.len(),
            schedule: schedule.iter().map(|m| MS(*m)).collect(),
            target: schedule.len() as u32,
            duration: Some(Duration::from_secs(10)),
            reach_within: None,
            checkpoints: true,
        }
    }

    #[test]
    fn the_ramp_hands_out_each_viewer_once_in_start_order() {
        // viewer 1's jitter puts it after viewer 2
        let mut r = Ramp::new(&[MS(0), MS(700), MS(500), MS(1500)]);
        assert_eq!(r.due(MS(0)), [(0, MS(0))]);
        assert_eq!(r.due(MS(400)), []);
        assert_eq!(r.due(MS(700)), [(2, MS(500)), (1, MS(700))]);
        assert_eq!(r.share(MS(600)), 0.5);
        assert_eq!(r.due(MS(5000)), [(3, MS(1500))]);
        assert_eq!(r.due(MS(9000)), []);
        assert_eq!(r.first(), MS(0));
        assert_eq!(Ramp::new(&[]).share(MS(1)), 0.0);
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
