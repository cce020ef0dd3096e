//! The player's words: the requests it asks for, what it says to do next,
//! and the events it reports for the figures.

use std::time::{Duration, Instant};

use url::Url;

use super::SEGMENT_DEADLINE_FACTOR;
use crate::native::buffer::BufferEvent;
use crate::results::Kind;

/// Which playlist a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The URL the viewer was given (master or media: not known yet).
    Root,
    Track(usize),
}

/// A GET the player wants.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub url: Url,
    /// `Playlist` for the first request too; the answer tells if it was a master.
    pub kind: Kind,
    pub target: Target,
    /// The media sequence number of a segment (of a part's segment).
    pub seq: Option<u64>,
    /// The index of a part within its segment.
    pub part: Option<u64>,
    /// The segment's `EXTINF` (a part's duration), seconds.
    pub duration: Option<f64>,
}

impl Request {
    /// How long this request may take in all, given the swarm's `timeout`
    /// ([`SEGMENT_DEADLINE_FACTOR`]).
    pub fn deadline(&self, timeout: Duration) -> Duration {
        match self.duration {
            Some(d) if matches!(self.kind, Kind::Segment | Kind::Part | Kind::Hint) => {
                timeout.max(Duration::from_secs_f64(d * SEGMENT_DEADLINE_FACTOR))
            }
            _ => timeout,
        }
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Get(Request),
    /// Two requests at once: a blocking reload and the part its playlist
    /// hinted (the `avplayer` profile); delivered in this order.
    GetBeside(Request, Request),
    WaitUntil(Instant),
    /// A VOD playlist played to its end.
    Done,
    /// The playlist was unreachable for `timeout`: a viewer failure; the
    /// swarm restarts the viewer.
    Failed,
}

/// What happened, for the figures.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Buffer(BufferEvent),
    /// A listed segment answered 404/410 and was skipped.
    SegmentGone,
    /// A segment failed `segMaxRetry` times and was skipped.
    SegmentFailed,
    /// The window moved past segments this viewer had not loaded.
    SegmentsSkipped(u64),
    /// The media sequence went back or jumped far ahead: started again at the live edge.
    SequenceReset,
    Switch {
        up: bool,
        bandwidth: u64,
    },
    /// A segment was loaded to its end part by part.
    SegmentByParts,
    /// A hinted part loaded before it was listed was used: its duration.
    HintUsed(f64),
    /// A hinted part answered 404.
    HintGone,
    /// A segment load given up as too slow for the buffer (hls.js's
    /// emergency switch down); a `Switch` follows.
    Abandoned,
    /// A delta update (`_HLS_skip`) was merged.
    DeltaUpdate,
    /// A delta update left out segments not queued: the whole playlist is
    /// loaded at once instead.
    DeltaRefetch,
    /// A blocking reload was answered with this status (503: the server
    /// could not hold it; 400: it asked beyond the server's limits).
    BlockedReloadRefused(u16),
    /// The master playlist listed more playlists than [`MAX_TRACKS`]:
    /// these many were left out.
    VariantsNotFollowed(u64),
}
