//! The figures of a stretch of a run — a capacity step's window: what came
//! in between two readings of its running figures, as totals the same
//! objectives judge as a whole run's.

use std::collections::BTreeMap;

use super::{
    min_active_share, Counters, NativeCounts, NativeTotals, Recorder, Seconds, Totals,
    ViewerFigures,
};

/// A run's running figures at one moment: its viewers' counters summed,
/// and the native engine's histograms.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub started: u32,
    pub counts: Counters,
    pub native: Option<NativeCounts>,
    pub recorder: Option<Recorder>,
}

impl Reading {
    /// The reading of `viewers`' figures and the histograms of `recorder`.
    pub fn of(viewers: &[ViewerFigures], recorder: Option<Recorder>) -> Reading {
        let mut r = Reading {
            recorder,
            ..Default::default()
        };
        for v in viewers {
            r.started += u32::from(v.counts.starts > 0);
            r.counts += &v.counts;
            if let Some(n) = &v.native {
                *r.native.get_or_insert_with(Default::default) += &n.counts;
            }
        }
        r
    }
}

/// The totals of what came in after `start` up to `end`, a stretch aiming
/// at `viewers` whose seconds of the series are `seconds` (they tell the
/// fewest viewers active).
pub fn between(start: &Reading, end: &Reading, seconds: &Seconds, viewers: u32) -> Totals {
    let native = match (&end.native, &end.recorder) {
        (Some(n), Some(r)) => {
            let counts = n.since(start.native.as_ref().unwrap_or(&NativeCounts::default()));
            let histograms = match &start.recorder {
                Some(earlier) => r.since(earlier),
                None => r.clone(),
            };
            Some(NativeTotals::of(counts, BTreeMap::new(), &histograms))
        }
        _ => None,
    };
    Totals {
        viewers,
        viewers_started: end.started,
        counts: end.counts.since(&start.counts),
        media_rate: 0.0,
        min_active_share: min_active_share(seconds),
        native,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Kind, NativeFigures, RequestSample, Second};
    use std::time::Duration;

    fn viewer(segments: u64, play_sec: f64, rebuffer_sec: f64) -> ViewerFigures {
        let mut v = ViewerFigures {
            counts: Counters {
                starts: 1,
                segments,
                ..Default::default()
            },
            native: Some(NativeFigures::default()),
            ..Default::default()
        };
        let n = v.native.as_mut().unwrap();
        n.counts.play_sec = play_sec;
        n.counts.rebuffer_sec = rebuffer_sec;
        v
    }

    fn ttfb(r: &mut Recorder, ms: u64, n: usize) {
        for _ in 0..n {
            r.request(&RequestSample {
                kind: Kind::Segment,
                connect: None,
                ttfb: Duration::from_millis(ms),
                download: Duration::from_millis(1),
                download_ratio: Some(0.1),
            });
        }
    }

    #[test]
    fn a_window_holds_only_what_came_in_between_its_readings() {
        let mut r = Recorder::default();
        ttfb(&mut r, 10, 90);
        let start = Reading::of(
            &[viewer(50, 40.0, 0.0), viewer(40, 40.0, 0.0)],
            Some(r.clone()),
        );
        // in the window: 10 segments, slow, and a second of stalling
        ttfb(&mut r, 900, 10);
        let end = Reading::of(&[viewer(55, 49.0, 1.0), viewer(45, 50.0, 0.0)], Some(r));
        let seconds: Seconds = [(2, 2, true), (1, 2, true), (2, 2, false)]
            .iter()
            .map(|&(active, target, after_ramp)| Second {
                active,
                target,
                after_ramp,
                ..Default::default()
            })
            .collect();
        let t = between(&start, &end, &seconds, 2);
        assert_eq!(t.counts.segments, 10);
        assert_eq!(t.min_active_share, Some(0.5));
        let n = t.native.unwrap();
        assert_eq!(n.counts.play_sec, 19.0);
        assert_eq!(n.rebuffer_ratio, 1.0 / 20.0);
        let seg = &n.requests["segment"].ttfb_ms;
        assert_eq!(seg.count, 10, "the window's requests only");
        assert!(seg.p50 > 850.0, "{seg:?}");
        // the slow ones judged alone: an objective on the whole run would
        // have passed them
        let slo = crate::results::slo::Slo(
            [(
                "segmentTtfbP50".to_owned(),
                crate::results::slo::Limit::Text("100ms".into()),
            )]
            .into(),
        );
        let t = between(&start, &end, &seconds, 2);
        assert!(!crate::results::slo::evaluate(&slo, &t)[0].pass);
    }
}
