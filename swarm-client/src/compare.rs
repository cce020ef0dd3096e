//! `swarm-client compare BASE NEW`: two results files figure by figure
//! (`results::compare`), as text, JSON and an HTML page with both runs'
//! charts overlaid; exit status 4 on a regression.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use common::error::UsageError;

use crate::report::{chart, esc, page, Line};
use crate::results::compare::{compare, parse_tolerance, Comparison};
use crate::results::slo::shown;
use crate::results::{Results, Second, Seconds};

/// A figure got worse past its tolerance: exit status 4.
#[derive(Debug, thiserror::Error)]
#[error("regression: {}", .0.join(", "))]
pub struct Regressed(pub Vec<String>);

/// What `compare` was asked for.
pub struct Inputs {
    pub base: PathBuf,
    pub new: PathBuf,
    pub tolerances: Vec<String>,
    pub json: Option<PathBuf>,
    pub report: Option<PathBuf>,
}

pub fn run(a: &Inputs) -> Result<()> {
    let tolerances: BTreeMap<String, f64> = a
        .tolerances
        .iter()
        .map(|t| parse_tolerance(t))
        .collect::<Result<_, _>>()
        .map_err(UsageError)?;
    let base = crate::merge::read(&a.base)?;
    let new = crate::merge::read(&a.new)?;
    let name = |p: &Path| p.display().to_string();
    let c = compare((&name(&a.base), &base), (&name(&a.new), &new), &tolerances);
    print!("{}", c.text());
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&c)? + "\n";
        common::artifact::write_atomic(path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("comparison written to {}", path.display());
    }
    if let Some(path) = &a.report {
        common::artifact::write_atomic(path, html(&c, &base, &new).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if c.regressions.is_empty() {
        Ok(())
    } else {
        Err(Regressed(c.regressions).into())
    }
}

/// The comparison as a page: the regressions, every figure, and the two
/// runs' series drawn over each other (seconds from each run's start).
pub fn html(c: &Comparison, base: &Results, new: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<p class=\"meta\">base {} · new {}</p>\n<section id=\"regressions\"><h2>{}</h2></section>",
        esc(&c.base),
        esc(&c.new),
        match c.regressions.len() {
            0 => "No regression".to_owned(),
            n => esc(&format!("{n} regression(s): {}", c.regressions.join(", "))),
        }
    );
    o.push_str(
        "<section id=\"figures\">\n<table>\n<tr><th>figure</th><th>base</th><th>new</th>\
         <th>change</th><th>better</th><th>verdict</th></tr>\n",
    );
    for x in &c.changes {
        let class = match x.verdict.as_str() {
            "regression" => "fail",
            "better" => "pass",
            _ => "",
        };
        let _ = writeln!(
            o,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.figure),
            esc(&shown(x.base, &x.unit)),
            esc(&shown(x.new, &x.unit)),
            x.change_pct.map_or("-".to_owned(), |p| format!("{p:+.1} %")),
            esc(&x.better),
            esc(&x.verdict)
        );
    }
    o.push_str(
        "</table>\n</section>\n<section id=\"charts\">\n<h2>Over time</h2>\n<div class=\"grid\">\n",
    );
    type Pick = fn(&Second) -> Option<f64>;
    let panels: [(&str, &str, &str, Pick); 5] = [
        ("viewers", "Viewers", "active", |s| Some(s.active as f64)),
        ("throughput", "Throughput", "Mbit/s", |s| {
            Some(s.bytes as f64 * 8.0 / 1e6)
        }),
        ("requests", "Requests", "per second", |s| {
            Some(s.requests as f64)
        }),
        ("ttfb", "Segment TTFB p99", "ms", |s| s.ttfb_p99_ms),
        ("errors", "Failed requests", "per second", |s| {
            Some(s.errors as f64)
        }),
    ];
    let values = |series: &Seconds, f: Pick| series.iter().map(|s| f(&s)).collect::<Vec<_>>();
    for (id, title, unit, f) in panels {
        o.push_str(&chart(
            id,
            title,
            unit,
            &[
                Line {
                    label: "base",
                    color: "#7f7f7f",
                    dashed: true,
                    values: values(&base.series, f),
                },
                Line {
                    label: "new",
                    color: "#1f77b4",
                    dashed: false,
                    values: values(&new.series, f),
                },
            ],
        ));
    }
    o.push_str("</div>\n</section>\n");
    page("hls-swarm: two runs compared", &o)
}
