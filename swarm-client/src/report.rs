//! `swarm-client report`: a run's results (or merged results) as one
//! self-contained HTML file — charts over time drawn here as inline SVG (no
//! script, nothing loaded from the network when it is viewed), the SLO
//! verdicts, percentile tables by request kind, the QoE figures and the run's
//! settings. The same results give the same bytes.

use std::fmt::Write;

use crate::results::{Results, Second, Seconds, Stats};
use crate::table::{bytes, rate};

/// The Low-Latency HLS counts and request rates (PLAYER.md §7), as table
/// rows; none when the viewers played no LL-HLS.
fn low_latency_rows(n: &crate::results::NativeTotals) -> String {
    if !n.low_latency() {
        return String::new();
    }
    n.low_latency_facts()
        .iter()
        .map(|(what, value)| format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(what), esc(value)))
        .collect()
}

/// `s` safe inside HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number for a chart: at most 3 decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `v` (an axis' top).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// One line of a chart: a value per second (`None`: a gap).
pub struct Line<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub dashed: bool,
    pub values: Vec<Option<f64>>,
}

const W: f64 = 560.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// A line chart over the run's seconds, as an SVG figure.
pub fn chart(id: &str, title: &str, unit: &str, lines: &[Line]) -> String {
    let n = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    // x labels: seconds from the first
    let step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]
        .into_iter()
        .find(|s| n / s <= 8)
        .unwrap_or(7200);
    let ticks: Vec<(usize, String)> = (0..n.max(1))
        .step_by(step)
        .map(|i| (i, format!("{i} s")))
        .collect();
    plot(id, title, unit, lines, &ticks, None)
}

/// A line chart of values at `0..n`, labelled on the x axis at `ticks`,
/// with a vertical line at `mark` (its index and label), as an SVG figure.
pub fn plot(
    id: &str,
    title: &str,
    unit: &str,
    lines: &[Line],
    ticks: &[(usize, String)],
    mark: Option<(usize, &str)>,
) -> String {
    let n = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let top = nice_max(
        lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .copied()
            .fold(0.0, f64::max),
    );
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |i: usize| LEFT + pw * i as f64 / (n.max(2) - 1) as f64;
    let y = |v: f64| TOP + ph * (1.0 - v / top);
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"chart\" id=\"chart-{id}\"><figcaption>{} <span>({})</span></figcaption>\
         <svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(unit),
        esc(title)
    );
    // grid and y labels
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let (x2, gy, lx, ly) = (num(W - RIGHT), num(y(v)), num(LEFT - 6.0), num(y(v) + 4.0));
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{gy}\" y2=\"{gy}\"/>\
             <text class=\"ylabel\" x=\"{lx}\" y=\"{ly}\">{}</text>",
            num(v)
        );
    }
    for (i, label) in ticks {
        let _ = write!(
            o,
            "<text class=\"xlabel\" x=\"{}\" y=\"{}\">{}</text>",
            num(x(*i)),
            num(H - 10.0),
            esc(label)
        );
    }
    if let Some((i, label)) = mark {
        // the label on the side with room
        let (lx, anchor) = if x(i) > W / 2.0 {
            (x(i) - 4.0, "end")
        } else {
            (x(i) + 4.0, "start")
        };
        let _ = write!(
            o,
            "<line class=\"mark\" x1=\"{0}\" x2=\"{0}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#c0392b\"/>\
             <text class=\"mark\" x=\"{2}\" y=\"{3}\" fill=\"#c0392b\" text-anchor=\"{anchor}\">{4}</text>",
            num(x(i)),
            num(H - BOTTOM),
            num(lx),
            num(TOP + 12.0),
            esc(label)
        );
    }
    if n == 0 || lines.iter().all(|l| l.values.iter().all(Option::is_none)) {
        let _ = write!(
            o,
            "<text class=\"empty\" x=\"{}\" y=\"{}\">no data</text>",
            num(W / 2.0),
            num(H / 2.0)
        );
    }
    for l in lines {
        let mut d = String::new();
        let mut pen = false;
        for (i, v) in l.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{},{} ",
                        if pen { "L" } else { "M" },
                        num(x(i)),
                        num(y(*v))
                    );
                    pen = true;
                }
                None => pen = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                o,
                "<path class=\"line\" d=\"{}\" stroke=\"{}\"{}><title>{}</title></path>",
                d.trim_end(),
                l.color,
                if l.dashed {
                    " stroke-dasharray=\"6 4\""
                } else {
                    ""
                },
                esc(l.label)
            );
        }
    }
    o.push_str("</svg><div class=\"legend\">");
    for l in lines {
        let _ = write!(
            o,
            "<span><i style=\"background:{}\"></i>{}</span>",
            l.color,
            esc(l.label)
        );
    }
    o.push_str("</div></figure>\n");
    o
}

/// A capacity search: its answer, each step's verdicts, and a chart per
/// objective of the figure against the viewers, with its limit and the
/// breaking point marked.
fn capacity(c: &crate::results::capacity::Capacity) -> String {
    let mut o = format!(
        "<section id=\"capacity\">\n<h2>Capacity</h2>\n<p class=\"answer\">{}</p>\n\
         <table>\n<tr><th>step</th><th>viewers</th><th>verdict</th><th>objectives</th></tr>\n",
        esc(&c.line())
    );
    for (i, step) in c.steps.iter().enumerate() {
        let failed: Vec<String> = step
            .verdicts
            .iter()
            .filter(|v| !v.pass)
            .map(|v| v.line())
            .collect();
        let _ = writeln!(
            o,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if step.pass { "pass" } else { "fail" },
            i + 1,
            step.viewers,
            if step.pass { "held" } else { "FAILED" },
            esc(&failed.join("; "))
        );
    }
    o.push_str("</table>\n<div class=\"grid\">\n");
    let ticks: Vec<(usize, String)> = c
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.viewers.to_string()))
        .collect();
    let breaks = c.steps.iter().position(|s| !s.pass);
    let mark = breaks.map(|i| format!("fails at {}", c.steps[i].viewers));
    let figures = c.steps.first().map_or(&[][..], |s| &s.verdicts[..]);
    for (k, v) in figures.iter().enumerate() {
        let measured = c
            .steps
            .iter()
            .map(|s| s.verdicts.get(k).and_then(|v| v.measured))
            .collect();
        let lines = [
            Line {
                label: &v.figure,
                color: "#2c7fb8",
                dashed: false,
                values: measured,
            },
            Line {
                label: if v.bound == "max" {
                    "limit (at most)"
                } else {
                    "limit (at least)"
                },
                color: "#c0392b",
                dashed: true,
                values: vec![Some(v.limit); c.steps.len()],
            },
        ];
        let unit = format!("{} by viewers", v.unit);
        o.push_str(&plot(
            &format!("capacity-{}", v.figure),
            &v.figure,
            &unit,
            &lines,
            &ticks,
            breaks.zip(mark.as_deref()),
        ));
    }
    o.push_str("</div>\n</section>\n");
    o
}

fn per_second(series: &Seconds, f: impl Fn(&Second) -> Option<f64>) -> Vec<Option<f64>> {
    series.iter().map(|s| f(&s)).collect()
}

/// The charts of a run, over its seconds.
fn charts(series: &Seconds) -> String {
    let v = |f: fn(&Second) -> u64| per_second(series, |s| Some(f(s) as f64));
    let mut o = String::from("<section id=\"charts\">\n<h2>Over time</h2>\n<div class=\"grid\">\n");
    o.push_str(&chart(
        "viewers",
        "Viewers",
        "active and target",
        &[
            Line {
                label: "active",
                color: "#1f77b4",
                dashed: false,
                values: v(|s| s.active),
            },
            Line {
                label: "target",
                color: "#7f7f7f",
                dashed: true,
                values: v(|s| s.target),
            },
        ],
    ));
    o.push_str(&chart(
        "throughput",
        "Throughput",
        "Mbit/s",
        &[Line {
            label: "received",
            color: "#2ca02c",
            dashed: false,
            values: per_second(series, |s| Some(s.bytes as f64 * 8.0 / 1e6)),
        }],
    ));
    o.push_str(&chart(
        "requests",
        "Requests",
        "per second",
        &[Line {
            label: "segments and playlists",
            color: "#9467bd",
            dashed: false,
            values: v(|s| s.requests),
        }],
    ));
    o.push_str(&chart(
        "ttfb",
        "Segment TTFB",
        "ms",
        &[
            Line {
                label: "p50",
                color: "#17becf",
                dashed: false,
                values: per_second(series, |s| s.ttfb_p50_ms),
            },
            Line {
                label: "p99",
                color: "#ff7f0e",
                dashed: false,
                values: per_second(series, |s| s.ttfb_p99_ms),
            },
        ],
    ));
    o.push_str(&chart(
        "errors",
        "Errors",
        "failed requests per second",
        &[Line {
            label: "errors",
            color: "#d62728",
            dashed: false,
            values: v(|s| s.errors),
        }],
    ));
    o.push_str(&chart(
        "stalled",
        "Stalled viewers",
        "viewers",
        &[Line {
            label: "stalled",
            color: "#8c564b",
            dashed: false,
            values: v(|s| s.stalled),
        }],
    ));
    // the origin beside the swarm, when it was read
    if series
        .iter()
        .any(|s| s.origin_connections.is_some() || s.origin_cpu.is_some())
    {
        o.push_str(&chart(
            "origin-connections",
            "Origin connections",
            "nginx, active",
            &[Line {
                label: "connections",
                color: "#1f77b4",
                dashed: false,
                values: per_second(series, |s| s.origin_connections.map(|c| c as f64)),
            }],
        ));
        o.push_str(&chart(
            "origin-requests",
            "Origin requests",
            "per second, as nginx counts them",
            &[Line {
                label: "served",
                color: "#9467bd",
                dashed: false,
                values: per_second(series, |s| s.origin_requests),
            }],
        ));
        o.push_str(&chart(
            "origin-cpu",
            "Origin CPU",
            "cores",
            &[Line {
                label: "busy",
                color: "#e377c2",
                dashed: false,
                values: per_second(series, |s| s.origin_cpu),
            }],
        ));
    }
    o.push_str("</div>\n</section>\n");
    o
}

fn stats_row(o: &mut String, name: &str, s: &Stats) {
    let _ = write!(o, "<tr><th>{}</th><td>{}</td>", esc(name), s.count);
    for v in [s.p50, s.p90, s.p95, s.p99, s.p999, s.max] {
        // nothing measured: no percentiles, rather than zeros
        let cell = if s.count == 0 { "-".to_owned() } else { num(v) };
        let _ = write!(o, "<td>{cell}</td>");
    }
    o.push_str("</tr>\n");
}

const STATS_HEAD: &str = "<tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p95</th>\
                          <th>p99</th><th>p99.9</th><th>max</th></tr>";

/// The whole report.
pub fn html(s: &Results) -> String {
    let t = &s.totals;
    let mut o = String::new();
    let title = format!("hls-swarm: {} viewers of {}", t.viewers, s.url);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let started = s.series.first().map(|f| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(f.t.saturating_sub(1));
        humantime::format_rfc3339_seconds(at).to_string()
    });
    let _ = writeln!(
        o,
        "<p class=\"meta\">{} engine · profile {} · {} s{} · {} · seed {}</p>",
        esc(&s.engine),
        esc(&s.profile),
        num(s.duration_sec),
        started.map_or_else(String::new, |a| format!(" from {a}")),
        esc(&s.stopped_by),
        s.seed
    );
    // verdicts first: the answer to "did it hold?"
    if !s.slo.is_empty() {
        let passed = s.slo.iter().filter(|v| v.pass).count();
        let _ = writeln!(
            o,
            "<section id=\"slo\">\n<h2>SLOs: {passed} of {} passed</h2>\n<table>\n\
             <tr><th>objective</th><th>measured</th><th>verdict</th></tr>",
            s.slo.len()
        );
        for v in &s.slo {
            let line = v.line();
            let (objective, rest) = line.split_once(": ").unwrap_or((&line, ""));
            let measured = rest.rsplit_once(' ').map_or(rest, |(m, _)| m);
            let _ = writeln!(
                o,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                if v.pass { "pass" } else { "fail" },
                esc(objective),
                esc(measured),
                if v.pass { "PASS" } else { "FAIL" }
            );
        }
        o.push_str("</table>\n</section>\n");
    }
    if let Some(c) = &s.capacity {
        o.push_str(&capacity(c));
    }
    let _ = writeln!(
        o,
        "<section id=\"totals\">\n<h2>Totals</h2>\n<table>\n\
         <tr><th>viewers started</th><td>{} of {}</td></tr>\n\
         <tr><th>received</th><td>{} ({} average)</td></tr>\n\
         <tr><th>segments, playlists</th><td>{}, {}</td></tr>\n\
         <tr><th>failed requests (HTTP errors, timeouts, connection errors, other)</th>\
         <td id=\"failed-requests\">{} ({}, {}, {}, {})</td></tr>\n\
         <tr><th>restarts, departures, stalls</th><td>{}, {}, {}</td></tr>\n\
         <tr><th>fewest viewers active after the ramp (of a load shape: on its plateaus)</th><td>{}</td></tr>\n</table>\n</section>",
        t.viewers_started,
        t.viewers,
        esc(&bytes(t.counts.bytes)),
        esc(&rate(t.counts.bytes as f64 / s.duration_sec.max(1e-9))),
        t.counts.segments,
        t.counts.playlists,
        // the same failures the errors chart draws, second by second
        s.totals.failed_requests(),
        t.counts.http_errors.values().sum::<u64>(),
        t.counts.timeouts,
        t.counts.connect_errors,
        t.native
            .as_ref()
            .map_or(0, |n| n.counts.errors.values().sum::<u64>()),
        t.counts.restarts,
        t.counts.departures,
        t.counts.stalls,
        t.min_active_share
            .map_or_else(|| "-".to_owned(), |m| format!("{} %", num(m * 100.0))),
    );
    o.push_str(&charts(&s.series));
    if let Some(n) = &t.native {
        let _ = writeln!(
            o,
            "<section id=\"requests\">\n<h2>Requests (ms)</h2>\n<table class=\"stats\">"
        );
        for (kind, k) in &n.requests {
            if k.ttfb_ms.count == 0 {
                continue;
            }
            let _ = writeln!(
                o,
                "<tr class=\"kind\"><th colspan=\"8\">{}</th></tr>{STATS_HEAD}",
                esc(kind)
            );
            stats_row(&mut o, "connect", &k.connect_ms);
            stats_row(&mut o, "TTFB", &k.ttfb_ms);
            stats_row(&mut o, "download", &k.download_ms);
        }
        o.push_str("</table>\n</section>\n");
        let _ = writeln!(
            o,
            "<section id=\"qoe\">\n<h2>What viewers felt</h2>\n<table class=\"stats\">{STATS_HEAD}"
        );
        stats_row(&mut o, "startup (ms)", &n.startup_ms);
        stats_row(&mut o, "segment download ratio", &n.segment_download_ratio);
        stats_row(&mut o, "live latency (ms)", &n.live_latency_ms);
        stats_row(
            &mut o,
            "live latency target (ms)",
            &n.live_latency_target_ms,
        );
        stats_row(&mut o, "rebuffer length (ms)", &n.rebuffer_ms);
        if n.low_latency() {
            stats_row(&mut o, "reload hold (ms)", &n.reload_hold_ms);
            stats_row(&mut o, "reload overshoot (ms)", &n.reload_overshoot_ms);
            stats_row(&mut o, "playlist advance lag (ms)", &n.advance_lag_ms);
            stats_row(&mut o, "part download ratio", &n.part_download_ratio);
        }
        let c = &n.counts;
        let _ = writeln!(
            o,
            "</table>\n<table>\n<tr><th>rebuffers</th><td>{} ({} s, ratio {})</td></tr>\n\
             <tr><th>segments gone, skipped, failed</th><td>{}, {}, {}</td></tr>\n\
             <tr><th>ABR switches up, down</th><td>{}, {}</td></tr>\n{}</table>\n</section>",
            c.rebuffers,
            num(c.rebuffer_sec),
            num(n.rebuffer_ratio),
            c.segments_gone,
            c.segments_skipped,
            c.segments_failed,
            c.switches_up,
            c.switches_down,
            low_latency_rows(n)
        );
        if !n.networks.is_empty() {
            o.push_str(
                "<section id=\"networks\">\n<h2>Network classes</h2>\n<table>\n\
                 <tr><th>network</th><th>viewers</th><th>segments</th><th>bytes</th>\
                 <th>failed requests</th><th>segment TTFB p50 / p99 (ms)</th>\
                 <th>startup p50 (ms)</th><th>rebuffers (ratio)</th><th>ABR down</th></tr>\n",
            );
            for (name, c) in &n.networks {
                let _ = writeln!(
                    o,
                    "<tr><th>{}</th><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{} / {}</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
                    esc(name),
                    c.viewers_started,
                    c.viewers,
                    c.segments,
                    crate::table::bytes(c.bytes),
                    c.failed_requests,
                    num(c.segment_ttfb_ms.p50),
                    num(c.segment_ttfb_ms.p99),
                    num(c.startup_ms.p50),
                    c.rebuffers,
                    num(c.rebuffer_ratio),
                    c.switches_down
                );
            }
            o.push_str("</table>\n</section>\n");
        }
    }
    let settings = serde_json::to_string_pretty(&s.settings).unwrap_or_default();
    let _ = writeln!(
        o,
        "<section id=\"settings\">\n<h2>Settings</h2>\n<pre>{}</pre>\n</section>\n\
         <footer>hls-swarm {} · results format {} version {}</footer>\n</body>\n</html>",
        esc(&settings),
        env!("CARGO_PKG_VERSION"),
        esc(&s.format),
        s.version
    );
    o
}

/// A whole page: `body` under the title, with the report's style.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}\
         </body>\n</html>\n",
        t = esc(title)
    )
}

/// Writes the report of `s` to `path` (atomically).
pub fn write(s: &Results, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    common::artifact::write_atomic(path, html(s).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}\
.meta{color:#555;margin:0 0 16px}#slo td:first-child{text-align:left}table{border-collapse:collapse;margin:4px 0}\
th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}th{text-align:left;font-weight:600}\
tr.kind th{padding-top:12px;border:0}tr.pass td:last-child{color:#1a7f37;font-weight:600}\
tr.fail td:last-child{color:#c62828;font-weight:600}tr.fail{background:#fdecea}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}\
figure.chart{margin:0;border:1px solid #e3e3e3;border-radius:4px;padding:8px}\
figcaption{font-weight:600}figcaption span{font-weight:400;color:#666}\
svg{width:100%;height:auto;display:block}.grid line{stroke:#eee}line.grid{stroke:#e6e6e6}\
text{font-size:11px;fill:#666}text.ylabel{text-anchor:end}text.xlabel{text-anchor:middle}\
text.empty{text-anchor:middle;font-size:14px}path.line{fill:none;stroke-width:1.8}\
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:3px;margin:0 4px 3px 0}\
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}footer{margin-top:24px;color:#888;font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(0.21), 0.25);
        assert_eq!(nice_max(480.0), 500.0);
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(3.0), "3");
    }

    #[test]
    fn a_chart_draws_each_line_with_gaps_and_says_when_empty() {
        let svg = chart(
            "t",
            "T <b>",
            "ms",
            &[Line {
                label: "p99",
                color: "#000",
                dashed: false,
                values: vec![Some(1.0), None, Some(4.0), Some(2.0)],
            }],
        );
        // a gap starts a new stroke; the axis tops at 5, the plot is 492
        // wide from x 56 and 178 high from y 12
        assert!(
            svg.contains("d=\"M56,154.4 M384,47.6 L548,118.8\""),
            "{svg}"
        );
        assert!(svg.contains("T &lt;b&gt;"), "titles are escaped");
        assert!(!svg.contains("no data"));
        let empty = chart("e", "E", "x", &[]);
        assert!(empty.contains("no data") && !empty.contains("<path"));
    }
}
