//! A capacity search's results: each step's viewers, the figures of its
//! judged window and the objectives checked on them; the highest step that
//! held and the first that failed, with the figure that failed it. Steps of
//! shards (`--shard`) merge window by window, and are judged again.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::slo::{self, Slo, Verdict};
use super::{min_active_share, NativeCounts, NativeTotals, Recorder, Seconds, Totals};

/// A capacity search, as planned and as it went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Viewers of the first step, and added at each next.
    pub start: u32,
    pub step: u32,
    /// The most viewers a step may have.
    pub max: u32,
    /// How long each step lasts, and how long into it its window begins.
    pub step_sec: f64,
    pub settle_sec: f64,
    /// Every step judged, in order.
    pub steps: Vec<Step>,
    /// The most viewers a step held (every objective passed) before the
    /// first that failed; none when even the first failed.
    pub held: Option<u32>,
    /// The viewers of the first step that failed; none when every step held.
    pub failed: Option<u32>,
    /// The objective that failed it (the first in the order of the
    /// figures), with its measured value.
    pub breaking: Option<Verdict>,
}

/// One step of a search, judged on its window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The viewers it aims at.
    pub viewers: u32,
    /// Its judged window: from its settling to its end, Unix seconds.
    pub from: u64,
    pub to: u64,
    /// What came in within the window (the histograms too, so that shards'
    /// windows merge exactly).
    #[schemars(with = "serde_json::Value")]
    pub totals: Totals,
    pub verdicts: Vec<Verdict>,
    pub pass: bool,
}

impl PartialEq for Totals {
    fn eq(&self, o: &Totals) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(o).ok()
    }
}

impl Step {
    /// A step of `viewers` over the window `from..=to`, its `totals` judged
    /// by `objectives`.
    pub fn judged(viewers: u32, (from, to): (u64, u64), totals: Totals, objectives: &Slo) -> Step {
        let verdicts = slo::evaluate(objectives, &totals);
        Step {
            viewers,
            from,
            to,
            pass: verdicts.iter().all(|v| v.pass),
            totals,
            verdicts,
        }
    }
}

impl Capacity {
    /// Sets `held`, `failed` and `breaking` from the steps: the search
    /// stops at the first step that fails.
    pub fn conclude(&mut self) {
        let first_bad = self.steps.iter().position(|s| !s.pass);
        let good = &self.steps[..first_bad.unwrap_or(self.steps.len())];
        self.held = good.last().map(|s| s.viewers);
        let bad = first_bad.map(|i| &self.steps[i]);
        self.failed = bad.map(|s| s.viewers);
        self.breaking = bad.and_then(|s| s.verdicts.iter().find(|v| !v.pass).cloned());
    }

    /// The one-line answer: `capacity: 40 viewers held; 50 failed on
    /// segmentTtfbP99 ≤ 500 ms: 812 ms FAIL`.
    pub fn line(&self) -> String {
        let held = match self.held {
            Some(n) => format!("{n} viewers held"),
            None => "not even the first step held".to_owned(),
        };
        match (&self.failed, &self.breaking) {
            (Some(n), Some(v)) => format!("capacity: {held}; {n} failed on {}", v.line()),
            (Some(n), None) => format!("capacity: {held}; {n} failed"),
            (None, _) if self.steps.last().is_some_and(|s| s.viewers >= self.max) => {
                format!(
                    "capacity: {held}, the most asked for (--max {}): it may hold more",
                    self.max
                )
            }
            (None, _) => format!("capacity: {held}; the run ended before a step failed"),
        }
    }

    /// Judges every step again by `objectives` (after a merge, or with
    /// objectives given to `merge --slo`).
    pub fn judge(&mut self, objectives: &Slo) {
        for s in &mut self.steps {
            *s = Step::judged(
                s.viewers,
                (s.from, s.to),
                std::mem::take(&mut s.totals),
                objectives,
            );
        }
        self.conclude();
    }
}

/// The searches of a run's shards merged step by step (the steps every
/// shard judged): viewers and counts add, histograms merge, the fewest
/// active is read from the merged `series` within each window; then judged
/// by `objectives`.
pub fn merge(shards: &[&Capacity], series: &Seconds, objectives: &Slo) -> Result<Capacity, String> {
    let first = *shards.first().ok_or("no capacity search to merge")?;
    let steps = shards.iter().map(|c| c.steps.len()).min().unwrap_or(0);
    let mut out = Capacity {
        steps: Vec::with_capacity(steps),
        start: shards.iter().map(|c| c.start).sum(),
        step: shards.iter().map(|c| c.step).sum(),
        max: shards.iter().map(|c| c.max).sum(),
        ..first.clone()
    };
    for i in 0..steps {
        let mut totals = Totals::default();
        let mut counts: Option<NativeCounts> = None;
        let mut recorder: Option<Recorder> = None;
        let (mut from, mut to, mut viewers) = (u64::MAX, 0, 0);
        for c in shards {
            let s = &c.steps[i];
            viewers += s.viewers;
            from = from.min(s.from);
            to = to.max(s.to);
            totals.viewers += s.totals.viewers;
            totals.add_counts(&s.totals);
            if let Some(n) = &s.totals.native {
                *counts.get_or_insert_with(Default::default) += &n.counts;
                match &mut recorder {
                    Some(r) => r.merge_encoded(&n.histograms)?,
                    None => recorder = Some(Recorder::from_encoded(&n.histograms)?),
                }
            }
        }
        let window: Seconds = series
            .iter()
            .filter(|s| (from..=to).contains(&s.t))
            .collect();
        totals.min_active_share = min_active_share(&window);
        totals.native = match (counts, &recorder) {
            (Some(c), Some(r)) => Some(NativeTotals::of(c, BTreeMap::new(), r)),
            _ => None,
        };
        out.steps
            .push(Step::judged(viewers, (from, to), totals, objectives));
    }
    out.conclude();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::slo::Limit;
    use crate::results::{Counters, Second};

    fn objectives() -> Slo {
        Slo([("errorRate".to_owned(), Limit::Number(0.01))].into())
    }

    /// A step of `viewers` whose window saw `failed` timeouts in 1000 requests.
    fn step(viewers: u32, t: u64, failed: u64) -> Step {
        let totals = Totals {
            viewers,
            counts: Counters {
                segments: 1000 - failed,
                timeouts: failed,
                ..Default::default()
            },
            ..Default::default()
        };
        Step::judged(viewers, (t, t + 9), totals, &objectives())
    }

    fn search(steps: Vec<Step>) -> Capacity {
        let mut c = Capacity {
            start: 10,
            step: 10,
            max: 50,
            steps,
            ..Default::default()
        };
        c.conclude();
        c
    }

    #[test]
    fn the_answer_is_the_last_step_that_held_and_the_first_that_failed() {
        let c = search(vec![step(10, 0, 0), step(20, 10, 5), step(30, 20, 50)]);
        assert_eq!((c.held, c.failed), (Some(20), Some(30)));
        let b = c.breaking.as_ref().unwrap();
        assert_eq!((b.figure.as_str(), b.measured), ("errorRate", Some(0.05)));
        assert_eq!(
            c.line(),
            "capacity: 20 viewers held; 30 failed on errorRate ≤ 0.01: 0.05 FAIL"
        );
        let none = search(vec![step(10, 0, 20)]);
        assert_eq!((none.held, none.failed), (None, Some(10)));
        assert!(none
            .line()
            .starts_with("capacity: not even the first step held; 10 failed"));
        let all = search(vec![step(10, 0, 0), step(50, 10, 0)]);
        assert_eq!((all.held, all.failed), (Some(50), None));
        assert!(
            all.line().contains("the most asked for (--max 50)"),
            "{}",
            all.line()
        );
    }

    #[test]
    fn shards_merge_step_by_step_and_are_judged_on_the_whole() {
        // 20 viewers: 5 and 15 errors of 1000 requests each — the second
        // shard alone fails, the whole (20 of 2000, 1 %) holds
        let a = search(vec![step(5, 100, 0), step(10, 110, 5)]);
        let b = search(vec![step(5, 100, 0), step(10, 110, 15), step(15, 120, 0)]);
        assert_eq!(b.failed, Some(10));
        let series: Seconds = (100..=119)
            .map(|t| Second {
                t,
                active: 10,
                target: 10,
                after_ramp: true,
                ..Default::default()
            })
            .collect();
        let m = merge(&[&a, &b], &series, &objectives()).unwrap();
        assert_eq!(m.steps.len(), 2, "the steps both judged");
        assert_eq!((m.start, m.step, m.max), (20, 20, 100));
        assert_eq!(m.steps[1].viewers, 20);
        assert_eq!(m.steps[1].totals.counts.timeouts, 20);
        assert_eq!(m.steps[0].totals.min_active_share, Some(1.0));
        assert_eq!((m.held, m.failed), (Some(20), None));
        // 25 of 2000 fail it
        let mut b2 = b.clone();
        b2.steps[1] = step(10, 110, 20);
        let m = merge(&[&a, &b2], &series, &objectives()).unwrap();
        assert_eq!((m.held, m.failed), (Some(10), Some(20)));
        assert_eq!(m.breaking.unwrap().measured, Some(0.0125));
    }
}
