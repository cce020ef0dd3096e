//! What becomes of a run's results: completed (shard, redacted headers,
//! verdicts) and written, at the end and at each checkpoint.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// What becomes of a run's results: made complete (shard, details,
/// verdicts) and written to the files asked for, at the end and at each
/// checkpoint.
#[derive(Clone)]
pub(super) struct ResultsFiles {
    pub(super) objectives: crate::results::slo::Slo,
    pub(super) shard: crate::results::Shard,
    pub(super) no_viewer_details: bool,
    pub(super) summary_json: Option<PathBuf>,
    pub(super) report: Option<PathBuf>,
    /// What of the command line shaped the requests (`settings.request`).
    pub(super) request: serde_json::Value,
}

/// Header names whose values are credentials: written `<redacted>` in
/// results (the name stays, so a run can be made again with one's own).
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "session",
        "signature",
        "key",
        "jwt",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A header's value as results record it.
pub fn recorded_header(name: &str, value: &str) -> String {
    let starts = |p: &str| {
        value
            .get(..p.len())
            .is_some_and(|v| v.eq_ignore_ascii_case(p))
    };
    let looks_secret = starts("bearer ") || starts("basic ") || starts("digest ");
    if secret_header(name) || looks_secret {
        "<redacted>".into()
    } else {
        value.to_owned()
    }
}

/// `settings.request` of the results: the `--header`s (credentials
/// redacted) and `--resolve`, which the config does not hold.
pub(super) fn request_settings(
    headers: &[(String, String)],
    resolve: Option<IpAddr>,
) -> serde_json::Value {
    let h: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), recorded_header(k, v).into()))
        .collect();
    serde_json::json!({ "headers": h, "resolve": resolve.map(|ip| ip.to_string()) })
}

impl ResultsFiles {
    /// Numbers the viewers as in the whole run, leaves details out when
    /// asked, and checks the objectives.
    pub(super) fn complete(&self, summary: &mut crate::results::Results) {
        summary.set_shard(self.shard);
        if let Some(settings) = summary.settings.as_object_mut() {
            settings.insert("request".into(), self.request.clone());
            // the config's own headers, redacted as the command line's are
            if let Some(serde_json::Value::Object(h)) = settings.get_mut("headers") {
                for (k, v) in h.iter_mut() {
                    if let Some(text) = v.as_str() {
                        *v = recorded_header(k, text).into();
                    }
                }
            }
        }
        if self.no_viewer_details {
            summary.viewers.clear();
        }
        summary.slo = crate::results::slo::evaluate(&self.objectives, &summary.totals);
    }

    /// Writes the summary JSON and the report, each atomically (a reader
    /// sees the last complete file, never a part); returns a line for each
    /// file it wrote.
    pub(super) fn write(&self, summary: &crate::results::Results) -> Result<Vec<String>> {
        let mut wrote = Vec::new();
        if let Some(path) = &self.summary_json {
            // streamed: a long run's results are megabytes
            common::artifact::write_atomic_with(path, 0o644, |w| {
                serde_json::to_writer_pretty(&mut *w, summary)?;
                w.write_all(b"\n")
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
            wrote.push(format!("summary written to {}", path.display()));
        }
        if let Some(path) = &self.report {
            crate::report::write(summary, path)?;
            wrote.push(format!("report written to {}", path.display()));
        }
        Ok(wrote)
    }

    /// The engine's checkpoint: the same completion and files, every
    /// [`crate::engine::conductor::CHECKPOINT_EVERY_SECS`]; a failed write is a
    /// warning (once) and the run goes on.
    pub(super) fn checkpoint(&self) -> Option<crate::engine::Checkpoint> {
        if self.summary_json.is_none() && self.report.is_none() {
            return None;
        }
        let me = self.clone();
        let mut warned = false;
        Some(Box::new(move |summary| {
            me.complete(summary);
            if let Err(e) = me.write(summary) {
                if !std::mem::replace(&mut warned, true) {
                    crate::log::warning("checkpoint", &format!("{e:#}; the run goes on"));
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        for (name, value, want) in [
            ("Authorization", "Bearer abc", "<redacted>"),
            ("cookie", "a=b", "<redacted>"),
            ("X-Api-Key", "k1", "<redacted>"),
            ("X-Auth-Token", "t", "<redacted>"),
            ("X-Session-Id", "s", "<redacted>"),
            ("X-Custom", "bearer xyz", "<redacted>"),
            ("X-Custom", "Basic dXNlcjpwdw==", "<redacted>"),
            ("X-Test-Run", "42", "42"),
            ("Accept", "*/*", "*/*"),
            ("X-Cdn", "b", "b"),
        ] {
            assert_eq!(recorded_header(name, value), want, "{name}: {value}");
        }
        let r = request_settings(
            &[
                ("X-Test-Run".into(), "42".into()),
                ("Cookie".into(), "c=1".into()),
            ],
            Some("192.0.2.10".parse().unwrap()),
        );
        assert_eq!(
            r,
            serde_json::json!({
                "headers": { "X-Test-Run": "42", "Cookie": "<redacted>" },
                "resolve": "192.0.2.10"
            })
        );
    }
}
