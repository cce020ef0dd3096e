//! Load shapes: `stages`, as k6 users know them. Each stage has a
//! `duration` and a `target`: the number of viewers ramps linearly from the
//! previous stage's target (0 before the first) to its own over its
//! duration. The run aims at that many viewers at each moment. Viewer `i`
//! (from 0) plays while the target is at least `i + 1`, so the last to come
//! is the first to go: a spike starts the viewers above the plateau and
//! stops them again as it falls. Pure: times in, times out.

use std::time::Duration;

/// One stage of a shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u32,
}

/// When one viewer plays: from `start` until `stop` (`None`: to the end of
/// the run).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: Duration,
    pub stop: Option<Duration>,
}

/// A run's shape, or one shard's part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    stages: Vec<Stage>,
    /// The part of every target this process plays (a shard's share of the
    /// viewers; 1 for a whole run).
    scale: f64,
}

impl Shape {
    pub fn new(stages: Vec<Stage>) -> Shape {
        Shape { stages, scale: 1.0 }
    }

    /// This process's part: `share` (0–1) of every target.
    pub fn scaled(mut self, share: f64) -> Shape {
        self.scale = share.clamp(0.0, 1.0);
        self
    }

    /// How long the stages last in all.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The most viewers it aims at.
    pub fn peak(&self) -> u32 {
        let top = self.stages.iter().map(|s| s.target).max().unwrap_or(0);
        level(f64::from(top) * self.scale)
    }

    /// The viewers aimed at, at `t` into the run (the last stage's target
    /// after the end), not rounded.
    pub fn target(&self, t: Duration) -> f64 {
        self.line(t).0
    }

    /// The target at `t`, and whether it is falling then.
    fn line(&self, t: Duration) -> (f64, bool) {
        let mut from = 0.0;
        let mut begun = Duration::ZERO;
        for s in &self.stages {
            let to = f64::from(s.target) * self.scale;
            if t < begun + s.duration {
                let f = (t - begun).as_secs_f64() / s.duration.as_secs_f64();
                return (from + (to - from) * f, to < from);
            }
            from = to;
            begun += s.duration;
        }
        (from, false)
    }

    /// The viewers playing at `t`: the target, rounded down — on a falling
    /// line, those strictly below it, since a viewer leaves the moment the
    /// line comes down to it (its span ends there).
    pub fn playing(&self, t: Duration) -> u32 {
        match self.line(t) {
            (x, true) => (x - 1e-9).ceil().max(1.0) as u32 - 1,
            (x, false) => level(x),
        }
    }

    /// When viewer `i` plays: each span in which the target is at least
    /// `i + 1`, in order, from its start up to (not at) its stop.
    pub fn spans(&self, i: u32) -> Vec<Span> {
        let need = f64::from(i) + 1.0;
        let mut out: Vec<Span> = Vec::new();
        let mut from = 0.0;
        let mut begun = Duration::ZERO;
        for s in &self.stages {
            let to = f64::from(s.target) * self.scale;
            // where in the stage the line crosses `need`
            let at = |f: f64| begun + s.duration.mul_f64(f.clamp(0.0, 1.0));
            let crossing = (need - from) / (to - from);
            if !reaches(from, need) && reaches(to, need) {
                out.push(Span {
                    start: at(crossing),
                    stop: None,
                });
            } else if reaches(from, need) && !reaches(to, need) {
                let stop = at(crossing);
                // at the level for an instant only: no span
                match out.last_mut() {
                    Some(last) if stop > last.start => last.stop = Some(stop),
                    Some(_) => {
                        out.pop();
                    }
                    None => {}
                }
            }
            from = to;
            begun += s.duration;
        }
        out
    }
}

impl Shape {
    /// The stage under way at `t` (from 0), and how many there are; `None`
    /// after the last.
    pub fn stage_at(&self, t: Duration) -> Option<(usize, usize)> {
        let mut ends = Duration::ZERO;
        for (i, s) in self.stages.iter().enumerate() {
            ends += s.duration;
            if t < ends {
                return Some((i, self.stages.len()));
            }
        }
        None
    }
}

/// What a run aims at, moment by moment: its target line.
#[derive(Clone, Debug, PartialEq)]
pub enum Aim {
    /// `target` viewers, the last of them started at `last_start` (a ramp
    /// of `clients` at `rampRate`), then held.
    Held { target: u32, last_start: Duration },
    /// A load shape.
    Shape(Shape),
}

impl Aim {
    /// A ramp of viewers started at `schedule`, then held.
    pub fn held(schedule: &[Duration]) -> Aim {
        Aim::Held {
            target: schedule.len() as u32,
            last_start: schedule.iter().max().copied().unwrap_or_default(),
        }
    }

    /// The viewers aimed at, `t` into the run.
    pub fn target(&self, t: Duration) -> u64 {
        match self {
            Aim::Held { target, .. } => u64::from(*target),
            Aim::Shape(s) => u64::from(s.playing(t)),
        }
    }

    /// Whether the target at `t` has held for a second: every start it
    /// needed was a second or more before (after the ramp; on a plateau of
    /// a shape), so the viewers active can be held to it.
    pub fn settled(&self, t: Duration) -> bool {
        let Some(before) = t.checked_sub(Duration::from_secs(1)) else {
            return false;
        };
        match self {
            Aim::Held { last_start, .. } => before >= *last_start,
            Aim::Shape(s) => {
                let now = s.playing(t);
                // the line may not have dipped in between either: it moves
                // monotonically within a stage, so the ends and the stage
                // boundaries between them tell
                let mut b = Duration::ZERO;
                let mut steady = s.playing(before) == now;
                for stage in &s.stages {
                    b += stage.duration;
                    if b > before && b < t {
                        steady &= s.playing(b) == now;
                    }
                }
                steady
            }
        }
    }
}

/// The spans of viewers started at `schedule` and never stopped.
pub fn held(schedule: &[Duration]) -> Vec<Vec<Span>> {
    schedule
        .iter()
        .map(|&start| vec![Span { start, stop: None }])
        .collect()
}

/// Whether a target of `x` viewers has room for `need`.
fn reaches(x: f64, need: f64) -> bool {
    x + 1e-9 >= need
}

/// A target rounded down to whole viewers.
fn level(x: f64) -> u32 {
    (x + 1e-9).floor().max(0.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stage(s: u64, target: u32) -> Stage {
        Stage {
            duration: Duration::from_secs(s),
            target,
        }
    }

    fn span(start: f64, stop: Option<f64>) -> Span {
        Span {
            start: secs(start),
            stop: stop.map(secs),
        }
    }

    #[test]
    fn a_step_shape_ramps_holds_and_steps_up() {
        // 0 → 10 in 10 s, hold 10 s, then 10 → 20 in 5 s, hold
        let s = Shape::new(vec![
            stage(10, 10),
            stage(10, 10),
            stage(5, 20),
            stage(20, 20),
        ]);
        assert_eq!(s.duration(), Duration::from_secs(45));
        assert_eq!(s.peak(), 20);
        assert_eq!(s.target(secs(5.0)), 5.0);
        assert_eq!(s.playing(secs(15.0)), 10);
        assert_eq!(s.target(secs(22.5)), 15.0);
        assert_eq!(s.playing(secs(99.0)), 20, "the last target after the end");
        // viewer 0 starts when the target reaches 1 (1 s), viewer 9 at 10 s,
        // viewer 10 as the step begins to climb past 11 (20.5 s); none stops
        assert_eq!(s.spans(0), [span(1.0, None)]);
        assert_eq!(s.spans(9), [span(10.0, None)]);
        assert_eq!(s.spans(10), [span(20.5, None)]);
        assert_eq!(s.spans(19), [span(25.0, None)]);
        assert!(s.spans(20).is_empty(), "never aimed at");
    }

    #[test]
    fn a_spike_starts_viewers_above_the_plateau_and_stops_them_again() {
        // 0 → 4 in 4 s, hold 4 to 10 s, spike to 12 in 2 s, hold 2 s,
        // back to 4 in 2 s, hold, ramp down to 0 in 4 s
        let s = Shape::new(vec![
            stage(4, 4),
            stage(6, 4),
            stage(2, 12),
            stage(2, 12),
            stage(2, 4),
            stage(4, 4),
            stage(4, 0),
        ]);
        // viewer 5 (needs 6): up at 10.5 s, down at 15.5 s
        assert_eq!(s.spans(5), [span(10.5, Some(15.5))]);
        // viewer 11 (needs 12): at the top only
        assert_eq!(s.spans(11), [span(12.0, Some(14.0))]);
        // a plateau viewer plays until the ramp down takes it: viewer 3
        // (needs 4) leaves as the last stage begins, viewer 0 at its end
        assert_eq!(s.spans(3), [span(4.0, Some(20.0))]);
        assert_eq!(s.spans(0), [span(1.0, Some(23.0))]);
        // the count follows the target all along
        for k in 0..=26 {
            let t = secs(f64::from(k) + 0.1);
            let n = (0..12)
                .filter(|&i| {
                    s.spans(i)
                        .iter()
                        .any(|p| p.start <= t && p.stop.is_none_or(|e| t < e))
                })
                .count() as u32;
            assert_eq!(n, s.playing(t), "at {t:?}");
        }
    }

    #[test]
    fn the_aim_settles_a_second_after_the_line_stops_moving() {
        let s = Shape::new(vec![stage(4, 4), stage(6, 4), stage(1, 8), stage(4, 8)]);
        assert_eq!(s.stage_at(secs(3.9)), Some((0, 4)));
        assert_eq!(s.stage_at(secs(10.5)), Some((2, 4)));
        assert_eq!(s.stage_at(secs(15.0)), None);
        let aim = Aim::Shape(s);
        assert_eq!(aim.target(secs(10.5)), 6);
        // 4 reached at 4 s: settled from 5 s
        assert!(!aim.settled(secs(4.5)));
        assert!(aim.settled(secs(5.0)));
        assert!(aim.settled(secs(9.9)));
        assert!(!aim.settled(secs(10.6)), "the step is climbing");
        assert!(!aim.settled(secs(11.9)));
        assert!(aim.settled(secs(12.0)));
        // a spike and back within a second is not steady
        let spike = Aim::Shape(Shape::new(vec![
            stage(2, 2),
            Stage {
                duration: secs(0.3),
                target: 9,
            },
            Stage {
                duration: secs(0.3),
                target: 2,
            },
            stage(5, 2),
        ]));
        assert_eq!(spike.target(secs(2.0)), 2);
        assert_eq!(spike.target(secs(3.0)), 2);
        assert!(!spike.settled(secs(3.0)), "9 in between");
        assert!(spike.settled(secs(3.7)));
        let ramp = Aim::held(&[secs(0.0), secs(2.5), secs(1.0)]);
        assert_eq!(ramp.target(secs(0.0)), 3);
        assert!(!ramp.settled(secs(3.4)));
        assert!(ramp.settled(secs(3.5)));
        assert_eq!(held(&[secs(1.0)]), [vec![span(1.0, None)]]);
    }

    #[test]
    fn a_viewer_can_leave_and_come_back() {
        // two spikes to 2 over a base of 1
        let s = Shape::new(vec![
            stage(1, 1),
            stage(1, 2),
            stage(1, 1),
            stage(1, 2),
            stage(1, 1),
        ]);
        assert!(s.spans(1).is_empty(), "at the level for instants only");
        // a longer top: it plays there
        let s = Shape::new(vec![stage(2, 2), stage(2, 2), stage(2, 0), stage(2, 2)]);
        assert_eq!(s.spans(1), [span(2.0, Some(4.0)), span(8.0, None)]);
    }

    #[test]
    fn a_shard_plays_its_share_of_every_target() {
        let whole = Shape::new(vec![stage(10, 100), stage(10, 100)]);
        // a quarter of the viewers: 25 at the top, the 25th starting when
        // the whole run reaches 100
        let part = whole.clone().scaled(0.25);
        assert_eq!(part.peak(), 25);
        assert_eq!(part.playing(secs(4.0)), 10);
        assert_eq!(part.spans(24), [span(10.0, None)]);
        assert_eq!(whole.spans(99), [span(10.0, None)]);
    }
}
