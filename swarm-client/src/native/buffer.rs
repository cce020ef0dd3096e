//! The simulated buffer of one viewer (PLAYER.md §2): a playout clock that
//! starts when the first segment is in, advances at real time while media is
//! buffered, and stalls when the buffer runs dry.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the buffer reports as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferEvent {
    /// Playback started this long after the viewer's first request.
    Startup(Duration),
    /// The buffer ran dry: a rebuffer began.
    Stall,
    /// A rebuffer of this length ended.
    Rebuffer(Duration),
    /// The playout position passed the end of a segment this long after that
    /// segment's end appeared in the playlist.
    Latency(Duration),
}

/// QoE figures of one playback.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Qoe {
    pub startup: Option<Duration>,
    pub play_time: Duration,
    pub rebuffer_count: u64,
    pub rebuffer_time: Duration,
}

impl Qoe {
    /// `rebuffer_time / (play_time + rebuffer_time)`; 0 before playback.
    pub fn rebuffer_ratio(&self) -> f64 {
        let total = (self.play_time + self.rebuffer_time).as_secs_f64();
        if total > 0.0 {
            self.rebuffer_time.as_secs_f64() / total
        } else {
            0.0
        }
    }
}

/// The playout clock.
#[derive(Debug)]
pub struct Playout {
    first_request: Instant,
    started: bool,
    playing: bool,
    /// Media seconds fully downloaded (the least over tracks).
    buffered: f64,
    /// Position (media seconds since playback start) at `anchor_wall`.
    anchor_pos: f64,
    anchor_wall: Instant,
    stall_since: Option<Instant>,
    qoe: Qoe,
    /// (media end position, when that segment's end appeared) of segments
    /// buffered and not yet played, for the live latency.
    unplayed: VecDeque<(f64, Instant)>,
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d.max(0.0))
}

impl Playout {
    pub fn new(first_request: Instant) -> Self {
        Playout {
            first_request,
            started: false,
            playing: false,
            buffered: 0.0,
            anchor_pos: 0.0,
            anchor_wall: first_request,
            stall_since: None,
            qoe: Qoe::default(),
            unplayed: VecDeque::new(),
        }
    }

    /// Media seconds downloaded (the least over tracks).
    pub fn buffered_total(&self) -> f64 {
        self.buffered
    }

    /// Moves the clock to `now`, reporting latencies and a stall.
    pub fn advance(&mut self, now: Instant, out: &mut Vec<BufferEvent>) {
        if !self.playing || now <= self.anchor_wall {
            return;
        }
        let pos = self.anchor_pos + (now - self.anchor_wall).as_secs_f64();
        let reached = pos.min(self.buffered);
        while let Some(&(end, appeared)) = self.unplayed.front() {
            if end > reached + 1e-9 {
                break;
            }
            self.unplayed.pop_front();
            let at = self.anchor_wall + secs(end - self.anchor_pos);
            out.push(BufferEvent::Latency(at.saturating_duration_since(appeared)));
        }
        if pos >= self.buffered {
            let dry_at = self.anchor_wall + secs(self.buffered - self.anchor_pos);
            self.qoe.play_time += dry_at - self.anchor_wall;
            self.anchor_wall = dry_at;
            self.anchor_pos = self.buffered;
            self.playing = false;
            self.stall_since = Some(dry_at);
            self.qoe.rebuffer_count += 1;
            out.push(BufferEvent::Stall);
        } else {
            self.qoe.play_time += now - self.anchor_wall;
            self.anchor_wall = now;
            self.anchor_pos = pos;
        }
    }

    /// Media is in: the buffered total is now `total` seconds. `segment_end`
    /// is the end position and appearance time of the segment for the latency.
    pub fn downloaded(
        &mut self,
        now: Instant,
        total: f64,
        segment: Option<(f64, Instant)>,
        out: &mut Vec<BufferEvent>,
    ) {
        self.advance(now, out);
        if let Some(s) = segment {
            self.unplayed.push_back(s);
        }
        if total <= self.buffered {
            return;
        }
        self.buffered = total;
        if !self.started {
            self.started = true;
            self.playing = true;
            self.anchor_wall = now;
            self.anchor_pos = 0.0;
            let d = now.saturating_duration_since(self.first_request);
            self.qoe.startup = Some(d);
            out.push(BufferEvent::Startup(d));
        } else if let Some(since) = self.stall_since.take() {
            let d = now.saturating_duration_since(since);
            self.qoe.rebuffer_time += d;
            self.playing = true;
            self.anchor_wall = now;
            out.push(BufferEvent::Rebuffer(d));
        }
    }

    /// Whether playback is stalled at `now`.
    pub fn stalled(&self, now: Instant) -> bool {
        if self.stall_since.is_some() {
            return true;
        }
        self.playing
            && now > self.anchor_wall
            && self.anchor_pos + (now - self.anchor_wall).as_secs_f64() >= self.buffered
    }

    /// Whether playback has started.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The stream ended (VOD played out): the clock stops where the media
    /// ends, and running dry there is not a stall.
    pub fn end(&mut self, now: Instant, out: &mut Vec<BufferEvent>) {
        if !self.playing {
            return;
        }
        let dry_at = self.anchor_wall + secs(self.buffered - self.anchor_pos);
        let t = now.min(dry_at).max(self.anchor_wall);
        let reached = self.anchor_pos + (t - self.anchor_wall).as_secs_f64();
        while let Some(&(end, appeared)) = self.unplayed.front() {
            if end > reached + 1e-6 {
                break;
            }
            self.unplayed.pop_front();
            let at = self.anchor_wall + secs(end - self.anchor_pos);
            out.push(BufferEvent::Latency(at.saturating_duration_since(appeared)));
        }
        self.qoe.play_time += t - self.anchor_wall;
        self.anchor_pos = reached;
        self.anchor_wall = t;
        self.playing = false;
    }

    /// When the buffer runs (or ran) dry: `None` before playback starts.
    pub fn dry_at(&self) -> Option<Instant> {
        if let Some(s) = self.stall_since {
            return Some(s);
        }
        self.playing
            .then(|| self.anchor_wall + secs(self.buffered - self.anchor_pos))
    }

    /// Seconds of media buffered ahead of the playout position at `now`.
    pub fn level(&self, now: Instant) -> f64 {
        if !self.playing {
            return self.buffered - self.anchor_pos;
        }
        let pos = self.anchor_pos
            + now
                .saturating_duration_since(self.anchor_wall)
                .as_secs_f64();
        (self.buffered - pos).max(0.0)
    }

    /// The figures up to `now`; a stall still going on counts up to `now`.
    pub fn qoe(&self, now: Instant) -> Qoe {
        let mut q = self.qoe.clone();
        if self.playing && now > self.anchor_wall {
            let pos = self.anchor_pos + (now - self.anchor_wall).as_secs_f64();
            if pos >= self.buffered {
                let dry_at = self.anchor_wall + secs(self.buffered - self.anchor_pos);
                q.play_time += dry_at - self.anchor_wall;
                q.rebuffer_count += 1;
                q.rebuffer_time += now - dry_at;
            } else {
                q.play_time += now - self.anchor_wall;
            }
        } else if let Some(since) = self.stall_since {
            q.rebuffer_time += now.saturating_duration_since(since);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn startup_play_stall_and_rebuffer() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        let mut ev = Vec::new();
        // first 2 s segment in at 0.5 s: startup 0.5 s
        p.downloaded(at(t0, 0.5), 2.0, Some((2.0, at(t0, 0.0))), &mut ev);
        assert_eq!(ev, vec![BufferEvent::Startup(Duration::from_millis(500))]);
        ev.clear();
        // second at 1.5 s: 4 s buffered, playing since 0.5
        p.downloaded(at(t0, 1.5), 4.0, Some((4.0, at(t0, 1.0))), &mut ev);
        assert!(ev.is_empty());
        assert!((p.level(at(t0, 1.5)) - 3.0).abs() < 1e-6);
        // the buffer runs dry at 4.5 s; at 5 s it is stalled
        assert!(!p.stalled(at(t0, 4.4)));
        assert!(p.stalled(at(t0, 5.0)));
        let q = p.qoe(at(t0, 5.0));
        assert_eq!(q.rebuffer_count, 1);
        assert!((q.rebuffer_time.as_secs_f64() - 0.5).abs() < 1e-6);
        assert!((q.play_time.as_secs_f64() - 4.0).abs() < 1e-6);
        // the third segment arrives at 6 s: a 1.5 s rebuffer
        p.downloaded(at(t0, 6.0), 6.0, Some((6.0, at(t0, 5.9))), &mut ev);
        // latencies: seg 1 ended playing at 2.5 s (appeared 0.0), seg 2 at 4.5 (appeared 1.0)
        assert_eq!(
            ev,
            vec![
                BufferEvent::Latency(Duration::from_millis(2500)),
                BufferEvent::Latency(Duration::from_millis(3500)),
                BufferEvent::Stall,
                BufferEvent::Rebuffer(Duration::from_millis(1500)),
            ]
        );
        let q = p.qoe(at(t0, 7.0));
        assert_eq!(q.startup, Some(Duration::from_millis(500)));
        assert_eq!(q.rebuffer_count, 1);
        assert!((q.rebuffer_time.as_secs_f64() - 1.5).abs() < 1e-6);
        assert!((q.play_time.as_secs_f64() - 5.0).abs() < 1e-6);
        assert!((q.rebuffer_ratio() - 1.5 / 6.5).abs() < 1e-9);
    }

    #[test]
    fn no_playback_no_figures() {
        let t0 = Instant::now();
        let p = Playout::new(t0);
        let q = p.qoe(at(t0, 10.0));
        assert_eq!(q, Qoe::default());
        assert_eq!(q.rebuffer_ratio(), 0.0);
    }
}
