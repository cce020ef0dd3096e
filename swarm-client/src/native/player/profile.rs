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

/// hls.js's media pipeline at the start: from its first media in to the
/// element's `playing` — the first transmux (its worker starting), the
/// appends, the seek to the start position. Measured in Chromium on this
/// project's LL origin: 86–143 ms.
pub const HLSJS_MEDIA_START: Duration = Duration::from_millis(120);

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

    /// From the first media in to playback (the player's media pipeline):
    /// [`HLSJS_MEDIA_START`] for `hlsjs`; the others are not modelled.
    pub fn media_start(self) -> Duration {
        match self {
            PlayerProfile::Hlsjs => HLSJS_MEDIA_START,
            _ => Duration::ZERO,
        }
    }

    /// What ends a stall: for `hlsjs`, [`CHROMIUM_RESUME`]; the others
    /// play again on any new media (PLAYER.md §2).
    pub fn resume(self) -> Resume {
        match self {
            PlayerProfile::Hlsjs => CHROMIUM_RESUME,
            _ => Resume::AnyMedia,
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
