//! The whole lab with real parts: `test-origin run` (nginx + FFmpeg, access
//! logs kept with --log-dir) and `swarm-client run` with native viewers on it
//! for 60 s. Every viewer plays at real time without a rebuffer, and the
//! swarm's body bytes match the bytes nginx logged.

use std::path::Path;
use std::process::{Command, Stdio};

use testkit::origin::TestOrigin;

/// Sums the `$body_bytes_sent` field of nginx's `timing` and `hls_perf` lines.
fn logged_body_bytes(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut lines = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            // timing: addr [time zone] "GET /x HTTP/1.1" status bytes request_time
            // hls_perf: iso_time status request_time bytes uri
            let n = if line.contains('"') {
                f[f.len() - 2]
            } else {
                f[3]
            };
            bytes += n
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("bad log line {line:?}"));
            lines += 1;
        }
    }
    (bytes, lines)
}

#[test]
fn native_viewers_on_the_test_origin_reconcile_with_nginx_logs() {
    let bin = testkit::origin::binaries();
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // a viewer starts 3 segments back from the live edge: wait until the
    // playlist has 4 (a viewer joining a fresh stream rebuffers)
    let mut origin = TestOrigin::start(
        &[
            "-p",
            "debug",
            "--log-dir",
            logs.to_str().unwrap(),
            "--set",
            "logging.gzip=0",
            "--set",
            "logging.flushInterval=\"1s\"",
            "--set",
            "video.bitrate=300k",
            "--set",
            "video.maxrate=330k",
            "--set",
            "video.bufsize=600k",
        ],
        4,
    );
    let url = origin.url();
    let json = tmp.path().join("summary.json");
    let out = Command::new(bin.join("swarm-client"))
        .args(["run", &url, "--set", "clients=20", "--set", "rampRate=10"])
        .args([
            "--duration",
            "60s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--summary-json",
        ])
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stop the origin: nginx flushes its logs
    origin.stop();

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let n = &v["totals"]["native"];
    assert_eq!(v["engine"], "native");
    assert_eq!(v["totals"]["httpErrors"], serde_json::json!({}), "{text}");
    assert_eq!(v["totals"]["timeouts"], 0, "{text}");
    assert_eq!(v["totals"]["connectErrors"], 0, "{text}");
    assert_eq!(n["errors"], serde_json::json!({}), "{text}");
    assert_eq!(n["rebuffers"], 0, "{text}");
    assert_eq!(n["segmentsSkipped"], 0, "{text}");
    assert_eq!(n["segmentsGone"], 0, "{text}");
    // every viewer plays at real time: from its startup to the end, no stall,
    // and it loaded about as much media as the time it played
    for viewer in v["viewers"].as_array().unwrap() {
        let q = &viewer["native"];
        let play = q["playSec"].as_f64().unwrap();
        assert!(play > 50.0, "viewer {}: played {play} s", viewer["id"]);
        let media = viewer["mediaSeconds"].as_f64().unwrap();
        assert!(
            media >= play && media <= play + 10.0,
            "viewer {}: {media} s of media for {play} s of play",
            viewer["id"]
        );
    }
    let ratio_p99 = n["segmentDownloadRatio"]["p99"].as_f64().unwrap();
    assert!(
        ratio_p99 < 0.5,
        "segments download faster than real time: {ratio_p99}"
    );
    // the swarm's body bytes against nginx's access log
    let swarm = n["bodyBytes"].as_u64().unwrap();
    let (nginx, lines) = logged_body_bytes(&logs);
    let requests =
        v["totals"]["segments"].as_u64().unwrap() + v["totals"]["playlists"].as_u64().unwrap();
    assert!(
        lines as u64 >= requests,
        "{lines} log lines for {requests} requests"
    );
    let diff = (nginx as f64 - swarm as f64).abs() / nginx as f64;
    eprintln!(
        "swarm {swarm} B, nginx {nginx} B, difference {:.4} %",
        diff * 100.0
    );
    assert!(diff < 0.005, "swarm {swarm} B vs nginx {nginx} B");
}
