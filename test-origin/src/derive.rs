//! Values computed from a config (SPEC §3, integer arithmetic, kbit/s).

use serde::Serialize;

use crate::config::{Config, SegmentType};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Derived {
    pub gop_size: u64,
    pub segment_lifetime_sec: u64,
    pub playlist_window_sec: u64,
    pub total_bitrate_kbps: u64,
    #[serde(rename = "segmentSizeKB")]
    pub segment_size_kb: u64,
    pub files_per_variant: u64,
    pub variant_count: u64,
    #[serde(rename = "storagePerVariantMB")]
    pub storage_per_variant_mb: u64,
    #[serde(rename = "totalStorageMB")]
    pub total_storage_mb: u64,
    pub total_hls_files: u64,
    pub open_file_cache_max: u64,
    #[serde(rename = "recommendedTmpfsMB")]
    pub recommended_tmpfs_mb: u64,
}

pub fn derive(c: &Config) -> Derived {
    let seg = u64::from(c.hls.segment_duration);
    let list = u64::from(c.hls.list_size);
    let delete = u64::from(c.hls.delete_threshold);
    let gop_size = u64::from(c.encoder.framerate) * seg;
    let segment_lifetime_sec = (list + delete) * seg;
    let playlist_window_sec = list * seg;
    let total_bitrate_kbps = c.video.bitrate.kbps() + c.video.audio_bitrate.kbps();
    let segment_size_kb = total_bitrate_kbps * seg / 8;
    // the playlist, the segments it lists, those kept after it, and an fMP4
    // stream's init segment
    let init = u64::from(c.hls.segment_type == SegmentType::Fmp4);
    let files_per_variant = list + delete + 1 + init;
    let variant_count = if c.multibitrate {
        c.variants.len() as u64
    } else {
        1
    };
    let storage_per_variant_mb = segment_size_kb * files_per_variant / 1024;
    let total_storage_mb = storage_per_variant_mb * variant_count;
    let total_hls_files = files_per_variant * variant_count + 1;
    let open_file_cache_max = total_hls_files * 3;
    let recommended_tmpfs_mb =
        (total_bitrate_kbps / 8 * playlist_window_sec * 2 * variant_count) / 1024 + 64;
    Derived {
        gop_size,
        segment_lifetime_sec,
        playlist_window_sec,
        total_bitrate_kbps,
        segment_size_kb,
        files_per_variant,
        variant_count,
        storage_per_variant_mb,
        total_storage_mb,
        total_hls_files,
        open_file_cache_max,
        recommended_tmpfs_mb,
    }
}
