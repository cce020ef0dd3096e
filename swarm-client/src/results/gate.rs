//! Live gates: objectives that stop a run early. An objective written as
//! a table with `abortOnFail = true` is judged once a second, from
//! `delayAbortEval` into the run, on the last `window` of the per-second
//! series; the first that fails stops the run (exit status 4), and the
//! results say when and why. As k6's thresholds, with a sliding window.

use std::time::Duration;

pub use super::slo::GateSpec;
use super::slo::{self, Limit, Slo, Verdict};
use super::{min_active_share, Second};

/// The default window of a live gate.
pub const WINDOW: Duration = Duration::from_secs(30);

/// The figures the per-second series can tell: a live gate may be set on
/// these.
pub fn live(key: &str) -> bool {
    matches!(key, "errorRate" | "minActiveViewers")
        || key
            .strip_prefix("segmentTtfbP")
            .is_some_and(|p| matches!(p, "50" | "90" | "95" | "99" | "999"))
}

/// A gate as it is judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Live {
    pub figure: String,
    pub window: Duration,
    pub delay: Duration,
    /// The objective alone, judged on a window's figures.
    objective: Slo,
}

/// A duration of a gate: `30s`, `2m`, from 1 s to an hour.
fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a length of time; expected e.g. 30s, 2m"))?;
    if d > Duration::from_secs(3600) {
        return Err(format!("`{text}` is above the limit of an hour"));
    }
    Ok(d)
}

/// The gates of `slo` (its objectives with `abortOnFail`), or the problems
/// with them: `(dotted path, message)`.
pub fn gates(slo: &Slo) -> Result<Vec<Live>, Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (key, limit) in &slo.0 {
        let Limit::Gate(g) = limit else {
            continue;
        };
        let path = format!("slo.{key}");
        if matches!(g.limit, Limit::Gate(_)) {
            problems.push((
                format!("{path}.limit"),
                "expected a number or a duration".into(),
            ));
            continue;
        }
        let window = g.window.as_deref().map_or(Ok(WINDOW), duration);
        let delay = g
            .delay_abort_eval
            .as_deref()
            .map_or(Ok(Duration::ZERO), duration);
        match (&window, &delay) {
            (Ok(w), _) if w.as_secs() < 1 => {
                problems.push((format!("{path}.window"), "must be at least 1s".into()))
            }
            (Err(e), _) => problems.push((format!("{path}.window"), e.clone())),
            (_, Err(e)) => problems.push((format!("{path}.delayAbortEval"), e.clone())),
            _ => {}
        }
        if !g.abort_on_fail {
            continue;
        }
        if !live(key) {
            problems.push((
                path,
                "judged only at the end of a run; a live gate (abortOnFail) may be set on \
                 errorRate, minActiveViewers and segmentTtfbP50…P999, which the per-second \
                 series tells"
                    .into(),
            ));
            continue;
        }
        if let (Ok(window), Ok(delay)) = (window, delay) {
            out.push(Live {
                figure: key.clone(),
                window,
                delay,
                objective: Slo([(key.clone(), g.limit.clone())].into()),
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

impl Live {
    /// The verdict on the last seconds of a run, `seconds` (the window's);
    /// `None` when nothing in them tells the figure.
    pub fn judge(&self, seconds: &[Second]) -> Option<Verdict> {
        let measured = measure(&self.figure, seconds)?;
        let f = slo::figures().into_iter().find(|f| f.key == self.figure)?;
        slo::verdict(&self.objective, &f, Some(measured))
    }

    /// Why the run stops, when this gate failed `at` into it.
    pub fn reason(&self, v: &Verdict, at: Duration) -> String {
        format!(
            "SLO gate {} over the last {} s, at {} s",
            v.line(),
            self.window.as_secs(),
            at.as_secs()
        )
    }
}

/// A live figure over `seconds`: failed / all requests, the fewest viewers
/// active, or a percentile of the segment TTFB (from the seconds'
/// histograms, one significant digit).
fn measure(key: &str, seconds: &[Second]) -> Option<f64> {
    match key {
        "errorRate" => {
            let failed: u64 = seconds.iter().map(|s| s.errors).sum();
            let all = failed + seconds.iter().map(|s| s.requests).sum::<u64>();
            (all > 0).then(|| failed as f64 / all as f64)
        }
        "minActiveViewers" => min_active_share(&seconds.iter().cloned().collect()),
        _ => {
            let q = match key.strip_prefix("segmentTtfbP")? {
                "50" => 0.5,
                "90" => 0.9,
                "95" => 0.95,
                "99" => 0.99,
                _ => 0.999,
            };
            let mut all: Option<hdrhistogram::Histogram<u64>> = None;
            for s in seconds {
                let Some(e) = &s.ttfb else { continue };
                match &mut all {
                    Some(h) => e.add_to(h).ok()?,
                    None => all = e.decode(),
                }
            }
            let h = all.filter(|h| !h.is_empty())?;
            Some(h.value_at_quantile(q) as f64 / 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(v: serde_json::Value) -> Slo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn gates_are_the_objectives_that_abort_and_refuse_what_the_series_cannot_tell() {
        let g = gates(&slo(serde_json::json!({
            "errorRate": { "limit": 0.05, "abortOnFail": true, "window": "10s", "delayAbortEval": "1m" },
            "segmentTtfbP99": { "limit": "300ms", "abortOnFail": true },
            "startupP95": "2s",
            "rebufferRatio": { "limit": 0.01 },
        })))
        .unwrap();
        let got: Vec<(&str, u64, u64)> = g
            .iter()
            .map(|g| (g.figure.as_str(), g.window.as_secs(), g.delay.as_secs()))
            .collect();
        assert_eq!(got, [("errorRate", 10, 60), ("segmentTtfbP99", 30, 0)]);
        let e = gates(&slo(serde_json::json!({
            "rebufferRatio": { "limit": 0.01, "abortOnFail": true }
        })))
        .unwrap_err();
        assert_eq!(e[0].0, "slo.rebufferRatio");
        assert!(e[0].1.contains("judged only at the end"), "{e:?}");
        let e = gates(&slo(
            serde_json::json!({ "errorRate": { "limit": 0.1, "window": "2h" } }),
        ))
        .unwrap_err();
        assert_eq!(e[0].0, "slo.errorRate.window");
    }

    #[test]
    fn a_gate_is_judged_on_its_window_of_seconds() {
        let g = &gates(&slo(serde_json::json!({
            "errorRate": { "limit": 0.1, "abortOnFail": true, "window": "3s" },
            "minActiveViewers": { "limit": 0.9, "abortOnFail": true },
        })))
        .unwrap();
        let sec = |requests, errors, active| Second {
            requests,
            errors,
            active,
            target: 10,
            after_ramp: true,
            ..Default::default()
        };
        let quiet = [sec(100, 0, 10), sec(100, 5, 10), sec(100, 10, 10)];
        let v = g[0].judge(&quiet).unwrap();
        assert_eq!((v.figure.as_str(), v.pass), ("errorRate", true));
        let bad = [sec(100, 5, 10), sec(50, 50, 8), sec(0, 100, 5)];
        let v = g[0].judge(&bad).unwrap();
        assert!(
            !v.pass && (v.measured.unwrap() - 155.0 / 305.0).abs() < 1e-9,
            "{v:?}"
        );
        let m = g[1].judge(&bad).unwrap();
        assert_eq!((m.measured, m.pass), (Some(0.5), false));
        assert_eq!(
            g[0].reason(&v, Duration::from_secs(42)),
            "SLO gate errorRate ≤ 0.1: 0.5082 FAIL over the last 3 s, at 42 s"
        );
        assert_eq!(g[0].judge(&[]), None, "nothing to tell");
    }
}
