//! Preload hints (PLAYER.md §6), as the `avplayer` profile follows them:
//! the part a playlist's `EXT-X-PRELOAD-HINT` names is asked for beside
//! the blocking reload that waits for it — the server streams it as it is
//! written — and its bytes are kept until a playlist lists the part, which
//! is then not loaded again.

use std::time::Instant;

use super::io::{Event, Request, Target};
use super::profile::PlayerProfile;
use super::track::{Load, Preloaded, Track};
use super::Player;
use crate::native::failure::Failure;
use crate::results::Kind;

/// The hint request of track `i` to send beside its blocking reload, for
/// the `avplayer` profile: the hinted part, unless it is in already.
pub(super) fn beside_reload(t: &Track, i: usize, profile: PlayerProfile) -> Option<Request> {
    if profile != PlayerProfile::Avplayer {
        return None;
    }
    let (msn, part) = t.block?;
    let url = t.hint.as_ref()?;
    if t.preloaded.as_ref().is_some_and(|p| p.url == *url) {
        return None;
    }
    Some(Request {
        url: url.clone(),
        kind: Kind::Hint,
        target: Target::Track(i),
        seq: Some(msn),
        part,
        duration: t.part_target,
    })
}

impl Player {
    /// A hinted part `req` came in at `now`: `bytes` of body since
    /// `started`. Kept until a playlist lists it.
    pub fn on_hint_done(&mut self, req: &Request, bytes: u64, started: Instant) {
        let Target::Track(i) = req.target else { return };
        if let Some(t) = self.tracks.get_mut(i) {
            t.preloaded = Some(Preloaded {
                url: req.url.clone(),
                bytes,
                started,
            });
        }
    }

    /// A hinted part failed: a 404 is counted (the server did not know
    /// it); either way the part is loaded as any other once it is listed.
    pub(super) fn on_hint_failed(&mut self, f: &Failure) {
        if *f == Failure::Status(404) {
            self.events.push(Event::HintGone);
        }
    }

    /// A hinted part did not come within a part target of the reload that
    /// waited for the same part: given up and counted as a 404 is.
    pub fn on_hint_missed(&mut self) {
        self.events.push(Event::HintGone);
    }

    /// Parts that came in as hints, now listed next: done at `now`, as if
    /// just loaded, without a request.
    pub(super) fn use_preloaded(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            let t = &mut self.tracks[i];
            let (Some(pre), Some(front)) = (t.preloaded.as_ref(), t.pending.front()) else {
                continue;
            };
            let req = match front.load() {
                Load::Part(q) if q.url == pre.url => Request {
                    url: q.url.clone(),
                    kind: Kind::Hint,
                    target: Target::Track(i),
                    seq: Some(front.seq),
                    part: Some(q.index),
                    duration: Some(q.duration),
                },
                _ => continue,
            };
            let pre = t.preloaded.take().expect("looked at");
            self.events
                .push(Event::HintUsed(req.duration.unwrap_or(0.0)));
            self.on_segment_done(&req, pre.bytes, pre.started, now);
        }
    }
}
