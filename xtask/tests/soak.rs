//! `cargo xtask soak` for 2 minutes, as CI runs it: the whole lab with real
//! parts (`test-origin run` with nginx logging every request, a native
//! swarm on it). It must pass its own checks — no listed segment answered
//! 404, the swarm's body bytes within 0.5 % of nginx's, its own memory
//! (RssAnon) and open files flat after the warm-up — and every viewer plays at real time.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_two_minute_soak_passes_and_every_viewer_plays_at_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = testkit::run_ok(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["soak", "--minutes", "2", "--viewers", "40", "--dir"])
            .arg(dir.path()),
    );
    assert!(text.contains("PASS"), "{text}");
    // the soak's own report (not a results document)
    let soak: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("soak.json")).unwrap())
            .unwrap();
    assert_eq!(soak["viewersStarted"], 40);
    assert_eq!(soak["listedSegments404"], 0);
    assert_eq!(soak["httpErrors"], 0);
    assert!(soak["bytesDiff"].as_f64().unwrap() < 0.005, "{soak}");
    assert!(
        soak["nginxBodyBytes"].as_u64().unwrap() > 10_000_000,
        "{soak}"
    );
    assert!(soak["memoryGrowth"].as_f64().unwrap() < 0.05, "{soak}");
    assert!(soak["samples"].as_array().unwrap().len() >= 10, "{soak}");
    assert!(soak["failed"].as_array().unwrap().is_empty());

    // the swarm's own results: every viewer played the whole time, at real
    // time, without a stall
    let v = swarm_client::results::parse(
        &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
    )
    .unwrap();
    let n = v.totals.native.as_ref().expect("native totals");
    assert_eq!(n.counts.rebuffers, 0, "{:?}", n.counts);
    assert_eq!(n.counts.segments_skipped, 0, "{:?}", n.counts);
    assert_eq!(v.totals.counts.timeouts, 0);
    assert_eq!(v.totals.counts.connect_errors, 0);
    for viewer in &v.viewers {
        let play = viewer
            .native
            .as_ref()
            .expect("a native viewer")
            .counts
            .play_sec;
        let media = viewer.media_seconds;
        assert!(play > 100.0, "viewer {}: played {play} s", viewer.id);
        assert!(
            media >= play && media <= play + 10.0,
            "viewer {}: {media} s of media for {play} s of play",
            viewer.id
        );
    }
    let ratio_p99 = n.segment_download_ratio.p99;
    assert!(
        ratio_p99 < 0.5,
        "segments download faster than real time: {ratio_p99}"
    );
}
