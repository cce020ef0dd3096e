//! The LL-HLS server's state, sans IO: which segments and parts of each
//! rendition exist (fed chunk by chunk as the encoder writes them), the
//! media playlists made from that (full, or a delta update), and whether a
//! blocking reload can be answered now, must wait, or is a bad request
//! (draft-pantos-hls-rfc8216bis §4.4.3.7–8, §4.4.4.9, §4.4.5.2, §6.2.5.2).

use std::collections::VecDeque;
use std::fmt::Write;

use super::chunks::{Chunk, Track};

/// What every rendition's playlists share.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// EXT-X-TARGETDURATION, in seconds.
    pub target_duration: u32,
    /// PART-TARGET, in seconds: no part is longer.
    pub part_target: f64,
    /// Complete segments listed.
    pub list_size: usize,
}

impl Timing {
    /// PART-HOLD-BACK: three part targets (the spec's SHOULD).
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.part_target
    }
    /// CAN-SKIP-UNTIL: six target durations (the least the spec allows).
    pub fn can_skip_until(&self) -> f64 {
        6.0 * f64::from(self.target_duration)
    }
    /// How far ahead of the last part a blocking request may ask, in parts.
    pub fn advance_part_limit(&self) -> u64 {
        if self.part_target < 1.0 {
            (3.0 / self.part_target).floor() as u64
        } else {
            3
        }
    }
    /// How long a blocking request is held before it is answered 503.
    pub fn hold_limit_secs(&self) -> f64 {
        3.0 * f64::from(self.target_duration)
    }
}

/// A part: a byte range of its segment's file, and its bytes when they
/// were read with it (served from memory then).
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub offset: u64,
    pub len: u64,
    /// Seconds.
    pub duration: f64,
    pub independent: bool,
    pub data: Option<bytes::Bytes>,
}

/// A segment being written or written.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// The encoder's number of its file (`chunk-stream<i>-<file>.m4s`).
    pub file: u64,
    /// The encoder started again before it: a new timeline
    /// (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    pub parts: Vec<Part>,
    pub complete: bool,
    /// Decode time of its first sample, in the track's timescale.
    pub decode_time: u64,
    /// Wall-clock time of its first sample, milliseconds since the epoch.
    pub pdt_ms: u64,
    /// The whole file's bytes, once it is whole and was read (served from
    /// memory then).
    pub data: Option<bytes::Bytes>,
    /// A segment this rendition never had (`EXT-X-GAP`), of this many
    /// seconds: the encoder stopped after another rendition began it.
    pub gap: Option<f64>,
}

impl Segment {
    pub fn duration(&self) -> f64 {
        self.gap
            .unwrap_or_else(|| self.parts.iter().map(|p| p.duration).sum())
    }
}

/// One rendition of the stream.
#[derive(Clone, Debug)]
pub struct Rendition {
    pub name: String,
    pub track: Option<Track>,
    /// Oldest first; the last may be in progress.
    pub segments: VecDeque<Segment>,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuities no longer listed.
    discontinuity_sequence: u64,
    /// The next segment starts a new timeline.
    restarted: bool,
}

/// The wall clock (ms since the epoch) of the encoder's media time 0, set
/// by the first chunk of any rendition: every program date-time is counted
/// from it along each rendition's media timeline, so that the renditions'
/// date-times agree.
pub type Anchor = Option<u64>;

/// What a request's delivery directives ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub msn: Option<u64>,
    pub part: Option<u64>,
    pub skip: bool,
}

/// Whether a blocking reload can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Ready,
    Wait,
    /// A 400, with what was wrong.
    Bad(&'static str),
}

/// The largest `_HLS_msn` or `_HLS_part` value read (larger: a 400).
const MAX_DIRECTIVE: u64 = 1 << 40;

impl Directives {
    /// The delivery directives of a query string; unknown parameters are
    /// ignored. A directive that is repeated, not a decimal integer, too
    /// large, or a part without a segment is a 400.
    pub fn parse(query: &str) -> Result<Directives, &'static str> {
        let mut d = Directives::default();
        let (mut seen_msn, mut seen_part, mut seen_skip) = (false, false, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |v: &str| -> Result<u64, &'static str> {
                if v.is_empty() || v.len() > 13 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("_HLS_msn and _HLS_part take a decimal integer");
                }
                let n: u64 = v.parse().map_err(|_| "not a number")?;
                if n > MAX_DIRECTIVE {
                    return Err("_HLS_msn or _HLS_part is out of range");
                }
                Ok(n)
            };
            match k {
                "_HLS_msn" => {
                    if std::mem::replace(&mut seen_msn, true) {
                        return Err("_HLS_msn is repeated");
                    }
                    d.msn = Some(number(v)?);
                }
                "_HLS_part" => {
                    if std::mem::replace(&mut seen_part, true) {
                        return Err("_HLS_part is repeated");
                    }
                    d.part = Some(number(v)?);
                }
                "_HLS_skip" => {
                    if std::mem::replace(&mut seen_skip, true) {
                        return Err("_HLS_skip is repeated");
                    }
                    d.skip = match v {
                        "YES" | "v2" => true,
                        _ => return Err("_HLS_skip takes YES or v2"),
                    };
                }
                _ => {}
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err("_HLS_part without _HLS_msn");
        }
        Ok(d)
    }
}

impl Rendition {
    pub fn new(name: &str) -> Rendition {
        Rendition {
            name: name.to_owned(),
            track: None,
            segments: VecDeque::new(),
            discontinuity_sequence: 0,
            restarted: false,
        }
    }

    /// Chunks of segment `msn` read from its file, seen at `now_ms`; a new
    /// segment starts when its first chunk comes. `read` is what was read of
    /// the file from its byte `from` on (the chunks' bytes are in it).
    /// Returns whether anything changed.
    pub fn add_chunks(
        &mut self,
        msn: u64,
        file: u64,
        chunks: &[Chunk],
        read: Option<(u64, &bytes::Bytes)>,
        now_ms: u64,
        anchor: &mut Anchor,
    ) -> bool {
        let Some(track) = &self.track else {
            return false;
        };
        let scale = f64::from(track.timescale.max(1));
        let mut changed = false;
        for c in chunks {
            let start = *anchor.get_or_insert_with(|| {
                // the chunk was complete when seen: it ended now
                let end_ms = ((c.decode_time + c.duration) as f64 / scale * 1000.0) as u64;
                now_ms.saturating_sub(end_ms)
            });
            if self.segments.back().is_none_or(|s| s.msn != msn) {
                if self.segments.back().is_some_and(|s| s.msn > msn) {
                    // an older segment's chunks after a newer one: ignored
                    continue;
                }
                if let Some(last) = self.segments.back_mut() {
                    last.complete = true;
                }
                let since = c.decode_time as f64 / scale;
                self.segments.push_back(Segment {
                    msn,
                    file,
                    discontinuity: std::mem::take(&mut self.restarted),
                    parts: Vec::new(),
                    complete: false,
                    decode_time: c.decode_time,
                    pdt_ms: start + (since * 1000.0) as u64,
                    data: None,
                    gap: None,
                });
            }
            let seg = self.segments.back_mut().expect("just pushed");
            let data = read.and_then(|(from, b)| {
                let at = usize::try_from(c.offset.checked_sub(from)?).ok()?;
                let end = at.checked_add(usize::try_from(c.len).ok()?)?;
                (end <= b.len()).then(|| b.slice(at..end))
            });
            seg.parts.push(Part {
                offset: c.offset,
                len: c.len,
                duration: c.duration as f64 / scale,
                independent: c.independent,
                data,
            });
            changed = true;
        }
        changed
    }

    /// Marks segment `msn` complete (its file is whole); later ones too.
    pub fn complete(&mut self, msn: u64) -> bool {
        let mut changed = false;
        for s in self.segments.iter_mut().filter(|s| s.msn <= msn) {
            changed |= !s.complete;
            s.complete = true;
        }
        changed
    }

    /// Forgets segments beyond what the playlist lists and what clients may
    /// still fetch (`keep` complete ones).
    pub fn trim(&mut self, keep: usize) {
        let complete = self.segments.iter().filter(|s| s.complete).count();
        for _ in keep..complete {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
        }
    }

    /// The encoder started again: the segment it was writing ends where it
    /// stopped, and the next begins a new timeline (and a new track: the
    /// init segment is read again).
    pub fn restart(&mut self) {
        if let Some(last) = self.segments.back_mut() {
            last.complete = true;
        }
        // a segment cut before its first part has nothing to list
        if self.segments.back().is_some_and(|s| s.parts.is_empty()) {
            self.segments.pop_back();
        }
        self.restarted = true;
        self.track = None;
    }

    /// After the encoder started again: lists `like` (another rendition's
    /// segment this one never began) as a gap, so that every rendition's
    /// MSNs go on without a hole and stay aligned.
    pub fn fill_gap(&mut self, like: &Segment) {
        if self.newest().is_some_and(|n| n >= like.msn) {
            return;
        }
        self.segments.push_back(Segment {
            msn: like.msn,
            file: 0,
            discontinuity: false,
            parts: Vec::new(),
            complete: true,
            decode_time: 0,
            pdt_ms: like.pdt_ms,
            data: None,
            gap: Some(like.duration()),
        });
    }

    /// The newest MSN, complete or not.
    pub fn newest(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// The last part: (MSN, part index); `None` before the first.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        let s = self.segments.iter().rev().find(|s| !s.parts.is_empty())?;
        Some((s.msn, s.parts.len() as u64 - 1))
    }

    /// The MSN of the last complete segment.
    pub fn last_complete(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn)
    }

    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.msn == msn)
    }

    /// Keeps the bytes of complete segment `msn`, to serve from memory.
    pub fn keep_bytes(&mut self, msn: u64, data: bytes::Bytes) {
        if let Some(s) = self
            .segments
            .iter_mut()
            .find(|s| s.msn == msn && s.complete)
        {
            s.data = Some(data);
        }
    }

    /// Whether a request with `d` can be answered now (§6.2.5.2).
    pub fn block(&self, d: &Directives, t: &Timing) -> Block {
        let Some(m) = d.msn else {
            return Block::Ready;
        };
        let last_complete = self.last_complete();
        let last_part = self.last_part();
        let newest = last_part.map(|(m, _)| m).or(last_complete);
        if let Some(newest) = newest {
            if m > newest + 2 {
                return Block::Bad("_HLS_msn is more than two segments ahead");
            }
        }
        match d.part {
            None => {
                if last_complete.is_some_and(|c| c >= m) {
                    Block::Ready
                } else {
                    Block::Wait
                }
            }
            Some(p) => {
                // no segment has this many parts, even counting the limit
                let per_segment = (f64::from(t.target_duration) / t.part_target).ceil() as u64;
                if p > per_segment + t.advance_part_limit() {
                    return Block::Bad("_HLS_part is beyond the advance part limit");
                }
                // a part past a complete segment's last is part 0 of the next
                let (m, p) = match self.segment(m) {
                    Some(s) if s.complete && p >= s.parts.len() as u64 => (m + 1, 0),
                    _ => (m, p),
                };
                let Some((lm, lp)) = last_part else {
                    return Block::Wait;
                };
                if (m, p) <= (lm, lp) {
                    return Block::Ready;
                }
                // how many parts ahead: a segment of parts per target duration
                let ahead = if m == lm {
                    p - lp
                } else {
                    (m - lm) * per_segment + p - lp.min(per_segment)
                };
                if ahead > t.advance_part_limit() {
                    Block::Bad("_HLS_part is beyond the advance part limit")
                } else {
                    Block::Wait
                }
            }
        }
    }

    /// The next part the encoder writes, which the playlist hints. A
    /// segment ends at its keyframe, a target duration in: when its parts
    /// have reached that (within half a part), the next part is the next
    /// segment's first, though the encoder has not yet said the segment is
    /// whole.
    pub fn hinted(&self, t: &Timing) -> Option<(u64, u64)> {
        let s = self.segments.back()?;
        let written: f64 = s.parts.iter().map(|p| p.duration).sum();
        let full = written + t.part_target / 2.0 >= f64::from(t.target_duration);
        Some(if s.complete || full {
            (s.msn + 1, 0)
        } else {
            (s.msn, s.parts.len() as u64)
        })
    }

    /// The media playlist: the last `list_size` complete segments, the one
    /// in progress, parts of the last three target durations, the hint, and
    /// a rendition report of each of `others` (name, last part). With
    /// `skip`, segments older than CAN-SKIP-UNTIL are replaced by
    /// `EXT-X-SKIP` (a delta update).
    pub fn playlist(
        &self,
        t: &Timing,
        others: &[(String, Option<(u64, u64)>)],
        skip: bool,
    ) -> String {
        let mut o = String::new();
        let w = &mut o;
        let complete: Vec<&Segment> = self.segments.iter().filter(|s| s.complete).collect();
        let first = complete.len().saturating_sub(t.list_size);
        let listed: Vec<&Segment> = complete[first..]
            .iter()
            .copied()
            .chain(
                self.segments
                    .iter()
                    .filter(|s| !s.complete && !s.parts.is_empty()),
            )
            .collect();
        let _ = writeln!(w, "#EXTM3U");
        let _ = writeln!(w, "#EXT-X-VERSION:9");
        let _ = writeln!(w, "#EXT-X-TARGETDURATION:{}", t.target_duration);
        let _ = writeln!(
            w,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}",
            t.can_skip_until(),
            t.part_hold_back()
        );
        let _ = writeln!(w, "#EXT-X-PART-INF:PART-TARGET={:.3}", t.part_target);
        let _ = writeln!(
            w,
            "#EXT-X-MEDIA-SEQUENCE:{}",
            listed.first().map_or(0, |s| s.msn)
        );
        // counted from the first discontinuity no longer listed, or from
        // those the window hides
        let hidden = self.segments.len() - listed.len().min(self.segments.len());
        let before = self
            .segments
            .iter()
            .take(hidden)
            .filter(|s| s.discontinuity)
            .count() as u64;
        let sequence = self.discontinuity_sequence + before;
        if sequence > 0 || self.segments.iter().any(|s| s.discontinuity) {
            let _ = writeln!(w, "#EXT-X-DISCONTINUITY-SEQUENCE:{sequence}");
        }
        // a segment is skipped when its start is more than CAN-SKIP-UNTIL
        // before the end of the last complete segment
        let complete_end: f64 = listed
            .iter()
            .filter(|s| s.complete)
            .map(|s| s.duration())
            .sum();
        let mut skipped = 0;
        if skip {
            let mut start = 0.0;
            for s in listed.iter().filter(|s| s.complete) {
                if complete_end - start > t.can_skip_until() {
                    skipped += 1;
                    start += s.duration();
                } else {
                    break;
                }
            }
        }
        if skipped == 0 {
            let _ = writeln!(w, "#EXT-X-MAP:URI=\"init.mp4\"");
        } else {
            let _ = writeln!(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        for s in &listed[skipped..] {
            if s.discontinuity {
                let _ = writeln!(w, "#EXT-X-DISCONTINUITY");
            }
            let _ = writeln!(w, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(s.pdt_ms));
            // parts of the last three target durations (§6.2.2)
            if !s.complete || end_distance(&listed, s.msn) <= 3.0 * f64::from(t.target_duration) {
                for (i, p) in s.parts.iter().enumerate() {
                    let _ = writeln!(
                        w,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}.{i}.m4s\"{}",
                        p.duration,
                        s.msn,
                        if p.independent {
                            ",INDEPENDENT=YES"
                        } else {
                            ""
                        }
                    );
                }
            }
            if s.gap.is_some() {
                let _ = writeln!(w, "#EXT-X-GAP");
            }
            if s.complete {
                let _ = writeln!(w, "#EXTINF:{:.5},", s.duration());
                let _ = writeln!(w, "{}.m4s", s.msn);
            }
        }
        if let Some((m, p)) = self.hinted(t) {
            let _ = writeln!(w, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{m}.{p}.m4s\"");
        }
        for (name, last) in others {
            if let Some((m, p)) = last {
                let _ = writeln!(
                    w,
                    "#EXT-X-RENDITION-REPORT:URI=\"../{name}/stream.m3u8\",LAST-MSN={m},LAST-PART={p}"
                );
            }
        }
        o
    }
}

/// Seconds from the end of segment `msn` to the end of `listed`.
fn end_distance(listed: &[&Segment], msn: u64) -> f64 {
    listed
        .iter()
        .skip_while(|s| s.msn <= msn)
        .map(|s| s.duration())
        .sum()
}

/// `2026-12-03T17:08:33.000Z` of milliseconds since the epoch.
pub fn iso8601(ms: u64) -> String {
    common::render::rfc3339(ms, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ll::chunks::{Chunk, Track};

    /// A rendition with segments `msns`, each of `parts` 200 ms parts.
    fn rendition(msns: std::ops::Range<u64>, parts: u64) -> Rendition {
        let mut r = Rendition::new("video");
        r.track = Some(Track::of_timescale(1000));
        let mut anchor = Some(0);
        for msn in msns {
            let chunks: Vec<Chunk> = (0..parts)
                .map(|p| Chunk {
                    offset: 8 + p * 100,
                    len: 100,
                    duration: 200,
                    decode_time: (msn * parts + p) * 200,
                    independent: p == 0,
                })
                .collect();
            r.add_chunks(msn, msn, &chunks, None, 0, &mut anchor);
        }
        r
    }

    /// The hint is the part the encoder writes next: the next of the
    /// segment in progress, or, once that segment has its duration's worth
    /// of parts (the encoder has not yet said it is whole), the next
    /// segment's first.
    #[test]
    fn the_hint_moves_to_the_next_segment_when_a_segment_is_full() {
        let t = Timing {
            target_duration: 1,
            part_target: 0.2,
            list_size: 6,
        };
        // 4 of 5 parts: the fifth is next
        let r = rendition(10..11, 4);
        assert_eq!(r.hinted(&t), Some((10, 4)));
        assert!(r
            .playlist(&t, &[], false)
            .contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"10.4.m4s\""));
        // all 5, not yet complete: the next segment's first part
        let r = rendition(10..11, 5);
        assert!(!r.segment(10).unwrap().complete);
        assert_eq!(r.hinted(&t), Some((11, 0)));
        assert!(r
            .playlist(&t, &[], false)
            .contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"11.0.m4s\""));
        // marked complete early, with fewer parts: the next segment's too
        let mut r = rendition(10..11, 3);
        r.complete(10);
        assert_eq!(r.hinted(&t), Some((11, 0)));
    }

    /// An encoder restart that cut one rendition's segment before its
    /// first part: the other rendition's segment is listed here as a gap,
    /// so that the MSNs after it follow on in both.
    #[test]
    fn a_segment_one_rendition_never_began_is_a_gap() {
        let mut video = rendition(10..12, 5);
        let mut audio = rendition(10..13, 5);
        video.restart();
        audio.restart();
        let cut = audio.segments.back().cloned().unwrap();
        video.fill_gap(&cut);
        audio.fill_gap(&video.segments.back().cloned().unwrap());
        assert_eq!((video.newest(), audio.newest()), (Some(12), Some(12)));
        let gap = video.segment(12).unwrap();
        assert_eq!(gap.gap, Some(1.0));
        assert!(gap.complete && gap.parts.is_empty());
        let t = Timing {
            target_duration: 1,
            part_target: 0.2,
            list_size: 6,
        };
        let text = video.playlist(&t, &[], false);
        assert!(
            text.contains("#EXT-X-GAP\n#EXTINF:1.00000,\n12.m4s\n"),
            "{text}"
        );
        // the next segment after the restart is 13 in both, and marked
        let mut anchor = None;
        let first = [Chunk {
            offset: 8,
            len: 100,
            duration: 200,
            decode_time: 0,
            independent: true,
        }];
        // (the new encoder's init segment read again)
        video.track = Some(Track::of_timescale(1000));
        video.add_chunks(13, 1, &first, None, 0, &mut anchor);
        assert!(video.segment(13).unwrap().discontinuity);
    }
}
