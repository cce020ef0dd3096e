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
pub fn parse(text: &str) -> Result<Results, String> {
    swarm_client::results::parse(text)
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

/// The real Low-Latency origin (`test-origin run -p ll-hls`, the light
/// stream of `testkit::origin`) on `port`, up; and the CA file of its
/// run-time certificate.
pub fn ll_origin(port: u16) -> (testkit::Captured, String) {
    ll_origin_with(port, &[])
}

/// [`ll_origin`] with `extra` arguments of `test-origin run`.
pub fn ll_origin_with(port: u16, extra: &[&str]) -> (testkit::Captured, String) {
    let mut cmd = std::process::Command::new(testkit::origin::binaries().join("test-origin"));
    cmd.args(["run", "-p", "ll-hls", "--port", &port.to_string()])
        .args(testkit::origin::TINY)
        .args(testkit::origin::LIGHT_LL)
        .args(extra);
    let origin = testkit::Captured::spawn(&mut cmd);
    let t = std::time::Instant::now();
    while !origin.output().contains("ready after") {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(40),
            "{}",
            origin.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ca = origin
        .output()
        .lines()
        .find_map(|l| l.strip_prefix("  CA "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the banner names the CA")
        .to_owned();
    (origin, ca)
}

/// The lines of every log file in `dir`.
pub fn log_lines(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        out.extend(text.lines().map(str::to_owned));
    }
    out
}
