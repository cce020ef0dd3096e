//! One native viewer as a sans-IO state machine (PLAYER.md §1): it is told
//! what arrived and when, and answers what to fetch next or when to wake up.
//! The async driver (`engine::native_viewer`) does the IO; tests drive it
//! with a virtual clock.

use std::time::{Duration, Instant};

use url::Url;

mod cmcd;
mod hints;
mod io;
mod low_latency;
mod profile;
mod queue;
mod track;
mod variants;

pub use self::io::{Event, Next, Request, Target};
use self::low_latency::next_block;
pub use self::low_latency::ReloadMarks;
pub use self::profile::{Pipeline, PlayerProfile};
pub use self::queue::WallClock;
use self::track::{retry_delay, skipped_segments, Load, Phase, Track};
use super::abr::Estimator;
use super::buffer::{BufferEvent, Playout, Qoe};
use super::failure::Failure;
use super::playlist::{self, Media, Playlist, PlaylistError};
use crate::results::Kind;

common::word_enum!(
    /// Which renditions a viewer reads: every stream, the first variant, the
    /// highest/lowest bandwidth variant, or (native engine) the variant an
    /// hls.js-style bandwidth estimate picks.
    VariantMode { All = "all", First = "first", Highest = "highest", Lowest = "lowest", Abr = "abr" }
);

/// Target durations from the end where a live viewer starts (hls.js
/// `liveSyncDurationCount`).
pub const LIVE_SYNC_COUNT: f64 = 3.0;
/// Media buffered ahead beyond which no more segments are fetched (hls.js
/// `maxBufferLength`): a VOD is not downloaded in one burst.
pub const MAX_BUFFER_SEC: f64 = 30.0;

/// Playlists (variants and renditions) one viewer follows at most: with
/// `variant = "all"` a master listing more is played in part, and the
/// viewer says how many it left out ([`Event::VariantsNotFollowed`]).
pub const MAX_TRACKS: usize = 16;
/// Segments one track holds queued at most (and their URLs at most
/// [`MAX_PENDING_URL_BYTES`]): a longer playlist is queued in turns,
/// reloaded when the queue runs out.
pub const MAX_PENDING: usize = 256;
pub const MAX_PENDING_URL_BYTES: usize = 64 * 1024;

/// A segment request must end within this many times its `EXTINF` (and
/// never sooner than the `timeout`); a playlist request within the
/// `timeout`. Past that, however the bytes trickle in, it is a timeout.
pub const SEGMENT_DEADLINE_FACTOR: f64 = 4.0;

/// How the player is set up.
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    pub url: Url,
    pub variant: VariantMode,
    /// Retries of one segment before it is skipped.
    pub seg_max_retry: u32,
    /// How long a playlist may stay unreachable before the viewer fails.
    pub timeout: Duration,
    pub profile: PlayerProfile,
    /// What the player adds to the network's times
    /// ([`PlayerProfile::pipeline`]).
    pub pipeline: Pipeline,
}

/// One viewer's playback.
#[derive(Debug)]
pub struct Player {
    cfg: PlayerConfig,
    phase: Phase,
    tracks: Vec<Track>,
    /// ABR: the variants (URL, bandwidth) sorted by bandwidth, and the current one.
    ladder: Vec<(Url, u64)>,
    current: usize,
    estimator: Estimator,
    playout: Playout,
    /// The sequence the first track started at; other tracks align to it.
    start_seq: Option<u64>,
    events: Vec<Event>,
    /// The wall clock, for program date-times; without it a part's media
    /// is taken to have ended when it appeared.
    wall: Option<WallClock>,
    /// What the last media playlist loaded tells of the server's promptness.
    marks: Option<ReloadMarks>,
    /// The `Age` of the playlist response being handled.
    age: Option<Duration>,
    /// The highest `BANDWIDTH` of the master playlist.
    top_bandwidth: Option<u64>,
    /// The buffer ran dry since the last media request's CMCD.
    starved: bool,
    /// Stalls of this playback (the hls.js profile's latency target grows
    /// with them).
    stalls: u32,
    /// Until when the player handles the last response
    /// ([`Pipeline::per_response`], [`Pipeline::setup`]): no request before.
    busy_until: Option<Instant>,
}

impl Player {
    /// A viewer about to make its first request at `now`.
    pub fn new(cfg: PlayerConfig, now: Instant) -> Self {
        let mut playout = Playout::new(now);
        playout.set_start(cfg.pipeline.first_media, cfg.pipeline.append);
        playout.set_resume(cfg.pipeline.resume);
        Player {
            cfg,
            phase: Phase::Root {
                retry_at: None,
                fail_since: None,
                failures: 0,
            },
            tracks: Vec::new(),
            ladder: Vec::new(),
            current: 0,
            estimator: Estimator::default(),
            playout,
            start_seq: None,
            events: Vec::new(),
            wall: None,
            marks: None,
            age: None,
            top_bandwidth: None,
            starved: false,
            stalls: 0,
            busy_until: None,
        }
    }

    /// What the last media playlist loaded tells of the server's
    /// promptness; taken once.
    pub fn take_reload_marks(&mut self) -> Option<ReloadMarks> {
        self.marks.take()
    }

    /// Sets the wall clock: `unix_ms` ms since the Unix epoch at `at`.
    pub fn set_wall_clock(&mut self, at: Instant, unix_ms: i64) {
        self.wall = Some(WallClock { at, unix_ms });
    }

    /// Takes the events since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// The QoE figures of this playback up to `now`.
    pub fn qoe(&self, now: Instant) -> Qoe {
        self.playout.qoe(now)
    }

    pub fn stalled(&self, now: Instant) -> bool {
        self.playout.stalled(now)
    }

    /// Whether playback has started (a segment came in).
    pub fn started(&self) -> bool {
        self.playout.started()
    }

    /// When the buffer runs (or ran) dry; `None` before playback.
    pub fn dry_at(&self) -> Option<Instant> {
        self.playout.dry_at()
    }

    /// When playback stalls (or stalled): a frame interval after the buffer
    /// runs dry; `None` before playback.
    pub fn stall_at(&self) -> Option<Instant> {
        self.playout.stall_at()
    }

    /// Seconds of media buffered ahead at `now`.
    pub fn buffer_level(&self, now: Instant) -> f64 {
        self.playout.level(now)
    }

    /// The bandwidth of the variant an `abr` viewer plays now.
    pub fn current_bandwidth(&self) -> Option<u64> {
        self.ladder.get(self.current).map(|v| v.1)
    }

    /// The live latency this viewer aims at (PLAYER.md §6–7): on a
    /// Low-Latency stream `PART-HOLD-BACK`, else 3 target durations; the
    /// hls.js profile adds 1 s a stall, at most one target duration. `None`
    /// before a media playlist is in.
    pub fn latency_target(&self) -> Option<Duration> {
        let t = self.tracks.first().filter(|t| t.loaded)?;
        let base = t
            .part_hold_back
            .unwrap_or(LIVE_SYNC_COUNT * t.target_duration);
        let grown = if self.cfg.profile == PlayerProfile::Hlsjs {
            f64::from(self.stalls).min(t.target_duration)
        } else {
            0.0
        };
        Some(Duration::from_secs_f64(base + grown))
    }

    fn push_buffer_events(&mut self, ev: Vec<BufferEvent>) {
        let stalled = ev.contains(&BufferEvent::Stall);
        self.starved |= stalled;
        self.stalls += u32::from(stalled);
        self.events.extend(ev.into_iter().map(Event::Buffer));
    }

    /// Moves the playout clock (reports stalls and latencies as they happen).
    pub fn tick(&mut self, now: Instant) {
        let mut ev = Vec::new();
        self.playout.advance(now, &mut ev);
        self.push_buffer_events(ev);
    }

    /// Every track is a VOD playlist loaded to its end.
    fn vod_loaded(&self) -> bool {
        !self.tracks.is_empty()
            && self
                .tracks
                .iter()
                .all(|t| t.loaded && t.end_list && !t.more && t.pending.is_empty())
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        if matches!(self.phase, Phase::Playing)
            && self.vod_loaded()
            && self.playout.dry_at().is_none_or(|end| end <= now)
        {
            // played to the end: not a stall
            let mut ev = Vec::new();
            self.playout.end(now, &mut ev);
            self.push_buffer_events(ev);
            self.phase = Phase::Done;
            return Next::Done;
        }
        self.tick(now);
        match &self.phase {
            Phase::Done => return Next::Done,
            Phase::Failed => return Next::Failed,
            Phase::Root { retry_at, .. } => {
                return match retry_at {
                    Some(t) if *t > now => Next::WaitUntil(*t),
                    _ => Next::Get(Request {
                        url: self.cfg.url.clone(),
                        kind: Kind::Playlist,
                        target: Target::Root,
                        seq: None,
                        part: None,
                        duration: None,
                    }),
                };
            }
            Phase::Playing => {}
        }
        if let Some(b) = self.busy_until.filter(|b| *b > now) {
            return Next::WaitUntil(b);
        }
        self.use_preloaded(now);
        let level = self.playout.level(now);
        let full = self.playout.started() && level >= MAX_BUFFER_SEC;
        // 1. a playlist reload that is due; a blocking one waits for the
        // segments ready to load first (on one HTTP/1.1 connection a held
        // reload would hold them back, and it waits for the next part
        // anyway)
        for (i, t) in self.tracks.iter().enumerate() {
            let loadable = t.pending.front().is_some_and(|p| p.loadable(now));
            if t.block.is_some() && loadable && !full {
                continue;
            }
            if t.due().is_some_and(|d| d <= now) {
                let reload = Request {
                    url: t.reload_url(now),
                    kind: Kind::Playlist,
                    target: Target::Track(i),
                    seq: None,
                    part: None,
                    duration: None,
                };
                return match hints::beside_reload(t, i, self.cfg.profile) {
                    Some(hint) => Next::GetBeside(reload, hint),
                    None => Next::Get(reload),
                };
            }
        }
        // 2. the next segment of the track with the least media in, unless
        // the buffer is full
        let mut best: Option<(usize, f64)> = None;
        for (i, t) in self.tracks.iter().enumerate() {
            if let Some(p) = t.pending.front() {
                if !full && p.loadable(now) && best.is_none_or(|b| t.buffered < b.1) {
                    best = Some((i, t.buffered));
                }
            }
        }
        if let Some((i, _)) = best {
            let t = &self.tracks[i];
            let p = t.pending.front().expect("pending segment");
            if let Some(map) = &p.map {
                if t.map_loaded.as_ref() != Some(map) {
                    return Next::Get(Request {
                        url: map.clone(),
                        kind: Kind::Init,
                        target: Target::Track(i),
                        seq: Some(p.seq),
                        part: None,
                        duration: None,
                    });
                }
            }
            let (url, kind, part, duration) = match p.load() {
                Load::Part(q) => (&q.url, Kind::Part, Some(q.index), q.duration),
                Load::Whole(s) => (&s.url, Kind::Segment, None, s.duration),
                Load::Waiting => unreachable!("loadable"),
            };
            return Next::Get(Request {
                url: url.clone(),
                kind,
                target: Target::Track(i),
                seq: Some(p.seq),
                part,
                duration: Some(duration),
            });
        }
        // 3. VOD: everything loaded; wait for the buffer to play out
        if self.vod_loaded() {
            if let Some(end) = self.playout.dry_at() {
                return Next::WaitUntil(end);
            }
        }
        // 4. sleep until the next reload or retry
        let wake = self
            .tracks
            .iter()
            .flat_map(|t| {
                t.due()
                    .into_iter()
                    .chain(t.pending.front().and_then(|p| p.retry_at))
            })
            .chain(full.then(|| now + Duration::from_secs_f64(level - MAX_BUFFER_SEC + 0.1)))
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        Next::WaitUntil(wake)
    }

    /// A playlist body arrived at `now` for `req` (loaded from `final_url`
    /// after redirects), the request having started at `started`. Returns the
    /// kind of playlist it was.
    pub fn on_playlist(
        &mut self,
        req: &Request,
        final_url: &Url,
        body: &[u8],
        started: Instant,
        now: Instant,
    ) -> Result<Kind, PlaylistError> {
        self.on_playlist_aged(req, final_url, body, None, started, now)
    }

    /// [`Player::on_playlist`] of a response that came with an `Age`
    /// header (a cache held it that long).
    pub fn on_playlist_aged(
        &mut self,
        req: &Request,
        final_url: &Url,
        body: &[u8],
        age: Option<Duration>,
        started: Instant,
        now: Instant,
    ) -> Result<Kind, PlaylistError> {
        self.age = age;
        let parsed = match playlist::parse(final_url, body) {
            Ok(p) => p,
            Err(e) => {
                self.on_failure(req, Failure::Playlist(e), now);
                return Err(e);
            }
        };
        match (req.target, parsed) {
            (
                Target::Root,
                Playlist::Master {
                    variants,
                    renditions,
                },
            ) => {
                self.on_master(&variants, &renditions, now);
                self.phase = Phase::Playing;
                Ok(Kind::Master)
            }
            (Target::Root, Playlist::Media(m)) => {
                self.tracks = vec![Track::new(final_url.clone(), now)];
                self.phase = Phase::Playing;
                self.apply_media(0, m, started, now);
                Ok(Kind::Playlist)
            }
            (Target::Track(i), Playlist::Media(m)) => {
                if i < self.tracks.len() {
                    self.apply_media(i, m, started, now);
                }
                Ok(Kind::Playlist)
            }
            (Target::Track(_), Playlist::Master { .. }) => {
                self.on_failure(req, Failure::Playlist(PlaylistError::NotM3u8), now);
                Err(PlaylistError::NotM3u8)
            }
        }
    }

    fn apply_media(&mut self, i: usize, mut m: Media, started: Instant, now: Instant) {
        // the player handles it (the first: attaches its media source)
        // before it asks for more
        let handling = if self.tracks.iter().any(|t| t.loaded) {
            self.cfg.pipeline.per_response
        } else {
            self.cfg.pipeline.setup
        };
        self.busy_for(handling, now);
        if !self.cfg.profile.low_latency() {
            m.low_latency = None;
            m.parts.clear();
        }
        let first = m.media_sequence;
        let last = m.last_sequence();
        let block = m.low_latency.as_ref().and_then(|ll| next_block(ll, last));
        let shared_start = self.start_seq;
        let t = &mut self.tracks[i];
        // after a reset or a variant switch nothing is known of when the
        // listed segments appeared: estimate as on a first load
        let first_load = !t.loaded || t.highest_seen.is_none();
        t.loaded = true;
        t.target_duration = m.target_duration;
        t.fail_since = None;
        t.failures = 0;
        t.retry_at = None;
        let changed = match (last, t.highest_seen) {
            (Some(l), Some(h)) => l > h,
            (Some(_), None) => true,
            (None, _) => false,
        };
        // a playlist a little behind one seen before (a stale cache or
        // another server behind a balancer) is ignored, as hls.js does; one
        // far behind means the sequence was reset
        let window = 2 * m.segments.len().max(1) as u64;
        let stale =
            matches!((last, t.highest_seen), (Some(l), Some(h)) if l < h && h - l <= window);
        if stale {
            t.next_reload = started + Duration::from_secs_f64(m.target_duration / 2.0);
            return;
        }
        if let Some(delta) = low_latency::delta(t, &m, now) {
            let refetch = delta == Event::DeltaRefetch;
            self.events.push(delta);
            if refetch {
                return;
            }
        }
        if first_load && low_latency::tune_in(t, &m, block, self.age.take(), now) {
            return;
        }
        t.reports = std::mem::take(&mut m.reports);
        t.hint = m.hint.take();
        t.full_next = false;
        t.retried_503 = false;
        t.loaded_at = Some(now);
        let ll = m.low_latency.as_ref();
        t.part_target = ll.and_then(|ll| ll.part_target);
        t.part_hold_back = queue::part_hold_back(&m);
        t.skip_until = ll
            .and_then(|ll| ll.server_control.as_ref())
            .and_then(|s| s.can_skip_until);
        // what a blocking reload asked for and the newest part, for the
        // hold time, the overshoot and the advance lag (PLAYER.md §7)
        let ends = queue::part_ends(&m, now, self.wall);
        let advanced = block.is_some() && block != t.block;
        self.marks = Some(ReloadMarks {
            blocking: t.block.is_some(),
            asked_end: t.block.and_then(|a| queue::asked_end(&m, &ends, a)),
            newest_end: ends
                .last()
                .filter(|(_, pdt)| *pdt && advanced && !first_load)
                .map(|(e, _)| *e),
        });
        let went_back = matches!((last, t.highest_seen), (Some(l), Some(h)) if l < h);
        // a viewer that starts over on the stream plays LIVE_SYNC_COUNT
        // target durations behind its live edge again (PLAYER.md §1)
        let rejoin = (LIVE_SYNC_COUNT * m.target_duration).min(MAX_BUFFER_SEC);
        if went_back {
            self.events.push(Event::SequenceReset);
            self.playout.rejoin(rejoin);
            t.next_seq = None;
            t.next_part = 0;
            t.part_sec = 0.0;
            t.pending.clear();
            t.highest_seen = None;
        }
        // the window moved past segments not loaded yet: [n, first)
        let mut far_jump = false;
        if let Some(n) = t.next_seq.filter(|n| first > *n) {
            let skipped = skipped_segments(t, n, &m, now);
            if skipped > 0 {
                self.events.push(Event::SegmentsSkipped(skipped));
            }
            self.playout.rejoin(rejoin);
            far_jump = first - n > 2 * m.segments.len().max(1) as u64;
            if far_jump {
                // far behind: start again at the live edge, as on a first load
                t.pending.clear();
                t.next_seq = None;
            } else {
                t.pending.retain(|p| p.seq >= first);
                t.next_seq = Some(first);
            }
            t.next_part = 0;
            t.part_sec = 0.0;
        }
        // where to start: on a low-latency stream PART-HOLD-BACK behind
        // its live edge, each track on its own; else as the first track
        if t.next_seq.is_none() {
            if let Some((seq, part, lead)) = queue::ll_start(&m) {
                t.next_seq = Some(seq);
                t.next_part = part;
                // the media before the start point is loaded, not played
                t.buffered -= lead;
                if i == 0 || shared_start.is_none() {
                    self.start_seq = Some(seq);
                }
            } else if !m.segments.is_empty() {
                let own = first + queue::start_index(&m) as u64;
                let seq = match shared_start {
                    Some(s)
                        if s >= first
                            && last.is_some_and(|l| s <= l)
                            && !went_back
                            && !far_jump =>
                    {
                        s
                    }
                    _ => own,
                };
                t.next_seq = Some(seq);
                if i == 0 || shared_start.is_none() {
                    self.start_seq = Some(seq);
                }
            }
        }
        if let Some(next) = t.next_seq {
            let offered = queue::offer(t, &m, &ends, next, first_load, now);
            t.more = offered.more;
            self.events
                .extend((0..offered.done).map(|_| Event::SegmentByParts));
        }
        let t = &mut self.tracks[i];
        if let Some(l) = last {
            if t.highest_seen.is_none_or(|h| l > h) {
                // the newest listed segment appeared now (on a first load
                // too: it is the live edge)
                t.newest_appeared = Some(now);
            }
            t.highest_seen = Some(t.highest_seen.map_or(l, |h| h.max(l)));
        }
        t.end_list = m.end_list;
        let wait = if changed {
            m.target_duration
        } else {
            m.target_duration / 2.0
        };
        // a blocking reload is sent as soon as the last one is answered;
        // an answer that did not get past what was asked for (a cache or
        // a server that ignores the directives) is polled at the classic
        // pace instead of asked again at once
        t.block = block;
        t.next_reload = if advanced && !m.end_list {
            now
        } else {
            started + Duration::from_secs_f64(wait)
        };
    }

    /// The player handles what came at `now` for `d` before it asks for more.
    fn busy_for(&mut self, d: Duration, now: Instant) {
        if !d.is_zero() {
            self.busy_until = Some(self.busy_until.map_or(now + d, |b| b.max(now + d)));
        }
    }

    /// A segment (or init section) finished at `now`: `bytes` of body read
    /// since the request started at `started`.
    pub fn on_segment_done(&mut self, req: &Request, bytes: u64, started: Instant, now: Instant) {
        self.busy_for(self.cfg.pipeline.per_response, now);
        let Target::Track(i) = req.target else { return };
        let Some(t) = self.tracks.get_mut(i) else {
            return;
        };
        if req.kind == Kind::Init {
            t.map_loaded = Some(req.url.clone());
            return;
        }
        let Some(p) = t.pending.front_mut() else {
            return;
        };
        if Some(p.seq) != req.seq {
            return;
        }
        let (media, ended) = match (p.load(), req.part) {
            (Load::Part(q), Some(index)) if q.index == index => {
                let q = p.parts.pop_front().expect("front part");
                t.next_part = q.index + 1;
                t.part_sec += q.duration;
                if p.done_by_parts() {
                    let seq = p.seq;
                    t.pending.pop_front();
                    t.finish_segment(seq);
                    self.events.push(Event::SegmentByParts);
                }
                (q.duration, q.ended)
            }
            (Load::Whole(s), None) => {
                // what parts loaded before left of it
                let media = (s.duration - t.part_sec).max(0.0);
                let p = t.pending.pop_front().expect("front");
                t.finish_segment(p.seq);
                (media, p.appeared)
            }
            _ => return,
        };
        t.buffered += media;
        let track_end = t.buffered;
        let total = self
            .tracks
            .iter()
            .map(|t| t.buffered)
            .fold(f64::INFINITY, f64::min);
        let latency_mark = (i == 0 && track_end > 0.0).then_some((track_end, ended));
        let mut ev = Vec::new();
        self.playout.downloaded(now, total, latency_mark, &mut ev);
        self.push_buffer_events(ev);
        // a hinted part came as it was written: not a measure of throughput
        if i == 0 && req.kind != Kind::Hint {
            self.estimator
                .sample(now.saturating_duration_since(started).as_secs_f64(), bytes);
        }
        if i == 0 {
            self.adapt(now);
        }
    }

    /// `req` failed at `now`.
    pub fn on_failure(&mut self, req: &Request, f: Failure, now: Instant) {
        if req.kind == Kind::Hint {
            return self.on_hint_failed(&f);
        }
        let timeout = self.cfg.timeout;
        let retryable = f.retryable();
        match req.target {
            Target::Root => {
                if let Phase::Root {
                    retry_at,
                    fail_since,
                    failures,
                } = &mut self.phase
                {
                    let since = *fail_since.get_or_insert(now);
                    *failures += 1;
                    if !retryable || now.saturating_duration_since(since) >= timeout {
                        self.phase = Phase::Failed;
                    } else {
                        *retry_at = Some(now + retry_delay(*failures));
                    }
                }
            }
            Target::Track(i) if req.kind == Kind::Playlist => {
                let Some(t) = self.tracks.get_mut(i) else {
                    return;
                };
                let (event, dealt_with) = low_latency::refused_reload(t, &f, now);
                self.events.extend(event);
                if dealt_with {
                    return;
                }
                let since = *t.fail_since.get_or_insert(now);
                t.failures += 1;
                if !retryable || now.saturating_duration_since(since) >= timeout {
                    self.phase = Phase::Failed;
                } else {
                    t.retry_at = Some(now + retry_delay(t.failures));
                }
            }
            Target::Track(i) => {
                let max = self.cfg.seg_max_retry;
                let Some(t) = self.tracks.get_mut(i) else {
                    return;
                };
                let Some(p) = t.pending.front_mut() else {
                    return;
                };
                let part = match p.load() {
                    Load::Part(q) => Some(q.index),
                    _ => None,
                };
                if Some(p.seq) != req.seq || (req.kind != Kind::Init && part != req.part) {
                    return;
                }
                let gone = matches!(f, Failure::Status(404 | 410));
                p.tries += 1;
                if gone || !retryable || p.tries > max {
                    // a part is passed over (its media missing), a
                    // segment left out
                    let seq = p.seq;
                    if let (Some(q), Some(_)) = (part, req.part) {
                        p.parts.pop_front();
                        p.tries = 0;
                        t.next_part = q + 1;
                        if p.done_by_parts() {
                            t.pending.pop_front();
                            t.finish_segment(seq);
                        }
                    } else {
                        t.pending.pop_front();
                        t.finish_segment(seq);
                    }
                    self.events.push(if gone {
                        Event::SegmentGone
                    } else {
                        Event::SegmentFailed
                    });
                } else {
                    p.retry_at = Some(now + retry_delay(p.tries));
                }
            }
        }
    }
}

#[cfg(test)]
mod ll_tests;
#[cfg(test)]
mod tests;
