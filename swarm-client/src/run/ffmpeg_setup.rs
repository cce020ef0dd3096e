//! What the FFmpeg engine learns of the FFmpeg at hand and of the stream
//! before the run: whether its HLS demuxer retries segments, and which
//! program of a master playlist is the highest or lowest variant.

use std::path::Path;
use std::time::Duration;

use common::host::find_program;

use crate::config::{Config, VariantMode};
use crate::ffmpeg_args::{Capabilities, StreamMap};

/// Whether this FFmpeg's HLS demuxer has `-seg_max_retry`.
pub fn ffmpeg_capabilities(ffmpeg: &Path) -> Capabilities {
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-h", "demuxer=hls"])
        .output();
    let seg_max_retry = out
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("seg_max_retry"))
        .unwrap_or(false);
    Capabilities { seg_max_retry }
}

/// The program of the highest or lowest bandwidth variant, by one ffprobe of
/// the master playlist.
pub fn variant_program(
    ffprobe: &Path,
    url: &str,
    mode: VariantMode,
    timeout: Duration,
) -> Result<u32, String> {
    let out = std::process::Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-rw_timeout",
            &timeout.as_micros().to_string(),
        ])
        .args([
            "-show_entries",
            "program=program_id:program_tags=variant_bitrate",
            "-of",
            "json",
            url,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let programs: Vec<(u32, u64)> = v["programs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let id = p["program_id"].as_u64()? as u32;
            let bw = p["tags"]["variant_bitrate"].as_str()?.parse().ok()?;
            Some((id, bw))
        })
        .collect();
    let pick = match mode {
        VariantMode::Highest => programs.iter().max_by_key(|p| p.1),
        _ => programs.iter().min_by_key(|p| p.1),
    };
    pick.map(|p| p.0)
        .ok_or_else(|| "the playlist has no variants with a bandwidth".to_owned())
}

/// The map of streams each viewer reads.
pub(super) fn stream_map(c: &Config, url: &str) -> StreamMap {
    match c.variant {
        VariantMode::All => StreamMap::All,
        VariantMode::First => StreamMap::First,
        VariantMode::Abr => {
            crate::log::warning(
                "variant",
                "variant `abr` needs the native engine; FFmpeg viewers read the first variant",
            );
            StreamMap::First
        }
        mode => {
            let timeout = Duration::from_secs(u64::from(c.timeout));
            let probed = find_program("ffprobe", "ffmpeg")
                .map_err(|e| e.to_string())
                .and_then(|p| variant_program(&p, url, mode, timeout));
            match probed {
                Ok(id) => {
                    println!("variant {}: program {id}", mode.as_str());
                    StreamMap::Program(id)
                }
                Err(e) => {
                    crate::log::warning(
                        "variant",
                        &format!(
                            "cannot pick the {} variant ({e}); reading the first",
                            mode.as_str()
                        ),
                    );
                    StreamMap::First
                }
            }
        }
    }
}
