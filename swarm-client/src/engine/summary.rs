//! The report at the end of a run: a table for people, JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;

/// What one viewer did over the whole run (all its processes).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerFigures {
    pub id: u32,
    /// Processes started (1 + restarts).
    pub starts: u64,
    pub restarts: u64,
    /// Bytes its processes read (network reads, HTTP headers included).
    pub bytes: u64,
    pub segments: u64,
    pub playlists: u64,
    /// HTTP error responses by status.
    pub http_errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    /// Episodes of reading below 0.9× real time (or not at all) for over 5 s.
    pub stalls: u64,
    /// The last speed FFmpeg reported (1.0 = real time).
    pub last_speed: Option<f64>,
    /// Media time read by processes that have ended, in seconds.
    pub media_seconds: f64,
    #[serde(skip)]
    pub current_media_us: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub viewers: u32,
    pub viewers_started: u32,
    pub starts: u64,
    pub restarts: u64,
    pub bytes: u64,
    pub segments: u64,
    pub playlists: u64,
    pub http_errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub stalls: u64,
    /// Media seconds read per second of run, summed over viewers (≈ viewers
    /// when every one keeps up).
    pub media_rate: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub url: String,
    pub profile: String,
    pub seed: u64,
    pub duration_sec: f64,
    pub stopped_by: String,
    pub settings: serde_json::Value,
    pub totals: Totals,
    pub viewers: Vec<ViewerFigures>,
}

impl Summary {
    pub fn new(
        profile: &str,
        url: &str,
        c: &Config,
        seed: u64,
        ran_for: Duration,
        stopped_by: &str,
        mut viewers: Vec<ViewerFigures>,
    ) -> Self {
        let mut t = Totals {
            viewers: c.clients,
            ..Default::default()
        };
        let secs = ran_for.as_secs_f64().max(1e-9);
        let mut media = 0.0;
        for (i, v) in viewers.iter_mut().enumerate() {
            v.id = i as u32;
            v.media_seconds += v.current_media_us as f64 / 1e6;
            v.current_media_us = 0;
            if v.starts > 0 {
                t.viewers_started += 1;
            }
            t.starts += v.starts;
            t.restarts += v.restarts;
            t.bytes += v.bytes;
            t.segments += v.segments;
            t.playlists += v.playlists;
            for (k, n) in &v.http_errors {
                *t.http_errors.entry(*k).or_default() += n;
            }
            t.timeouts += v.timeouts;
            t.connect_errors += v.connect_errors;
            t.stalls += v.stalls;
            media += v.media_seconds;
        }
        t.media_rate = media / secs;
        Summary {
            url: url.to_owned(),
            profile: profile.to_owned(),
            seed,
            duration_sec: (secs * 10.0).round() / 10.0,
            stopped_by: stopped_by.to_owned(),
            settings: serde_json::to_value(c).expect("configs serialize"),
            totals: t,
            viewers,
        }
    }

    /// A table for a terminal.
    pub fn human(&self) -> String {
        let t = &self.totals;
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
            t.viewers, self.url, self.duration_sec, self.stopped_by, self.profile
        );
        let _ = writeln!(
            o,
            "  started {} of {} viewers, {} starts, {} restarts",
            t.viewers_started, t.viewers, t.starts, t.restarts
        );
        let _ = writeln!(
            o,
            "  read {} ({} average), {} segments, {} playlists",
            bytes(t.bytes),
            rate(t.bytes as f64 / self.duration_sec.max(1e-9)),
            t.segments,
            t.playlists
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
            errors(&t.http_errors),
            t.timeouts,
            t.connect_errors,
            t.stalls
        );
        let _ = writeln!(
            o,
            "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
            "viewer", "starts", "bytes", "segments", "playlists", "errors", "speed"
        );
        for v in &self.viewers {
            let errs: u64 = v.http_errors.values().sum::<u64>() + v.timeouts + v.connect_errors;
            let speed = v.last_speed.map_or("-".to_owned(), |s| format!("{s:.2}x"));
            let _ = writeln!(
                o,
                "  {:>6} {:>7} {:>9} {:>9} {:>10} {:>7} {:>7}",
                v.id,
                v.starts,
                bytes(v.bytes),
                v.segments,
                v.playlists,
                errs,
                speed
            );
        }
        o
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
