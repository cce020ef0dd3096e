//! The Low-Latency HLS tags of a media playlist (draft-pantos-hls-rfc8216bis
//! §4.4.3.7–8, §4.4.4.9, §4.4.5.1–2), typed. m3u8-rs leaves them unparsed
//! (and drops those after the last segment line, where the parts of the
//! segment being written and the preload hint are), so they are read here
//! from the playlist's lines, with an attribute-list reader of RFC 8216
//! §4.2. Bounded like the rest of a playlist: a hostile list is an error,
//! never a panic or an unbounded allocation.

use std::collections::BTreeMap;

/// Attributes one tag may carry.
const MAX_ATTRIBUTES: usize = 64;
/// LL tags (parts, hints, reports) one playlist may hold.
pub const MAX_LL_TAGS: usize = 10_000;

/// What is wrong with an LL tag: the line and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad LL-HLS tag on line {line}: {why}")]
pub struct TagError {
    pub line: u32,
    pub why: &'static str,
}

/// An attribute's value (§4.2): a quoted string (without its quotes), or
/// anything else as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Quoted(&'a str),
    Plain(&'a str),
}

impl<'a> Value<'a> {
    fn text(&self) -> &'a str {
        match self {
            Value::Quoted(s) | Value::Plain(s) => s,
        }
    }
}

/// An attribute list (§4.2): `NAME=VALUE` pairs separated by commas; names
/// of `A-Z`, `0-9` and `-`; quoted strings may hold commas but not quotes
/// or line ends. A name given twice is an error (the spec forbids it).
pub fn attributes(list: &str) -> Result<BTreeMap<&str, Value<'_>>, &'static str> {
    let mut out = BTreeMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or("an attribute without `=`")?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("an attribute name that is not A-Z, 0-9 and -");
        }
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or("a quoted string without its closing quote")?;
            (Value::Quoted(&q[..end]), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (Value::Plain(&after[..end]), &after[end..])
        };
        rest = match after.strip_prefix(',') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err("a comma after the last attribute"),
            None if after.is_empty() => "",
            None => return Err("text after a quoted string"),
        };
        if out.len() >= MAX_ATTRIBUTES {
            return Err("more than 64 attributes");
        }
        if out.insert(name, value).is_some() {
            return Err("an attribute given twice");
        }
    }
    Ok(out)
}

type Attrs<'a> = BTreeMap<&'a str, Value<'a>>;

fn decimal(a: &Attrs, name: &str) -> Result<Option<f64>, &'static str> {
    let Some(v) = a.get(name) else {
        return Ok(None);
    };
    let s = v.text();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<f64>() {
        Ok(f) if ok && f <= 1e9 => Ok(Some(f)),
        _ => Err("a duration that is not a decimal number of seconds"),
    }
}

fn integer(a: &Attrs, name: &str) -> Result<Option<u64>, &'static str> {
    let Some(v) = a.get(name) else {
        return Ok(None);
    };
    let s = v.text();
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an integer that is not a decimal number");
    }
    s.parse().map(Some).map_err(|_| "an integer out of range")
}

fn yes(a: &Attrs, name: &str) -> bool {
    matches!(a.get(name), Some(Value::Plain("YES")))
}

fn uri<'a>(a: &Attrs<'a>) -> Result<&'a str, &'static str> {
    match a.get("URI") {
        Some(Value::Quoted(u)) if !u.is_empty() => Ok(u),
        _ => Err("no quoted URI"),
    }
}

/// A byte range `n[@o]` (§4.4.4.2).
fn byterange(a: &Attrs) -> Result<Option<(u64, Option<u64>)>, &'static str> {
    let Some(v) = a.get("BYTERANGE") else {
        return Ok(None);
    };
    let (n, o) = match v.text().split_once('@') {
        Some((n, o)) => (n, Some(o)),
        None => (v.text(), None),
    };
    let num = |s: &str| -> Result<u64, &'static str> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
            .ok_or("a byte range that is not n[@o]")
    };
    Ok(Some((num(n)?, o.map(num).transpose()?)))
}

/// `EXT-X-SERVER-CONTROL`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerControl {
    pub can_block_reload: bool,
    /// `CAN-SKIP-UNTIL`, seconds: delta updates are offered.
    pub can_skip_until: Option<f64>,
    pub can_skip_dateranges: bool,
    pub hold_back: Option<f64>,
    pub part_hold_back: Option<f64>,
}

/// `EXT-X-PART`.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The MSN of the segment it is a part of.
    pub msn: u64,
    /// Its index within that segment, from 0.
    pub index: u64,
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
    /// `BYTERANGE` length and offset.
    pub byterange: Option<(u64, Option<u64>)>,
    pub gap: bool,
}

/// `EXT-X-PRELOAD-HINT`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreloadHint {
    /// `PART` or `MAP`.
    pub part: bool,
    pub uri: String,
    pub byterange_start: Option<u64>,
    pub byterange_length: Option<u64>,
}

/// `EXT-X-RENDITION-REPORT`.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

/// `EXT-X-SKIP` of a delta update.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    pub skipped_segments: u64,
}

/// The LL tags of a media playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LowLatency {
    pub server_control: Option<ServerControl>,
    /// `EXT-X-PART-INF:PART-TARGET`, seconds.
    pub part_target: Option<f64>,
    /// Every part, in order, with the MSN of its segment: the parts listed
    /// after the last segment line are of the segment being written.
    pub parts: Vec<Part>,
    pub preload_hints: Vec<PreloadHint>,
    pub rendition_reports: Vec<RenditionReport>,
    pub skip: Option<Skip>,
}

impl LowLatency {
    /// The last part listed: (MSN, index).
    pub fn last_part(&self) -> Option<(u64, u64)> {
        self.parts.last().map(|p| (p.msn, p.index))
    }
}

/// Reads the LL tags of media playlist `text` whose first segment has
/// media sequence number `media_sequence` (segments skipped by an
/// `EXT-X-SKIP` are counted).
pub fn read(text: &str, media_sequence: u64) -> Result<LowLatency, TagError> {
    let mut out = LowLatency::default();
    let mut msn = media_sequence;
    let mut index = 0u64;
    let mut tags = 0usize;
    for (i, line) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let err = |why| TagError { line: n, why };
        let line = line.trim_end_matches('\r');
        if !line.is_empty() && !line.starts_with('#') {
            // a segment line: the parts before it were its own
            msn = msn
                .checked_add(1)
                .ok_or(err("a media sequence out of range"))?;
            index = 0;
            continue;
        }
        let Some((tag, list)) = line.split_once(':') else {
            continue;
        };
        let known = matches!(
            tag,
            "#EXT-X-SERVER-CONTROL"
                | "#EXT-X-PART-INF"
                | "#EXT-X-PART"
                | "#EXT-X-PRELOAD-HINT"
                | "#EXT-X-RENDITION-REPORT"
                | "#EXT-X-SKIP"
        );
        if !known {
            continue;
        }
        tags += 1;
        if tags > MAX_LL_TAGS {
            return Err(err("more than 10000 LL-HLS tags"));
        }
        let a = attributes(list).map_err(err)?;
        match tag {
            "#EXT-X-SERVER-CONTROL" => {
                out.server_control = Some(ServerControl {
                    can_block_reload: yes(&a, "CAN-BLOCK-RELOAD"),
                    can_skip_until: decimal(&a, "CAN-SKIP-UNTIL").map_err(err)?,
                    can_skip_dateranges: yes(&a, "CAN-SKIP-DATERANGES"),
                    hold_back: decimal(&a, "HOLD-BACK").map_err(err)?,
                    part_hold_back: decimal(&a, "PART-HOLD-BACK").map_err(err)?,
                });
            }
            "#EXT-X-PART-INF" => {
                let t = decimal(&a, "PART-TARGET")
                    .map_err(err)?
                    .filter(|t| *t > 0.0)
                    .ok_or(err("EXT-X-PART-INF without a PART-TARGET"))?;
                out.part_target = Some(t);
            }
            "#EXT-X-PART" => {
                let duration = decimal(&a, "DURATION")
                    .map_err(err)?
                    .ok_or(err("EXT-X-PART without a DURATION"))?;
                out.parts.push(Part {
                    msn,
                    index,
                    duration,
                    uri: uri(&a).map_err(err)?.to_owned(),
                    independent: yes(&a, "INDEPENDENT"),
                    byterange: byterange(&a).map_err(err)?,
                    gap: yes(&a, "GAP"),
                });
                index += 1;
            }
            "#EXT-X-PRELOAD-HINT" => {
                let part = match a.get("TYPE") {
                    Some(Value::Plain("PART")) => true,
                    Some(Value::Plain("MAP")) => false,
                    _ => return Err(err("EXT-X-PRELOAD-HINT without TYPE=PART or MAP")),
                };
                out.preload_hints.push(PreloadHint {
                    part,
                    uri: uri(&a).map_err(err)?.to_owned(),
                    byterange_start: integer(&a, "BYTERANGE-START").map_err(err)?,
                    byterange_length: integer(&a, "BYTERANGE-LENGTH").map_err(err)?,
                });
            }
            "#EXT-X-RENDITION-REPORT" => {
                out.rendition_reports.push(RenditionReport {
                    uri: uri(&a).map_err(err)?.to_owned(),
                    last_msn: integer(&a, "LAST-MSN").map_err(err)?,
                    last_part: integer(&a, "LAST-PART").map_err(err)?,
                });
            }
            "#EXT-X-SKIP" => {
                let skipped = integer(&a, "SKIPPED-SEGMENTS")
                    .map_err(err)?
                    .ok_or(err("EXT-X-SKIP without SKIPPED-SEGMENTS"))?;
                msn = msn
                    .checked_add(skipped)
                    .ok_or(err("SKIPPED-SEGMENTS out of range"))?;
                out.skip = Some(Skip {
                    skipped_segments: skipped,
                });
            }
            _ => unreachable!("matched above"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A playlist in the form of the draft's low-latency example (§9):
    /// 4 s segments of 1 s parts (byte ranges of the segment being
    /// written at the end), a preload hint, rendition reports.
    const EXAMPLE: &str = "#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-VERSION:6
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:4.00008,
fileSequence266.mp4
#EXTINF:4.00008,
fileSequence267.mp4
#EXT-X-PART:DURATION=0.33334,URI=\"filePart268.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart268.1.mp4\"
#EXTINF:4.00008,
fileSequence268.mp4
#EXT-X-PART:DURATION=0.33334,URI=\"filePart269.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"fileSequence269.mp4\",BYTERANGE=\"20000@0\"
#EXT-X-PART:DURATION=0.33334,URI=\"fileSequence269.mp4\",BYTERANGE=20000@20000
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart269.3.mp4\"
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=269,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"../4M/waitForMSN.php\",LAST-MSN=269,LAST-PART=1
";

    #[test]
    fn the_tags_of_a_low_latency_playlist() {
        let ll = read(EXAMPLE, 266).unwrap();
        let sc = ll.server_control.clone().unwrap();
        assert!(sc.can_block_reload);
        assert_eq!(sc.part_hold_back, Some(1.0));
        assert_eq!(sc.can_skip_until, Some(12.0));
        assert_eq!(sc.hold_back, None);
        assert_eq!(ll.part_target, Some(0.33334));
        let at: Vec<(u64, u64)> = ll.parts.iter().map(|p| (p.msn, p.index)).collect();
        // the parts before segment 268's line are its own; those after the
        // last line are of 269, being written
        assert_eq!(at, [(268, 0), (268, 1), (269, 0), (269, 1), (269, 2)]);
        assert!(ll.parts[0].independent && !ll.parts[1].independent);
        assert_eq!(ll.parts[3].byterange, Some((20000, Some(0))));
        assert_eq!(ll.parts[4].byterange, Some((20000, Some(20000))));
        assert_eq!(ll.last_part(), Some((269, 2)));
        assert_eq!(
            ll.preload_hints,
            [PreloadHint {
                part: true,
                uri: "filePart269.3.mp4".into(),
                byterange_start: None,
                byterange_length: None
            }]
        );
        assert_eq!(ll.rendition_reports.len(), 2);
        assert_eq!(ll.rendition_reports[1].uri, "../4M/waitForMSN.php");
        assert_eq!(
            (
                ll.rendition_reports[1].last_msn,
                ll.rendition_reports[1].last_part
            ),
            (Some(269), Some(1))
        );
        assert_eq!(ll.skip, None);
    }

    #[test]
    fn a_delta_update_counts_the_skipped_segments() {
        let delta = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:266\n\
#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n#EXTINF:4.00008,\nfileSequence268.mp4\n\
#EXT-X-PART:DURATION=0.33334,URI=\"filePart269.0.mp4\",INDEPENDENT=YES\n";
        let ll = read(delta, 266).unwrap();
        assert_eq!(
            ll.skip,
            Some(Skip {
                skipped_segments: 2
            })
        );
        assert_eq!(ll.last_part(), Some((269, 0)));
    }

    #[test]
    fn attribute_lists_as_rfc_8216_writes_them() {
        let a = attributes("TYPE=PART,URI=\"a,b.mp4\",BYTERANGE-START=10").unwrap();
        assert_eq!(a["TYPE"], Value::Plain("PART"));
        assert_eq!(a["URI"], Value::Quoted("a,b.mp4"));
        assert_eq!(a["BYTERANGE-START"], Value::Plain("10"));
        assert!(attributes("").unwrap().is_empty());
        for bad in [
            "URI",
            "uri=\"x\"",
            "URI=\"x",
            "URI=\"x\"y",
            "A=1,",
            "A=1,A=2",
            "=1",
        ] {
            assert!(attributes(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_ATTRIBUTES).map(|i| format!("A{i}=1")).collect();
        assert!(attributes(&many.join(",")).is_err());
    }

    #[test]
    fn hostile_tags_are_errors_with_their_line() {
        let check = |tag: &str| {
            let body = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n{tag}\n");
            read(&body, 0).unwrap_err()
        };
        assert_eq!(check("#EXT-X-PART:URI=\"p.mp4\"").line, 3);
        for bad in [
            "#EXT-X-PART:DURATION=1e308,URI=\"p.mp4\"",
            "#EXT-X-PART:DURATION=0.3",
            "#EXT-X-PART:DURATION=0.3,URI=\"p.mp4\",BYTERANGE=\"x@1\"",
            "#EXT-X-PART-INF:PART-TARGET=0",
            "#EXT-X-PRELOAD-HINT:URI=\"p.mp4\"",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p\",BYTERANGE-START=-1",
            "#EXT-X-RENDITION-REPORT:URI=\"r\",LAST-MSN=99999999999999999999",
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=18446744073709551615",
            "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=inf",
        ] {
            let e = check(bad);
            assert_eq!(e.line, 3, "{bad}: {e}");
        }
        let mut many = String::from("#EXTM3U\n");
        for i in 0..=MAX_LL_TAGS {
            many += &format!("#EXT-X-PART:DURATION=0.2,URI=\"p{i}.mp4\"\n");
        }
        assert!(read(&many, 0).unwrap_err().why.contains("10000"));
    }
}
