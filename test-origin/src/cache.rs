//! Cache-Control values (SPEC §3 "Cache policy").
//!
//! Order of directives: public, max-age, stale-while-revalidate, immutable,
//! no-transform. Variant playlists live for half a segment (integer division,
//! so 1 s segments get `max-age=0`) and may be served stale for one segment.

use serde::Serialize;

use crate::config::Config;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CachePolicy {
    /// Media segments (`.ts`, `.m4s`).
    pub segment: String,
    /// The init segment of an fMP4 stream: written once when the encoder
    /// starts, so as immutable as a segment.
    pub init: String,
    /// Variant (media) playlists.
    pub manifest: String,
    /// The master playlist.
    pub master: String,
}

pub fn cache_policy(c: &Config) -> CachePolicy {
    let seg = c.hls.segment_duration;
    let segment = "public, max-age=60, immutable, no-transform".to_owned();
    CachePolicy {
        init: segment.clone(),
        segment,
        manifest: format!(
            "public, max-age={}, stale-while-revalidate={}, no-transform",
            seg / 2,
            seg
        ),
        master: "public, max-age=5, stale-while-revalidate=10, no-transform".into(),
    }
}
