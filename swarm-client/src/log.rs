//! The swarm's own log lines on stderr — start and stop, warnings, viewer
//! exits, SLO verdicts, the final error. For people: `swarm-client: …`
//! lines. With `--log-format json`, for machines: one JSON object a line,
//! `{"ts", "level", "event", "message", …fields}`.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

static JSON: AtomicBool = AtomicBool::new(false);

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `swarm-client: …` lines
    Text,
    /// One JSON object a line
    Json,
}

pub fn set(f: Format) {
    JSON.store(f == Format::Json, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Note,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// The JSON line of an event (`fields` is an object or null).
pub fn line(level: Level, event: &str, message: &str, fields: Value) -> String {
    let mut m = Map::new();
    m.insert(
        "ts".into(),
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .into(),
    );
    m.insert("level".into(), level.as_str().into());
    m.insert("event".into(), event.into());
    m.insert("message".into(), message.into());
    if let Value::Object(f) = fields {
        for (k, v) in f {
            m.entry(k).or_insert(v);
        }
    }
    Value::Object(m).to_string()
}

/// Logs `message`: a `swarm-client: [level: ]message` line, or the JSON
/// object with `event` and `fields`.
pub fn emit(level: Level, event: &str, message: &str, fields: Value) {
    if json() {
        eprintln!("{}", line(level, event, message, fields));
    } else {
        match level {
            Level::Info => eprintln!("swarm-client: {message}"),
            Level::Note => eprintln!("swarm-client: note: {message}"),
            Level::Warning => eprintln!("swarm-client: warning: {message}"),
            Level::Error => eprintln!("error: {message}"),
        }
    }
}

pub fn info(event: &str, message: &str) {
    emit(Level::Info, event, message, Value::Null);
}

pub fn note(event: &str, message: &str) {
    emit(Level::Note, event, message, Value::Null);
}

pub fn warning(event: &str, message: &str) {
    emit(Level::Warning, event, message, Value::Null);
}

/// The run is stopping, and why (`duration reached`, `interrupted`, …).
pub fn stopping(reason: &str) {
    emit(
        Level::Info,
        "stop",
        &format!("stopping ({reason})"),
        json!({ "reason": reason }),
    );
}

/// An event only machines need (people read it elsewhere: the banner, the
/// summary table): logged only as JSON.
pub fn record(event: &str, message: &str, fields: Value) {
    if json() {
        eprintln!("{}", line(Level::Info, event, message, fields));
    }
}

/// The SLO verdicts, one event each (JSON only; the summary shows them).
pub fn verdicts(v: &[crate::results::slo::Verdict]) {
    for x in v {
        record(
            "slo",
            &x.line(),
            json!({
                "figure": x.figure, "bound": x.bound, "limit": x.limit,
                "unit": x.unit, "measured": x.measured, "pass": x.pass,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_has_the_standard_keys_and_the_fields() {
        let l = line(
            Level::Warning,
            "unreachable",
            "it \"said\" no",
            json!({"url": "http://x/", "level": "ignored"}),
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(
            v["level"], "warning",
            "a field cannot replace a standard key"
        );
        assert_eq!(v["event"], "unreachable");
        assert_eq!(v["message"], "it \"said\" no");
        assert_eq!(v["url"], "http://x/");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        assert!(!l.contains('\n'));
    }
}
