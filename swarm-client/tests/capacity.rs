//! The capacity search against a real test origin made to saturate at a
//! known point: origin and viewers in a network namespace of the test's own
//! whose loopback is held to a rate, shared fairly between connections,
//! that N viewers of the stream's measured bitrate fill. Above N, segments download slower than
//! real time; the search must find N within one step.

mod support;

use std::path::Path;
use std::process::Command;

use testkit::netns::Netns;
use testkit::origin::TestOrigin;
use testkit::serial;

/// A light stream: about 250 kbit/s with its audio, 1 s segments.
const LIGHT: &[&str] = &[
    "--set",
    "video.bitrate=200k",
    "--set",
    "video.maxrate=220k",
    "--set",
    "video.bufsize=200k",
    "--set",
    "video.audioBitrate=32k",
];

/// The stream's bitrate as the origin wrote it: the bytes of the segments
/// its playlist lists over their duration, in bits per second.
fn stream_bitrate(dir: &Path) -> f64 {
    let playlist = std::fs::read_to_string(dir.join("stream.m3u8")).unwrap();
    let (mut bytes, mut secs) = (0u64, 0.0);
    let mut lines = playlist.lines();
    while let Some(l) = lines.next() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d: f64 = d
                .trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let uri = lines.next().unwrap();
            bytes += std::fs::metadata(dir.join(uri)).unwrap().len();
            secs += d;
        }
    }
    bytes as f64 * 8.0 / secs
}

#[test]
fn the_search_finds_where_a_shared_link_saturates_within_one_step() {
    let _g = serial();
    let ns = Netns::new();
    let origin = TestOrigin::start_in(&ns, LIGHT, 5);
    let bitrate = stream_bitrate(origin.hls_dir());
    assert!(
        (150e3..400e3).contains(&bitrate),
        "a light stream: {bitrate} bit/s"
    );
    // 7.5 viewers fill the link (HTTP and TCP/IP on top of the media,
    // about 5 %): 6 use 80 % of it, 9 want 20 % more than it carries
    let rate = 7.5 * bitrate * 1.05;
    ns.ip(&["link", "set", "lo", "mtu", "1500"]);
    // the rate shared between the connections in turn, as a congested
    // uplink does: 16 classes of an HTB, a connection's packets in the one
    // bits 1–4 of its client port choose (Linux gives connect() even ports;
    // this kernel has no fair-queueing qdisc), each class taking its turn
    // at the whole rate
    // (each command a line of words, as tc is written)
    let tc = |line: &str| {
        testkit::run_ok(ns.command("tc").args(line.split_whitespace()));
    };
    let bits = |r: f64| format!("{}bit", r.round());
    tc("qdisc add dev lo root handle 1: htb default 1");
    let all = bits(rate);
    tc(&format!(
        "class add dev lo parent 1: classid 1:100 htb rate {all} ceil {all}"
    ));
    let share = bits(rate / 16.0);
    for k in 0..16u32 {
        let class = format!("1:{}", k + 1);
        tc(&format!(
            "class add dev lo parent 1:100 classid {class} htb rate {share} ceil {all} quantum 1514"
        ));
        tc(&format!(
            "filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport {} 0x001e flowid {class}",
            k << 1
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    let report = dir.path().join("capacity.html");
    let out = testkit::output(
        ns.command(support::BIN)
            .args(["capacity", &origin.url(), "--plain", "--seed", "3"])
            .args(["--start", "3", "--step", "3", "--max", "15"])
            .args(["--step-time", "12s", "--settle", "4s"])
            .args(["--set", "rampRate=20", "--set", "rampJitter=0"])
            .args(["--slo", "rebufferRatio=0.02", "--slo", "errorRate=0.01"])
            .args(["--metrics-addr", "127.0.0.1:0", "--summary-json"])
            .arg(&json)
            .arg("--report")
            .arg(&report),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let r = support::results(&json);
    let c = r.capacity.as_ref().expect("a capacity section");
    let ratios: Vec<(u32, Option<f64>)> = c
        .steps
        .iter()
        .map(|s| {
            (
                s.viewers,
                s.verdicts
                    .iter()
                    .find(|v| v.figure == "rebufferRatio")
                    .unwrap()
                    .measured,
            )
        })
        .collect();
    eprintln!("bitrate {bitrate:.0}, link {rate:.0} bit/s; rebuffer ratio by step: {ratios:?}");
    assert_eq!(
        (c.held, c.failed),
        (Some(6), Some(9)),
        "bitrate {bitrate:.0}, link {rate:.0} bit/s; rebuffer ratio by step: {ratios:?}\n{stdout}"
    );
    let b = c.breaking.as_ref().unwrap();
    assert_eq!(b.figure, "rebufferRatio");
    assert!(b.measured.unwrap() > 0.02, "{b:?}");
    assert_eq!(r.stopped_by, "a capacity step failed");
    assert!(
        stdout.contains("capacity: 6 viewers held; 9 failed on rebufferRatio ≤ 0.02:"),
        "{stdout}"
    );
    assert!(
        stderr.contains("capacity step 3: 9 viewers failed"),
        "{stderr}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("id=\"capacity\""),
        "the report has the capacity charts"
    );
}

#[test]
fn a_search_without_objectives_or_with_a_step_too_short_is_refused() {
    for (args, says) in [
        (&["--max", "10"][..], "no objectives to judge the steps by"),
        (
            &[
                "--slo",
                "errorRate=0.01",
                "--step-time",
                "5s",
                "--settle",
                "5s",
            ],
            "shorter than stepTime",
        ),
        (
            &["--slo", "errorRate=0.01", "--duration", "1m"],
            "bound it with --max",
        ),
        (
            &["--slo", "errorRate=0.01", "-p", "spike"],
            "a search makes its own steps",
        ),
    ] {
        let out = testkit::output(
            Command::new(support::BIN)
                .args(["capacity", "http://127.0.0.1:9/s.m3u8"])
                .args(args),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
