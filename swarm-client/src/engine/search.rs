//! A capacity search as a plan: steps of viewers, each a load-shape stage
//! that ramps to it at `rampRate` and holds, and the window of each step
//! that its objectives are judged on (from its settling to its end). Pure:
//! the conductor marks the windows, the run loop judges them.

use std::time::Duration;

use super::shape::{Shape, Stage};

/// A capacity search.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// Viewers of the first step, added at each next, and the most.
    pub start: u32,
    pub step: u32,
    pub max: u32,
    /// How long a step lasts (its ramp included), and how long into it its
    /// window begins.
    pub step_time: Duration,
    pub settle: Duration,
    /// Viewers started per second on a step's ramp.
    pub ramp_rate: u32,
}

/// One step's judged window, from the start of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub viewers: u32,
    pub from: Duration,
    pub to: Duration,
}

impl Search {
    /// The viewers of each step: `start`, `start + step`, … up to `max`.
    pub fn steps(&self) -> Vec<u32> {
        let step = self.step.max(1) as usize;
        (self.start..=self.max).step_by(step).collect()
    }

    /// How long the ramp to `to` from `from` viewers takes.
    fn ramp(&self, from: u32, to: u32) -> Duration {
        Duration::from_secs_f64(
            f64::from(to.saturating_sub(from)) / f64::from(self.ramp_rate.max(1)),
        )
    }

    /// What is wrong with the plan, if anything: a step that cannot ramp
    /// and settle within its time.
    pub fn problem(&self) -> Option<String> {
        if self.start == 0 || self.step == 0 {
            return Some("start and step must be at least 1 viewer".into());
        }
        if self.start > self.max {
            return Some(format!(
                "start ({}) is above max ({})",
                self.start, self.max
            ));
        }
        if self.settle >= self.step_time {
            return Some(format!(
                "settle ({}) leaves nothing of a step's time ({}) to judge; make it shorter \
                 than stepTime",
                humantime::format_duration(self.settle),
                humantime::format_duration(self.step_time)
            ));
        }
        let first = self.ramp(0, self.start);
        let next = self.ramp(0, self.step);
        let longest = first.max(next);
        if longest > self.settle {
            return Some(format!(
                "a step's ramp takes {:.1} s at rampRate {}/s, longer than settle ({}); raise \
                 rampRate or settle",
                longest.as_secs_f64(),
                self.ramp_rate,
                humantime::format_duration(self.settle)
            ));
        }
        None
    }

    /// The steps as a load shape: for each, a ramp from the last step's
    /// viewers at `rampRate`, then a hold to the step's end.
    pub fn shape(&self) -> Shape {
        let mut stages = Vec::new();
        let mut last = 0;
        for n in self.steps() {
            let ramp = self.ramp(last, n).max(Duration::from_millis(1));
            stages.push(Stage {
                duration: ramp,
                target: n,
            });
            stages.push(Stage {
                duration: self.step_time.saturating_sub(ramp),
                target: n,
            });
            last = n;
        }
        Shape::new(stages)
    }

    /// Each step's judged window: from its start plus `settle` to its end.
    pub fn windows(&self) -> Vec<Window> {
        self.steps()
            .into_iter()
            .enumerate()
            .map(|(i, viewers)| {
                let begins = self.step_time * i as u32;
                Window {
                    viewers,
                    from: begins + self.settle,
                    to: begins + self.step_time,
                }
            })
            .collect()
    }

    /// How long the whole search lasts when every step holds.
    pub fn duration(&self) -> Duration {
        self.step_time * self.steps().len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> Search {
        Search {
            start: 10,
            step: 10,
            max: 45,
            step_time: Duration::from_secs(30),
            settle: Duration::from_secs(10),
            ramp_rate: 5,
        }
    }

    #[test]
    fn steps_ramp_hold_and_are_judged_after_they_settle() {
        let s = search();
        assert_eq!(s.steps(), [10, 20, 30, 40], "up to max, not past it");
        assert_eq!(s.problem(), None);
        assert_eq!(s.duration(), Duration::from_secs(120));
        let shape = s.shape();
        // 10 viewers at 5/s: 2 s of ramp, then held to 30 s
        assert_eq!(shape.playing(Duration::from_secs(1)), 5);
        assert_eq!(shape.playing(Duration::from_secs(2)), 10);
        assert_eq!(shape.playing(Duration::from_secs(29)), 10);
        assert_eq!(shape.playing(Duration::from_secs(31)), 15);
        assert_eq!(shape.playing(Duration::from_secs(32)), 20);
        assert_eq!(shape.duration(), s.duration());
        let w = s.windows();
        assert_eq!(
            w[1],
            Window {
                viewers: 20,
                from: Duration::from_secs(40),
                to: Duration::from_secs(60)
            }
        );
        // every window is on a plateau of its step
        for w in &w {
            assert_eq!(shape.playing(w.from), w.viewers);
            assert_eq!(shape.playing(w.to - Duration::from_millis(1)), w.viewers);
        }
    }

    #[test]
    fn a_plan_that_cannot_settle_is_refused_with_what_to_change() {
        let mut s = search();
        s.ramp_rate = 1;
        s.settle = Duration::from_secs(5);
        assert!(
            s.problem().unwrap().contains("raise rampRate or settle"),
            "{:?}",
            s.problem()
        );
        let mut s = search();
        s.settle = Duration::from_secs(30);
        assert!(s.problem().unwrap().contains("shorter than stepTime"));
        let mut s = search();
        s.start = 50;
        assert!(s.problem().unwrap().contains("above max"));
    }
}
