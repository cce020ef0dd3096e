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
    /// Times the buffer ran dry and media came within a frame interval: a
    /// media element shows the last frame that long anyway, so no one sees
    /// it — counted, never hidden, and not a stall (PLAYER.md §2).
    pub micro_gaps: u64,
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

/// How long a media element shows a frame when the frame rate is unknown.
pub const DEFAULT_FRAME: Duration = Duration::from_millis(40);

/// What a stalled media element waits for before it plays again.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Resume {
    /// Any new media (PLAYER.md §2).
    #[default]
    AnyMedia,
    /// `first` seconds buffered ahead after the first stall, twice as much
    /// after each stall since, at most `cap`.
    Doubling { first: f64, cap: f64 },
}

impl Resume {
    /// Seconds buffered ahead that end the `n`-th stall (from 1).
    pub fn level(self, n: u64) -> f64 {
        match self {
            Resume::AnyMedia => 0.0,
            Resume::Doubling { first, cap } => {
                let doublings = n.saturating_sub(1).min(32) as i32;
                (first * 2f64.powi(doublings)).min(cap)
            }
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
    /// A frame interval: a dry buffer refilled within it is a micro gap.
    frame: Duration,
    /// Media seconds that must be buffered ahead before a stall ends (0:
    /// any new media ends it); set when the viewer rejoins a stream.
    resume_level: f64,
    /// What ends a stall besides `resume_level`.
    resume: Resume,
    qoe: Qoe,
    /// (media end position, when that segment's end appeared) of segments
    /// buffered and not yet played, for the live latency.
    unplayed: VecDeque<(f64, Instant)>,
    /// Playback begins no sooner than `first_media` after the first media
    /// came in (`first_in`) and `append` after the media at the start
    /// point did: the player's media pipeline.
    first_media: Duration,
    append: Duration,
    first_in: Option<Instant>,
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
            frame: DEFAULT_FRAME,
            resume_level: 0.0,
            resume: Resume::AnyMedia,
            qoe: Qoe::default(),
            unplayed: VecDeque::new(),
            first_media: Duration::ZERO,
            append: Duration::ZERO,
            first_in: None,
        }
    }

    /// Playback begins no sooner than `first_media` after the first media
    /// is in and `append` after the media at the start point is (the
    /// player's media pipeline); startup and the live latency include it.
    pub fn set_start(&mut self, first_media: Duration, append: Duration) {
        self.first_media = first_media;
        self.append = append;
    }

    /// What ends a stall (the media element's rule).
    pub fn set_resume(&mut self, r: Resume) {
        self.resume = r;
    }

    /// The stream's frame interval (from its `FRAME-RATE`).
    pub fn set_frame(&mut self, frame: Duration) {
        self.frame = frame.clamp(Duration::from_millis(1), Duration::from_secs(1));
    }

    /// The viewer starts over on a new stretch of the stream (the window
    /// jumped, the sequence was reset): the next stall ends only when
    /// `level` media seconds are buffered ahead, so that it plays that far
    /// behind the live edge again instead of just at it.
    pub fn rejoin(&mut self, level: f64) {
        self.resume_level = level.max(0.0);
    }

    /// Media seconds downloaded (the least over tracks).
    pub fn buffered_total(&self) -> f64 {
        self.buffered
    }

    /// When the buffer ran (or runs) dry while playing.
    fn dry(&self) -> Instant {
        self.anchor_wall + secs(self.buffered - self.anchor_pos)
    }

    /// Moves the clock to `now`, reporting latencies and a stall. A dry
    /// buffer holds the clock at the end of the media; a frame interval
    /// later it is a stall, counted from when it ran dry.
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
            let dry_at = self.dry();
            self.qoe.play_time += dry_at - self.anchor_wall;
            self.anchor_wall = dry_at;
            self.anchor_pos = self.buffered;
            if now >= dry_at + self.frame {
                self.playing = false;
                self.stall_since = Some(dry_at);
                self.qoe.rebuffer_count += 1;
                out.push(BufferEvent::Stall);
            }
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
        let first_in = *self.first_in.get_or_insert(now);
        if let Some(s) = segment {
            self.unplayed.push_back(s);
        }
        if total <= self.buffered {
            return;
        }
        // playing with the clock held at the end of the media, a frame
        // interval not yet over: a micro gap, and the clock goes on from now
        let held = self.playing && self.anchor_pos >= self.buffered && now > self.anchor_wall;
        self.buffered = total;
        if !self.started {
            self.started = true;
            self.playing = true;
            self.anchor_wall = (now + self.append).max(first_in + self.first_media);
            self.anchor_pos = 0.0;
            let d = self
                .anchor_wall
                .saturating_duration_since(self.first_request);
            self.qoe.startup = Some(d);
            out.push(BufferEvent::Startup(d));
        } else if let Some(since) = self.stall_since {
            let need = self
                .resume_level
                .max(self.resume.level(self.qoe.rebuffer_count));
            if self.buffered - self.anchor_pos + 1e-9 < need {
                return;
            }
            self.stall_since = None;
            self.resume_level = 0.0;
            let d = now.saturating_duration_since(since);
            self.qoe.rebuffer_time += d;
            self.playing = true;
            self.anchor_wall = now;
            out.push(BufferEvent::Rebuffer(d));
        } else if held {
            self.qoe.micro_gaps += 1;
            self.anchor_wall = now;
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
            && now >= self.dry() + self.frame
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
        let dry_at = self.dry();
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
        self.playing.then(|| self.dry())
    }

    /// When a stall begins (or began): a frame interval after the buffer
    /// runs dry; `None` before playback starts.
    pub fn stall_at(&self) -> Option<Instant> {
        if let Some(s) = self.stall_since {
            return Some(s);
        }
        self.playing.then(|| self.dry() + self.frame)
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
                let dry_at = self.dry();
                q.play_time += dry_at - self.anchor_wall;
                if now >= dry_at + self.frame {
                    q.rebuffer_count += 1;
                    q.rebuffer_time += now - dry_at;
                }
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
    fn a_gap_shorter_than_a_frame_is_a_micro_gap_not_a_stall() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        let mut ev = Vec::new();
        // 2 s segments arriving just in time: 2 ms, 30 ms late (micro
        // gaps), then 60 ms late (a stall of 60 ms)
        p.downloaded(at(t0, 0.1), 2.0, None, &mut ev);
        p.downloaded(at(t0, 2.102), 4.0, None, &mut ev);
        assert!(!p.stalled(at(t0, 4.102 + 0.039)));
        p.downloaded(at(t0, 4.132), 6.0, None, &mut ev);
        assert!(p.stalled(at(t0, 6.132 + 0.041)));
        p.downloaded(at(t0, 6.192), 8.0, None, &mut ev);
        let q = p.qoe(at(t0, 7.0));
        assert_eq!(q.micro_gaps, 2);
        assert_eq!(q.rebuffer_count, 1);
        assert!(
            (q.rebuffer_time.as_secs_f64() - 0.060).abs() < 1e-6,
            "{q:?}"
        );
        // the clock held during the gaps: 6 s played by 6.132, then 0.808 more
        assert!((q.play_time.as_secs_f64() - 6.808).abs() < 1e-6, "{q:?}");
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, BufferEvent::Stall))
                .count(),
            1
        );
        // the frame of a 10 fps stream is 100 ms: a 60 ms gap is not a stall
        let mut p = Playout::new(t0);
        p.set_frame(Duration::from_millis(100));
        p.downloaded(at(t0, 0.1), 2.0, None, &mut ev);
        p.downloaded(at(t0, 2.16), 4.0, None, &mut ev);
        let q = p.qoe(at(t0, 3.0));
        assert_eq!((q.micro_gaps, q.rebuffer_count), (1, 0));
    }

    #[test]
    fn a_doubling_resume_rule_wants_more_media_after_each_stall() {
        let r = Resume::Doubling {
            first: 0.4,
            cap: 3.0,
        };
        let levels: Vec<f64> = (1..=6).map(|n| r.level(n)).collect();
        assert_eq!(levels, [0.4, 0.8, 1.6, 3.0, 3.0, 3.0]);
        assert_eq!(Resume::AnyMedia.level(9), 0.0);
        // 1 s segments, each in 1.5 s: the viewer can never keep up
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        p.set_resume(r);
        let mut ev = Vec::new();
        let mut resumed_with = Vec::new();
        for k in 1..=12 {
            let now = at(t0, 1.5 * k as f64);
            let was = p.stalled(now);
            p.downloaded(now, k as f64, None, &mut ev);
            if was && !p.stalled(now) {
                resumed_with.push(p.level(now));
            }
        }
        // the first two stalls end on one more second of media, the third
        // on two, the fourth on three: fewer, longer stalls
        assert_eq!(resumed_with, [1.0, 1.0, 2.0, 3.0]);
        let q = p.qoe(at(t0, 18.0));
        assert_eq!(q.rebuffer_count, 4);
        // stalled 2.5–3, 4–4.5, 5.5–7.5, 11.5–15
        assert!((q.rebuffer_time.as_secs_f64() - 6.5).abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn a_viewer_that_rejoins_waits_for_its_distance_from_the_live_edge() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        let mut ev = Vec::new();
        p.downloaded(at(t0, 0.1), 2.0, None, &mut ev);
        // the stream restarts: dry at 2.1, and the viewer rejoins 6 s behind
        p.rejoin(6.0);
        p.downloaded(at(t0, 5.0), 4.0, None, &mut ev);
        assert!(p.stalled(at(t0, 5.0)), "2 s buffered of 6: still stalled");
        p.downloaded(at(t0, 7.0), 6.0, None, &mut ev);
        assert!(p.stalled(at(t0, 7.0)));
        p.downloaded(at(t0, 9.0), 8.0, None, &mut ev);
        assert!(!p.stalled(at(t0, 9.0)));
        let q = p.qoe(at(t0, 9.0));
        assert_eq!(q.rebuffer_count, 1);
        assert!((q.rebuffer_time.as_secs_f64() - 6.9).abs() < 1e-6, "{q:?}");
        // 6 s ahead now: segments every 2 s keep it playing
        for k in 0..5 {
            let t = 11.0 + 2.0 * f64::from(k);
            p.downloaded(at(t0, t), 10.0 + 2.0 * f64::from(k), None, &mut ev);
            assert!(!p.stalled(at(t0, t)));
        }
        assert_eq!(p.qoe(at(t0, 19.0)).rebuffer_count, 1);
    }

    #[test]
    fn playback_begins_after_the_media_pipeline() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        p.set_start(Duration::from_millis(120), Duration::from_millis(20));
        let mut ev = Vec::new();
        p.downloaded(at(t0, 0.5), 2.0, Some((2.0, t0)), &mut ev);
        // one segment: the pipeline's start after it is the later
        assert_eq!(ev, vec![BufferEvent::Startup(Duration::from_millis(620))]);
        // the clock has not moved before it: all 2 s still ahead
        assert_eq!(p.level(at(t0, 0.6)), 2.0);
        assert_eq!(p.dry_at(), Some(at(t0, 2.62)));
        ev.clear();
        p.advance(at(t0, 2.7), &mut ev);
        // the segment's end played at 2.62 s, appeared at 0
        assert_eq!(ev[0], BufferEvent::Latency(Duration::from_millis(2620)));
        assert_eq!(ev[1], BufferEvent::Stall);
    }

    #[test]
    fn playback_begins_the_append_after_the_start_point_when_that_is_later() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0);
        p.set_start(Duration::from_millis(120), Duration::from_millis(20));
        let mut ev = Vec::new();
        // parts before the start point (the total still below 0), then the
        // one holding it: 20 ms after that is after 120 ms from the first
        p.downloaded(at(t0, 0.1), -0.4, None, &mut ev);
        p.downloaded(at(t0, 0.2), -0.2, None, &mut ev);
        assert!(ev.is_empty() && !p.started());
        p.downloaded(at(t0, 0.3), 0.1, None, &mut ev);
        assert_eq!(ev, vec![BufferEvent::Startup(Duration::from_millis(320))]);
        // the first part's pipeline is the later: 120 ms after it
        let mut p = Playout::new(t0);
        p.set_start(Duration::from_millis(120), Duration::from_millis(20));
        ev.clear();
        p.downloaded(at(t0, 0.1), -0.1, None, &mut ev);
        p.downloaded(at(t0, 0.15), 0.1, None, &mut ev);
        assert_eq!(ev, vec![BufferEvent::Startup(Duration::from_millis(220))]);
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
