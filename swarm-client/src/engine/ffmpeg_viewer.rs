//! One FFmpeg viewer's state, apart from its process: started, progressing,
//! stalled, exited, due for a restart. Pure and driven by the times it is
//! given, so the engine's rules (what counts as a stall, when a viewer comes
//! back, what each log line adds) are tested without processes; the engine
//! (`super::ffmpeg`) starts the processes and feeds their events in.

use std::time::{Duration, Instant};

use common::supervise::{Backoff, Restarts};

use super::progress::{LogEvent, Progress};
use crate::results::ViewerFigures;

/// Below this speed for [`STALL_AFTER`], a viewer counts as stalled.
pub const STALL_SPEED: f64 = 0.9;
/// How long a viewer may be slow, or silent, before it counts as stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// A viewer between its starts: its process generation, its figures, and
/// what the stall and restart rules need to know.
#[derive(Debug, Default)]
pub struct ViewerState {
    /// The running process, if any.
    pub pid: Option<u32>,
    /// Counts the starts; events from an older process carry an older one.
    pub gen: u64,
    pub figures: ViewerFigures,
    started: Option<Instant>,
    restart_at: Option<Instant>,
    restarts: Restarts,
    slow_since: Option<Instant>,
    last_progress: Option<Instant>,
    stalled: bool,
}

impl ViewerState {
    /// Process `pid` started at `now`; returns its generation.
    pub fn started(&mut self, pid: Option<u32>, now: Instant) -> u64 {
        self.gen += 1;
        self.pid = pid;
        self.started = Some(now);
        self.restart_at = None;
        self.restarts.started(now);
        self.slow_since = None;
        self.last_progress = None;
        self.stalled = false;
        self.figures.counts.starts += 1;
        self.gen
    }

    /// Its process could not start (or exited) at `now`: schedules the next
    /// start under `policy` (`unit` in [0, 1) draws the jitter); returns how
    /// long it ran and the delay.
    pub fn ended(&mut self, policy: &Backoff, now: Instant, unit: f64) -> (Duration, Duration) {
        self.pid = None;
        self.stalled = false;
        self.figures.media_seconds += self.figures.current_media_us as f64 / 1e6;
        self.figures.current_media_us = 0;
        let (ran, delay) = self.restarts.ended(policy, now, unit);
        self.restart_at = Some(now + delay);
        (ran, delay)
    }

    /// Whether it is down and its restart is due at `now`.
    pub fn restart_due(&self, now: Instant) -> bool {
        self.pid.is_none() && self.restart_at.is_some_and(|t| t <= now)
    }

    /// A progress report of generation `gen` arrived at `now`. Returns
    /// whether it shows media played (the stream was reached); a report of
    /// an older process is ignored.
    pub fn on_progress(&mut self, gen: u64, p: &Progress, now: Instant) -> bool {
        if gen != self.gen {
            return false;
        }
        let played = p.out_time_us.is_some_and(|t| t > 0);
        if played {
            self.last_progress = Some(now);
        }
        if let Some(s) = p.speed {
            self.figures.last_speed = Some(s);
            if s < STALL_SPEED {
                self.slow_since.get_or_insert(now);
            } else {
                self.slow_since = None;
            }
        }
        if let Some(t) = p.out_time_us {
            self.figures.current_media_us = t.max(0) as u64;
        }
        played
    }

    /// A log event of generation `gen`: counted in the figures. Returns
    /// whether it was counted (an older process's is not).
    pub fn on_log(&mut self, gen: u64, e: &LogEvent) -> bool {
        if gen != self.gen {
            return false;
        }
        let f = &mut self.figures;
        match e {
            LogEvent::Segment => f.counts.segments += 1,
            LogEvent::Playlist | LogEvent::InputOpened => f.counts.playlists += 1,
            LogEvent::HttpError(code) => *f.counts.http_errors.entry(*code).or_default() += 1,
            LogEvent::Timeout => f.counts.timeouts += 1,
            LogEvent::ConnectError => f.counts.connect_errors += 1,
        }
        true
    }

    /// Whether it is stalled at `now`: running, and silent (no media played)
    /// or slower than [`STALL_SPEED`] for [`STALL_AFTER`]. A stall is counted
    /// once, when it begins.
    pub fn check_stall(&mut self, now: Instant) -> bool {
        if self.pid.is_none() {
            return false;
        }
        let silent = match self.last_progress {
            Some(t) => now - t > STALL_AFTER,
            None => self.started.is_some_and(|s| now - s > STALL_AFTER),
        };
        let slow = self.slow_since.is_some_and(|t| now - t > STALL_AFTER);
        let stalled = silent || slow;
        if stalled && !self.stalled {
            self.figures.counts.stalls += 1;
        }
        self.stalled = stalled;
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(out_time_us: i64, speed: f64) -> Progress {
        Progress {
            out_time_us: Some(out_time_us),
            speed: Some(speed),
            ..Default::default()
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_silent_or_slow_viewer_stalls_once_per_stall() {
        let t0 = Instant::now();
        let mut v = ViewerState::default();
        let gen = v.started(Some(10), t0);
        // silent since the start: stalled only after STALL_AFTER
        assert!(!v.check_stall(t0 + S(5)));
        assert!(v.check_stall(t0 + S(6)));
        assert!(v.check_stall(t0 + S(7)));
        assert_eq!(v.figures.counts.stalls, 1, "one stall, however long");
        // it plays at real time: no longer stalled
        assert!(v.on_progress(gen, &progress(1_000_000, 1.0), t0 + S(8)));
        assert!(!v.check_stall(t0 + S(9)));
        // slower than STALL_SPEED from t0+10 s: stalled after 5 s more
        v.on_progress(gen, &progress(2_000_000, 0.5), t0 + S(10));
        v.on_progress(gen, &progress(2_500_000, 0.5), t0 + S(12));
        assert!(!v.check_stall(t0 + S(14)));
        v.on_progress(gen, &progress(3_000_000, 0.5), t0 + S(15));
        assert!(v.check_stall(t0 + Duration::from_millis(15_100)));
        assert_eq!(v.figures.counts.stalls, 2);
        assert_eq!(v.figures.last_speed, Some(0.5));
    }

    #[test]
    fn an_exited_viewer_comes_back_after_the_backoff() {
        let policy = Backoff::default(); // 0.5 s, doubling, reset after 30 s
        let t0 = Instant::now();
        let mut v = ViewerState::default();
        v.started(Some(10), t0);
        v.on_progress(v.gen, &progress(4_000_000, 1.0), t0 + S(4));
        let (ran, delay) = v.ended(&policy, t0 + S(4), 0.5);
        assert_eq!((ran, delay), (S(4), Duration::from_millis(500)));
        assert_eq!(v.figures.media_seconds, 4.0, "its played media is kept");
        assert!(
            !v.check_stall(t0 + S(20)),
            "a viewer that is down is not stalled"
        );
        assert!(!v.restart_due(t0 + Duration::from_millis(4_400)));
        assert!(v.restart_due(t0 + Duration::from_millis(4_500)));
        // a quick second failure doubles the delay
        let t1 = t0 + S(5);
        v.started(Some(11), t1);
        assert!(!v.restart_due(t1), "running: nothing is due");
        let (_, delay) = v.ended(&policy, t1 + S(1), 0.5);
        assert_eq!(delay, S(1));
        // one that ran 30 s starts the backoff over
        let t2 = t1 + S(2);
        v.started(Some(12), t2);
        let (_, delay) = v.ended(&policy, t2 + S(30), 0.5);
        assert_eq!(delay, Duration::from_millis(500));
        assert_eq!(v.figures.counts.starts, 3);
    }

    #[test]
    fn events_of_an_older_process_are_ignored() {
        let t0 = Instant::now();
        let mut v = ViewerState::default();
        let old = v.started(Some(10), t0);
        assert!(v.on_log(old, &LogEvent::Segment));
        v.ended(&Backoff::default(), t0 + S(1), 0.0);
        let new = v.started(Some(11), t0 + S(2));
        assert_ne!(old, new);
        // the old process's last lines arrive after the restart
        assert!(!v.on_log(old, &LogEvent::Segment));
        assert!(!v.on_progress(old, &progress(9_000_000, 1.0), t0 + S(2)));
        assert!(v.on_log(new, &LogEvent::HttpError(404)));
        assert!(v.on_log(new, &LogEvent::InputOpened));
        assert!(v.on_log(new, &LogEvent::Playlist));
        assert_eq!(v.figures.counts.segments, 1);
        assert_eq!(v.figures.counts.playlists, 2);
        assert_eq!(v.figures.counts.http_errors.get(&404), Some(&1));
        assert_eq!(v.figures.current_media_us, 0);
    }
}
