//! The CMCD values of a viewer's request (PLAYER.md §8), from its state.

use std::time::Instant;

use super::{Player, Request, Target};
use crate::native::cmcd::{hundreds, Cmcd};
use crate::results::Kind;

impl Player {
    /// The CMCD values of `req` at `now` (PLAYER.md §8), but for the
    /// viewer's session and content ids: from the buffer, the throughput
    /// estimate and the playlists. Takes the buffer-starved flag.
    pub fn cmcd(&mut self, req: &Request, now: Instant) -> Cmcd {
        let t = match req.target {
            Target::Track(i) => self.tracks.get(i),
            Target::Root => None,
        };
        let started = self.playout.started();
        let mut c = Cmcd {
            ot: match req.kind {
                Kind::Master | Kind::Playlist => "m",
                Kind::Init => "i",
                Kind::Segment | Kind::Part | Kind::Hint => t.map_or("av", |t| t.media.cmcd()),
            },
            live: self.tracks.first().is_none_or(|t| !t.end_list),
            su: !started,
            tb: self.top_bandwidth.map(|b| b / 1000),
            ..Cmcd::default()
        };
        if matches!(req.kind, Kind::Segment | Kind::Part | Kind::Hint) {
            let level_ms = self.playout.level(now) * 1000.0;
            c.br = t.and_then(|t| t.bandwidth).map(|b| b / 1000);
            c.d = req.duration.map(|d| (d * 1000.0).round() as u64);
            // at 1× the buffer runs dry after its length
            (c.bl, c.dl) = if started {
                (Some(hundreds(level_ms)), Some(hundreds(level_ms)))
            } else {
                (None, None)
            };
            c.mtp = self
                .estimator
                .sampled()
                .then(|| hundreds(self.estimator.estimate() / 1000.0));
            c.bs = std::mem::take(&mut self.starved);
        }
        c
    }
}
