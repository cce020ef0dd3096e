//! What the LL-HLS server reads of FFmpeg's CMAF output, with `mp4-atom`:
//! an init segment's track (timescale, codec), and the chunks of a
//! segment file as it grows — each complete `moof`+`mdat` pair is one part,
//! with its byte range, its duration and whether it starts with a key frame.
//! Pure: bytes in, parts out; the caller reads the files.

use mp4_atom::{Any, DecodeMaybe, Header, Moof, Moov};

/// A track, from its init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub timescale: u32,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`).
    pub codec: String,
    /// Picture size of a video track.
    pub size: Option<(u16, u16)>,
    default_duration: u32,
    default_flags: u32,
}

impl Track {
    /// A track of `timescale` with nothing else known: for tests of what
    /// is built from chunks.
    #[cfg(test)]
    pub(crate) fn of_timescale(timescale: u32) -> Track {
        Track {
            timescale,
            codec: "avc1.64001f".into(),
            size: None,
            default_duration: 0,
            default_flags: 0,
        }
    }
}

/// One chunk of a segment: a `moof` and its `mdat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the segment file.
    pub offset: u64,
    pub len: u64,
    /// Duration in the track's timescale.
    pub duration: u64,
    /// Decode time of its first sample, in the track's timescale.
    pub decode_time: u64,
    /// Its first sample is a sync sample (a part that may start playback).
    pub independent: bool,
}

/// The track of an init segment (`ftyp` + `moov`).
pub fn read_init(bytes: &[u8]) -> Result<Track, String> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match Any::decode_maybe(&mut rest).map_err(|e| format!("init segment: {e}"))? {
            Some(Any::Moov(moov)) => return track(&moov),
            Some(_) => {}
            None => return Err("init segment: cut short".into()),
        }
    }
    Err("init segment: no moov box".into())
}

fn track(moov: &Moov) -> Result<Track, String> {
    let trak = moov.trak.first().ok_or("init segment: no track")?;
    let id = trak.tkhd.track_id;
    let trex = moov
        .mvex
        .as_ref()
        .and_then(|m| m.trex.iter().find(|t| t.track_id == id));
    let (mut codec, mut size) = (String::new(), None);
    if let Some(c) = trak.mdia.minf.stbl.stsd.codecs.first() {
        match c {
            mp4_atom::Codec::Avc1(avc) => {
                let a = &avc.avcc;
                codec = format!(
                    "avc1.{:02x}{:02x}{:02x}",
                    a.avc_profile_indication, a.profile_compatibility, a.avc_level_indication
                );
                size = Some((avc.visual.width, avc.visual.height));
            }
            // AAC-LC, what the encoder writes
            mp4_atom::Codec::Mp4a(_) => codec = "mp4a.40.2".into(),
            other => return Err(format!("init segment: codec {other:?} is not served")),
        }
    }
    Ok(Track {
        timescale: trak.mdia.mdhd.timescale,
        codec,
        size,
        default_duration: trex.map_or(0, |t| t.default_sample_duration),
        default_flags: trex.map_or(0, |t| t.default_sample_flags),
    })
}

/// The size of the box at the start of `bytes` (header included), when its
/// header is there; `None` for one cut short.
fn box_len(bytes: &[u8]) -> Result<Option<(mp4_atom::FourCC, u64)>, String> {
    let mut s = bytes;
    let Some(h) = Header::decode_maybe(&mut s).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let header = (bytes.len() - s.len()) as u64;
    let body = h
        .size
        .ok_or("a box that runs to the end of a growing file")? as u64;
    Ok(Some((h.kind, header + body)))
}

/// Reads the chunks of a segment file from `from` on: `bytes` is the file
/// from `from` to its current end. Returns the complete chunks and where
/// the next read starts (the first byte not yet part of a complete chunk).
/// A `styp` (or any box but `moof`/`mdat`) before a chunk is skipped.
pub fn read_chunks(track: &Track, from: u64, bytes: &[u8]) -> Result<(Vec<Chunk>, u64), String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some((kind, len)) = box_len(&bytes[at..])? {
        let len_us = usize::try_from(len).map_err(|_| "a box too big")?;
        if kind != mp4_atom::FourCC::new(b"moof") {
            if at + len_us > bytes.len() {
                break;
            }
            at += len_us;
            continue;
        }
        // a moof and the mdat after it, both whole
        let Some(moof_bytes) = bytes.get(at..at + len_us) else {
            break;
        };
        let Some((mdat, mdat_len)) = box_len(&bytes[at + len_us..])? else {
            break;
        };
        if mdat != mp4_atom::FourCC::new(b"mdat") {
            return Err(format!("a moof followed by {mdat}, not mdat"));
        }
        let total = len_us + usize::try_from(mdat_len).map_err(|_| "a box too big")?;
        if at + total > bytes.len() {
            break;
        }
        let mut s = moof_bytes;
        let moof = Moof::decode_maybe(&mut s)
            .map_err(|e| format!("moof: {e}"))?
            .ok_or("moof: cut short")?;
        let (duration, decode_time, independent) = timing(track, &moof);
        out.push(Chunk {
            offset: from + at as u64,
            len: total as u64,
            duration,
            decode_time,
            independent,
        });
        at += total;
    }
    Ok((out, from + at as u64))
}

/// Duration, first decode time and key-frame start of a chunk.
fn timing(track: &Track, moof: &Moof) -> (u64, u64, bool) {
    let Some(traf) = moof.traf.first() else {
        return (0, 0, false);
    };
    let default_duration = traf
        .tfhd
        .default_sample_duration
        .unwrap_or(track.default_duration);
    let default_flags = traf
        .tfhd
        .default_sample_flags
        .unwrap_or(track.default_flags);
    let mut duration = 0u64;
    let mut first_flags = None;
    for trun in &traf.trun {
        for s in trun.samples.iter() {
            duration += u64::from(s.duration.unwrap_or(default_duration));
            if first_flags.is_none() {
                first_flags = Some(s.flags.unwrap_or(default_flags));
            }
        }
    }
    // sample_is_non_sync_sample is bit 16 of the sample flags
    let independent = first_flags.is_some_and(|f| f & 0x0001_0000 == 0);
    let decode_time = traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time);
    (duration, decode_time, independent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::Encode;

    fn moof(seq: u32, decode_time: u64, durations: &[u32], key: bool) -> Vec<u8> {
        let samples = durations
            .iter()
            .enumerate()
            .map(|(i, d)| mp4_atom::TrunEntry {
                duration: Some(*d),
                size: Some(10),
                flags: Some(if i == 0 && key {
                    0x0200_0000
                } else {
                    0x0101_0000
                }),
                cts: None,
            })
            .collect();
        let m = Moof {
            mfhd: mp4_atom::Mfhd {
                sequence_number: seq,
            },
            traf: vec![mp4_atom::Traf {
                tfhd: mp4_atom::Tfhd {
                    track_id: 1,
                    ..Default::default()
                },
                tfdt: Some(mp4_atom::Tfdt {
                    base_media_decode_time: decode_time,
                }),
                trun: vec![mp4_atom::Trun {
                    data_offset: Some(0),
                    samples: mp4_atom::TrunSamples::Explicit(samples),
                }],
                ..Default::default()
            }],
        };
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        out
    }

    fn mdat(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        mp4_atom::Mdat { data: vec![7; n] }
            .encode(&mut out)
            .unwrap();
        out
    }

    fn track() -> Track {
        Track {
            timescale: 15360,
            codec: "avc1.42c01f".into(),
            size: Some((320, 180)),
            default_duration: 0,
            default_flags: 0,
        }
    }

    #[test]
    fn a_growing_file_gives_its_chunks_as_they_complete() {
        let mut file = Vec::new();
        mp4_atom::Styp {
            major_brand: b"msdh".into(),
            minor_version: 0,
            compatible_brands: vec![],
        }
        .encode(&mut file)
        .unwrap();
        let first_end = {
            file.extend(moof(1, 0, &[512; 6], true));
            file.extend(mdat(60));
            file.len() as u64
        };
        file.extend(moof(2, 3072, &[512; 6], false));
        file.extend(mdat(60));
        let t = track();
        // the whole file: both chunks, the first a key frame
        let (chunks, next) = read_chunks(&t, 0, &file).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(next, file.len() as u64);
        assert_eq!(chunks[0].duration, 3072);
        assert!(chunks[0].independent && !chunks[1].independent);
        assert_eq!(chunks[1].decode_time, 3072);
        assert_eq!(chunks[0].offset + chunks[0].len, chunks[1].offset);
        assert_eq!(chunks[1].offset + chunks[1].len, file.len() as u64);
        // every cut of the file: only whole chunks, and the next read starts
        // where the first incomplete one does
        for cut in 0..file.len() {
            let (got, next) = read_chunks(&t, 0, &file[..cut]).unwrap();
            let whole = usize::from(cut as u64 >= first_end);
            assert_eq!(got.len(), whole, "cut at {cut}");
            assert!(next <= cut as u64);
            // reading on from there completes the file exactly
            let (more, end) = read_chunks(&t, next, &file[next as usize..]).unwrap();
            assert_eq!(got.len() + more.len(), 2, "cut at {cut}");
            assert_eq!(end, file.len() as u64);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let t = track();
        let mut bad = moof(1, 0, &[512], true);
        bad.extend(b"\0\0\0\x10junkjunkjunk");
        assert!(read_chunks(&t, 0, &bad).is_err());
        assert!(read_init(b"\0\0\0\x08free").is_err());
        assert!(read_init(&[0xff; 3]).is_err());
    }
}
