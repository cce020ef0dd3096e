//! One native viewer as a sans-IO state machine (PLAYER.md §1): it is told
//! what arrived and when, and answers what to fetch next or when to wake up.
//! The async driver (`viewer.rs`) does the IO; tests drive it with a virtual
//! clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use url::Url;

use super::abr::{self, Estimator};
use super::buffer::{BufferEvent, Playout, Qoe};
use super::playlist::{self, Media, Playlist, PlaylistError, Segment};
use crate::config::VariantMode;
use crate::results::Kind;

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

/// The longest request target (path and query) the HTTP stack can send
/// (the `http` crate's limit on a URI): a longer URL is a failure of its
/// own, never requested.
pub const MAX_REQUEST_TARGET: usize = u16::MAX as usize - 1;

/// Which playlist a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The URL the viewer was given (master or media: not known yet).
    Root,
    Track(usize),
}

/// A GET the player wants.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub url: Url,
    /// `Playlist` for the first request too; the answer tells if it was a master.
    pub kind: Kind,
    pub target: Target,
    /// The media sequence number of a segment.
    pub seq: Option<u64>,
    /// The segment's `EXTINF`, seconds (for the download ratio).
    pub duration: Option<f64>,
    /// An `EXT-X-MAP` initialisation section rather than a media segment.
    pub init: bool,
}

impl Request {
    /// How long this request may take in all, given the swarm's `timeout`
    /// ([`SEGMENT_DEADLINE_FACTOR`]).
    pub fn deadline(&self, timeout: Duration) -> Duration {
        match self.duration {
            Some(d) if self.kind == Kind::Segment => {
                timeout.max(Duration::from_secs_f64(d * SEGMENT_DEADLINE_FACTOR))
            }
            _ => timeout,
        }
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Get(Request),
    WaitUntil(Instant),
    /// A VOD playlist played to its end.
    Done,
    /// The playlist was unreachable for `timeout`: a viewer failure; the
    /// swarm restarts the viewer.
    Failed,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    Status(u16),
    Timeout,
    Connect,
    /// Reset, closed early or a protocol error.
    Broken,
    Playlist(PlaylistError),
    TooManyRedirects,
    /// A scheme the engine does not speak.
    Unsupported,
    /// The TLS handshake failed (e.g. a certificate not trusted).
    Tls,
    /// The URL is longer than an HTTP request line may be here: no
    /// request was sent, and none will be.
    UrlTooLong,
}

impl Failure {
    /// A short, fixed message (failures are counted by it).
    pub fn message(&self) -> String {
        match self {
            Failure::Status(s) => format!("HTTP {s}"),
            Failure::Timeout => "timeout".into(),
            Failure::Connect => "connection refused or unreachable".into(),
            Failure::Broken => "connection closed or broken mid-response".into(),
            Failure::Playlist(e) => e.reason().into(),
            Failure::TooManyRedirects => "more than 5 redirects".into(),
            Failure::Unsupported => "unsupported URL scheme".into(),
            Failure::Tls => "TLS handshake failed (certificate not trusted? see --ca-file)".into(),
            Failure::UrlTooLong => format!(
                "URL too long (over {} bytes): not requested",
                MAX_REQUEST_TARGET
            ),
        }
    }

    /// The messages of the failures counted by reason (`errors{reason}`):
    /// every kind but HTTP statuses, timeouts and refused connections.
    pub fn reasons() -> Vec<String> {
        let mut r: Vec<String> = [
            Failure::Broken,
            Failure::TooManyRedirects,
            Failure::Unsupported,
            Failure::Tls,
            Failure::UrlTooLong,
        ]
        .iter()
        .map(Failure::message)
        .collect();
        r.extend(PlaylistError::ALL.iter().map(|e| e.reason().to_owned()));
        r
    }

    /// The message with its details (a playlist error's line), for a
    /// person reading one failure.
    pub fn detail(&self) -> String {
        match self {
            Failure::Playlist(e) => e.to_string(),
            other => other.message(),
        }
    }

    /// Whether trying the same request again could end otherwise.
    pub fn retryable(&self) -> bool {
        !matches!(self, Failure::UrlTooLong | Failure::Unsupported)
    }
}

/// What happened, for the figures.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Buffer(BufferEvent),
    /// A listed segment answered 404/410 and was skipped.
    SegmentGone,
    /// A segment failed `segMaxRetry` times and was skipped.
    SegmentFailed,
    /// The window moved past segments this viewer had not loaded.
    SegmentsSkipped(u64),
    /// The media sequence went back or jumped far ahead: started again at the live edge.
    SequenceReset,
    Switch {
        up: bool,
        bandwidth: u64,
    },
    /// The master playlist listed more playlists than [`MAX_TRACKS`]:
    /// these many were left out.
    VariantsNotFollowed(u64),
}

/// How the player is set up.
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    pub url: Url,
    pub variant: VariantMode,
    /// Retries of one segment before it is skipped.
    pub seg_max_retry: u32,
    /// How long a playlist may stay unreachable before the viewer fails.
    pub timeout: Duration,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    seg: Segment,
    appeared: Instant,
    tries: u32,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
struct Track {
    url: Url,
    loaded: bool,
    target_duration: f64,
    next_seq: Option<u64>,
    highest_seen: Option<u64>,
    /// When the segment `highest_seen` appeared.
    newest_appeared: Option<Instant>,
    pending: VecDeque<Pending>,
    next_reload: Instant,
    end_list: bool,
    fail_since: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Media seconds of this track downloaded.
    buffered: f64,
    map_loaded: Option<Url>,
    /// The last playlist listed more segments than were queued: load it
    /// again when the queue runs out (even a VOD one).
    more: bool,
}

impl Track {
    fn new(url: Url, now: Instant) -> Self {
        Track {
            url,
            loaded: false,
            target_duration: 0.0,
            next_seq: None,
            highest_seen: None,
            newest_appeared: None,
            pending: VecDeque::new(),
            next_reload: now,
            end_list: false,
            fail_since: None,
            failures: 0,
            retry_at: None,
            buffered: 0.0,
            map_loaded: None,
            more: false,
        }
    }

    /// When this track's playlist should be loaded next (`None`: never).
    fn due(&self) -> Option<Instant> {
        if let Some(r) = self.retry_at {
            return Some(r);
        }
        if self.more && self.pending.is_empty() {
            return Some(self.next_reload);
        }
        if self.end_list && self.loaded {
            return None;
        }
        Some(self.next_reload)
    }
}

#[derive(Debug)]
enum Phase {
    Root {
        retry_at: Option<Instant>,
        fail_since: Option<Instant>,
        failures: u32,
    },
    Playing,
    Done,
    Failed,
}

/// How many segments a viewer whose next wanted segment is `next` missed
/// when playlist `m` (loaded at `now`) starts past it. Those listed before
/// and not loaded are missed for certain. For the numbers never listed,
/// between the newest seen and the new window's first: when there are
/// about as many as segment durations fit in the time between them, the
/// numbering ran on and each is a segment missed; when there are far more,
/// the encoder restarted and numbers its segments from the clock
/// (`-hls_start_number_source epoch` numbers them by the second, whatever
/// their duration), and the count is the segment durations that fit.
fn skipped_segments(t: &Track, next: u64, m: &Media, now: Instant) -> u64 {
    let first = m.media_sequence;
    let jumped = first - next;
    let (Some(newest), Some(before)) = (t.highest_seen, t.newest_appeared) else {
        return jumped;
    };
    let listed_before = (newest + 1).clamp(next, first) - next;
    let unseen = first.saturating_sub(newest + 1);
    let d = m.target_duration.max(1e-3);
    // the window's last segment appeared about now, its first the listed
    // durations before it
    let listed: f64 = m.segments.iter().map(|s| s.duration).sum();
    let last_d = m.segments.last().map_or(d, |s| s.duration);
    let first_at = now
        .checked_sub(Duration::from_secs_f64((listed - last_d).max(0.0)))
        .unwrap_or(now);
    let slots = first_at.saturating_duration_since(before).as_secs_f64() / d;
    let by_time = (slots.round() as u64).saturating_sub(1);
    let believable = unseen as f64 <= slots.ceil() + 2.0;
    listed_before
        + if believable {
            unseen
        } else {
            by_time.min(unseen)
        }
}

/// The backoff of retries inside a viewer: 250 ms × 1.7ⁿ up to 5 s.
fn retry_delay(failures: u32) -> Duration {
    let ms = 250.0 * 1.7f64.powi(failures.saturating_sub(1).min(20) as i32);
    Duration::from_millis(ms.min(5000.0) as u64)
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
}

impl Player {
    /// A viewer about to make its first request at `now`.
    pub fn new(cfg: PlayerConfig, now: Instant) -> Self {
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
            playout: Playout::new(now),
            start_seq: None,
            events: Vec::new(),
        }
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

    fn push_buffer_events(&mut self, ev: Vec<BufferEvent>) {
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
                        duration: None,
                        init: false,
                    }),
                };
            }
            Phase::Playing => {}
        }
        // 1. a playlist reload that is due
        for (i, t) in self.tracks.iter().enumerate() {
            if t.due().is_some_and(|d| d <= now) {
                return Next::Get(Request {
                    url: t.url.clone(),
                    kind: Kind::Playlist,
                    target: Target::Track(i),
                    seq: None,
                    duration: None,
                    init: false,
                });
            }
        }
        // 2. the next segment of the track with the least media in, unless
        // the buffer is full
        let level = self.playout.level(now);
        let full = self.playout.started() && level >= MAX_BUFFER_SEC;
        let mut best: Option<(usize, f64)> = None;
        for (i, t) in self.tracks.iter().enumerate() {
            if let Some(p) = t.pending.front() {
                if !full
                    && p.retry_at.is_none_or(|r| r <= now)
                    && best.is_none_or(|b| t.buffered < b.1)
                {
                    best = Some((i, t.buffered));
                }
            }
        }
        if let Some((i, _)) = best {
            let t = &self.tracks[i];
            let p = t.pending.front().expect("pending segment");
            if let Some(map) = &p.seg.map {
                if t.map_loaded.as_ref() != Some(map) {
                    return Next::Get(Request {
                        url: map.clone(),
                        kind: Kind::Segment,
                        target: Target::Track(i),
                        seq: Some(p.seq),
                        duration: None,
                        init: true,
                    });
                }
            }
            return Next::Get(Request {
                url: p.seg.url.clone(),
                kind: Kind::Segment,
                target: Target::Track(i),
                seq: Some(p.seq),
                duration: Some(p.seg.duration),
                init: false,
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
                let mut ladder: Vec<(Url, u64)> = variants
                    .iter()
                    .map(|v| (v.url.clone(), v.bandwidth))
                    .collect();
                let urls: Vec<Url> = match self.cfg.variant {
                    VariantMode::All => {
                        let mut u: Vec<Url> = variants.iter().map(|v| v.url.clone()).collect();
                        for r in renditions {
                            if !u.contains(&r) {
                                u.push(r);
                            }
                        }
                        u
                    }
                    VariantMode::First => vec![variants[0].url.clone()],
                    VariantMode::Highest => {
                        vec![ladder
                            .iter()
                            .max_by_key(|v| v.1)
                            .expect("variants")
                            .0
                            .clone()]
                    }
                    VariantMode::Lowest => {
                        vec![ladder
                            .iter()
                            .min_by_key(|v| v.1)
                            .expect("variants")
                            .0
                            .clone()]
                    }
                    VariantMode::Abr => {
                        ladder.sort_by_key(|v| v.1);
                        let bws: Vec<u64> = ladder.iter().map(|v| v.1).collect();
                        self.current = abr::initial(&bws);
                        vec![ladder[self.current].0.clone()]
                    }
                };
                if self.cfg.variant == VariantMode::Abr {
                    self.ladder = ladder;
                }
                // a frame of the stream: the longest gap no one sees
                if let Some(fps) = variants
                    .iter()
                    .find(|v| Some(&v.url) == urls.first())
                    .and_then(|v| v.frame_rate)
                {
                    self.playout.set_frame(Duration::from_secs_f64(1.0 / fps));
                }
                if urls.len() > MAX_TRACKS {
                    self.events
                        .push(Event::VariantsNotFollowed((urls.len() - MAX_TRACKS) as u64));
                }
                self.tracks = urls
                    .into_iter()
                    .take(MAX_TRACKS)
                    .map(|u| Track::new(u, now))
                    .collect();
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

    /// The live-edge start of a playlist: the segment holding the position
    /// `LIVE_SYNC_COUNT` target durations from the end (or `EXT-X-START`).
    fn start_index(m: &Media) -> usize {
        let total: f64 = m.segments.iter().map(|s| s.duration).sum();
        let pos = match m.start_offset {
            Some(o) if o >= 0.0 => o,
            Some(o) => total + o,
            None if m.end_list => 0.0,
            None => total - LIVE_SYNC_COUNT * m.target_duration,
        }
        .max(0.0);
        let mut acc = 0.0;
        for (i, s) in m.segments.iter().enumerate() {
            if pos < acc + s.duration - 1e-6 {
                return i;
            }
            acc += s.duration;
        }
        m.segments.len().saturating_sub(1)
    }

    fn apply_media(&mut self, i: usize, m: Media, started: Instant, now: Instant) {
        let first = m.media_sequence;
        let last = m.last_sequence();
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
        let went_back = matches!((last, t.highest_seen), (Some(l), Some(h)) if l < h);
        // a viewer that starts over on the stream plays LIVE_SYNC_COUNT
        // target durations behind its live edge again (PLAYER.md §1)
        let rejoin = (LIVE_SYNC_COUNT * m.target_duration).min(MAX_BUFFER_SEC);
        if went_back {
            self.events.push(Event::SequenceReset);
            self.playout.rejoin(rejoin);
            t.next_seq = None;
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
        }
        // where to start
        if t.next_seq.is_none() && !m.segments.is_empty() {
            let own = first + Self::start_index(&m) as u64;
            let seq = match shared_start {
                Some(s)
                    if s >= first && last.is_some_and(|l| s <= l) && !went_back && !far_jump =>
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
        if let Some(next) = t.next_seq {
            let have_until = t.pending.back().map(|p| p.seq).or(next.checked_sub(1));
            let t = &mut self.tracks[i];
            // appearance time: now for new segments; on a first load the
            // last one appeared now and earlier ones a duration apart
            let mut appeared_at = Vec::with_capacity(m.segments.len());
            let mut back = 0.0;
            for s in m.segments.iter().rev() {
                appeared_at.push(if first_load {
                    now.checked_sub(Duration::from_secs_f64(back))
                        .unwrap_or(now)
                } else {
                    now
                });
                back += s.duration;
            }
            appeared_at.reverse();
            let mut url_bytes: usize = t.pending.iter().map(|p| p.seg.url.as_str().len()).sum();
            t.more = false;
            for (k, s) in m.segments.into_iter().enumerate() {
                let seq = first + k as u64;
                if seq >= next && have_until.is_none_or(|h| seq > h) {
                    url_bytes += s.url.as_str().len();
                    if !t.pending.is_empty()
                        && (t.pending.len() >= MAX_PENDING || url_bytes > MAX_PENDING_URL_BYTES)
                    {
                        // the rest is queued from a later load
                        t.more = true;
                        break;
                    }
                    t.pending.push_back(Pending {
                        seq,
                        seg: s,
                        appeared: appeared_at[k],
                        tries: 0,
                        retry_at: None,
                    });
                }
            }
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
        t.next_reload = started + Duration::from_secs_f64(wait);
    }

    /// A segment (or init section) finished at `now`: `bytes` of body read
    /// since the request started at `started`.
    pub fn on_segment_done(&mut self, req: &Request, bytes: u64, started: Instant, now: Instant) {
        let Target::Track(i) = req.target else { return };
        let Some(t) = self.tracks.get_mut(i) else {
            return;
        };
        if req.init {
            t.map_loaded = Some(req.url.clone());
            return;
        }
        let Some(p) = t.pending.front() else { return };
        if Some(p.seq) != req.seq {
            return;
        }
        let p = t.pending.pop_front().expect("front");
        t.next_seq = Some(p.seq + 1);
        t.buffered += p.seg.duration;
        let track_end = t.buffered;
        let total = self
            .tracks
            .iter()
            .map(|t| t.buffered)
            .fold(f64::INFINITY, f64::min);
        let latency_mark = (i == 0).then_some((track_end, p.appeared));
        let mut ev = Vec::new();
        self.playout.downloaded(now, total, latency_mark, &mut ev);
        self.push_buffer_events(ev);
        if !self.ladder.is_empty() && i == 0 {
            self.estimator
                .sample(now.saturating_duration_since(started).as_secs_f64(), bytes);
            let bws: Vec<u64> = self.ladder.iter().map(|v| v.1).collect();
            let next = abr::choose(&bws, self.current, self.estimator.estimate());
            if next != self.current {
                self.events.push(Event::Switch {
                    up: next > self.current,
                    bandwidth: bws[next],
                });
                self.current = next;
                let t = &mut self.tracks[0];
                t.url = self.ladder[next].0.clone();
                t.pending.clear();
                t.highest_seen = None;
                t.retry_at = None;
                t.next_reload = now;
            }
        }
    }

    /// `req` failed at `now`.
    pub fn on_failure(&mut self, req: &Request, f: Failure, now: Instant) {
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
                if Some(p.seq) != req.seq {
                    return;
                }
                let gone = matches!(f, Failure::Status(404 | 410));
                p.tries += 1;
                if gone || !retryable || p.tries > max {
                    let p = t.pending.pop_front().expect("front");
                    t.next_seq = Some(p.seq + 1);
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
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn cfg(variant: VariantMode) -> PlayerConfig {
        PlayerConfig {
            url: url("http://o.test/live/stream.m3u8"),
            variant,
            seg_max_retry: 2,
            timeout: Duration::from_secs(10),
        }
    }

    /// A live media playlist of `n` 2 s segments from `seq0`.
    fn media(seq0: u64, n: u64, end: bool) -> Vec<u8> {
        let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq0}\n");
        for q in seq0..seq0 + n {
            s += &format!("#EXTINF:2.000,\nseg{q}.ts\n");
        }
        if end {
            s += "#EXT-X-ENDLIST\n";
        }
        s.into_bytes()
    }

    fn get(n: Next) -> Request {
        match n {
            Next::Get(r) => r,
            other => panic!("expected a GET, got {other:?}"),
        }
    }

    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn live_edge_start_reload_timing_and_order() {
        let t0 = Instant::now();
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        assert_eq!(r.target, Target::Root);
        let final_url = r.url.clone();
        let k = p
            .on_playlist(&r, &final_url, &media(100, 10, false), t0, at(t0, 0.01))
            .unwrap();
        assert_eq!(k, Kind::Playlist);
        // 3 target durations from the end of 100..=109: seq 107
        let mut got = Vec::new();
        let mut now = at(t0, 0.01);
        for _ in 0..3 {
            let r = get(p.next(now));
            assert_eq!(r.kind, Kind::Segment);
            got.push(r.seq.unwrap());
            now += Duration::from_millis(10);
            p.on_segment_done(&r, 1000, now - Duration::from_millis(10), now);
        }
        assert_eq!(got, vec![107, 108, 109]);
        // nothing left: wait for the reload one target duration after the load began
        assert_eq!(p.next(now), Next::WaitUntil(at(t0, 2.0)));
        // an unchanged playlist: the next reload half a target duration later
        let r = get(p.next(at(t0, 2.0)));
        assert_eq!(r.kind, Kind::Playlist);
        p.on_playlist(
            &r,
            &final_url,
            &media(100, 10, false),
            at(t0, 2.0),
            at(t0, 2.01),
        )
        .unwrap();
        assert_eq!(p.next(at(t0, 2.01)), Next::WaitUntil(at(t0, 3.0)));
        // a changed one: the new segment, once, then a full target duration
        let r = get(p.next(at(t0, 3.0)));
        p.on_playlist(
            &r,
            &final_url,
            &media(101, 10, false),
            at(t0, 3.0),
            at(t0, 3.01),
        )
        .unwrap();
        let r = get(p.next(at(t0, 3.01)));
        assert_eq!(r.seq, Some(110));
        p.on_segment_done(&r, 1000, at(t0, 3.01), at(t0, 3.02));
        assert_eq!(p.next(at(t0, 3.02)), Next::WaitUntil(at(t0, 5.0)));
        let ev: Vec<Event> = p.drain_events().collect();
        assert!(
            matches!(ev[0], Event::Buffer(BufferEvent::Startup(_))),
            "{ev:?}"
        );
    }

    #[test]
    fn gone_skipped_and_retried_segments() {
        let t0 = Instant::now();
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        p.on_playlist(&r, &u, &media(0, 6, false), t0, t0).unwrap();
        // seq 3: 404 → gone, next is 4
        let r = get(p.next(t0));
        assert_eq!(r.seq, Some(3));
        p.on_failure(&r, Failure::Status(404), t0);
        let r = get(p.next(t0));
        assert_eq!(r.seq, Some(4));
        // 503 twice: retried with backoff; a third time: skipped (segMaxRetry 2)
        p.on_failure(&r, Failure::Status(503), t0);
        assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 0.25)));
        let r = get(p.next(at(t0, 0.25)));
        assert_eq!(r.seq, Some(4));
        p.on_failure(&r, Failure::Timeout, at(t0, 0.25));
        let r = get(p.next(at(t0, 1.0)));
        p.on_failure(&r, Failure::Broken, at(t0, 1.0));
        let r = get(p.next(at(t0, 1.0)));
        assert_eq!(r.seq, Some(5));
        p.on_segment_done(&r, 10, at(t0, 1.0), at(t0, 1.1));
        // the window jumps by 5: 6..=10 listed, next wanted 6: nothing skipped;
        // then a reload listing 12.. skips 11
        let r = get(p.next(at(t0, 2.0)));
        p.on_playlist(&r, &u, &media(6, 5, false), at(t0, 2.0), at(t0, 2.0))
            .unwrap();
        let r = get(p.next(at(t0, 2.0)));
        assert_eq!(r.seq, Some(6));
        let ev: Vec<Event> = p.drain_events().collect();
        assert!(
            ev.contains(&Event::SegmentGone) && ev.contains(&Event::SegmentFailed),
            "{ev:?}"
        );
        assert!(
            !ev.iter().any(|e| matches!(e, Event::SegmentsSkipped(_))),
            "{ev:?}"
        );
        // pending 6..=10; the window moves to 12..=16: 6..=10 lost, 11 never listed
        let r2 = Request {
            kind: Kind::Playlist,
            target: Target::Track(0),
            seq: None,
            duration: None,
            init: false,
            url: u.clone(),
        };
        p.on_playlist(&r2, &u, &media(12, 5, false), at(t0, 4.0), at(t0, 4.0))
            .unwrap();
        let ev: Vec<Event> = p.drain_events().collect();
        assert!(ev.contains(&Event::SegmentsSkipped(6)), "{ev:?}");
        assert_eq!(get(p.next(at(t0, 4.0))).seq, Some(12));
        // a playlist a little behind (a stale cache): ignored, no reset
        p.on_playlist(&r2, &u, &media(10, 5, false), at(t0, 5.0), at(t0, 5.0))
            .unwrap();
        let ev: Vec<Event> = p
            .drain_events()
            .filter(|e| !matches!(e, Event::Buffer(_)))
            .collect();
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(get(p.next(at(t0, 5.0))).seq, Some(12));
        // a media sequence far ahead (an encoder restarted, numbering from
        // the clock): not a reset; the segments missed are 12..=16 (listed,
        // not loaded) and, counted by time, those between 16 (appeared at
        // 4 s) and the new window's first (12 s): at 6, 8 and 10 s; the
        // viewer starts again at the live edge
        p.on_playlist(&r2, &u, &media(5000, 5, false), at(t0, 20.0), at(t0, 20.0))
            .unwrap();
        let ev: Vec<Event> = p
            .drain_events()
            .filter(|e| !matches!(e, Event::Buffer(_)))
            .collect();
        assert_eq!(ev, vec![Event::SegmentsSkipped(5 + 3)]);
        assert_eq!(get(p.next(at(t0, 20.0))).seq, Some(5002));
        // a media sequence that goes back: a reset
        p.on_playlist(&r2, &u, &media(100, 5, false), at(t0, 21.0), at(t0, 21.0))
            .unwrap();
        let ev: Vec<Event> = p.drain_events().collect();
        assert!(ev.contains(&Event::SequenceReset), "{ev:?}");
    }

    /// FFmpeg numbers segments from the clock (`-hls_start_number_source
    /// epoch`): one number a second, whatever the segment duration. A
    /// restarted encoder's numbers jump by the seconds since the first
    /// start, not by the segments missed; a viewer counts what it missed in
    /// media time, for 1 s and 2 s segments alike.
    #[test]
    fn an_encoder_restart_counts_the_segments_missed_for_any_duration() {
        for d in [1u64, 2, 4] {
            let t0 = Instant::now();
            let epoch = 1_000_000u64;
            let list = 5u64;
            let playlist = |first: u64, n: u64| {
                let mut s =
                    format!("#EXTM3U\n#EXT-X-TARGETDURATION:{d}\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
                for q in first..first + n {
                    s += &format!("#EXTINF:{d}.000,\nseg{q}.ts\n");
                }
                s.into_bytes()
            };
            // the first encoder, started at t0 - 60 s: at time t it has
            // written (60 + t) / d segments numbered from the epoch second
            let before = |t: f64| {
                let written = ((60.0 + t) / d as f64) as u64;
                playlist(epoch + written.saturating_sub(list), list.min(written))
            };
            let mut p = Player::new(cfg(VariantMode::All), t0);
            let mut now = t0;
            // 30 s of play, then the encoder is away 6 s and starts again,
            // numbering from the clock: epoch + 60 + 36
            let restart = 36.0;
            let mut skipped = 0;
            let mut resets = 0;
            while now < at(t0, 60.0) {
                let t = (now - t0).as_secs_f64();
                match p.next(now) {
                    Next::Get(r) if r.kind == Kind::Playlist => {
                        // the new encoder's first segment is written a
                        // duration after it starts; until then the last
                        // playlist of the old one is served
                        let written = ((t - restart).max(0.0) / d as f64) as u64;
                        let body = if t < 30.0 {
                            before(t)
                        } else if written == 0 {
                            before(30.0)
                        } else {
                            let first = epoch + 60 + restart as u64;
                            playlist(first + written.saturating_sub(list), written.min(list))
                        };
                        p.on_playlist(&r, &r.url.clone(), &body, now, now).unwrap();
                    }
                    Next::Get(r) => p.on_segment_done(&r, 1000, now, now),
                    Next::WaitUntil(w) => now = w,
                    other => panic!("{other:?}"),
                }
                for e in p.drain_events() {
                    match e {
                        Event::SegmentsSkipped(n) => skipped += n,
                        Event::SequenceReset => resets += 1,
                        _ => {}
                    }
                }
            }
            assert_eq!(resets, 0, "{d} s segments");
            // media from 30 s to 36 s is missing: about 6 / d segments
            let want = 6 / d;
            assert!(
                skipped + 1 >= want && skipped <= want + 1,
                "{d} s segments: {skipped} skipped, about {want} expected"
            );
        }
    }

    #[test]
    fn unreachable_playlist_fails_after_timeout() {
        let t0 = Instant::now();
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let mut now = t0;
        let mut tries = 0;
        loop {
            match p.next(now) {
                Next::Get(r) => {
                    tries += 1;
                    p.on_failure(&r, Failure::Connect, now);
                }
                Next::WaitUntil(t) => now = t,
                Next::Failed => break,
                Next::Done => panic!("not done"),
            }
            assert!(now < at(t0, 30.0));
        }
        assert!(now >= at(t0, 10.0) && now < at(t0, 16.0), "{:?}", now - t0);
        assert!(tries > 3, "{tries}");
    }

    #[test]
    fn vod_starts_at_the_first_segment_and_ends() {
        let t0 = Instant::now();
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        p.on_playlist(&r, &u, &media(0, 3, true), t0, t0).unwrap();
        for want in 0..3 {
            let r = get(p.next(t0));
            assert_eq!(r.seq, Some(want));
            p.on_segment_done(&r, 1, t0, t0);
        }
        // 6 s of media buffered: the viewer plays it out, then it is done
        assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 6.0)));
        assert_eq!(p.next(at(t0, 6.0)), Next::Done);
        let q = p.qoe(at(t0, 7.0));
        assert_eq!(q.rebuffer_count, 0, "the end is not a stall");
        assert!((q.play_time.as_secs_f64() - 6.0).abs() < 1e-6);
    }

    #[test]
    fn master_variant_choice_and_abr_switching() {
        let master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhi.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=400000\nlo.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nmid.m3u8\n";
        let t0 = Instant::now();
        for (mode, want) in [
            (VariantMode::First, vec!["hi.m3u8"]),
            (VariantMode::Highest, vec!["hi.m3u8"]),
            (VariantMode::Lowest, vec!["lo.m3u8"]),
            (VariantMode::All, vec!["hi.m3u8", "lo.m3u8", "mid.m3u8"]),
            (VariantMode::Abr, vec!["lo.m3u8"]),
        ] {
            let mut p = Player::new(cfg(mode), t0);
            let r = get(p.next(t0));
            let u = r.url.clone();
            assert_eq!(p.on_playlist(&r, &u, master, t0, t0), Ok(Kind::Master));
            let mut urls = Vec::new();
            for _ in 0..want.len() {
                let r = get(p.next(t0));
                urls.push(r.url.path().rsplit('/').next().unwrap().to_owned());
                p.on_playlist(&r, &r.url.clone(), &media(0, 10, false), t0, t0)
                    .unwrap();
            }
            assert_eq!(urls, want, "{mode:?}");
        }
        // abr against a live window that moves one 2 s segment every 2 s:
        // fast downloads switch up one step at a time, slow ones down
        let mut p = Player::new(cfg(VariantMode::Abr), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        p.on_playlist(&r, &u, master, t0, t0).unwrap();
        let mut now = t0;
        let play =
            |p: &mut Player, now: &mut Instant, segments: usize, bytes: u64, took: Duration| {
                let mut switches = Vec::new();
                let mut done = 0;
                while done < segments {
                    match p.next(*now) {
                        Next::Get(r) if r.kind == Kind::Playlist => {
                            let seq0 = (*now - t0).as_secs() / 2;
                            p.on_playlist(&r, &r.url.clone(), &media(seq0, 10, false), *now, *now)
                                .unwrap();
                        }
                        Next::Get(r) => {
                            p.on_segment_done(&r, bytes, *now, *now + took);
                            *now += took;
                            done += 1;
                        }
                        Next::WaitUntil(t) => *now = t,
                        other => panic!("{other:?}"),
                    }
                    switches.extend(
                        p.drain_events()
                            .filter(|e| matches!(e, Event::Switch { .. })),
                    );
                }
                switches
            };
        // 500 kB in 0.5 s: 8 Mbit/s
        let up = play(&mut p, &mut now, 6, 500_000, Duration::from_millis(500));
        assert_eq!(
            up,
            vec![
                Event::Switch {
                    up: true,
                    bandwidth: 1_000_000
                },
                Event::Switch {
                    up: true,
                    bandwidth: 2_000_000
                },
            ]
        );
        assert_eq!(p.current_bandwidth(), Some(2_000_000));
        // throttled: 50 kB in 1.5 s (0.27 Mbit/s)
        let down = play(&mut p, &mut now, 8, 50_000, Duration::from_millis(1500));
        assert!(
            matches!(down.first(), Some(Event::Switch { up: false, .. })),
            "{down:?}"
        );
        assert_eq!(p.current_bandwidth(), Some(400_000));
    }

    #[test]
    fn a_viewer_follows_at_most_max_tracks_and_says_how_many_it_left() {
        let t0 = Instant::now();
        let mut master = String::from("#EXTM3U\n");
        for i in 0..1000 {
            master += &format!("#EXT-X-STREAM-INF:BANDWIDTH={}\nv{i}.m3u8\n", 1000 + i);
        }
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        p.on_playlist(&r, &u, master.as_bytes(), t0, t0).unwrap();
        let ev: Vec<Event> = p.drain_events().collect();
        assert_eq!(
            ev,
            vec![Event::VariantsNotFollowed(1000 - MAX_TRACKS as u64)]
        );
        let mut asked = std::collections::BTreeSet::new();
        for _ in 0..MAX_TRACKS {
            let r = get(p.next(t0));
            assert_eq!(r.kind, Kind::Playlist);
            asked.insert(r.url.to_string());
            p.on_playlist(&r, &r.url.clone(), &media(0, 3, false), t0, t0)
                .unwrap();
        }
        assert_eq!(asked.len(), MAX_TRACKS);
        // every track loaded: what comes next is a segment, no other playlist
        assert_eq!(get(p.next(t0)).kind, Kind::Segment);
    }

    #[test]
    fn a_long_vod_playlist_is_queued_in_turns() {
        let t0 = Instant::now();
        let n = 3 * MAX_PENDING as u64 + 10;
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        let body = media(0, n, true);
        p.on_playlist(&r, &u, &body, t0, t0).unwrap();
        assert_eq!(p.tracks[0].pending.len(), MAX_PENDING);
        // every segment once, in order, the playlist loaded again each time
        // the queue ran out
        let mut now = t0;
        let mut want = 0;
        let mut reloads = 0;
        while want < n {
            match p.next(now) {
                Next::Get(r) if r.kind == Kind::Playlist => {
                    reloads += 1;
                    p.on_playlist(&r, &u, &body, now, now).unwrap();
                    assert!(p.tracks[0].pending.len() <= MAX_PENDING);
                }
                Next::Get(r) => {
                    assert_eq!(r.seq, Some(want));
                    want += 1;
                    p.on_segment_done(&r, 1, now, now);
                }
                Next::WaitUntil(t) => now = t,
                other => panic!("{other:?} at segment {want}"),
            }
        }
        assert_eq!(reloads, 3);
        assert!(p.tracks[0].due().is_none(), "all queued: no more reloads");
    }

    #[test]
    fn a_url_too_long_is_skipped_at_once_not_retried() {
        let t0 = Instant::now();
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        p.on_playlist(&r, &u, &media(0, 4, false), t0, t0).unwrap();
        let r = get(p.next(t0));
        assert_eq!(r.seq, Some(1));
        p.on_failure(&r, Failure::UrlTooLong, t0);
        let ev: Vec<Event> = p.drain_events().collect();
        assert!(ev.contains(&Event::SegmentFailed), "{ev:?}");
        assert_eq!(get(p.next(t0)).seq, Some(2));
        // a playlist whose URL cannot be sent: the viewer fails at once
        let r = Request {
            url: u.clone(),
            kind: Kind::Playlist,
            target: Target::Track(0),
            seq: None,
            duration: None,
            init: false,
        };
        p.on_failure(&r, Failure::UrlTooLong, t0);
        assert_eq!(p.next(t0), Next::Failed);
    }

    #[test]
    fn deadlines_are_the_timeout_or_a_multiple_of_the_segment() {
        let r = |kind, duration| Request {
            url: url("http://o.test/a"),
            kind,
            target: Target::Root,
            seq: None,
            duration,
            init: false,
        };
        let timeout = Duration::from_secs(5);
        assert_eq!(r(Kind::Playlist, None).deadline(timeout), timeout);
        assert_eq!(r(Kind::Segment, Some(1.0)).deadline(timeout), timeout);
        assert_eq!(
            r(Kind::Segment, Some(6.0)).deadline(timeout),
            Duration::from_secs(24)
        );
    }
}
