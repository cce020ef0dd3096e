//! A run's per-second series as CSV, for spreadsheets: a header, then one
//! row a second, in the units the results use. A figure a run did not
//! measure (segment TTFB of FFmpeg viewers, the origin's figures without
//! `--origin-status`) is an empty cell.

use serde::Serialize;

use super::Results;

/// One second's row; the field names are the header.
#[derive(Serialize)]
struct Row {
    /// Unix time of the second's end.
    unix_time: u64,
    /// Seconds since the series began (1 for its first second).
    second: usize,
    target: u64,
    active: u64,
    stalled: u64,
    bytes: u64,
    requests: u64,
    errors: u64,
    segment_ttfb_p50_ms: Option<f64>,
    segment_ttfb_p99_ms: Option<f64>,
    origin_connections: Option<u64>,
    origin_requests_per_sec: Option<f64>,
    origin_cpu_cores: Option<f64>,
}

/// The series of `r` as CSV.
pub fn write(r: &Results) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = 0;
    for (i, s) in r.series.iter().enumerate() {
        w.serialize(Row {
            unix_time: s.t,
            second: i + 1,
            target: s.target,
            active: s.active,
            stalled: s.stalled,
            bytes: s.bytes,
            requests: s.requests,
            errors: s.errors,
            segment_ttfb_p50_ms: s.ttfb_p50_ms,
            segment_ttfb_p99_ms: s.ttfb_p99_ms,
            origin_connections: s.origin_connections,
            origin_requests_per_sec: s.origin_requests,
            origin_cpu_cores: s.origin_cpu,
        })?;
        rows += 1;
    }
    if rows == 0 {
        // the header alone, so an empty run still reads as a table
        w.write_record([
            "unix_time",
            "second",
            "target",
            "active",
            "stalled",
            "bytes",
            "requests",
            "errors",
            "segment_ttfb_p50_ms",
            "segment_ttfb_p99_ms",
            "origin_connections",
            "origin_requests_per_sec",
            "origin_cpu_cores",
        ])?;
    }
    Ok(w.into_inner()?)
}
