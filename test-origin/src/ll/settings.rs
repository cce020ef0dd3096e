//! What the LL-HLS server is told, built from the origin's config — the
//! same config the FFmpeg arguments come from, so the renditions the server
//! lists are the streams the encoder writes. Written as JSON into the run's
//! directory; the server reads it at start.

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The kind of a rendition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Video,
    Audio,
}

/// One rendition: an output stream of the encoder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionSettings {
    /// Its name in URLs (`720p`, `audio`).
    pub name: String,
    /// The encoder's output stream index (`chunk-stream<i>-…`).
    pub stream: usize,
    pub kind: Kind,
    /// Peak and average bits per second (the multivariant playlist's).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub frame_rate: u32,
}

/// Everything the server needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// EXT-X-TARGETDURATION.
    pub segment_duration: u32,
    /// PART-TARGET in seconds.
    pub part_target: f64,
    /// Complete segments listed.
    pub list_size: usize,
    pub renditions: Vec<RenditionSettings>,
}

/// The LL server's settings of `c`: one video rendition per variant (or the
/// one stream), then the audio rendition. PART-TARGET is the chunk length
/// plus one AAC frame (1024 samples): the encoder closes an audio chunk at
/// the first frame boundary after the chunk length, so no part is longer.
pub fn settings(c: &Config) -> Settings {
    let fps = c.encoder.framerate;
    let mut renditions: Vec<RenditionSettings> = if c.multibitrate {
        c.variants
            .iter()
            .enumerate()
            .map(|(i, v)| RenditionSettings {
                name: v.name.to_string(),
                stream: i,
                kind: Kind::Video,
                bandwidth: (v.maxrate.kbps() + c.video.audio_bitrate.kbps()) * 1000,
                average_bandwidth: (v.bitrate.kbps() + c.video.audio_bitrate.kbps()) * 1000,
                frame_rate: fps,
            })
            .collect()
    } else {
        let v = &c.video;
        vec![RenditionSettings {
            name: "video".into(),
            stream: 0,
            kind: Kind::Video,
            bandwidth: (v.maxrate.kbps() + v.audio_bitrate.kbps()) * 1000,
            average_bandwidth: (v.bitrate.kbps() + v.audio_bitrate.kbps()) * 1000,
            frame_rate: fps,
        }]
    };
    let audio = c.video.audio_bitrate.kbps() * 1000;
    renditions.push(RenditionSettings {
        name: "audio".into(),
        stream: renditions.len(),
        kind: Kind::Audio,
        bandwidth: audio,
        average_bandwidth: audio,
        frame_rate: 0,
    });
    let aac_frame_ms = 1_024_000_u32.div_ceil(c.audio.sample_rate);
    Settings {
        segment_duration: c.hls.segment_duration,
        part_target: f64::from(c.low_latency.part_ms + aac_frame_ms) / 1000.0,
        list_size: c.hls.list_size as usize,
        renditions,
    }
}
