//! Two runs compared figure by figure — the SLO figures, what viewers felt
//! and the throughput, each network class's — with the change and its
//! direction; a change for the worse past its tolerance is a regression
//! (`swarm-client compare`, a gate on an origin or CDN change).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::slo::{self, Unit};
use super::{NetworkTotals, Results, Stats};

/// The tolerance of a figure that has none of its own: 10 %.
pub const TOLERANCE_PCT: f64 = 10.0;

/// One figure of both runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub figure: String,
    /// `ms`, `number` or `fraction`.
    pub unit: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `(new − base) / base` in percent; none when either is missing or
    /// the base is 0.
    pub change_pct: Option<f64>,
    /// Which way is better: `lower`, `higher`, or `none` (shown only).
    pub better: String,
    /// `same`, `better`, `worse` (within the tolerance), `regression`, or
    /// `missing` (measured in one run only).
    pub verdict: String,
    /// The tolerance it was held to, in percent.
    pub tolerance_pct: f64,
}

/// A comparison of two runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub base: String,
    pub new: String,
    pub changes: Vec<Change>,
    /// The figures that regressed.
    pub regressions: Vec<String>,
}

/// How a figure goes the right way.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Better {
    Lower,
    Higher,
    /// Shown, never a regression (e.g. throughput, which follows the load).
    Neither,
}

/// How a figure is read from a run.
type Read = Box<dyn Fn(&Results) -> Option<f64>>;

/// One figure as compared: its key, unit, direction and value in a run.
struct Figure {
    key: String,
    unit: Unit,
    better: Better,
    value: Read,
}

/// The smallest change that counts, whatever the tolerance: loopback's
/// microseconds move by more than 10 % between two runs of anything.
fn floor(unit: Unit) -> f64 {
    match unit {
        Unit::Millis => 2.0,
        Unit::Fraction => 0.001,
        Unit::Number => 0.02,
    }
}

fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Millis => "ms",
        Unit::Number => "number",
        Unit::Fraction => "fraction",
    }
}

/// The keys a tolerance may name: the SLO figures, and the others
/// compared (a network class's as `networks.CLASS.FIGURE`).
pub fn known(key: &str) -> bool {
    let bare = key
        .strip_prefix("networks.")
        .and_then(|k| k.split_once('.'))
        .map_or(key, |(_, f)| f);
    figures(&[]).iter().any(|f| f.key == bare)
}

/// Every figure compared, for the network classes `classes`.
fn figures(classes: &[String]) -> Vec<Figure> {
    let mut out: Vec<Figure> = slo::figures()
        .into_iter()
        .map(|f| Figure {
            key: f.key.clone(),
            unit: f.unit,
            better: if f.at_most {
                Better::Lower
            } else {
                Better::Higher
            },
            value: Box::new(move |r: &Results| f.measure(&r.totals)),
        })
        .collect();
    let per_viewer = |r: &Results| {
        let started = f64::from(r.totals.viewers_started);
        (started > 0.0).then(|| r.totals.media_rate / started)
    };
    out.push(Figure {
        key: "mediaRatePerViewer".into(),
        unit: Unit::Number,
        better: Better::Higher,
        value: Box::new(per_viewer),
    });
    out.push(Figure {
        key: "receivedMbitPerSec".into(),
        unit: Unit::Number,
        better: Better::Neither,
        value: Box::new(|r: &Results| {
            (r.duration_sec > 0.0)
                .then(|| r.totals.counts.bytes as f64 * 8.0 / r.duration_sec / 1e6)
        }),
    });
    out.push(Figure {
        key: "requestsPerSec".into(),
        unit: Unit::Number,
        better: Better::Neither,
        value: Box::new(|r: &Results| {
            let c = &r.totals.counts;
            (r.duration_sec > 0.0).then(|| (c.segments + c.playlists) as f64 / r.duration_sec)
        }),
    });
    type Pick = fn(&NetworkTotals) -> Option<f64>;
    let class_figures: [(&str, Unit, Pick); 5] = [
        ("segmentTtfbP50", Unit::Millis, |n| {
            stat(&n.segment_ttfb_ms, |s| s.p50)
        }),
        ("segmentTtfbP99", Unit::Millis, |n| {
            stat(&n.segment_ttfb_ms, |s| s.p99)
        }),
        ("startupP50", Unit::Millis, |n| {
            stat(&n.startup_ms, |s| s.p50)
        }),
        ("rebufferRatio", Unit::Fraction, |n| {
            (n.play_sec + n.rebuffer_sec > 0.0).then_some(n.rebuffer_ratio)
        }),
        ("errorRate", Unit::Fraction, |n| {
            let all = n.segments + n.failed_requests;
            (all > 0).then(|| n.failed_requests as f64 / all as f64)
        }),
    ];
    for class in classes {
        for (key, unit, pick) in class_figures {
            let name = class.clone();
            out.push(Figure {
                key: format!("networks.{class}.{key}"),
                unit,
                better: Better::Lower,
                value: Box::new(move |r: &Results| {
                    pick(r.totals.native.as_ref()?.networks.get(&name)?)
                }),
            });
        }
    }
    out
}

fn stat(s: &Stats, p: fn(&Stats) -> f64) -> Option<f64> {
    (s.count > 0).then(|| p(s))
}

/// `base` and `new` compared, each figure held to its tolerance in
/// `tolerances` (percent; `all` for every figure without its own), else
/// [`TOLERANCE_PCT`].
pub fn compare(
    base: (&str, &Results),
    new: (&str, &Results),
    tolerances: &BTreeMap<String, f64>,
) -> Comparison {
    let classes: Vec<String> = [base.1, new.1]
        .iter()
        .filter_map(|r| r.totals.native.as_ref())
        .flat_map(|n| n.networks.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let default = tolerances.get("all").copied().unwrap_or(TOLERANCE_PCT);
    let mut changes = Vec::new();
    for f in figures(&classes) {
        let (b, n) = ((f.value)(base.1), (f.value)(new.1));
        if b.is_none() && n.is_none() {
            continue;
        }
        let tolerance_pct = tolerances.get(&f.key).copied().unwrap_or(default);
        let change_pct = match (b, n) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b.abs() * 100.0),
            _ => None,
        };
        let verdict = match (b, n) {
            (Some(b), Some(n)) => {
                let worse_by = match f.better {
                    Better::Lower => n - b,
                    Better::Higher => b - n,
                    Better::Neither => 0.0,
                };
                let past_tolerance = if b == 0.0 {
                    true
                } else {
                    worse_by / b.abs() * 100.0 > tolerance_pct
                };
                if worse_by.abs() <= floor(f.unit) || f.better == Better::Neither {
                    "same"
                } else if worse_by < 0.0 {
                    "better"
                } else if past_tolerance {
                    "regression"
                } else {
                    "worse"
                }
            }
            _ => "missing",
        };
        changes.push(Change {
            figure: f.key,
            unit: unit_name(f.unit).into(),
            base: b,
            new: n,
            change_pct,
            better: match f.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
                Better::Neither => "none",
            }
            .into(),
            verdict: verdict.into(),
            tolerance_pct,
        });
    }
    Comparison {
        base: base.0.to_owned(),
        new: new.0.to_owned(),
        regressions: changes
            .iter()
            .filter(|c| c.verdict == "regression")
            .map(|c| c.figure.clone())
            .collect(),
        changes,
    }
}

/// `--tolerance FIGURE=PCT` read: a figure compared (or `all`) and a
/// percentage from 0 to 10 000.
pub fn parse_tolerance(arg: &str) -> Result<(String, f64), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| {
        format!("--tolerance {arg}: expected FIGURE=PERCENT, e.g. segmentTtfbP99=20 or all=5")
    })?;
    let (key, value) = (key.trim(), value.trim().trim_end_matches('%'));
    if key != "all" && !known(key) {
        let all = figures(&[]);
        let hint = common::suggest::closest(key, all.iter().map(|f| f.key.as_str()))
            .map_or_else(String::new, |s| format!("; did you mean `{s}`?"));
        return Err(format!(
            "--tolerance {arg}: `{key}` is not a figure compared{hint}"
        ));
    }
    match value.parse::<f64>() {
        Ok(p) if (0.0..=10_000.0).contains(&p) => Ok((key.to_owned(), p)),
        _ => Err(format!(
            "--tolerance {arg}: `{value}` is not a percentage from 0 to 10000"
        )),
    }
}

impl Comparison {
    /// The comparison as text: a line a figure, regressions marked.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut o = format!("compared: {} (base) with {} (new)\n", self.base, self.new);
        let _ = writeln!(
            o,
            "  {:<40} {:>14} {:>14} {:>9}  verdict",
            "figure", "base", "new", "change"
        );
        for c in &self.changes {
            let change = c
                .change_pct
                .map_or("-".to_owned(), |p| format!("{:+.1} %", p));
            let verdict = match c.verdict.as_str() {
                "regression" => format!("REGRESSION (worse by more than {} %)", c.tolerance_pct),
                v => v.to_owned(),
            };
            let _ = writeln!(
                o,
                "  {:<40} {:>14} {:>14} {:>9}  {verdict}",
                c.figure,
                slo::shown(c.base, &c.unit),
                slo::shown(c.new, &c.unit),
                change
            );
        }
        let _ = match self.regressions.len() {
            0 => writeln!(o, "no regression"),
            n => writeln!(o, "{n} regression(s): {}", self.regressions.join(", ")),
        };
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Counters, NativeTotals, Totals};

    fn run(ttfb_p50: f64, errors: u64, rebuffer: f64, bytes: u64) -> Results {
        let mut n = NativeTotals::default();
        let k = crate::results::KindStats {
            ttfb_ms: Stats {
                count: 100,
                p50: ttfb_p50,
                p99: ttfb_p50 * 2.0,
                ..Default::default()
            },
            ..Default::default()
        };
        n.requests.insert("segment".into(), k);
        n.counts.play_sec = 100.0;
        n.counts.rebuffer_sec = rebuffer;
        n.rebuffer_ratio = rebuffer / (100.0 + rebuffer);
        n.networks.insert(
            "far".into(),
            NetworkTotals {
                segments: 100,
                segment_ttfb_ms: Stats {
                    count: 100,
                    p50: ttfb_p50 * 3.0,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let json = serde_json::json!({
            "format": "hls-swarm-results", "version": 1, "engine": "native",
            "url": "http://o/s.m3u8", "profile": "default", "seed": 1, "durationSec": 10.0,
            "stoppedBy": "duration reached", "settings": {}, "viewers": [],
            "totals": Totals {
                viewers: 10, viewers_started: 10,
                counts: Counters { segments: 1000 - errors, timeouts: errors, bytes, ..Default::default() },
                media_rate: 10.0, min_active_share: Some(1.0), native: Some(n),
            },
        });
        serde_json::from_value(json).unwrap()
    }

    fn verdicts(c: &Comparison) -> BTreeMap<&str, &str> {
        c.changes
            .iter()
            .map(|c| (c.figure.as_str(), c.verdict.as_str()))
            .collect()
    }

    #[test]
    fn a_run_compared_with_itself_has_no_regression() {
        let a = run(40.0, 3, 1.0, 1_000_000);
        let c = compare(("a", &a), ("a", &a), &BTreeMap::new());
        assert!(c.regressions.is_empty(), "{c:#?}");
        assert!(c.changes.iter().all(|c| c.verdict == "same"), "{c:#?}");
        assert!(c.text().ends_with("no regression\n"));
    }

    #[test]
    fn worse_past_the_tolerance_and_the_floor_is_a_regression_either_way_up() {
        let base = run(40.0, 0, 0.0, 1_000_000);
        // TTFB +25 %, errors from none, twice the bytes (shown only)
        let new = run(50.0, 10, 0.0, 2_000_000);
        let c = compare(("base", &base), ("new", &new), &BTreeMap::new());
        let v = verdicts(&c);
        assert_eq!(v["segmentTtfbP50"], "regression");
        assert_eq!(
            v["errorRate"], "regression",
            "from 0: any change past the floor"
        );
        assert_eq!(v["rebufferRatio"], "same");
        assert_eq!(
            v["receivedMbitPerSec"], "same",
            "throughput follows the load"
        );
        assert_eq!(v["networks.far.segmentTtfbP50"], "regression");
        assert_eq!(v["minActiveViewers"], "same");
        let ttfb = c
            .changes
            .iter()
            .find(|c| c.figure == "segmentTtfbP50")
            .unwrap();
        assert_eq!(ttfb.change_pct, Some(25.0));
        // a tolerance of its own, and one for all
        let t: BTreeMap<String, f64> = [
            ("segmentTtfbP50".to_owned(), 30.0),
            ("all".to_owned(), 200.0),
        ]
        .into();
        let c = compare(("base", &base), ("new", &new), &t);
        let v = verdicts(&c);
        assert_eq!(v["segmentTtfbP50"], "worse");
        assert_eq!(
            v["segmentTtfbP99"], "worse",
            "+25 % of 80 ms is within 200 %"
        );
        // the other way round it is better
        let c = compare(("new", &new), ("base", &base), &BTreeMap::new());
        assert_eq!(verdicts(&c)["segmentTtfbP50"], "better");
        assert!(c.regressions.is_empty());
        // below the floor: 0.3 ms against 0.5 ms on loopback is the same
        let c = compare(
            ("a", &run(0.3, 0, 0.0, 1)),
            ("b", &run(0.5, 0, 0.0, 1)),
            &BTreeMap::new(),
        );
        assert_eq!(verdicts(&c)["segmentTtfbP50"], "same");
    }

    #[test]
    fn tolerances_name_a_figure_compared() {
        assert_eq!(
            parse_tolerance("segmentTtfbP99=20"),
            Ok(("segmentTtfbP99".into(), 20.0))
        );
        assert_eq!(parse_tolerance("all=5%"), Ok(("all".into(), 5.0)));
        assert_eq!(
            parse_tolerance("networks.mobile.startupP50=50"),
            Ok(("networks.mobile.startupP50".into(), 50.0))
        );
        assert!(parse_tolerance("segmentTtbP99=5")
            .unwrap_err()
            .contains("did you mean `segmentTtfbP99`?"));
        assert!(parse_tolerance("errorRate")
            .unwrap_err()
            .contains("FIGURE=PERCENT"));
        assert!(parse_tolerance("errorRate=-1")
            .unwrap_err()
            .contains("percentage"));
    }
}
