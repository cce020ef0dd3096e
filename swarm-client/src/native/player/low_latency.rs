//! What only Low-Latency HLS viewers do (PLAYER.md §6): the player
//! profile, the delivery directives of a blocking reload, the rules for a
//! refused one, and the marks of the server's promptness (§7).

use std::time::{Duration, Instant};

use super::track::Track;
use super::Event;
use crate::native::failure::Failure;
use crate::native::ll_tags::LowLatency;
use crate::native::playlist::Media;

/// What a media playlist load tells of a Low-Latency server's promptness
/// (PLAYER.md §7), for the driver to time against the response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReloadMarks {
    /// It was a blocking reload (`_HLS_msn`): its TTFB is the hold time.
    pub blocking: bool,
    /// When the part (or segment) it asked for ended, by the program
    /// date-time: the response head after it is the overshoot.
    pub asked_end: Option<Instant>,
    /// When the newest part listed ended, by the program date-time, when
    /// the playlist brought new parts: the playlist in after it is the
    /// advance lag.
    pub newest_end: Option<Instant>,
}

/// The delivery directives of the reload after a playlist with `ll` (whose
/// last segment is `last`), when its server holds reloads: the part after
/// the last listed (past a complete segment's last it is part 0 of the
/// next, which the server works out), or the next segment when no parts
/// are listed.
pub(super) fn next_block(ll: &LowLatency, last: Option<u64>) -> Option<(u64, Option<u64>)> {
    if !ll.server_control.as_ref()?.can_block_reload {
        return None;
    }
    match ll.last_part() {
        Some((msn, part)) => Some((msn, Some(part + 1))),
        None => Some((last? + 1, None)),
    }
}

/// A blocking reload of track `t` failed with `f` at `now` (PLAYER.md §6):
/// a 503 is counted and tried again once after a part target, a 400
/// (asked beyond the server's limits) counted and followed by a plain
/// reload at once. Returns the event to count, and whether the failure is
/// dealt with (else it is one as any other).
pub(super) fn refused_reload(t: &mut Track, f: &Failure, now: Instant) -> (Option<Event>, bool) {
    if t.block.is_none() {
        return (None, false);
    }
    match f {
        Failure::Status(503) => {
            let first = !t.retried_503;
            if first {
                t.retried_503 = true;
                let wait = t.part_target.unwrap_or(t.target_duration / 2.0);
                t.retry_at = Some(now + Duration::from_secs_f64(wait));
            }
            (Some(Event::BlockedReloadRefused(503)), first)
        }
        Failure::Status(400) => {
            t.block = None;
            t.retry_at = None;
            t.next_reload = now;
            (Some(Event::BlockedReloadRefused(400)), true)
        }
        _ => (None, false),
    }
}

/// A delta update (`_HLS_skip`) `m` loaded for track `t` at `now`
/// (PLAYER.md §6): merged when it lists all the track still needs
/// (`DeltaUpdate`); when it leaves some out, the whole playlist is loaded
/// at once instead (`DeltaRefetch`: this one is not used). `None` for a
/// whole playlist.
pub(super) fn delta(t: &mut Track, m: &Media, now: Instant) -> Option<Event> {
    m.low_latency.as_ref()?.skip.as_ref()?;
    let have = match t.pending.back() {
        // being written: its completion must be listed
        Some(p) if p.seg.is_none() => Some(p.seq),
        Some(p) => Some(p.seq + 1),
        None => t.next_seq,
    };
    if have.is_none_or(|h| m.media_sequence > h) {
        t.full_next = true;
        t.next_reload = now;
        return Some(Event::DeltaRefetch);
    }
    Some(Event::DeltaUpdate)
}

/// Tune-in (draft-pantos-hls-rfc8216bis Appendix C): the first load of
/// track `t`, playlist `m` — whose blocking reload would ask for `next` —
/// came from a cache that held it for `age`, at least a part target. It
/// is not played from: the viewer asks at once for the part current now,
/// `age / PART-TARGET` parts past `next` (at most two segments, the most a
/// server is bound to wait for), and starts from that answer. Looked at
/// once per track; returns whether the playlist is set aside.
pub(super) fn tune_in(
    t: &mut Track,
    m: &Media,
    next: Option<(u64, Option<u64>)>,
    age: Option<Duration>,
    now: Instant,
) -> bool {
    if std::mem::replace(&mut t.tuned_in, true) {
        return false;
    }
    let (Some(age), Some((msn, Some(part)))) = (age, next) else {
        return false;
    };
    let Some(target) = m.low_latency.as_ref().and_then(|ll| ll.part_target) else {
        return false;
    };
    if age.as_secs_f64() < target {
        return false;
    }
    // parts a segment has: those of the last complete one, else by the
    // target durations
    let per = m
        .last_sequence()
        .map(|l| m.parts.iter().filter(|p| p.msn == l).count() as u64)
        .filter(|n| *n > 0)
        .unwrap_or_else(|| (m.target_duration / target).round().max(1.0) as u64);
    let ahead = ((age.as_secs_f64() / target) as u64).min(2 * per);
    let g = msn.saturating_mul(per).saturating_add(part + ahead);
    t.block = Some((g / per, Some(g % per)));
    t.next_reload = now;
    true
}
