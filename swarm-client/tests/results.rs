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
    let stdout = testkit::run_ok(
        Command::new(BIN)
            .arg("merge")
            .args(files.iter().map(|f| fixture(f)))
            .arg("-o")
            .arg(&json)
            .arg("--report")
            .arg(&html)
            .args(extra),
    );
    (
        std::fs::read_to_string(json).unwrap(),
        std::fs::read_to_string(html).unwrap(),
        stdout.replace(dir.path().to_str().unwrap(), "DIR"),
    )
}

#[test]
fn the_results_schema() {
    let schema = testkit::run_ok(Command::new(BIN).args(["schema", "--results"]));
    insta::assert_snapshot!("results-schema", schema);
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

/// Results whose viewers met HTTP errors are results too: the model reads
/// back the `httpErrors` it writes (number keys inside the flattened
/// counters), and `merge` reads and sums them.
#[test]
fn results_with_http_errors_are_read_and_merged() {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("ffmpeg.json")).unwrap()).unwrap();
    v["totals"]["httpErrors"] = serde_json::json!({"404": 1});
    v["viewers"][0]["httpErrors"] = serde_json::json!({"404": 1});
    let r = swarm_client::results::parse(&v.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.totals.counts.http_errors.get(&404), Some(&1));
    assert_eq!(r.viewers[0].counts.http_errors.get(&404), Some(&1));
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in.json"), dir.path().join("out.json"));
    std::fs::write(&input, v.to_string()).unwrap();
    testkit::run_ok(
        Command::new(BIN)
            .arg("merge")
            .arg(&input)
            .arg(&input)
            .arg("-o")
            .arg(&out),
    );
    let merged = swarm_client::results::parse(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(merged.totals.counts.http_errors.get(&404), Some(&2));
}

#[test]
fn an_ffmpeg_run_read_and_written_again() {
    let (json, html, table) = merge(&["ffmpeg.json"], &[]);
    insta::assert_snapshot!("ffmpeg-json", json);
    insta::assert_snapshot!("ffmpeg-table", table);
    insta::assert_snapshot!("ffmpeg-report", html);
}

/// `series RESULTS` prints the per-second series as CSV, one row a second
/// with the values of the results file (an unmeasured figure an empty
/// cell); `-o FILE` writes the same bytes; a file that is not results is
/// refused (exit 2) and nothing is written.
#[test]
fn the_series_is_a_csv_row_a_second() {
    let file = fixture("native-0.json");
    let csv = testkit::run_ok(Command::new(BIN).arg("series").arg(&file));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let series = results["series"].as_array().unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 13, "{header:?}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), series.len(), "{csv}");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for (i, (row, s)) in rows.iter().zip(series).enumerate() {
        assert_eq!(row[col("second")], (i + 1).to_string());
        for (c, key) in [
            ("unix_time", "t"),
            ("target", "target"),
            ("active", "active"),
            ("bytes", "bytes"),
            ("requests", "requests"),
            ("errors", "errors"),
            ("segment_ttfb_p99_ms", "ttfbP99Ms"),
        ] {
            let want = s.get(key).map_or(String::new(), |v| v.to_string());
            assert_eq!(row[col(c)], want, "{c} of second {}: {csv}", i + 1);
        }
        assert_eq!(row[col("origin_cpu_cores")], "", "not measured: empty");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("series.csv");
    testkit::run_ok(
        Command::new(BIN)
            .arg("series")
            .arg(&file)
            .arg("-o")
            .arg(&out),
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
    let bad = dir.path().join("bad.csv");
    let o = testkit::output(
        Command::new(BIN)
            .arg("series")
            .arg(dir.path().join("missing.json"))
            .arg("-o")
            .arg(&bad),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a results file"));
    assert!(!bad.exists());
}
