//! The results document as the swarm client reads and writes it, held under
//! review byte for byte: its JSON Schema, and what `merge` and `report`
//! make of real results files (tests/fixtures/results: two shards of a
//! native run with two network classes and an SLO, and an FFmpeg run).
//! A change to the results model that changes a byte shows here.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(name)
}

/// `merge FILES -o out.json --report out.html`: (results, report, stdout).
fn merge(files: &[&str], extra: &[&str]) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("out.json"), dir.path().join("out.html"));
    let out = Command::new(BIN)
        .arg("merge")
        .args(files.iter().map(|f| fixture(f)))
        .arg("-o")
        .arg(&json)
        .arg("--report")
        .arg(&html)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        std::fs::read_to_string(json).unwrap(),
        std::fs::read_to_string(html).unwrap(),
        stdout.replace(dir.path().to_str().unwrap(), "DIR"),
    )
}

#[test]
fn the_results_schema() {
    let out = Command::new(BIN)
        .args(["schema", "--results"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!("results-schema", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn two_native_shards_merged() {
    let (json, html, table) = merge(
        &["native-0.json", "native-1.json"],
        &["--slo", "segmentTtfbP99=300ms"],
    );
    // the same inputs, the same bytes
    assert!(
        merge(
            &["native-0.json", "native-1.json"],
            &["--slo", "segmentTtfbP99=300ms"]
        ) == (json.clone(), html.clone(), table.clone()),
        "a second merge of the same files differs"
    );
    insta::assert_snapshot!("native-merged-json", json);
    insta::assert_snapshot!("native-merged-table", table);
    insta::assert_snapshot!("native-merged-report", html);
}

#[test]
fn an_ffmpeg_run_read_and_written_again() {
    let (json, html, table) = merge(&["ffmpeg.json"], &[]);
    insta::assert_snapshot!("ffmpeg-json", json);
    insta::assert_snapshot!("ffmpeg-table", table);
    insta::assert_snapshot!("ffmpeg-report", html);
}
