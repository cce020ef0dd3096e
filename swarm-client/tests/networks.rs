//! Network classes against the real test origin: viewers on a slow, distant
//! or lossy link measure what such a link does to them, in their own class's
//! figures, while the other classes play clean. All traffic is on loopback;
//! the impairment is the viewers' own (paced reads with a small receive
//! buffer, a delay before each request, cut responses).

use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::origin::TestOrigin;
use testkit::serial;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// Runs `swarm-client run URL ARGS` to its end; returns the results and stdout.
fn run(url: &str, args: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let out = Command::new(BIN)
        .args(["run", url, "--metrics-addr", "127.0.0.1:0", "--seed", "11"])
        .args(["--set", "rampRate=20", "--set", "rampJitter=0", "--plain"])
        .arg("--summary-json")
        .arg(&json)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (v, stdout)
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

fn class<'a>(v: &'a Value, name: &str) -> &'a Value {
    let c = &v["totals"]["native"]["networks"][name];
    assert!(c.is_object(), "no figures for network {name}: {v:#}");
    c
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
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
        assert!((num(c, "viewers") - 2.0).abs() <= 1.0, "{c}");
        assert!(num(c, "segments") >= 2.0, "every class plays: {c}");
    }
    let all: f64 = [near, far, lossy].iter().map(|c| num(c, "viewers")).sum();
    assert_eq!(all, 6.0);
    // 200 ms before each request: in every TTFB of that class, and no other
    let ttfb = |c: &Value| c["segmentTtfbMs"]["p50"].as_f64().unwrap();
    assert!(ttfb(far) >= 200.0, "far: {far}");
    assert!(ttfb(near) < 100.0, "near: {near}");
    assert!(num(&far["startupMs"], "p50") > num(&near["startupMs"], "p50") + 400.0);
    // cut responses are failed requests of the lossy class only
    assert!(num(lossy, "failedRequests") >= 1.0, "lossy: {lossy}");
    assert_eq!(num(near, "failedRequests"), 0.0);
    assert_eq!(num(far, "failedRequests"), 0.0);
    // each viewer carries its class; the summary prints a line per class
    let viewers = v["viewers"].as_array().unwrap();
    assert_eq!(
        viewers.iter().filter(|x| x["network"] == "far").count() as f64,
        num(far, "viewers")
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
    assert!(
        num(slow, "rebuffers") >= 1.0,
        "{kbit} kbit/s stream: {slow}"
    );
    assert!(num(slow, "rebufferRatio") > 0.1, "{slow}");
    assert!(num(slow, "switchesDown") >= 1.0, "{slow}");
    assert_eq!(num(fast, "rebuffers"), 0.0, "{fast}");
    assert_eq!(num(fast, "switchesDown"), 0.0, "{fast}");
    assert_eq!(num(fast, "failedRequests"), 0.0, "{fast}");
    // the slow class's segments arrive at its rate, not at loopback's
    let slow_bytes_per_viewer_sec = num(slow, "bytes") / 2.0 / 15.0;
    assert!(
        slow_bytes_per_viewer_sec * 8.0 / 1000.0 < (kbit / 3).max(16) as f64 * 1.3,
        "slow viewers read {slow_bytes_per_viewer_sec} B/s: {slow}"
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
