//! The player profiles: which player a native viewer behaves like, in what
//! it asks for (PLAYER.md §6) and in what its media element does.

use std::time::Duration;

use crate::native::buffer::Resume;

common::word_enum!(
    /// Which player a native viewer behaves like on a Low-Latency HLS
    /// stream (PLAYER.md §6): `hlsjs` (blocking reloads, parts near the live
    /// edge, no preload hints), `avplayer` (the same, and the hinted part
    /// asked for beside each blocking reload) or `classic` (every LL tag
    /// ignored: polled reloads and whole segments, as a player without
    /// LL-HLS).
    PlayerProfile { Hlsjs = "hlsjs", Avplayer = "avplayer", Classic = "classic" }
);

/// What a player adds to the network's times: its own work on each
/// response and its media element's start and stalls. Zero (and any new
/// media ending a stall) for a player not modelled.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pipeline {
    /// From the first media playlist in to the first media request
    /// (attaching the media source).
    pub setup: Duration,
    /// From each response in to the next request (the browser's and the
    /// player's handling of it).
    pub per_response: Duration,
    /// Playback begins no sooner than this after the first media is in
    /// (the first transmux, its worker starting) …
    pub first_media: Duration,
    /// … and this after the media at the start point is in (its append and
    /// the element's start).
    pub append: Duration,
    /// What ends a stall.
    pub resume: Resume,
}

/// hls.js 1.7 in Chromium, from hls.js's own events and the Resource
/// Timing of its requests on this project's LL origin (200 ms parts), over
/// loopback and over a 40 ms round trip: 20–75 ms from the first playlist
/// in to the init request; each part 15 ms slower than the network alone
/// (request and handling, sequential); `playing` 130–210 ms after the
/// first part was in (its transmux, the worker starting), or 15–30 ms after
/// the part at the start point was in, when that came later. After a stall,
/// [`CHROMIUM_RESUME`].
pub const HLSJS_PIPELINE: Pipeline = Pipeline {
    setup: Duration::from_millis(40),
    per_response: Duration::from_millis(15),
    first_media: Duration::from_millis(190),
    append: Duration::from_millis(25),
    resume: CHROMIUM_RESUME,
};

/// Chromium's media element after a stall (hls.js plays in one): it plays
/// again only with more media buffered ahead each time, 0.4 s after the
/// first stall, doubling with each stall up to 3 s — the audio renderer
/// raising its playback threshold on each underflow. Seen in hls.js's own
/// events under a throttle, on 2 s fragments: after each of the first three
/// stalls it played on the next fragment (2.0 s ahead), from the fourth on
/// only on the one after (4.0 s ahead).
pub const CHROMIUM_RESUME: Resume = Resume::Doubling {
    first: 0.4,
    cap: 3.0,
};

impl PlayerProfile {
    /// Whether the Low-Latency HLS tags are followed.
    pub fn low_latency(self) -> bool {
        self != PlayerProfile::Classic
    }

    /// What the player adds to the network's times: [`HLSJS_PIPELINE`]
    /// for `hlsjs`; the others are not modelled (nothing added, and any new
    /// media ends a stall, PLAYER.md §2).
    pub fn pipeline(self) -> Pipeline {
        match self {
            PlayerProfile::Hlsjs => HLSJS_PIPELINE,
            _ => Pipeline::default(),
        }
    }
}

// the enum comes from a macro, which takes no `#[default]` on a variant
#[allow(clippy::derivable_impls)]
impl Default for PlayerProfile {
    fn default() -> Self {
        PlayerProfile::Hlsjs
    }
}
