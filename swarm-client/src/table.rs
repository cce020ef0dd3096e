//! The results as a table for a terminal: what `run` and `merge` print at
//! the end.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::results::{NativeTotals, Results, Stats};

/// The results as a table for a terminal.
pub fn table(r: &Results) -> String {
    let t = &r.totals;
    let mut o = String::new();
    let errors = |m: &BTreeMap<u16, u64>| {
        if m.is_empty() {
            "0".to_owned()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let _ = writeln!(
        o,
        "summary: {} viewers of {} for {:.1} s ({}), profile {}",
        t.viewers, r.url, r.duration_sec, r.stopped_by, r.profile
    );
    let _ = writeln!(
        o,
        "  started {} of {} viewers, {} starts, {} restarts{}",
        t.viewers_started,
        t.viewers,
        t.counts.starts,
        t.counts.restarts,
        if t.counts.departures > 0 {
            format!(
                ", {} departures (the load shape's target fell)",
                t.counts.departures
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  read {} ({} average), {} segments, {} playlists",
        bytes(t.counts.bytes),
        rate(t.counts.bytes as f64 / r.duration_sec.max(1e-9)),
        t.counts.segments,
        t.counts.playlists
    );
    let _ = writeln!(
        o,
        "  media {:.2} s per second over all viewers ({:.2}× real time per viewer started)",
        t.media_rate,
        t.media_rate / f64::from(t.viewers_started.max(1))
    );
    let _ = writeln!(
        o,
        "  HTTP errors {}, timeouts {}, connection errors {}, stalls {}",
        errors(&t.counts.http_errors),
        t.counts.timeouts,
        t.counts.connect_errors,
        t.counts.stalls
    );
    if let Some(n) = &t.native {
        native_human(&mut o, n);
    }
    let native = t.native.is_some();
    if native {
        let _ = writeln!(
            o,
            "  {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10}",
            "viewer", "starts", "bytes", "segments", "errors", "startup", "rebuffer", "latency"
        );
    } else {
        let _ = writeln!(
            o,
            "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
            "viewer", "starts", "bytes", "segments", "playlists", "errors", "speed"
        );
    }
    for v in r.viewers.iter().take(MAX_VIEWER_ROWS) {
        let errs: u64 = v.counts.failed_requests();
        if let Some(q) = &v.native {
            let errs = errs + q.counts.errors.values().sum::<u64>();
            let startup = q
                .startup_ms
                .map_or("-".to_owned(), |s| format!("{:.0} ms", s));
            let latency = q
                .live_latency_ms
                .as_ref()
                .map_or("-".to_owned(), |l| format!("{:.1} s", l.p50 / 1000.0));
            let _ = writeln!(
                o,
                "  {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>10}",
                v.id,
                v.counts.starts,
                bytes(q.counts.body_bytes),
                v.counts.segments,
                errs,
                startup,
                format!("{}×/{:.1}s", q.counts.rebuffers, q.counts.rebuffer_sec),
                latency
            );
            continue;
        }
        let speed = v.last_speed.map_or("-".to_owned(), |s| format!("{s:.2}x"));
        let _ = writeln!(
            o,
            "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
            v.id,
            v.counts.starts,
            bytes(v.counts.bytes),
            v.counts.segments,
            v.counts.playlists,
            errs,
            speed
        );
    }
    if r.viewers.len() > MAX_VIEWER_ROWS {
        let _ = writeln!(
            o,
            "  … {} more viewers (all of them are in --summary-json)",
            r.viewers.len() - MAX_VIEWER_ROWS
        );
    }
    if !r.slo.is_empty() {
        let passed = r.slo.iter().filter(|v| v.pass).count();
        let _ = writeln!(o, "  SLOs: {passed} of {} passed", r.slo.len());
        for v in &r.slo {
            let _ = writeln!(o, "    {}", v.line());
        }
    }
    if let Some(c) = &r.capacity {
        capacity_human(&mut o, c);
    }
    o
}

/// A capacity search: each step judged, then the answer.
fn capacity_human(o: &mut String, c: &crate::results::capacity::Capacity) {
    let _ = writeln!(
        o,
        "  capacity search: {} viewers, then {} more a step up to {}; {} s a step, judged from {} s into it",
        c.start, c.step, c.max, c.step_sec, c.settle_sec
    );
    for (i, s) in c.steps.iter().enumerate() {
        let figures: Vec<String> = s
            .verdicts
            .iter()
            .map(|v| {
                let value = match v.measured {
                    None => "not measured".to_owned(),
                    m => crate::results::slo::shown(m, &v.unit),
                };
                format!("{} {value}{}", v.figure, if v.pass { "" } else { " FAIL" })
            })
            .collect();
        let _ = writeln!(
            o,
            "    step {}: {} viewers {} ({})",
            i + 1,
            s.viewers,
            if s.pass { "held" } else { "FAILED" },
            figures.join(", ")
        );
    }
    let _ = writeln!(o, "  {}", c.line());
}

/// Viewers listed one per line in the table.
pub const MAX_VIEWER_ROWS: usize = 50;

/// The Low-Latency HLS figures (PLAYER.md §7) of a run whose viewers held
/// blocking reloads or loaded parts.
fn low_latency_human(o: &mut String, n: &NativeTotals) {
    let ms = |s: &Stats| {
        if s.count == 0 {
            "-".to_owned()
        } else {
            format!("{:.1} / {:.1} ms", s.p50, s.p99)
        }
    };
    let _ = writeln!(
        o,
        "  low latency p50/p99: reload hold {}, overshoot {}, playlist advance lag {}",
        ms(&n.reload_hold_ms),
        ms(&n.reload_overshoot_ms),
        ms(&n.advance_lag_ms)
    );
    for (what, value) in n.low_latency_facts() {
        let _ = writeln!(o, "  {what}: {value}");
    }
}

fn native_human(o: &mut String, n: &NativeTotals) {
    let _ = writeln!(
        o,
        "  {:<9} {:>8} {:>21} {:>21} {:>21}",
        "requests", "count", "connect p50/p99 ms", "TTFB p50/p99 ms", "download p50/p99 ms"
    );
    for (kind, k) in &n.requests {
        if k.ttfb_ms.count == 0 {
            continue;
        }
        let pair = |s: &Stats| {
            if s.count == 0 {
                "-".to_owned()
            } else {
                format!("{:.2} / {:.2}", s.p50, s.p99)
            }
        };
        let _ = writeln!(
            o,
            "  {:<9} {:>8} {:>21} {:>21} {:>21}",
            kind,
            k.ttfb_ms.count,
            pair(&k.connect_ms),
            pair(&k.ttfb_ms),
            pair(&k.download_ms)
        );
    }
    for (what, r) in [
        ("segment", &n.segment_download_ratio),
        ("part", &n.part_download_ratio),
    ] {
        if what == "segment" || r.count > 0 {
            let _ = writeln!(
                o,
                "  {what} download ratio (download time / duration): p50 {:.3}, p99 {:.3}, max {:.3}",
                r.p50, r.p99, r.max
            );
        }
    }
    let _ = writeln!(
        o,
        "  startup p50 {:.0} ms, p95 {}; rebuffers {} ({:.1} s, ratio {:.4}); live latency p50 {:.2} s, p95 {:.2} s",
        n.startup_ms.p50,
        if n.startup_ms.count == 0 { "-".to_owned() } else { format!("{:.0} ms", n.startup_ms.p95) },
        n.counts.rebuffers,
        n.counts.rebuffer_sec,
        n.rebuffer_ratio,
        n.live_latency_ms.p50 / 1000.0,
        n.live_latency_ms.p95 / 1000.0,
    );
    if n.live_latency_target_ms.count > 0 {
        let _ = writeln!(
            o,
            "  live latency target (what the viewers aimed at) p50 {:.2} s, max {:.2} s",
            n.live_latency_target_ms.p50 / 1000.0,
            n.live_latency_target_ms.max / 1000.0
        );
    }
    let _ = writeln!(
        o,
        "  segments gone {}, skipped {}, failed {}; sequence resets {}; viewer failures {}; ABR switches up {}, down {} ({} of them loads abandoned)",
        n.counts.segments_gone,
        n.counts.segments_skipped,
        n.counts.segments_failed,
        n.counts.sequence_resets,
        n.counts.viewer_failures,
        n.counts.switches_up,
        n.counts.switches_down,
        n.counts.segments_abandoned
    );
    if n.low_latency() {
        low_latency_human(o, n);
    }
    let opened: u64 = n.counts.connections.values().sum();
    if opened > 0 {
        let answered: u64 = n.requests.values().map(|k| k.ttfb_ms.count).sum();
        let each: Vec<String> = n
            .counts
            .connections
            .iter()
            .map(|(p, c)| format!("{p} {c}"))
            .collect();
        let _ = writeln!(
            o,
            "  connections opened: {} ({:.1} responses each)",
            each.join(", "),
            answered as f64 / opened as f64
        );
    }
    for (msg, count) in &n.counts.errors {
        let _ = writeln!(o, "  error ×{count}: {msg}");
    }
    if !n.networks.is_empty() {
        let _ = writeln!(
            o,
            "  {:<10} {:>7} {:>9} {:>9} {:>7} {:>17} {:>10} {:>14} {:>9}",
            "network",
            "viewers",
            "segments",
            "bytes",
            "errors",
            "seg TTFB p50/p99",
            "startup",
            "rebuffers",
            "ABR down"
        );
        for (name, c) in &n.networks {
            let _ = writeln!(
                o,
                "  {:<10} {:>7} {:>9} {:>9} {:>7} {:>17} {:>10} {:>14} {:>9}",
                name,
                format!("{}/{}", c.viewers_started, c.viewers),
                c.segments,
                bytes(c.bytes),
                c.failed_requests,
                if c.segment_ttfb_ms.count == 0 {
                    "-".to_owned()
                } else {
                    format!(
                        "{:.0}/{:.0} ms",
                        c.segment_ttfb_ms.p50, c.segment_ttfb_ms.p99
                    )
                },
                if c.startup_ms.count == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.0} ms", c.startup_ms.p50)
                },
                format!("{} ({:.3})", c.rebuffers, c.rebuffer_ratio),
                c.switches_down
            );
        }
    }
}

/// `1.2 MB` and the like.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A byte rate as bits per second: `12.3 Mbit/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    let bits = bytes_per_sec * 8.0;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.0} kbit/s", bits / 1e3)
    }
}
