//! Network classes against the real test origin: viewers on a slow, distant
//! or lossy link measure what such a link does to them, in their own class's
//! figures, while the other classes play clean. All traffic is on loopback;
//! the impairment is the viewers' own (paced reads with a small receive
//! buffer, a delay before each request, cut responses).

mod support;

use std::process::Command;

use support::Results;
use swarm_client::results::NetworkTotals;
use testkit::origin::TestOrigin;
use testkit::serial;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// Runs `swarm-client run URL ARGS` to its end; returns the results and stdout.
fn run(url: &str, args: &[&str]) -> (Results, String) {
    let common = [
        "--seed",
        "11",
        "--set",
        "rampRate=20",
        "--set",
        "rampJitter=0",
    ];
    support::run_to_end(url, &[&common[..], &["--plain"], args].concat(), 0)
}

/// The largest send queue of the origin's established connections on
/// `port`, as `ss` reports it (bytes the peer's window has not taken yet).
fn send_queue_max(port: u16) -> u64 {
    let out = testkit::run_ok(testkit::tool("ss", "iproute2").args([
        "-tnH",
        "state",
        "established",
        &format!("( sport = :{port} )"),
    ]));
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

fn class<'a>(v: &'a Results, name: &str) -> &'a NetworkTotals {
    let classes = &support::native(v).networks;
    classes
        .get(name)
        .unwrap_or_else(|| panic!("no figures for network {name}: {classes:#?}"))
}

#[test]
fn distant_and_lossy_viewers_measure_their_link_and_the_others_play_clean() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    let reports = tempfile::tempdir().unwrap();
    let report = reports.path().join("report.html");
    let (v, stdout) = run(
        &origin.url(),
        &[
            "--report",
            report.to_str().unwrap(),
            "--set",
            "clients=6",
            "--duration",
            "8s",
            "--set",
            "networks.near={share=0.34}",
            "--set",
            "networks.far={share=0.33, rtt=\"200ms\"}",
            "--set",
            "networks.lossy={share=0.33, drop=0.3}",
        ],
    );
    let (near, far, lossy) = (class(&v, "near"), class(&v, "far"), class(&v, "lossy"));
    // each class gets its share of the 6 viewers, within two
    for c in [near, far, lossy] {
        assert!(c.viewers.abs_diff(2) <= 1, "{c:#?}");
        assert!(c.segments >= 2, "every class plays: {c:#?}");
    }
    let all: u64 = [near, far, lossy].iter().map(|c| c.viewers).sum();
    assert_eq!(all, 6);
    // 200 ms before each request: in every TTFB of that class, and no other
    assert!(far.segment_ttfb_ms.p50 >= 200.0, "far: {far:#?}");
    assert!(near.segment_ttfb_ms.p50 < 100.0, "near: {near:#?}");
    assert!(far.startup_ms.p50 > near.startup_ms.p50 + 400.0);
    // cut responses are failed requests of the lossy class only: which
    // responses a 30 % drop cuts is random, so only that some were is known
    assert!(lossy.failed_requests >= 1, "lossy: {lossy:#?}");
    assert_eq!(near.failed_requests, 0);
    assert_eq!(far.failed_requests, 0);
    // each viewer carries its class; the summary prints a line per class
    assert_eq!(
        v.viewers
            .iter()
            .filter(|x| x.network.as_deref() == Some("far"))
            .count() as u64,
        far.viewers
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<section id=\"networks\">"));
    for name in ["near", "far", "lossy"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(name)),
            "{stdout}"
        );
        assert!(html.contains(&format!("<tr><th>{name}</th>")), "{name}");
    }
}

#[test]
fn a_link_slower_than_the_stream_rebuffers_and_switches_down() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    // the stream's real bitrate, from the segments the origin wrote
    let sizes: Vec<u64> = std::fs::read_dir(origin.hls_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    let kbit = sizes.iter().max().unwrap() * 8 / 1000; // 1 s segments
    let slow = format!(
        "networks.slow={{share=0.5, rate=\"{}kbit\"}}",
        (kbit / 3).max(16)
    );
    // two variants of the same media: the higher is where viewers start
    std::fs::write(
        origin.hls_dir().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nstream.m3u8?lo\n\
         #EXT-X-STREAM-INF:BANDWIDTH=400000\nstream.m3u8\n",
    )
    .unwrap();
    let master = origin.url().replace("stream.m3u8", "master.m3u8");
    let args = [
        "--set",
        "clients=4",
        "--set",
        "variant=\"abr\"",
        "--duration",
        "15s",
        "--set",
        &slow,
        "--set",
        "networks.fast={share=0.5}",
    ];
    // while it plays, the origin's side of the slow viewers' connections:
    // their small receive windows hold nginx's sends back in its socket
    let (v, queued) = std::thread::scope(|scope| {
        let swarm = scope.spawn(|| run(&master, &args).0);
        std::thread::sleep(std::time::Duration::from_secs(6));
        let mut most = 0u64;
        for _ in 0..20 {
            most = most.max(send_queue_max(origin.port));
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        (swarm.join().unwrap(), most)
    });
    eprintln!("nginx held up to {queued} B for a slow viewer");
    assert!(
        queued >= 32 * 1024,
        "nginx never had more than {queued} B queued for a slow viewer"
    );
    let (slow, fast) = (class(&v, "slow"), class(&v, "fast"));
    // a link at a third of the stream's rate: the slow viewers run dry and
    // switch down, how often depends on where each segment's download falls
    assert!(slow.rebuffers >= 1, "{kbit} kbit/s stream: {slow:#?}");
    assert!(slow.rebuffer_ratio > 0.1, "{slow:#?}");
    assert!(slow.switches_down >= 1, "{slow:#?}");
    assert_eq!(fast.rebuffers, 0, "{fast:#?}");
    assert_eq!(fast.switches_down, 0, "{fast:#?}");
    assert_eq!(fast.failed_requests, 0, "{fast:#?}");
    // the slow class's segments arrive at its rate, not at loopback's
    let slow_bytes_per_viewer_sec = slow.bytes as f64 / 2.0 / 15.0;
    assert!(
        slow_bytes_per_viewer_sec * 8.0 / 1000.0 < (kbit / 3).max(16) as f64 * 1.3,
        "slow viewers read {slow_bytes_per_viewer_sec} B/s: {slow:#?}"
    );
}

#[test]
fn network_classes_that_do_not_add_up_are_refused() {
    let fails = |sets: &[&str], needles: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "http://127.0.0.1:9/stream.m3u8"]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{sets:?}: no {n:?} in {err}");
        }
    };
    fails(
        &["networks.a={share=0.5}", "networks.b={share=0.4}"],
        &["`networks`", "add up to 0.9", "must add up to 1"],
    );
    fails(
        &["networks.a={share=1.0, rate=\"10kbit\"}"],
        &["`networks.a.rate`", "16kbit"],
    );
    fails(
        &["networks.a={share=1.0, rtt=\"11s\"}"],
        &["`networks.a.rtt`", "10s"],
    );
    fails(
        &["networks.a={share=1.0, rate=\"fast\"}"],
        &["`networks.a.rate`"],
    );
    fails(
        &["networks.a={share=1.0, drop=0.6}"],
        &["`networks.a.drop`"],
    );
    fails(
        &["networks.a={share=1.0}", "engine=\"ffmpeg\""],
        &["`networks`", "native"],
    );
}

/// `compare` of two real runs, the second over a distant link: the
/// figures the link slows are flagged, the ones it does not touch are
/// not; a run compared with itself flags nothing.
#[test]
fn compare_flags_what_a_distant_link_slowed_and_nothing_else() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, extra) in [
        ("base", &[][..]),
        (
            "far",
            &["--set", "networks.far={share=1.0, rtt=\"300ms\"}"][..],
        ),
    ] {
        let (v, _) = run(
            &origin.url(),
            &[&["--set", "clients=4", "--duration", "8s"][..], extra].concat(),
        );
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        files.push(path);
    }
    let compare = |a: &std::path::Path, b: &std::path::Path, extra: &[&str]| {
        let json = dir.path().join("compare.json");
        let report = dir.path().join("compare.html");
        let out = testkit::output(
            Command::new(BIN)
                .arg("compare")
                .args([a, b])
                .arg("--json")
                .arg(&json)
                .arg("--report")
                .arg(&report)
                .args(extra),
        );
        let c: swarm_client::results::compare::Comparison =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (out, c, std::fs::read_to_string(&report).unwrap())
    };
    let (out, c, html) = compare(&files[0], &files[1], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    for slowed in ["segmentTtfbP50", "playlistTtfbP50", "startupP50"] {
        assert!(
            c.regressions.iter().any(|r| r == slowed),
            "{slowed}: {stdout}"
        );
    }
    for untouched in [
        "errorRate",
        "rebufferRatio",
        "minActiveViewers",
        "segmentDownloadRatioP50",
    ] {
        assert!(
            !c.regressions.iter().any(|r| r == untouched),
            "{untouched}: {stdout}"
        );
    }
    let ttfb = c
        .changes
        .iter()
        .find(|x| x.figure == "segmentTtfbP50")
        .unwrap();
    assert!(ttfb.new.unwrap() - ttfb.base.unwrap() > 250.0, "{ttfb:?}");
    assert!(
        stdout.contains("REGRESSION (worse by more than 10 %)"),
        "{stdout}"
    );
    // both runs drawn on each chart
    assert_eq!(html.matches("<title>base</title>").count(), 5, "{html}");
    assert_eq!(html.matches("<title>new</title>").count(), 5);
    // a tolerance for a figure not compared is bad input
    let out = testkit::output(
        Command::new(BIN)
            .arg("compare")
            .args([&files[0], &files[1]])
            .args(["--tolerance", "segmentTtfP99=20"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("did you mean `segmentTtfbP99`?"), "{err}");
    // the same run: nothing
    let (out, c, _) = compare(&files[1], &files[1], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(c.regressions.is_empty() && c.changes.iter().all(|x| x.verdict == "same"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no regression"));
}
