//! What a media playlist adds to a track's queue: whole segments, or parts
//! near the live edge (PLAYER.md §6), and where a low-latency viewer starts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::track::{PartLoad, Pending, Track};
use super::{LIVE_SYNC_COUNT, MAX_PENDING, MAX_PENDING_URL_BYTES};
use crate::native::playlist::{Media, MediaPart};

/// Maps the playlist's program date-times (ms since the Unix epoch) to the
/// viewer's clock: the wall clock at one instant.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    pub at: Instant,
    pub unix_ms: i64,
}

impl WallClock {
    fn instant(&self, unix_ms: i64) -> Instant {
        let d = unix_ms.saturating_sub(self.unix_ms);
        let off = Duration::from_millis(d.unsigned_abs());
        if d >= 0 {
            self.at + off
        } else {
            self.at.checked_sub(off).unwrap_or(self.at)
        }
    }
}

/// Where the parts of segment `msn` are in `parts` (listed in MSN order).
fn parts_of(parts: &[MediaPart], msn: u64) -> std::ops::Range<usize> {
    parts.partition_point(|p| p.msn < msn)..parts.partition_point(|p| p.msn <= msn)
}

/// The live-edge start of a playlist: the segment holding the position
/// `LIVE_SYNC_COUNT` target durations from the end (or `EXT-X-START`).
pub(super) fn start_index(m: &Media) -> usize {
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

/// How far behind the end of its last part a low-latency viewer of `m`
/// plays: its `PART-HOLD-BACK`, else 3 part targets; `None` without parts.
pub(super) fn part_hold_back(m: &Media) -> Option<f64> {
    if m.parts.is_empty() {
        return None;
    }
    let ll = m.low_latency.as_ref()?;
    ll.server_control
        .as_ref()
        .and_then(|s| s.part_hold_back)
        .or(ll.part_target.map(|t| 3.0 * t))
}

/// Where a low-latency viewer starts in `m`: `PART-HOLD-BACK` (3 part
/// targets when not given) behind the end of the last part, at the latest
/// independent part at or before that point in its segment (hls.js starts a
/// part there, the first part of the segment when none is marked). Returns
/// the segment, the part and how far into it playback starts (seconds of
/// media loaded but not played); `None` when the playlist has no parts to
/// start at.
pub(super) fn ll_start(m: &Media) -> Option<(u64, u64, f64)> {
    if m.end_list {
        return None;
    }
    let hold = part_hold_back(m)?;
    let timeline = part_timeline(m);
    let edge = timeline.last().map(|t| t.end)?;
    let pos = (edge - hold).max(0.0);
    // the part holding the point, or the first listed
    let at = timeline
        .iter()
        .rposition(|t| t.start <= pos + 1e-9)
        .unwrap_or(0);
    let msn = m.parts[at].msn;
    let marked = m.parts.iter().any(|p| p.independent);
    let from = (0..=at)
        .rev()
        .take_while(|k| m.parts[*k].msn == msn)
        .find(|k| !marked || m.parts[*k].independent || m.parts[*k].index == 0)
        .unwrap_or(at);
    let lead = (pos - timeline[from].start).max(0.0);
    Some((msn, m.parts[from].index, lead))
}

/// Where a part lies: seconds from the start of the playlist's first
/// segment, and its end from the start of its own segment.
struct Span {
    start: f64,
    end: f64,
    end_in_segment: f64,
}

/// The span of each part of `m`.
fn part_timeline(m: &Media) -> Vec<Span> {
    let first = m.media_sequence;
    let mut seg_start = Vec::with_capacity(m.segments.len() + 1);
    let mut acc = 0.0;
    for s in &m.segments {
        seg_start.push(acc);
        acc += s.duration;
    }
    let mut out: Vec<Span> = Vec::with_capacity(m.parts.len());
    let mut prev: Option<u64> = None;
    for p in &m.parts {
        let (start, in_seg) = match (prev, out.last()) {
            (Some(msn), Some(last)) if msn == p.msn => (last.end, last.end_in_segment),
            _ => (
                p.msn
                    .checked_sub(first)
                    .and_then(|i| seg_start.get(i as usize).copied())
                    .unwrap_or(acc),
                0.0,
            ),
        };
        prev = Some(p.msn);
        out.push(Span {
            start,
            end: start + p.duration,
            end_in_segment: in_seg + p.duration,
        });
    }
    out
}

/// When the media of each part of `m` (loaded at `now`) ended, and whether
/// that is known from the program date-time: else it is when the part
/// appeared, the newest part's end now.
pub(super) fn part_ends(m: &Media, now: Instant, wall: Option<WallClock>) -> Vec<(Instant, bool)> {
    let first = m.media_sequence;
    let total: f64 = m.segments.iter().map(|s| s.duration).sum();
    let timeline = part_timeline(m);
    let edge = timeline.last().map_or(total, |t| t.end.max(total));
    let in_progress_pdt = m
        .segments
        .last()
        .and_then(|s| s.pdt_ms.map(|p| p + (s.duration * 1000.0).round() as i64));
    let pdt_of = |msn: u64| -> Option<i64> {
        match msn.checked_sub(first).map(|i| i as usize) {
            Some(i) if i < m.segments.len() => m.segments[i].pdt_ms,
            Some(i) if i == m.segments.len() => in_progress_pdt,
            _ => None,
        }
    };
    m.parts
        .iter()
        .zip(&timeline)
        .map(|(q, span)| match (pdt_of(q.msn), wall) {
            (Some(pdt), Some(w)) => (
                w.instant(pdt + (span.end_in_segment * 1000.0).round() as i64),
                true,
            ),
            _ => {
                let back = Duration::from_secs_f64((edge - span.end).max(0.0));
                (now.checked_sub(back).unwrap_or(now), false)
            }
        })
        .collect()
}

/// When the media a blocking reload asked for (`_HLS_msn`, `_HLS_part`)
/// ended, by the program date-time of `m`, the playlist it was answered
/// with: the part, part 0 of the next segment when the index is past the
/// segment's last part, the segment's last part when no part was asked
/// (`None` when its parts are not listed).
pub(super) fn asked_end(
    m: &Media,
    ends: &[(Instant, bool)],
    (msn, part): (u64, Option<u64>),
) -> Option<Instant> {
    let k = match part {
        Some(p) => {
            let find = |msn, index| {
                m.parts
                    .iter()
                    .position(|q| q.msn == msn && q.index == index)
            };
            find(msn, p).or_else(|| find(msn + 1, 0))?
        }
        // a whole segment: its last part's end, when its parts are listed
        None => parts_of(&m.parts, msn).last()?,
    };
    ends[k].1.then_some(ends[k].0)
}

/// Queues what playlist `m` (loaded at `now`) lists from segment `next` on
/// that `t` has not queued: whole segments, or the parts of those whose
/// parts are listed; and adds the parts and completion of segments queued
/// part by part before. `first_load`: nothing is known of when the listed
/// segments appeared.
/// What [`offer`] did beyond queueing.
pub(super) struct Offered {
    /// The queue is full with more listed.
    pub(super) more: bool,
    /// Segments loaded by parts that the playlist says are complete now.
    pub(super) done: usize,
}

pub(super) fn offer(
    t: &mut Track,
    m: &Media,
    ends: &[(Instant, bool)],
    next: u64,
    first_load: bool,
    now: Instant,
) -> Offered {
    let first = m.media_sequence;
    let have_until = t.pending.back().map(|p| p.seq).or(next.checked_sub(1));
    let secs = |d: f64| Duration::from_secs_f64(d.max(0.0));
    // appearance of whole segments: now for new ones; on a first load the
    // last one appeared now and earlier ones a duration apart
    let total: f64 = m.segments.iter().map(|s| s.duration).sum();
    let load = |k: usize| -> PartLoad {
        let q = &m.parts[k];
        PartLoad {
            index: q.index,
            url: q.url.clone(),
            duration: q.duration,
            ended: ends[k].0,
        }
    };
    let mut url_bytes: usize = t
        .pending
        .iter()
        .map(|p| {
            p.seg.as_ref().map_or(0, |s| s.url.as_str().len())
                + p.parts.iter().map(|x| x.url.as_str().len()).sum::<usize>()
        })
        .sum();
    let in_progress = first + m.segments.len() as u64;
    let mut more = false;
    let mut seg_end = 0.0;
    for seq in first..=in_progress {
        let k = (seq - first) as usize;
        let seg = m.segments.get(k);
        seg_end += seg.map_or(0.0, |s| s.duration);
        if seq < next {
            continue;
        }
        let listed = parts_of(&m.parts, seq);
        if seg.is_none() && listed.is_empty() {
            break;
        }
        if let Ok(at) = t.pending.binary_search_by_key(&seq, |p| p.seq) {
            // queued before: its new parts, and whether it is complete
            let p = &mut t.pending[at];
            if p.seg.is_none() {
                if let Some(s) = seg {
                    p.seg = Some(s.clone());
                    p.parts_complete = !listed.is_empty();
                }
            }
            if let Some(until) = p.parts_until {
                for k in listed.filter(|k| m.parts[*k].index >= until) {
                    let part = load(k);
                    url_bytes += part.url.as_str().len();
                    p.parts_until = Some(part.index + 1);
                    p.parts.push_back(part);
                }
            }
            continue;
        }
        if have_until.is_some_and(|h| seq <= h) {
            continue;
        }
        let from = if seq == next { t.next_part } else { 0 };
        let until = listed.clone().last().map(|k| m.parts[k].index + 1);
        let parts: VecDeque<PartLoad> = listed
            .filter(|k| m.parts[*k].index >= from)
            .map(load)
            .collect();
        url_bytes += seg.map_or(0, |s| s.url.as_str().len())
            + parts.iter().map(|x| x.url.as_str().len()).sum::<usize>();
        if !t.pending.is_empty()
            && (t.pending.len() >= MAX_PENDING || url_bytes > MAX_PENDING_URL_BYTES)
        {
            // the rest is queued from a later load
            more = true;
            break;
        }
        let appeared = if first_load {
            now.checked_sub(secs(total - seg_end)).unwrap_or(now)
        } else {
            now
        };
        t.pending.push_back(Pending {
            seq,
            map: seg.and_then(|s| s.map.clone()).or(m.map_at_end.clone()),
            seg: seg.cloned(),
            parts_until: until,
            parts_complete: until.is_some() && seg.is_some(),
            parts,
            appeared,
            tries: 0,
            retry_at: None,
        });
    }
    // segments loaded by parts that are complete now
    let mut done = 0;
    while t.pending.front().is_some_and(Pending::done_by_parts) {
        let p = t.pending.pop_front().expect("front");
        t.finish_segment(p.seq);
        done += 1;
    }
    Offered { more, done }
}
