//! Test support shared by the swarm-client test binaries: the scriptable
//! HLS server, and the results of a run read through the typed model.
#![allow(dead_code)]

pub mod hls_server;

use std::path::Path;
use std::process::{Command, Stdio};

pub use swarm_client::results::Results;

pub const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// The results document at `path` (what `run --summary-json` and `merge
/// -o` write), read through the typed model.
pub fn results(path: &Path) -> Results {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no results at {}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A results document read through the typed model.
///
/// The model does not read back the `httpErrors` it writes (a map with
/// number keys inside a flattened struct: serde hands the keys over as
/// strings, and `u16` refuses them; `results_with_http_errors_are_read`
/// in results.rs shows it). Until it does, each `httpErrors` is taken out,
/// the rest read by the model, and the maps read on their own.
pub fn parse(text: &str) -> Result<Results, String> {
    use serde_json::Value;
    type Errors = std::collections::BTreeMap<u16, u64>;
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let take =
        |o: &mut Value| std::mem::replace(&mut o["httpErrors"], Value::Object(Default::default()));
    let totals = take(&mut v["totals"]);
    let viewers: Vec<Value> = match v["viewers"].as_array_mut() {
        Some(all) => all.iter_mut().map(take).collect(),
        None => Vec::new(),
    };
    let mut r = swarm_client::results::parse(&v.to_string())?;
    let read = |m: Value| -> Result<Errors, String> {
        serde_json::from_value(m).map_err(|e| format!("httpErrors: {e}"))
    };
    r.totals.counts.http_errors = read(totals)?;
    for (viewer, errors) in r.viewers.iter_mut().zip(viewers) {
        viewer.counts.http_errors = read(errors)?;
    }
    Ok(r)
}

/// `swarm-client run URL` with metrics on a free port and the results
/// written to `json`, stdin closed; more arguments may follow.
pub fn run_command(url: &str, json: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", url, "--metrics-addr", "127.0.0.1:0"])
        .arg("--summary-json")
        .arg(json)
        .stdin(Stdio::null());
    cmd
}

/// `swarm-client run URL ARGS` with metrics on a free port and the results
/// written to a temp file, run to its end, which must be exit status
/// `code`: its results and stdout.
pub fn run_to_end(url: &str, args: &[&str], code: i32) -> (Results, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let out = testkit::output(run_command(url, &json).args(args));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code() == Some(code),
        "swarm-client: expected exit {code}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (results(&json), stdout)
}

/// The native engine's totals of `r` (a native run has them).
pub fn native(r: &Results) -> &swarm_client::results::NativeTotals {
    r.totals
        .native
        .as_ref()
        .unwrap_or_else(|| panic!("no native totals in a {} run", r.engine))
}
