//! What a native swarm shares with its viewers, and what it reads of each
//! while they run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::shape::Span;

use super::metrics::Metrics;
use crate::native::cmcd::CmcdMode;
use crate::native::http::{ClientConfig, Link};
use crate::native::player::PlayerConfig;
use crate::results::{Recorder, ViewerFigures};

/// What the swarm shares with its viewers.
pub struct Shared {
    pub recorder: Mutex<Recorder>,
    pub metrics: Metrics,
    pub client: Arc<ClientConfig>,
    pub slots: Vec<Slot>,
    /// The swarm's start: slot times are nanoseconds since it.
    pub epoch: Instant,
    /// `run --check`: print each request as it happens.
    pub check: bool,
    /// Failed requests of every kind (for the status line).
    pub failures: AtomicU64,
    /// Raised by the swarm before it writes a checkpoint: each viewer then
    /// leaves a copy of its figures in its slot at its next step.
    pub checkpoint: AtomicU64,
    /// Whether a viewer has said that it left variants out (said once).
    pub told_variants: AtomicBool,
    /// Viewers that played their stream to its end (a VOD) and stopped.
    pub finished: AtomicU64,
    /// How viewers send CMCD, and the content id (`cid`) they send.
    pub cmcd: CmcdMode,
    pub content_id: String,
}

/// What the swarm reads of a viewer while it runs.
#[derive(Default)]
pub struct Slot {
    pub active: AtomicBool,
    /// When the buffer runs (or ran) dry, ns since the epoch; `u64::MAX`
    /// when not playing.
    pub dry_at: AtomicU64,
    /// The viewer's figures as of its last checkpoint copy (or its end).
    pub figures: Mutex<Option<ViewerFigures>>,
}

impl Slot {
    pub fn new() -> Slot {
        Slot {
            active: AtomicBool::new(false),
            dry_at: AtomicU64::new(u64::MAX),
            figures: Mutex::new(None),
        }
    }

    /// The figures the viewer left here last, if any.
    pub fn figures(&self) -> Option<ViewerFigures> {
        self.figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn keep(&self, f: ViewerFigures) {
        *self.figures.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// Stalled at `now` (ns since the epoch).
    pub fn stalled(&self, now_ns: u64) -> bool {
        self.active.load(Ordering::Relaxed) && self.dry_at.load(Ordering::Relaxed) <= now_ns
    }
}

/// One viewer's settings.
pub struct ViewerSpec {
    /// Its number in the whole run (shards number from their first viewer).
    pub id: u32,
    /// Its slot in this process's table of viewers.
    pub slot: usize,
    /// When it plays, from the swarm's start: it leaves at a span's stop,
    /// and comes back at the next span's start.
    pub plays: Plays,
    pub player: PlayerConfig,
    pub user_agent: String,
    pub seed: u64,
    /// Its network class (name and link), when the config has classes.
    pub network: Option<(Arc<str>, Link)>,
    /// Its CMCD session id, stable for its life.
    pub sid: String,
}

/// When a viewer plays: from its start to the end of the run (a ramp's
/// viewer, with nothing on the heap), or a load shape's spans.
pub enum Plays {
    From(Duration),
    Spans(Box<[Span]>),
}

impl Plays {
    pub fn of(spans: &[Span]) -> Plays {
        match spans {
            [Span { start, stop: None }] => Plays::From(*start),
            _ => Plays::Spans(spans.into()),
        }
    }

    /// Its span `i`, in order.
    pub fn get(&self, i: usize) -> Option<Span> {
        match self {
            Plays::From(start) => (i == 0).then_some(Span {
                start: *start,
                stop: None,
            }),
            Plays::Spans(s) => s.get(i).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_viewer_plays_from_its_start_with_nothing_on_the_heap() {
        let s = |a: u64, b: Option<u64>| Span {
            start: Duration::from_secs(a),
            stop: b.map(Duration::from_secs),
        };
        let p = Plays::of(&[s(3, None)]);
        assert!(matches!(p, Plays::From(_)));
        assert_eq!((p.get(0), p.get(1)), (Some(s(3, None)), None));
        let p = Plays::of(&[s(1, Some(2)), s(4, None)]);
        assert!(matches!(p, Plays::Spans(_)));
        assert_eq!((p.get(1), p.get(2)), (Some(s(4, None)), None));
    }
}
