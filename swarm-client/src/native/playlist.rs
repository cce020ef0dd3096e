//! Playlists as the player needs them, parsed with m3u8-rs and checked
//! against limits, so that a malformed or hostile playlist is an error for the
//! viewer that loaded it — never a panic or an unbounded allocation.

use url::Url;

use super::ll_tags::{self, LowLatency};

/// Playlist bodies longer than this are refused (the driver stops reading).
pub const MAX_PLAYLIST_BYTES: usize = 1 << 20;
/// Segments (or variants) one playlist may list.
pub const MAX_ENTRIES: usize = 10_000;
/// The longest target or segment duration accepted, in seconds.
pub const MAX_DURATION_SEC: f64 = 3600.0;

/// What is wrong with a playlist. [`PlaylistError::reason`] is one of a
/// small fixed set, so failures can be counted by it; the message (the
/// `Display`) adds the line where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("bad playlist: not UTF-8")]
    NotUtf8,
    #[error("bad playlist: not an M3U8 playlist (no #EXTM3U or unparsable)")]
    NotM3u8,
    #[error("bad playlist: larger than 1 MiB")]
    TooLarge,
    #[error("bad playlist: more than 10000 entries")]
    TooManyEntries,
    #[error("bad playlist: missing or zero EXT-X-TARGETDURATION")]
    NoTargetDuration,
    #[error("bad playlist: EXT-X-TARGETDURATION over 3600 s")]
    TargetDurationTooLong,
    #[error("bad playlist: EXTINF duration not in (0, 3600] s")]
    BadSegmentDuration,
    /// An `EXTINF` that is not a decimal number (`1e308`, `0x10`, `inf`).
    #[error("bad playlist: EXTINF duration not a decimal number of seconds (line {0})")]
    UnreadableDuration(u32),
    /// A line the playlist syntax cannot hold (a lone CR), or one the
    /// parser stopped at: the rest of the playlist would be lost.
    #[error("bad playlist: unreadable line {0}")]
    UnreadableLine(u32),
    #[error("bad playlist: a URI that cannot be resolved")]
    BadUri,
    #[error("bad playlist: a master playlist without variants")]
    NoVariants,
    #[error("bad playlist: EXT-X-MEDIA-SEQUENCE out of range")]
    BadSequence,
    /// A Low-Latency HLS tag whose attributes cannot be read.
    #[error("bad playlist: a Low-Latency HLS tag that cannot be read (line {0})")]
    BadLowLatencyTag(u32),
}

impl PlaylistError {
    /// One of each kind (lines at 0).
    pub const ALL: [PlaylistError; 13] = [
        PlaylistError::NotUtf8,
        PlaylistError::NotM3u8,
        PlaylistError::TooLarge,
        PlaylistError::TooManyEntries,
        PlaylistError::NoTargetDuration,
        PlaylistError::TargetDurationTooLong,
        PlaylistError::BadSegmentDuration,
        PlaylistError::UnreadableDuration(0),
        PlaylistError::UnreadableLine(0),
        PlaylistError::BadUri,
        PlaylistError::NoVariants,
        PlaylistError::BadSequence,
        PlaylistError::BadLowLatencyTag(0),
    ];

    /// The kind of error without its line: what failures are counted by.
    pub fn reason(&self) -> &'static str {
        match self {
            PlaylistError::UnreadableDuration(_) => {
                "bad playlist: EXTINF duration not a decimal number of seconds"
            }
            PlaylistError::UnreadableLine(_) => "bad playlist: unreadable line",
            PlaylistError::NotUtf8 => "bad playlist: not UTF-8",
            PlaylistError::NotM3u8 => {
                "bad playlist: not an M3U8 playlist (no #EXTM3U or unparsable)"
            }
            PlaylistError::TooLarge => "bad playlist: larger than 1 MiB",
            PlaylistError::TooManyEntries => "bad playlist: more than 10000 entries",
            PlaylistError::NoTargetDuration => "bad playlist: missing or zero EXT-X-TARGETDURATION",
            PlaylistError::TargetDurationTooLong => {
                "bad playlist: EXT-X-TARGETDURATION over 3600 s"
            }
            PlaylistError::BadSegmentDuration => "bad playlist: EXTINF duration not in (0, 3600] s",
            PlaylistError::BadUri => "bad playlist: a URI that cannot be resolved",
            PlaylistError::NoVariants => "bad playlist: a master playlist without variants",
            PlaylistError::BadSequence => "bad playlist: EXT-X-MEDIA-SEQUENCE out of range",
            PlaylistError::BadLowLatencyTag(_) => {
                "bad playlist: a Low-Latency HLS tag that cannot be read"
            }
        }
    }
}

/// The highest media sequence number accepted (far from overflow).
pub const MAX_SEQUENCE: u64 = u64::MAX / 4;

/// What a playlist's media segments hold, as CMCD names it (`ot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MediaType {
    /// Audio and video (a variant whose `CODECS` do not say otherwise).
    #[default]
    Muxed,
    Video,
    Audio,
    /// Subtitles or captions.
    Text,
}

impl MediaType {
    /// The CMCD object type of its segments.
    pub fn cmcd(self) -> &'static str {
        match self {
            MediaType::Muxed => "av",
            MediaType::Video => "v",
            MediaType::Audio => "a",
            MediaType::Text => "c",
        }
    }

    /// Of a variant's `CODECS`: video and no audio codec is video, audio
    /// alone audio, anything else (or none given) muxed.
    fn of_codecs(codecs: Option<&str>) -> MediaType {
        let Some(c) = codecs else {
            return MediaType::Muxed;
        };
        let has = |prefixes: &[&str]| {
            c.split(',')
                .any(|x| prefixes.iter().any(|p| x.trim().starts_with(p)))
        };
        let video = has(&["avc", "hvc", "hev", "av01", "vp09", "vp8", "dvh"]);
        let audio = has(&["mp4a", "ac-3", "ec-3", "opus", "flac", "ac-4"]);
        match (video, audio) {
            (true, false) => MediaType::Video,
            (false, true) => MediaType::Audio,
            _ => MediaType::Muxed,
        }
    }
}

/// One variant of a master playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub url: Url,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// What its segments hold (by its `CODECS`).
    pub media: MediaType,
    /// `FRAME-RATE`, frames per second, when given.
    pub frame_rate: Option<f64>,
}

/// One media segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub url: Url,
    /// `EXTINF`, seconds.
    pub duration: f64,
    /// The `EXT-X-MAP` (initialisation section) in force for this segment.
    pub map: Option<Url>,
    /// Its `EXT-X-PROGRAM-DATE-TIME` in ms since the Unix epoch (carried on
    /// from an earlier segment's by the durations between), when given.
    pub pdt_ms: Option<i64>,
}

/// One `EXT-X-PART` of a media playlist, its URI resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPart {
    /// The MSN of its segment.
    pub msn: u64,
    /// Its index within the segment, from 0.
    pub index: u64,
    pub url: Url,
    pub duration: f64,
    pub independent: bool,
}

/// A media playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Media {
    pub target_duration: f64,
    /// The media sequence number of the first segment listed (after those
    /// an `EXT-X-SKIP` left out).
    pub media_sequence: u64,
    pub segments: Vec<Segment>,
    /// `EXT-X-ENDLIST`: VOD, no more reloads.
    pub end_list: bool,
    /// `EXT-X-START:TIME-OFFSET` (negative: from the end).
    pub start_offset: Option<f64>,
    /// Its Low-Latency HLS tags, when it has any.
    pub low_latency: Option<LowLatency>,
    /// Its parts, in order (those of the segment being written last).
    /// Empty when they are byte ranges or gaps: such a playlist is played
    /// by whole segments.
    pub parts: Vec<MediaPart>,
    /// The part its `EXT-X-PRELOAD-HINT:TYPE=PART` names (not a byte
    /// range), when it lists parts: the next one, not written yet.
    pub hint: Option<Url>,
    /// The `EXT-X-MAP` in force after the last segment (that of the
    /// segment being written).
    pub map_at_end: Option<Url>,
    /// `EXT-X-RENDITION-REPORT`s: another rendition's playlist and its
    /// last segment and part, when given (at most [`MAX_REPORTS`]).
    pub reports: Vec<(Url, Option<u64>, Option<u64>)>,
}

/// Rendition reports one playlist keeps at most.
pub const MAX_REPORTS: usize = 16;

impl Media {
    /// The media sequence number of the last segment, if any.
    pub fn last_sequence(&self) -> Option<u64> {
        (self.media_sequence + self.segments.len() as u64)
            .checked_sub(1)
            .filter(|_| !self.segments.is_empty())
    }
}

/// A parsed playlist.
// one is parsed at a time and handed on: its size does not add up
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Playlist {
    /// Variants (I-frame-only ones left out) and alternative renditions with a
    /// URI (audio, subtitles), in the order listed.
    Master {
        variants: Vec<Variant>,
        renditions: Vec<(Url, MediaType)>,
    },
    Media(Media),
}

fn join(base: &Url, uri: &str) -> Result<Url, PlaylistError> {
    match base.join(uri.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(PlaylistError::BadUri),
    }
}

/// What the line scan found: the line number of each URI line.
struct Lines {
    uris: Vec<u32>,
}

/// Reads `body` line by line before m3u8-rs does, for what it would let
/// through: m3u8-rs stops at the first line it cannot parse and returns
/// what came before as a whole playlist, and it reads `EXTINF:1e308` as
/// one second titled `e308`. Lines end in LF or CRLF; a CR anywhere else
/// makes the line unreadable. An `EXTINF` duration must be a decimal
/// number (RFC 8216 §4.3.2.1: decimal-integer or decimal-floating-point).
fn scan_lines(body: &str) -> Result<Lines, PlaylistError> {
    let mut uris = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\r') {
            return Err(PlaylistError::UnreadableLine(n));
        }
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let number = rest.split(',').next().unwrap_or("").trim();
            let unsigned = number.strip_prefix('-').unwrap_or(number);
            let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
            let decimal = !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit());
            if !decimal {
                return Err(PlaylistError::UnreadableDuration(n));
            }
            // m3u8-rs keeps an f32; the number itself is checked here
            let d: f64 = number
                .parse()
                .map_err(|_| PlaylistError::UnreadableDuration(n))?;
            if !(d > 0.0 && d <= MAX_DURATION_SEC) {
                return Err(PlaylistError::BadSegmentDuration);
            }
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            if uris.len() >= MAX_ENTRIES {
                return Err(PlaylistError::TooManyEntries);
            }
            uris.push(n);
        }
    }
    Ok(Lines { uris })
}

/// m3u8-rs parsed `parsed` URI lines of the `lines.uris` there are: if it
/// stopped early, the line after the last one it took is where.
fn check_all_parsed(lines: &Lines, parsed: usize) -> Result<(), PlaylistError> {
    if parsed < lines.uris.len() {
        return Err(PlaylistError::UnreadableLine(lines.uris[parsed]));
    }
    Ok(())
}

/// Parses a playlist body loaded from `base`.
pub fn parse(base: &Url, body: &[u8]) -> Result<Playlist, PlaylistError> {
    if body.len() > MAX_PLAYLIST_BYTES {
        return Err(PlaylistError::TooLarge);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(PlaylistError::NotUtf8);
    };
    if !body.trim_ascii_start().starts_with(b"#EXTM3U") {
        return Err(PlaylistError::NotM3u8);
    }
    let lines = scan_lines(text)?;
    match m3u8_rs::parse_playlist_res(body).map_err(|_| PlaylistError::NotM3u8)? {
        m3u8_rs::Playlist::MasterPlaylist(m) => {
            if m.variants.len() + m.alternatives.len() > MAX_ENTRIES {
                return Err(PlaylistError::TooManyEntries);
            }
            // I-frame variants carry their URI in an attribute, not a line
            check_all_parsed(&lines, m.variants.iter().filter(|v| !v.is_i_frame).count())?;
            let variants = m
                .variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .map(|v| {
                    Ok(Variant {
                        url: join(base, &v.uri)?,
                        bandwidth: v.bandwidth,
                        media: MediaType::of_codecs(v.codecs.as_deref()),
                        frame_rate: v.frame_rate.filter(|f| f.is_finite() && *f > 0.0),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if variants.is_empty() {
                return Err(PlaylistError::NoVariants);
            }
            let renditions = m
                .alternatives
                .iter()
                .filter_map(|a| {
                    let media = match a.media_type {
                        m3u8_rs::AlternativeMediaType::Audio => MediaType::Audio,
                        m3u8_rs::AlternativeMediaType::Video => MediaType::Video,
                        _ => MediaType::Text,
                    };
                    Some((a.uri.as_deref()?, media))
                })
                .map(|(u, media)| Ok((join(base, u)?, media)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Playlist::Master {
                variants,
                renditions,
            })
        }
        m3u8_rs::Playlist::MediaPlaylist(p) => {
            if p.segments.len() > MAX_ENTRIES {
                return Err(PlaylistError::TooManyEntries);
            }
            check_all_parsed(&lines, p.segments.len())?;
            if p.target_duration == 0 {
                return Err(PlaylistError::NoTargetDuration);
            }
            if p.media_sequence > MAX_SEQUENCE {
                return Err(PlaylistError::BadSequence);
            }
            if p.target_duration as f64 > MAX_DURATION_SEC {
                return Err(PlaylistError::TargetDurationTooLong);
            }
            let mut map: Option<Url> = None;
            let mut pdt: Option<i64> = None;
            let mut segments = Vec::with_capacity(p.segments.len());
            for s in &p.segments {
                let d = f64::from(s.duration);
                if !(d > 0.0 && d <= MAX_DURATION_SEC) {
                    return Err(PlaylistError::BadSegmentDuration);
                }
                if let Some(m) = &s.map {
                    map = Some(join(base, &m.uri)?);
                }
                if let Some(t) = &s.program_date_time {
                    pdt = Some(t.timestamp_millis());
                }
                segments.push(Segment {
                    url: join(base, &s.uri)?,
                    duration: d,
                    map: map.clone(),
                    pdt_ms: pdt,
                });
                pdt = pdt.map(|t| t.saturating_add((d * 1000.0).round() as i64));
            }
            let low_latency = ll_tags::read(text, p.media_sequence)
                .map_err(|e| PlaylistError::BadLowLatencyTag(e.line))?;
            let parts = if low_latency
                .parts
                .iter()
                .any(|p| p.byterange.is_some() || p.gap)
            {
                Vec::new()
            } else {
                low_latency
                    .parts
                    .iter()
                    .map(|p| {
                        Ok(MediaPart {
                            msn: p.msn,
                            index: p.index,
                            url: join(base, &p.uri)?,
                            duration: p.duration,
                            independent: p.independent,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            // a delta update (EXT-X-SKIP) lists its segments after those
            // it skipped
            let media_sequence = p
                .media_sequence
                .checked_add(low_latency.skip.as_ref().map_or(0, |k| k.skipped_segments))
                .filter(|s| *s <= MAX_SEQUENCE)
                .ok_or(PlaylistError::BadSequence)?;
            let reports = low_latency
                .rendition_reports
                .iter()
                .take(MAX_REPORTS)
                .map(|r| Ok((join(base, &r.uri)?, r.last_msn, r.last_part)))
                .collect::<Result<Vec<_>, _>>()?;
            // the part hinted next, when whole parts are listed (a byte
            // range hint is not followed)
            let hint = low_latency
                .preload_hints
                .iter()
                .find(|h| h.part && h.byterange_start.is_none() && h.byterange_length.is_none())
                .filter(|_| !parts.is_empty())
                .map(|h| join(base, &h.uri))
                .transpose()?;
            let low_latency = (low_latency != LowLatency::default()).then_some(low_latency);
            Ok(Playlist::Media(Media {
                low_latency,
                parts,
                hint,
                reports,
                map_at_end: map,
                target_duration: p.target_duration as f64,
                media_sequence,
                segments,
                end_list: p.end_list,
                start_offset: p.start.map(|s| s.time_offset).filter(|o| o.is_finite()),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://origin.test/live/stream.m3u8").unwrap()
    }

    #[test]
    fn media_playlist() {
        let body =
            b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n\
#EXTINF:2.002,\nseg41.ts\n#EXTINF:2.5,\n/abs/seg42.ts\n";
        let Playlist::Media(m) = parse(&base(), body).unwrap() else {
            panic!("media expected")
        };
        assert_eq!(m.target_duration, 2.0);
        assert_eq!(m.media_sequence, 41);
        assert_eq!(m.last_sequence(), Some(42));
        assert_eq!(
            m.segments[0].url.as_str(),
            "http://origin.test/live/seg41.ts"
        );
        assert_eq!(
            m.segments[1].url.as_str(),
            "http://origin.test/abs/seg42.ts"
        );
        // live encoders write EXTINF above the target duration: accepted
        assert!((m.segments[1].duration - 2.5).abs() < 1e-6);
        assert!(!m.end_list);
    }

    #[test]
    fn low_latency_tags_are_read_and_a_bad_one_is_an_error_with_its_line() {
        let body = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6\n#EXT-X-PART-INF:PART-TARGET=0.2\n\
#EXTINF:2,\ns10.m4s\n#EXT-X-PART:DURATION=0.2,URI=\"s11.0.m4s\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s11.1.m4s\"\n";
        let Playlist::Media(m) = parse(&base(), body).unwrap() else {
            panic!("media expected")
        };
        let ll = m.low_latency.expect("LL tags");
        assert!(ll.server_control.as_ref().unwrap().can_block_reload);
        assert_eq!(ll.last_part(), Some((11, 0)));
        assert_eq!(m.segments.len(), 1);
        // a classic playlist has none
        let Playlist::Media(m) = parse(
            &base(),
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n",
        )
        .unwrap() else {
            panic!("media expected")
        };
        assert_eq!(m.low_latency, None);
        let bad = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-PART:DURATION=x,URI=\"p\"\n";
        assert_eq!(parse(&base(), bad), Err(PlaylistError::BadLowLatencyTag(5)));
    }

    #[test]
    fn master_playlist() {
        let body =
            b"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.64001f\"\nlow/stream.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhttp://other.test/hi.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframe.m3u8\"\n";
        let Playlist::Master {
            variants,
            renditions,
        } = parse(&base(), body).unwrap()
        else {
            panic!("master expected")
        };
        assert_eq!(variants.len(), 2, "{variants:?}");
        assert_eq!(variants[0].bandwidth, 800_000);
        assert_eq!(
            variants[0].url.as_str(),
            "http://origin.test/live/low/stream.m3u8"
        );
        assert_eq!(variants[1].url.as_str(), "http://other.test/hi.m3u8");
        assert_eq!(
            renditions[0],
            (
                Url::parse("http://origin.test/live/audio/en.m3u8").unwrap(),
                MediaType::Audio
            )
        );
        // what the segments hold, for CMCD: by CODECS, muxed when not given
        assert_eq!(variants[0].media, MediaType::Video);
        assert_eq!(variants[1].media, MediaType::Muxed);
        assert_eq!(
            MediaType::of_codecs(Some("avc1.64001f, mp4a.40.2")),
            MediaType::Muxed
        );
        assert_eq!(MediaType::of_codecs(Some("mp4a.40.2")), MediaType::Audio);
    }

    #[test]
    fn malformed_playlists_are_errors() {
        let check = |body: &[u8], e: PlaylistError| assert_eq!(parse(&base(), body), Err(e));
        check(b"garbage\x00\x01", PlaylistError::NotM3u8);
        check(b"<html>404</html>", PlaylistError::NotM3u8);
        check(
            b"#EXTM3U\n\xff\xfe#EXTINF:2,\na.ts\n",
            PlaylistError::NotUtf8,
        );
        check(
            b"#EXTM3U\n#EXTINF:2,\na.ts\n",
            PlaylistError::NoTargetDuration,
        );
        check(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:99999\n#EXTINF:2,\na.ts\n",
            PlaylistError::TargetDurationTooLong,
        );
        check(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-5,\na.ts\n",
            PlaylistError::BadSegmentDuration,
        );
        check(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:99999999,\na.ts\n",
            PlaylistError::BadSegmentDuration,
        );
        check(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:///etc/passwd\n",
            PlaylistError::BadUri,
        );
        check(
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:2,\na.ts\n",
            PlaylistError::BadSequence,
        );
        let huge = vec![b'#'; MAX_PLAYLIST_BYTES + 1];
        check(&huge, PlaylistError::TooLarge);
        let mut many = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n".to_vec();
        for i in 0..=MAX_ENTRIES {
            many.extend_from_slice(format!("#EXTINF:2,\ns{i}.ts\n").as_bytes());
        }
        check(&many, PlaylistError::TooManyEntries);
    }

    #[test]
    fn durations_are_decimal_numbers() {
        let check = |extinf: &str| {
            let body = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:{extinf}\na.ts\n");
            parse(&base(), body.as_bytes()).map(|p| match p {
                Playlist::Media(m) => m.segments[0].duration,
                Playlist::Master { .. } => panic!("media expected"),
            })
        };
        // m3u8-rs alone reads these as 1 s, 16 s, … with the rest as a title
        for bad in [
            "1e308,", "1E3,", "0x10,", "inf,", "NaN,", "+2,", "2.0.1,", ",", "abc",
        ] {
            assert_eq!(
                check(bad),
                Err(PlaylistError::UnreadableDuration(3)),
                "EXTINF:{bad}"
            );
        }
        assert_eq!(check("3601,"), Err(PlaylistError::BadSegmentDuration));
        assert_eq!(check("0,"), Err(PlaylistError::BadSegmentDuration));
        assert_eq!(check("-1.5,"), Err(PlaylistError::BadSegmentDuration));
        for (good, want) in [("2,", 2.0), ("2.5,title", 2.5), ("3600", 3600.0)] {
            let got = check(good).unwrap_or_else(|e| panic!("EXTINF:{good}: {e}"));
            assert!((got - want).abs() < 1e-3, "EXTINF:{good}: {got}");
        }
    }

    #[test]
    fn a_line_the_parser_cannot_read_is_an_error_with_its_number() {
        // a lone CR inside a URI line: m3u8-rs would stop there and return
        // the first segment as the whole playlist
        let body = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb\r.ts\n#EXTINF:2,\nc.ts\n";
        assert_eq!(parse(&base(), body), Err(PlaylistError::UnreadableLine(6)));
        assert_eq!(
            PlaylistError::UnreadableLine(6).to_string(),
            "bad playlist: unreadable line 6"
        );
        assert_eq!(
            PlaylistError::UnreadableLine(6).reason(),
            "bad playlist: unreadable line"
        );
        // CRLF line ends are fine
        let crlf =
            b"#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:2,\r\na.ts\r\n#EXTINF:2,\r\nb.ts\r\n";
        let Ok(Playlist::Media(m)) = parse(&base(), crlf) else {
            panic!("CRLF playlist refused")
        };
        assert_eq!(m.segments.len(), 2);
        // in a master playlist too
        let master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nb\rx.m3u8\n";
        assert_eq!(
            parse(&base(), master),
            Err(PlaylistError::UnreadableLine(5))
        );
    }
}
