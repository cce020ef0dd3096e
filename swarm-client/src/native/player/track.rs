//! One playlist a viewer follows (a variant or a rendition), the segments
//! it has queued, and the retry backoff inside a viewer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use url::Url;

use crate::native::playlist::{Media, MediaType, Segment};

/// A segment queued for loading: whole, or part by part near the live
/// edge (PLAYER.md §6).
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) seq: u64,
    /// The segment once a playlist lists it complete (`EXTINF`); `None`
    /// while it is being written and only its parts are listed.
    pub(super) seg: Option<Segment>,
    /// The initialisation section it needs.
    pub(super) map: Option<Url>,
    /// Loaded by parts: those listed and not loaded yet, in order.
    pub(super) parts: VecDeque<PartLoad>,
    /// Loaded by parts: the index of the next part a playlist may add.
    pub(super) parts_until: Option<u64>,
    /// Loaded by parts, and the playlist that listed the segment complete
    /// listed its parts too: once they are in, the segment is.
    pub(super) parts_complete: bool,
    /// When the end of the segment appeared (whole segments; §2).
    pub(super) appeared: Instant,
    pub(super) tries: u32,
    pub(super) retry_at: Option<Instant>,
}

/// One part to load.
#[derive(Debug, PartialEq)]
pub(super) struct PartLoad {
    pub(super) index: u64,
    pub(super) url: Url,
    pub(super) duration: f64,
    /// When its media ended, by the playlist's program date-time (or its
    /// appearance when there is none): the live latency's reference (§7).
    pub(super) ended: Instant,
}

/// A hinted part loaded before a playlist listed it (`avplayer`).
#[derive(Debug, PartialEq)]
pub(super) struct Preloaded {
    pub(super) url: Url,
    pub(super) bytes: u64,
    pub(super) started: Instant,
}

/// What loading a queued segment means next.
#[derive(Debug, PartialEq)]
pub(super) enum Load<'a> {
    Part(&'a PartLoad),
    /// The whole segment (or what its loaded parts left of it).
    Whole(&'a Segment),
    /// Loaded by parts, all listed ones in: wait for the next playlist.
    Waiting,
}

impl Pending {
    pub(super) fn by_parts(&self) -> bool {
        self.parts_until.is_some()
    }

    pub(super) fn load(&self) -> Load<'_> {
        match (self.parts.front(), &self.seg) {
            (Some(p), _) => Load::Part(p),
            (None, Some(s)) if !self.by_parts() || !self.parts_complete => Load::Whole(s),
            _ => Load::Waiting,
        }
    }

    /// Ready to be requested at `now`.
    pub(super) fn loadable(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|r| r <= now) && self.load() != Load::Waiting
    }

    /// Loaded by parts to its end.
    pub(super) fn done_by_parts(&self) -> bool {
        self.by_parts() && self.parts.is_empty() && self.seg.is_some() && self.parts_complete
    }
}

#[derive(Debug)]
pub(super) struct Track {
    pub(super) url: Url,
    pub(super) loaded: bool,
    pub(super) target_duration: f64,
    pub(super) next_seq: Option<u64>,
    /// The next part of segment `next_seq` to load (0 before any), and the
    /// media seconds of its parts loaded.
    pub(super) next_part: u64,
    pub(super) part_sec: f64,
    pub(super) highest_seen: Option<u64>,
    /// When the segment `highest_seen` appeared.
    pub(super) newest_appeared: Option<Instant>,
    pub(super) pending: VecDeque<Pending>,
    pub(super) next_reload: Instant,
    pub(super) end_list: bool,
    pub(super) fail_since: Option<Instant>,
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    /// Media seconds of this track downloaded (from the start position:
    /// below 0 while the part it started at is loaded up to it).
    pub(super) buffered: f64,
    pub(super) map_loaded: Option<Url>,
    /// The last playlist listed more segments than were queued: load it
    /// again when the queue runs out (even a VOD one).
    pub(super) more: bool,
    /// The server holds reloads (`CAN-BLOCK-RELOAD=YES`): the next reload
    /// asks for this MSN and part (`_HLS_msn`, `_HLS_part`).
    pub(super) block: Option<(u64, Option<u64>)>,
    /// `PART-TARGET`, seconds, of a Low-Latency playlist.
    pub(super) part_target: Option<f64>,
    /// How far behind the last part a Low-Latency viewer plays, seconds.
    pub(super) part_hold_back: Option<f64>,
    /// `CAN-SKIP-UNTIL`, seconds: the server gives delta updates.
    pub(super) skip_until: Option<f64>,
    /// When the playlist held was loaded.
    pub(super) loaded_at: Option<Instant>,
    /// The next load must be whole (a delta update left something out).
    pub(super) full_next: bool,
    /// A blocking reload answered 503 was retried once already.
    pub(super) retried_503: bool,
    /// The first load was looked at for its `Age` (Appendix C tune-in).
    pub(super) tuned_in: bool,
    /// What its segments hold, and its `BANDWIDTH` (a variant's), for CMCD.
    pub(super) media: MediaType,
    pub(super) bandwidth: Option<u64>,
    /// The rendition reports of the last playlist: another rendition's
    /// URL and its last segment and part.
    pub(super) reports: Vec<(Url, Option<u64>, Option<u64>)>,
    /// The part the last playlist hinted (`EXT-X-PRELOAD-HINT`), and a
    /// hinted part loaded before a playlist listed it (`avplayer`).
    pub(super) hint: Option<Url>,
    pub(super) preloaded: Option<Preloaded>,
}

impl Track {
    pub(super) fn new(url: Url, now: Instant) -> Self {
        Track {
            url,
            loaded: false,
            target_duration: 0.0,
            next_seq: None,
            next_part: 0,
            part_sec: 0.0,
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
            block: None,
            part_target: None,
            part_hold_back: None,
            skip_until: None,
            loaded_at: None,
            full_next: false,
            retried_503: false,
            tuned_in: false,
            media: MediaType::default(),
            bandwidth: None,
            reports: Vec::new(),
            hint: None,
            preloaded: None,
        }
    }

    /// The URL of this track's playlist load at `now`: with the delivery
    /// directives of a blocking reload when the server holds them, and
    /// `_HLS_skip=YES` when it gives delta updates and the playlist held is
    /// younger than half the skip boundary (draft-pantos-hls-rfc8216bis
    /// §6.2.5.1; `_HLS_msn`, `_HLS_part`, `_HLS_skip` in that order, so
    /// that caches key on one form).
    pub(super) fn reload_url(&self, now: Instant) -> Url {
        let mut url = self.url.clone();
        let skip = match (self.skip_until, self.loaded_at) {
            (Some(until), Some(at)) if !self.full_next => {
                now.saturating_duration_since(at).as_secs_f64() < until / 2.0
            }
            _ => false,
        };
        if self.block.is_some() || skip {
            let mut q = url.query_pairs_mut();
            if let Some((msn, part)) = self.block {
                q.append_pair("_HLS_msn", &msn.to_string());
                if let Some(p) = part {
                    q.append_pair("_HLS_part", &p.to_string());
                }
            }
            if skip {
                q.append_pair("_HLS_skip", "YES");
            }
        }
        url
    }

    /// An ABR switch to the playlist at `url`, at `now`: what was queued
    /// is dropped (the position kept), and the first load of the new
    /// playlist blocks at the last segment and part its rendition report
    /// gave, when the last playlist had one (PLAYER.md §6).
    pub(super) fn switch_to(&mut self, url: Url, now: Instant) {
        self.block = self
            .reports
            .iter()
            .find(|r| r.0 == url)
            .and_then(|r| Some((r.1?, r.2)));
        self.url = url;
        self.pending.clear();
        self.highest_seen = None;
        self.retry_at = None;
        self.loaded_at = None;
        self.next_reload = now;
    }

    /// Segment `seq` is loaded: the next is wanted, from its start.
    pub(super) fn finish_segment(&mut self, seq: u64) {
        self.next_seq = Some(seq + 1);
        self.next_part = 0;
        self.part_sec = 0.0;
    }

    /// When this track's playlist should be loaded next (`None`: never).
    pub(super) fn due(&self) -> Option<Instant> {
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
pub(super) enum Phase {
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
pub(super) fn skipped_segments(t: &Track, next: u64, m: &Media, now: Instant) -> u64 {
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
pub(super) fn retry_delay(failures: u32) -> Duration {
    let ms = 250.0 * 1.7f64.powi(failures.saturating_sub(1).min(20) as i32);
    Duration::from_millis(ms.min(5000.0) as u64)
}
