//! How a run goes, against the real test origin: with a load shape the
//! viewers follow the stages' target line second by second, and those
//! above a falling target leave as departures, not failures; a live gate
//! stops a run that crosses its threshold within its window.

mod support;

use std::time::{Duration, Instant};

use testkit::origin::TestOrigin;
use testkit::serial;

#[test]
fn a_spike_is_followed_second_by_second_and_its_viewers_leave_as_departures() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    // 4 viewers, a spike to 12 and back, then down to none: 14 s
    let stages = "stages=[{duration=\"2s\", target=4}, {duration=\"3s\", target=4}, \
                  {duration=\"1s\", target=12}, {duration=\"3s\", target=12}, \
                  {duration=\"1s\", target=4}, {duration=\"3s\", target=4}, \
                  {duration=\"1s\", target=0}]";
    let (v, stdout) = support::run_to_end(
        &origin.url(),
        &["--seed", "5", "--plain", "--set", stages],
        0,
    );
    // no --duration: the run lasts as long as its stages
    assert_eq!(v.stopped_by, "duration reached");
    assert!((13.5..16.0).contains(&v.duration_sec), "{}", v.duration_sec);
    let t = &v.totals;
    assert_eq!(t.viewers, 12, "the peak");
    assert_eq!(t.viewers_started, 12);
    assert_eq!(t.failed_requests(), 0, "{stdout}");
    // the 8 of the spike left after it, the 4 of the base at the end
    assert_eq!(t.counts.departures, 12, "{stdout}");
    assert_eq!(t.counts.restarts, 0);
    assert_eq!(t.counts.starts, 12, "none came back");
    assert!(
        stdout.contains("12 departures (the load shape's target fell)"),
        "{stdout}"
    );
    // the status lines say which stage
    assert!(stdout.contains("(stage 4 of 7)"), "{stdout}");
    // the target line, and the viewers following it within a second
    let series: Vec<_> = v.series.iter().collect();
    let targets: Vec<u64> = series.iter().map(|s| s.target).collect();
    assert!(targets.contains(&12) && targets.contains(&4), "{targets:?}");
    assert_eq!(targets.iter().max(), Some(&12));
    for (i, s) in series.iter().enumerate() {
        let near = &targets[i.saturating_sub(1)..(i + 2).min(targets.len())];
        let (lo, hi) = (near.iter().min().unwrap(), near.iter().max().unwrap());
        assert!(
            (*lo..=*hi).contains(&s.active),
            "second {i}: {} active, target {} (around it {near:?})",
            s.active,
            s.target
        );
    }
    // on the spike's plateau, all 12 play, and the share held is whole
    assert!(series
        .iter()
        .any(|s| s.target == 12 && s.active == 12 && s.after_ramp));
    assert_eq!(t.min_active_share, Some(1.0));
    // every viewer that played the spike loaded segments
    assert!(
        v.viewers.iter().all(|f| f.counts.segments >= 1),
        "{:#?}",
        v.viewers
    );
}

#[test]
fn a_live_gate_stops_a_run_within_its_window_of_crossing_its_threshold() {
    let _g = serial();
    let mut origin = TestOrigin::start(&[], 3);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("gate.json");
    let child = support::run_command(&origin.url(), &json)
        .args(["--plain", "--seed", "2", "--duration", "60s"])
        .args(["--set", "clients=3", "--set", "rampRate=10"])
        .args(["--abort-on", "errorRate=0.2", "--abort-window", "4s"])
        .args(["--abort-on", "segmentTtfbP99=2s", "--abort-delay", "2s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // playing cleanly for a while, then every request fails
    std::thread::sleep(Duration::from_secs(8));
    origin.stop();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = stopped.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    let v = support::results(&json);
    assert!(
        v.stopped_by.starts_with("SLO gate errorRate ≤ 0.2: ")
            && v.stopped_by.contains("FAIL over the last 4 s, at "),
        "{}",
        v.stopped_by
    );
    assert!(
        stdout.contains(&format!("({})", v.stopped_by)),
        "the summary says why: {stdout}"
    );
    // from the first second with a failure to the last of the run: within
    // the window and a second
    let series: Vec<_> = v.series.iter().collect();
    let first_bad = series.iter().find(|s| s.errors > 0).expect("failures").t;
    let last = series.last().unwrap().t;
    assert!(
        last - first_bad <= 4 + 1,
        "failures from {first_bad}, stopped at {last}: {series:#?}"
    );
    // and long before the 60 s it was asked for
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(v.duration_sec < 20.0, "{}", v.duration_sec);
}
