//! Service-level objectives: limits on the run's figures (PLAYER.md) that
//! decide whether the origin held. Set in the config's `slo` table (so a
//! profile can carry them) or with `run --slo KEY=VALUE`; checked at the end
//! of a run, each with its measured value and PASS/FAIL; any failure makes
//! `run` exit with status 4.
//!
//! Every key is one entry of [`figures`]: the schema lists them all (an
//! unknown key gets a did-you-mean), and the same entry says how the figure
//! is read from a run's summary.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{NativeTotals, Stats, Totals};

/// The value of one objective as written: a duration (`"300ms"`, `"2s"`), a
/// number, or a table with the limit and when it stops the run (a live
/// gate, [`super::gate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Number(f64),
    Text(String),
    Gate(Box<GateSpec>),
}

/// The `slo` table: figure key → limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slo(pub BTreeMap<String, Limit>);

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An objective's limit with when it stops the run (the table form of a
/// value of `slo`); judged live by [`super::gate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateSpec {
    /// The limit, as the plain form writes it.
    pub limit: Limit,
    /// Stop the run as soon as the figure over the window fails it.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// How much of the run's end it is judged on (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// How long into the run before it is judged (default `0s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_abort_eval: Option<String>,
}

/// What a figure is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A time, written as a duration and shown in ms.
    Millis,
    /// A plain number (a ratio of times).
    Number,
    /// A share from 0 to 1.
    Fraction,
}

/// One figure an objective can be set on.
pub struct Figure {
    pub key: String,
    pub unit: Unit,
    /// `true`: the figure must be at most the limit; `false`: at least.
    pub at_most: bool,
    /// Measured only by the native engine.
    pub native_only: bool,
    pub help: String,
    measure: Measure,
}

/// How a figure is read from a run's summary.
type Measure = Box<dyn Fn(&Totals) -> Option<f64> + Send + Sync>;

/// One percentile of a distribution's summary.
type Percentile = fn(&Stats) -> f64;

impl Figure {
    /// Its value in a run's totals (or a window's); `None` when nothing
    /// was measured.
    pub fn measure(&self, s: &Totals) -> Option<f64> {
        (self.measure)(s)
    }
}

/// The percentiles a timing objective can name: (key suffix, label, pick).
const PERCENTILES: &[(&str, &str, Percentile)] = &[
    ("P50", "median", |s| s.p50),
    ("P90", "90th percentile", |s| s.p90),
    ("P95", "95th percentile", |s| s.p95),
    ("P99", "99th percentile", |s| s.p99),
    ("P999", "99.9th percentile", |s| s.p999),
];

type Pick = fn(&NativeTotals) -> Option<&Stats>;

/// Every figure an objective can be set on, in the order they are shown.
pub fn figures() -> Vec<Figure> {
    let distributions: [(&str, Unit, &str, Pick); 13] = [
        (
            "segmentTtfb",
            Unit::Millis,
            "time to first byte of segment requests",
            |n| n.requests.get("segment").map(|k| &k.ttfb_ms),
        ),
        (
            "playlistTtfb",
            Unit::Millis,
            "time to first byte of playlist requests",
            |n| n.requests.get("playlist").map(|k| &k.ttfb_ms),
        ),
        (
            "segmentDownload",
            Unit::Millis,
            "segment download time (first byte to last)",
            |n| n.requests.get("segment").map(|k| &k.download_ms),
        ),
        (
            "segmentDownloadRatio",
            Unit::Number,
            "segment download time / segment duration (above 1: slower than real time)",
            |n| Some(&n.segment_download_ratio),
        ),
        (
            "startup",
            Unit::Millis,
            "startup time (first request to first segment in)",
            |n| Some(&n.startup_ms),
        ),
        (
            "liveLatency",
            Unit::Millis,
            "live latency (playout position behind the segment's appearance)",
            |n| Some(&n.live_latency_ms),
        ),
        (
            "partTtfb",
            Unit::Millis,
            "time to first byte of Low-Latency HLS part requests",
            |n| n.requests.get("part").map(|k| &k.ttfb_ms),
        ),
        (
            "partDownload",
            Unit::Millis,
            "part download time (first byte to last)",
            |n| n.requests.get("part").map(|k| &k.download_ms),
        ),
        (
            "partDownloadRatio",
            Unit::Number,
            "part download time / part duration (above 1: slower than real time)",
            |n| Some(&n.part_download_ratio),
        ),
        (
            "hintTtfb",
            Unit::Millis,
            "time to first byte of hinted parts (avplayer: how long the server held them)",
            |n| n.requests.get("hint").map(|k| &k.ttfb_ms),
        ),
        (
            "reloadHold",
            Unit::Millis,
            "hold time of blocking playlist reloads (request written to response head)",
            |n| Some(&n.reload_hold_ms),
        ),
        (
            "reloadOvershoot",
            Unit::Millis,
            "overshoot of blocking reloads (response head after the end of the part asked for)",
            |n| Some(&n.reload_overshoot_ms),
        ),
        (
            "playlistAdvanceLag",
            Unit::Millis,
            "playlist advance lag (a part's end to the viewer having a playlist listing it)",
            |n| Some(&n.advance_lag_ms),
        ),
    ];
    let mut out = Vec::new();
    for (base, unit, what, pick) in distributions {
        for (suffix, label, p) in PERCENTILES {
            out.push(Figure {
                key: format!("{base}{suffix}"),
                unit,
                at_most: true,
                native_only: true,
                help: format!("{label} of the {what}: at most this"),
                measure: Box::new(move |s: &Totals| {
                    let stats = pick(s.native.as_ref()?)?;
                    (stats.count > 0).then(|| p(stats))
                }),
            });
        }
    }
    out.push(Figure {
        key: "rebufferRatio".into(),
        unit: Unit::Fraction,
        at_most: true,
        native_only: true,
        help: "time stalled / (time played + time stalled), over all viewers: at most this".into(),
        measure: Box::new(|s: &Totals| {
            let n = s.native.as_ref()?;
            (n.counts.play_sec + n.counts.rebuffer_sec > 0.0).then_some(n.rebuffer_ratio)
        }),
    });
    out.push(Figure {
        key: "errorRate".into(),
        unit: Unit::Fraction,
        at_most: true,
        native_only: false,
        help: "failed requests / all requests (HTTP errors, timeouts, connection \
               errors and other failures): at most this"
            .into(),
        measure: Box::new(|s: &Totals| {
            let failed = s.failed_requests();
            let all = s.counts.segments + s.counts.playlists + failed;
            (all > 0).then(|| failed as f64 / all as f64)
        }),
    });
    out.push(Figure {
        key: "minActiveViewers".into(),
        unit: Unit::Fraction,
        at_most: false,
        native_only: false,
        help: "the fewest viewers active in any second after the ramp, as a share of \
               `clients`: at least this"
            .into(),
        measure: Box::new(|s: &Totals| s.min_active_share),
    });
    out
}

/// A duration as written in an objective: a number and `us`, `ms`, `s` or
/// `m`, up to an hour. In milliseconds.
pub fn parse_millis(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("`{text}` has no unit (us, ms, s or m)"))?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number and a unit"))?;
    let ms = n * match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return Err(format!("`{unit}` is not a unit (us, ms, s or m)")),
    };
    if !(0.0..=3_600_000.0).contains(&ms) {
        return Err(format!("`{text}` is not between 0 and 1 hour"));
    }
    Ok(ms)
}

/// One objective, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The figure's key (`segmentTtfbP99`).
    pub figure: String,
    /// `max` (the figure must be at most `limit`) or `min`.
    pub bound: String,
    /// The limit, in `unit`.
    pub limit: f64,
    /// `ms`, `number` or `fraction`.
    pub unit: String,
    /// What the run measured, in `unit`; absent when nothing was measured
    /// (which fails the objective).
    pub measured: Option<f64>,
    pub pass: bool,
}

impl Verdict {
    /// `segmentTtfbP99 ≤ 300 ms: 3.2 ms PASS`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {}: {} {}",
            self.figure,
            if self.bound == "max" { "≤" } else { "≥" },
            shown(Some(self.limit), &self.unit),
            self.measured
                .map_or_else(|| "not measured".to_owned(), |m| shown(Some(m), &self.unit)),
            if self.pass { "PASS" } else { "FAIL" }
        )
    }
}

/// A figure's value as the summaries show it: at most 4 decimals, `ms`
/// after a time, `-` when not measured.
pub fn shown(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) => {
            let v = (v * 1e4).round() / 1e4;
            if unit == "ms" {
                format!("{v} ms")
            } else {
                v.to_string()
            }
        }
    }
}

/// One or more service-level objectives failed: exit status 4.
#[derive(Debug, thiserror::Error)]
#[error("SLO failed: {}", .0.join(", "))]
pub struct SloFailed(pub Vec<String>);

/// `Err` naming every failed objective of `verdicts`, `Ok` when all passed.
pub fn gate(verdicts: &[Verdict]) -> Result<(), SloFailed> {
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(Verdict::line)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SloFailed(failed))
    }
}

/// The limit of `key` in its figure's unit.
fn limit_value(f: &Figure, limit: &Limit) -> Result<f64, String> {
    match (f.unit, limit) {
        (_, Limit::Gate(g)) => match &g.limit {
            Limit::Gate(_) => Err("expected a number or a duration as the limit".into()),
            plain => limit_value(f, plain),
        },
        (Unit::Millis, Limit::Text(t)) => parse_millis(t),
        (Unit::Millis, Limit::Number(_)) => Err("expected a duration such as \"300ms\"".into()),
        (_, Limit::Number(n)) => Ok(*n),
        (_, Limit::Text(t)) => Err(format!("expected a number, got \"{t}\"")),
    }
}

/// Problems with an `slo` table that the schema cannot see: durations out of
/// range, figures the engine does not measure (the gates' own problems are
/// `gate::gates`'). `(dotted path, message)`.
pub fn check(slo: &Slo, native: bool) -> Vec<(String, String)> {
    let all = figures();
    let mut out = Vec::new();
    for (key, limit) in &slo.0 {
        let path = format!("slo.{key}");
        let Some(f) = all.iter().find(|f| f.key == *key) else {
            continue; // the schema names unknown keys
        };
        if let Err(e) = limit_value(f, limit) {
            out.push((path.clone(), e));
        }
        if f.native_only && !native {
            out.push((
                path,
                "the ffmpeg engine does not measure this figure; use the native engine \
                 (`--engine native`) or drop the objective"
                    .into(),
            ));
        }
    }
    out
}

/// `FIGURE=LIMIT` as given to `--slo`: the figure's key and its limit (a
/// number, or a duration such as `300ms`). The key must be a figure's.
pub fn parse_flag(arg: &str) -> Result<(String, Limit), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| {
        format!("--slo {arg}: expected FIGURE=LIMIT, e.g. segmentTtfbP99=300ms or errorRate=0.001")
    })?;
    let (key, value) = (key.trim(), value.trim());
    let all = figures();
    if !all.iter().any(|f| f.key == key) {
        let hint = common::suggest::closest(key, all.iter().map(|f| f.key.as_str()))
            .map_or_else(String::new, |s| format!("; did you mean `{s}`?"));
        return Err(format!("--slo {arg}: `{key}` is not a figure{hint}"));
    }
    let limit = match value.parse::<f64>() {
        Ok(n) => Limit::Number(n),
        Err(_) if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') => {
            Limit::Text(value.to_owned())
        }
        Err(_) => {
            return Err(format!(
                "--slo {arg}: `{value}` is neither a number nor a duration such as 300ms"
            ))
        }
    };
    Ok((key.to_owned(), limit))
}

/// Checks every objective of `slo` against the totals `s` of a run (or of
/// a window of one), in the order of [`figures`]. An objective whose figure
/// was not measured fails.
pub fn evaluate(slo: &Slo, s: &Totals) -> Vec<Verdict> {
    figures()
        .iter()
        .filter_map(|f| verdict(slo, f, f.measure(s)))
        .collect()
}

/// The verdict of `slo`'s objective on figure `f`, measured at `measured`
/// (by a run's totals, or by a live gate's window); none when `slo` has no
/// objective on it.
pub fn verdict(slo: &Slo, f: &Figure, measured: Option<f64>) -> Option<Verdict> {
    // (a limit that does not read was refused when the config was loaded)
    let limit = limit_value(f, slo.0.get(&f.key)?).ok()?;
    let pass = measured.is_some_and(|m| if f.at_most { m <= limit } else { m >= limit });
    Some(Verdict {
        figure: f.key.clone(),
        bound: if f.at_most { "max" } else { "min" }.into(),
        limit,
        unit: match f.unit {
            Unit::Millis => "ms",
            Unit::Number => "number",
            Unit::Fraction => "fraction",
        }
        .into(),
        measured,
        pass,
    })
}

impl JsonSchema for Slo {
    fn schema_name() -> Cow<'static, str> {
        "Slo".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut properties = serde_json::Map::new();
        for f in figures() {
            let value = match f.unit {
                Unit::Millis => json!({
                    "type": "string",
                    "pattern": r"^[0-9]+(\.[0-9]+)?(us|ms|s|m)$",
                    "description": format!(
                        "{} (a duration: a number and us, ms, s or m, up to 60m, e.g. \"300ms\", \"2s\")",
                        f.help
                    ),
                }),
                Unit::Number => json!({
                    "type": "number", "minimum": 0, "maximum": 1000,
                    "description": f.help,
                }),
                Unit::Fraction => json!({
                    "type": "number", "minimum": 0, "maximum": 1,
                    "description": f.help,
                }),
            };
            let gate = json!({
                "type": "object",
                "description": "the limit, and when it stops the run early: judged once a \
                                second on the last `window` of the run (default 30s), from \
                                `delayAbortEval` into it (default 0s); figures the per-second \
                                series tells only (errorRate, minActiveViewers, segmentTtfbP…)",
                "properties": {
                    "limit": value.clone(),
                    "abortOnFail": { "type": "boolean" },
                    "window": { "type": "string", "pattern": "^[0-9]+(s|m)$" },
                    "delayAbortEval": { "type": "string", "pattern": "^[0-9]+(s|m)$" },
                },
                "required": ["limit"],
                "additionalProperties": false,
            });
            // the table when it is one, so that a mistake in it is named
            properties.insert(
                f.key,
                json!({
                    "description": value["description"].clone(),
                    "if": { "type": "object" }, "then": gate, "else": value,
                }),
            );
        }
        let schema: Value = json!({
            "type": "object",
            "description": "Service-level objectives: limits on the run's figures, checked at \
                            the end (exit status 4 when one fails)",
            "properties": properties,
            "additionalProperties": false,
        });
        Schema::try_from(schema).expect("an object schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Counters, KindStats};

    fn stats(p50: f64, p99: f64) -> Stats {
        Stats {
            count: 100,
            p50,
            p99,
            ..Default::default()
        }
    }

    fn slo(pairs: &[(&str, Limit)]) -> Slo {
        Slo(pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect())
    }

    #[test]
    fn durations_are_read_in_milliseconds_and_bounded() {
        assert_eq!(parse_millis("300ms"), Ok(300.0));
        assert_eq!(parse_millis("2s"), Ok(2000.0));
        assert_eq!(parse_millis("1.5s"), Ok(1500.0));
        assert_eq!(parse_millis("250us"), Ok(0.25));
        assert_eq!(parse_millis("1m"), Ok(60_000.0));
        assert!(parse_millis("300").unwrap_err().contains("no unit"));
        assert!(parse_millis("3h").unwrap_err().contains("not a unit"));
        assert!(parse_millis("61m").unwrap_err().contains("1 hour"));
    }

    #[test]
    fn objectives_pass_and_fail_on_the_measured_figures() {
        let mut n = NativeTotals::default();
        n.requests.insert(
            "segment".into(),
            KindStats {
                ttfb_ms: stats(1.0, 250.0),
                ..Default::default()
            },
        );
        n.startup_ms = stats(800.0, 2500.0);
        n.counts.play_sec = 990.0;
        n.counts.rebuffer_sec = 10.0;
        n.rebuffer_ratio = 0.01;
        let mut t = Totals {
            counts: Counters {
                segments: 990,
                playlists: 0,
                timeouts: 10,
                ..Default::default()
            },
            min_active_share: Some(0.98),
            native: Some(n),
            ..Default::default()
        };
        t.counts.http_errors.insert(404, 0);
        let s = t;
        let v = evaluate(
            &slo(&[
                ("segmentTtfbP99", Limit::Text("300ms".into())),
                ("segmentTtfbP50", Limit::Text("500us".into())),
                ("rebufferRatio", Limit::Number(0.005)),
                ("errorRate", Limit::Number(0.01)),
                ("minActiveViewers", Limit::Number(0.99)),
                ("liveLatencyP95", Limit::Text("10s".into())),
            ]),
            &s,
        );
        let got: Vec<(&str, Option<f64>, bool)> = v
            .iter()
            .map(|v| (v.figure.as_str(), v.measured, v.pass))
            .collect();
        assert_eq!(
            got,
            [
                ("segmentTtfbP50", Some(1.0), false),
                ("segmentTtfbP99", Some(250.0), true),
                // nothing measured: fails
                ("liveLatencyP95", None, false),
                ("rebufferRatio", Some(0.01), false),
                // 10 timeouts of 1000 requests
                ("errorRate", Some(0.01), true),
                ("minActiveViewers", Some(0.98), false),
            ]
        );
        assert_eq!(v[1].line(), "segmentTtfbP99 ≤ 300 ms: 250 ms PASS");
        assert_eq!(v[2].line(), "liveLatencyP95 ≤ 10000 ms: not measured FAIL");
        assert_eq!(v[5].line(), "minActiveViewers ≥ 0.99: 0.98 FAIL");
    }

    #[test]
    fn wrong_kinds_and_figures_the_engine_lacks_are_refused() {
        let s = slo(&[
            ("segmentTtfbP99", Limit::Number(300.0)),
            ("errorRate", Limit::Text("1%".into())),
            ("startupP95", Limit::Text("2s".into())),
        ]);
        let native = check(&s, true);
        assert_eq!(
            native,
            [
                (
                    "slo.errorRate".to_owned(),
                    "expected a number, got \"1%\"".to_owned()
                ),
                (
                    "slo.segmentTtfbP99".to_owned(),
                    "expected a duration such as \"300ms\"".to_owned()
                ),
            ]
        );
        let ffmpeg = check(&s, false);
        assert!(ffmpeg
            .iter()
            .any(|(p, m)| p == "slo.startupP95" && m.contains("ffmpeg engine does not measure")));
        // both engines count errors: only the type is wrong there
        assert!(!ffmpeg
            .iter()
            .any(|(p, m)| p == "slo.errorRate" && m.contains("does not measure")));
    }

    #[test]
    fn the_schema_lists_every_figure() {
        let schema = serde_json::to_value(schemars::schema_for!(Slo)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), figures().len());
        for key in [
            "segmentTtfbP99",
            "startupP95",
            "rebufferRatio",
            "minActiveViewers",
        ] {
            assert!(props.contains_key(key), "{key}");
        }
        assert_eq!(schema["additionalProperties"], false);
    }
}
