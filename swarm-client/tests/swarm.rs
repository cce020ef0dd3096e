//! The swarm against the real test origin (`testkit::origin`, tiny stream in
//! 1 s segments): measurement, metrics, restarts, an origin that goes away,
//! an unreachable URL, signals.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

use testkit::origin::TestOrigin;
use testkit::procs::{children_named, live_mentioning};
use testkit::{free_port, serial};

/// The real test origin with a light stream (1 s segments), plus a master
/// playlist with two variants (the same media) for variant picking.
fn origin() -> TestOrigin {
    let o = TestOrigin::start(&[], 3);
    std::fs::write(
        o.hls_dir().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=320x180\nstream.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=320x180\nstream.m3u8?hi\n",
    )
    .unwrap();
    o
}

/// A running swarm and everything it printed.
struct Swarm {
    proc: testkit::Captured,
}

impl Swarm {
    fn start(args: &[&str]) -> Swarm {
        Swarm {
            proc: testkit::Captured::spawn(Command::new(BIN).args(args)),
        }
    }

    /// `run URL` with `clients` native viewers at 10/s for `duration`,
    /// metrics on a free port and the summary written to `summary.json` in
    /// the temp dir it returns; `extra` arguments after.
    fn native(
        url: &str,
        clients: u32,
        duration: &str,
        extra: &[&str],
    ) -> (Swarm, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        let json = tmp.path().join("summary.json");
        let clients = format!("clients={clients}");
        let mut args = vec![
            "run",
            url,
            "--set",
            &clients,
            "--set",
            "rampRate=10",
            "--duration",
            duration,
            "--metrics-addr",
            "127.0.0.1:0",
            "--summary-json",
            json.to_str().unwrap(),
        ];
        args.extend(extra);
        (Swarm::start(&args), tmp)
    }

    fn output(&self) -> String {
        self.proc.output()
    }

    /// Its `/metrics` text `after` a while, and the values by name.
    fn metrics_after(&self, after: Duration) -> (String, std::collections::BTreeMap<String, f64>) {
        let url = self.metrics_url();
        std::thread::sleep(after);
        let (status, text) = common::http_check::http_get(&url, Duration::from_secs(3)).unwrap();
        assert_eq!(status, 200, "{text}");
        let m = parse_prometheus(&text);
        (text, m)
    }

    fn metrics_url(&self) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self
                .output()
                .lines()
                .find_map(|l| l.strip_prefix("metrics on ").map(String::from))
            {
                return l;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no metrics line:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(s) = self.proc.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                return s;
            }
            assert!(
                t.elapsed() < limit,
                "swarm still running after {limit:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Live viewer processes of this swarm (children running ffmpeg).
    fn viewers(&self) -> Vec<u32> {
        children_named(self.proc.child.id(), "ffmpeg")
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if matches!(self.proc.child.try_wait(), Ok(None)) {
            let _ = self.proc.child.kill();
            let _ = self.proc.child.wait();
        }
    }
}

/// Live processes whose command line has `needle`.
fn live_with(needle: &str) -> usize {
    live_mentioning(needle).len()
}

/// Checks the Prometheus text format line by line; returns name → value of
/// unlabelled samples.
fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            assert!(
                line.is_empty()
                    || line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(bare.starts_with("hls_swarm_"), "{line}");
        if !name.contains('{') {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn five_viewers_are_measured_and_a_killed_one_is_restarted_once() {
    let _g = serial();
    let origin = origin();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("summary.json");
    let mut s = Swarm::start(&[
        "run",
        "--engine",
        "ffmpeg",
        &origin.url(),
        "--set",
        "clients=5",
        "--set",
        "rampRate=5",
        "--duration",
        "15s",
        "--metrics-addr",
        "127.0.0.1:0",
        "--seed",
        "7",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    let (text, m) = s.metrics_after(Duration::from_secs(5));
    assert_eq!(m["hls_swarm_viewers_active"], 5.0, "{text}");
    assert_eq!(m["hls_swarm_viewers_target"], 5.0);
    assert!(m["hls_swarm_bytes_total"] > 0.0);
    assert!(m["hls_swarm_segments_total"] > 0.0);

    // kill one viewer from outside: restarted, counted once
    let victims = s.viewers();
    assert_eq!(victims.len(), 5, "{}", s.output());
    kill(Pid::from_raw(victims[0] as i32), Signal::SIGKILL).unwrap();
    let t = Instant::now();
    while s.viewers().len() < 5 || s.viewers().contains(&victims[0]) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "not restarted:\n{}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = s.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}:\n{}", s.output());
    let out = s.output();
    assert!(out.contains("viewers 5/5"), "status lines:\n{out}");
    assert!(out.contains("summary: 5 viewers"), "{out}");

    let sum = summary(&json);
    let t = &sum["totals"];
    assert_eq!(t["viewersStarted"], 5);
    assert_eq!(t["restarts"], 1, "{sum}");
    assert_eq!(t["starts"], 6);
    assert_eq!(t["httpErrors"], serde_json::json!({}));
    assert_eq!(sum["seed"], 7);
    assert_eq!(sum["settings"]["clients"], 5);
    let viewers = sum["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 5);
    for v in viewers {
        assert!(v["bytes"].as_u64().unwrap() > 10_000, "{v}");
        assert!(v["segments"].as_u64().unwrap() > 0, "{v}");
    }
    assert_eq!(viewers.iter().filter(|v| v["restarts"] == 1).count(), 1);
    // what the viewers report adds up
    let bytes: u64 = viewers.iter().map(|v| v["bytes"].as_u64().unwrap()).sum();
    assert_eq!(t["bytes"].as_u64().unwrap(), bytes);
    assert_eq!(live_with(&origin.url()), 0, "viewers left behind");
}

#[test]
fn an_origin_that_goes_away_is_counted_and_the_swarm_carries_on() {
    let _g = serial();
    let mut origin = origin();
    let url = origin.url();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("summary.json");
    let mut s = Swarm::start(&[
        "run",
        "--engine",
        "ffmpeg",
        &url,
        "--set",
        "clients=3",
        "--set",
        "rampRate=10",
        "--set",
        "timeout=2",
        "--set",
        "reconnectDelayMax=1",
        "--duration",
        "20s",
        "--metrics-addr",
        "127.0.0.1:0",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_secs(6));
    origin.stop();
    let status = s.wait(Duration::from_secs(40));
    assert!(status.success(), "{status}:\n{}", s.output());
    let out = s.output();
    assert!(out.contains("stopping (duration reached)"), "{out}");
    let t = &summary(&json)["totals"];
    assert!(t["restarts"].as_u64().unwrap() >= 1, "{t}");
    let errors = t["connectErrors"].as_u64().unwrap()
        + t["timeouts"].as_u64().unwrap()
        + t["httpErrors"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>();
    assert!(errors >= 1, "{t}");
    // status lines kept coming after the origin went away
    let late = out
        .lines()
        .filter(|l| l.starts_with("[  1") && l.contains("viewers"))
        .count();
    assert!(late >= 5, "{out}");
    assert_eq!(live_with(&url), 0);
}

#[test]
fn a_url_that_never_answers_exits_3() {
    let _g = serial();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/stream.m3u8");
    let t = Instant::now();
    let mut s = Swarm::start(&[
        "run",
        "--engine",
        "ffmpeg",
        &url,
        "--set",
        "clients=2",
        "--set",
        "timeout=2",
        "--set",
        "variant=highest",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let status = s.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "{}", s.output());
    assert!(s.output().contains("never reachable"), "{}", s.output());
    assert!(
        s.output().contains("cannot pick the highest variant"),
        "probe failure falls back: {}",
        s.output()
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(live_with(&url), 0);
}

#[test]
fn sigterm_stops_every_viewer() {
    let _g = serial();
    let origin = origin();
    let mut s = Swarm::start(&[
        "run",
        "--engine",
        "ffmpeg",
        &origin.url(),
        "--set",
        "clients=4",
        "--set",
        "rampRate=10",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let t = Instant::now();
    while s.viewers().len() < 4 {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", s.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    let viewers = s.viewers();
    kill(Pid::from_raw(s.proc.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = s.wait(Duration::from_secs(10));
    assert!(status.success(), "{}", s.output());
    assert!(s.output().contains("stopping (SIGTERM)"));
    for v in viewers {
        let alive = std::fs::read_to_string(format!("/proc/{v}/stat"))
            .is_ok_and(|st| !st[st.rfind(')').unwrap() + 2..].starts_with('Z'));
        assert!(!alive, "viewer {v} left");
    }
    assert_eq!(live_with(&origin.url()), 0);
}

#[test]
fn highest_and_lowest_variants_are_found_by_probing_the_master_playlist() {
    let _g = serial();
    let origin = origin();
    let master = origin.url().replace("stream.m3u8", "master.m3u8");
    for (mode, program) in [("highest", "0:p:1"), ("lowest", "0:p:0")] {
        let args = testkit::run_ok(Command::new(BIN).args([
            "viewer-args",
            &master,
            "--set",
            &format!("variant={mode}"),
        ]));
        assert!(args.lines().any(|l| l == program), "{mode}: {args}");
    }
}

#[test]
fn bad_input_exits_2() {
    for args in [
        vec!["run", "not-a-url"],
        vec!["run", "http://127.0.0.1:1/x.m3u8", "--header", "no colon"],
        vec!["run", "http://127.0.0.1:1/x.m3u8", "-p", "stres"],
        vec!["run", "http://127.0.0.1:1/x.m3u8", "--duration", "soon"],
        vec![
            "viewer-args",
            "http://127.0.0.1:1/x.m3u8",
            "--set",
            "timeout=0",
        ],
    ]
    .into_iter()
    .chain(
        // an objective without a limit, of the wrong kind, out of range
        [
            "errorRate",
            "errorRate=1%",
            "startupP95=2h",
            "startupP95=0.5",
        ]
        .map(|o| vec!["run", "http://127.0.0.1:1/x.m3u8", "--slo", o]),
    ) {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The errors a person meets first with SLOs: a misspelt figure, a figure
/// the engine does not measure.
#[test]
fn slo_mistakes_exit_2_and_say_what_to_do() {
    let stderr = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let url = "http://127.0.0.1:1/x.m3u8";
    let e = stderr(&["run", url, "--slo", "segmentTtbfP99=300ms"]);
    assert!(
        e.contains("`segmentTtbfP99` is not a figure; did you mean `segmentTtfbP99`?"),
        "{e}"
    );
    let e = stderr(&["run", url, "--engine", "ffmpeg", "--slo", "startupP95=2s"]);
    assert!(
        e.contains("slo.startupP95") && e.contains("ffmpeg engine does not measure"),
        "{e}"
    );
}

/// Objectives are checked against the run's own figures: the ones the run
/// meets pass, one it cannot meet fails, and the run exits 4 naming it.
#[test]
fn slos_are_checked_and_a_failure_exits_4() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    let (mut s, tmp) = Swarm::native(
        &origin.url(),
        3,
        "6s",
        &[
            "--slo",
            "segmentTtfbP99=30s",
            "--slo",
            "errorRate=0.01",
            "--slo",
            "minActiveViewers=1",
            // loopback answers in about a tenth of a millisecond, not in 1 µs
            "--slo",
            "segmentTtfbP50=1us",
        ],
    );
    let json = tmp.path().join("summary.json");
    let status = s.wait(Duration::from_secs(20));
    let out = s.output();
    assert_eq!(status.code(), Some(4), "{out}");
    assert!(out.contains("SLOs: 3 of 4 passed"), "{out}");
    assert!(
        out.contains("error: SLO failed: segmentTtfbP50 ≤ 0.001 ms: "),
        "{out}"
    );
    let v = summary(&json);
    let verdicts: Vec<(String, bool)> = v["slo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["figure"].as_str().unwrap().to_owned(),
                x["pass"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("segmentTtfbP50".to_owned(), false),
            ("segmentTtfbP99".to_owned(), true),
            ("errorRate".to_owned(), true),
            ("minActiveViewers".to_owned(), true),
        ]
    );
    // the measured values are the summary's own figures
    let ttfb = &v["totals"]["native"]["requests"]["segment"]["ttfbMs"];
    assert_eq!(v["slo"][0]["measured"], ttfb["p50"]);
    assert_eq!(v["slo"][3]["measured"], 1.0);
    assert_eq!(v["totals"]["minActiveShare"], 1.0);
}

/// Under the quiet profiles (log level warning/error) the FFmpeg engine still
/// counts segments and playlists: viewers log at `info` at least, and the
/// engine keeps only what the profile's level asks for in --viewer-logs.
#[test]
fn ffmpeg_engine_counts_requests_at_every_log_level() {
    let _g = serial();
    let origin = origin();
    for profile in ["stress", "burst", "extreme"] {
        let tmp = tempfile::tempdir().unwrap();
        let json = tmp.path().join("summary.json");
        let logs = tmp.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let mut s = Swarm::start(&[
            "run",
            "--engine",
            "ffmpeg",
            &origin.url(),
            "-p",
            profile,
            "--set",
            "clients=2",
            "--duration",
            "8s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--viewer-logs",
            logs.to_str().unwrap(),
            "--summary-json",
            json.to_str().unwrap(),
        ]);
        let status = s.wait(Duration::from_secs(30));
        assert!(status.success(), "{profile}: {}", s.output());
        let v = summary(&json);
        assert!(
            v["totals"]["segments"].as_u64().unwrap() >= 4,
            "{profile}: {}",
            v["totals"]
        );
        assert!(
            v["totals"]["playlists"].as_u64().unwrap() >= 2,
            "{profile}: {}",
            v["totals"]
        );
        // the viewer logs hold no info-level lines the profile did not ask for
        let log = std::fs::read_to_string(logs.join("viewer-0.log")).unwrap_or_default();
        assert!(!log.contains("for reading"), "{profile}: {log}");
        assert!(!log.contains("[info]"), "{profile}: {log}");
    }
}

/// The native engine (the default) against the same real origin: every
/// viewer plays, metrics carry the timing histograms.
#[test]
fn native_engine_plays_a_real_origin_and_exports_histograms() {
    let _g = serial();
    let origin = origin();
    let (mut s, tmp) = Swarm::native(&origin.url(), 5, "10s", &[]);
    let json = tmp.path().join("summary.json");
    let (text, m) = s.metrics_after(Duration::from_secs(6));
    assert_eq!(m["hls_swarm_viewers_active"], 5.0, "{text}");
    assert!(m["hls_swarm_body_bytes_total"] > 0.0, "{text}");
    assert!(m["hls_swarm_startup_seconds_count"] >= 5.0, "{text}");
    assert!(
        text.contains("hls_swarm_request_ttfb_seconds_bucket{le=\"0.001\",kind=\"segment\"}")
            || text
                .contains("hls_swarm_request_ttfb_seconds_bucket{kind=\"segment\",le=\"0.001\"}"),
        "{text}"
    );
    let status = s.wait(Duration::from_secs(20));
    assert!(status.success(), "{}", s.output());
    let v = summary(&json);
    assert_eq!(v["engine"], "native");
    let n = &v["totals"]["native"];
    assert_eq!(v["totals"]["viewersStarted"], 5);
    assert_eq!(v["totals"]["httpErrors"], serde_json::json!({}));
    assert_eq!(n["rebuffers"], 0, "{n:#}");
    assert!(
        n["requests"]["segment"]["ttfbMs"]["count"]
            .as_u64()
            .unwrap()
            >= 15
    );
    assert!(
        s.output().contains("segment download ratio"),
        "{}",
        s.output()
    );
}

/// Two swarms side by side on one origin — the shards of one test — merge
/// into one run's results: counters are the sums, percentiles those of all
/// the requests together, seconds line up by wall clock, SLOs are checked on
/// the merged figures.
#[test]
fn shards_run_side_by_side_merge_into_one_run() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    // two network classes, so that their figures merge too
    let classes = [
        "--set",
        "networks.far={share=0.5, rtt=\"20ms\"}",
        "--set",
        "networks.near={share=0.5}",
    ];
    let with = |seed: &'static str| [&["--seed", seed][..], &classes[..]].concat();
    let (mut a, ta) = Swarm::native(&origin.url(), 2, "6s", &with("1"));
    let (mut b, tb) = Swarm::native(&origin.url(), 3, "6s", &with("2"));
    for s in [&mut a, &mut b] {
        let status = s.wait(Duration::from_secs(20));
        assert!(status.success(), "{}", s.output());
    }
    let (ja, jb) = (
        ta.path().join("summary.json"),
        tb.path().join("summary.json"),
    );
    let all = ta.path().join("all.json");
    let merge = |extra: &[&str]| {
        Command::new(BIN)
            .arg("merge")
            .args([&ja, &jb])
            .arg("-o")
            .arg(&all)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = merge(&["--slo", "errorRate=0.01", "--slo", "segmentTtfbP99=30s"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("merged 2 results: 5 viewers"), "{text}");
    assert!(text.contains("SLOs: 2 of 2 passed"), "{text}");
    let (va, vb, m) = (summary(&ja), summary(&jb), summary(&all));
    // a run's results and a merge's both follow the published schema
    let schema: Value = serde_json::from_str(&testkit::run_ok(
        Command::new(BIN).args(["schema", "--results"]),
    ))
    .unwrap();
    for v in [&va, &m] {
        if let Err(e) = common::schema::validate(&schema, v, &Default::default()) {
            panic!("results do not follow the schema: {e}");
        }
    }
    let mut broken = m.clone();
    broken["series"][0]["active"] = "many".into();
    assert!(common::schema::validate(&schema, &broken, &Default::default()).is_err());
    assert_eq!(m["format"], "hls-swarm-results");
    assert_eq!(m["version"], 1);
    for key in [
        "segments",
        "playlists",
        "bytes",
        "viewersStarted",
        "viewers",
    ] {
        assert_eq!(
            m["totals"][key].as_u64(),
            Some(va["totals"][key].as_u64().unwrap() + vb["totals"][key].as_u64().unwrap()),
            "{key}"
        );
    }
    assert_eq!(
        m["totals"]["native"]["bodyBytes"].as_u64(),
        Some(
            va["totals"]["native"]["bodyBytes"].as_u64().unwrap()
                + vb["totals"]["native"]["bodyBytes"].as_u64().unwrap()
        )
    );
    // the merged TTFB histogram holds every request of both, bucket by bucket
    let buckets = |v: &Value| -> std::collections::BTreeMap<u64, u64> {
        let mut m = std::collections::BTreeMap::new();
        for pair in v["totals"]["native"]["histograms"]["segment.ttfb"]["counts"]
            .as_array()
            .unwrap()
        {
            *m.entry(pair[0].as_u64().unwrap()).or_default() += pair[1].as_u64().unwrap();
        }
        m
    };
    let mut both = buckets(&va);
    for (k, n) in buckets(&vb) {
        *both.entry(k).or_default() += n;
    }
    assert_eq!(buckets(&m), both);
    let count = |v: &Value| {
        v["totals"]["native"]["requests"]["segment"]["ttfbMs"]["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(&m), count(&va) + count(&vb));
    // each network class: counters add up, its TTFB histogram merges
    for class in ["far", "near"] {
        let c = |v: &Value, key: &str| {
            v["totals"]["native"]["networks"][class][key]
                .as_u64()
                .unwrap_or(0)
        };
        for key in ["viewers", "segments", "bytes"] {
            assert_eq!(c(&m, key), c(&va, key) + c(&vb, key), "{class}.{key}");
        }
        let ttfb = |v: &Value| {
            v["totals"]["native"]["networks"][class]["segmentTtfbMs"]["count"]
                .as_u64()
                .unwrap_or(0)
        };
        assert_eq!(ttfb(&m), ttfb(&va) + ttfb(&vb), "{class}");
    }
    assert_eq!(
        m["totals"]["native"]["networks"]["far"]["viewers"]
            .as_u64()
            .unwrap()
            + m["totals"]["native"]["networks"]["near"]["viewers"]
                .as_u64()
                .unwrap(),
        5
    );
    // seconds by wall clock: where both ran, the viewers add up
    let series = m["series"].as_array().unwrap();
    assert!(series.len() >= 6, "{series:?}");
    assert!(
        series.iter().any(|s| s["active"] == 5 && s["target"] == 5),
        "{series:?}"
    );
    assert_eq!(m["totals"]["minActiveShare"], 1.0);
    assert_eq!(m["settings"]["clients"], 5);
    // an objective the merged figures miss: exit 4, named
    let out = merge(&["--slo", "segmentTtfbP50=1us"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SLO failed: segmentTtfbP50 ≤ 0.001 ms"),
        "{err}"
    );
    // a file that is not results: exit 2, named
    let bad = ta.path().join("bad.json");
    std::fs::write(&bad, "{\"totals\": 1}").unwrap();
    let out = Command::new(BIN)
        .arg("merge")
        .arg(&ja)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json: not hls-swarm results"), "{err}");
}

/// `--log-format json`: every line the swarm logs on stderr is one JSON
/// object — start, stop, summary, each SLO verdict, the final error.
#[test]
fn json_logs_are_one_object_a_line() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    let out = Command::new(BIN)
        .args([
            "run",
            &origin.url(),
            "--set",
            "clients=2",
            "--duration",
            "3s",
        ])
        .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--slo", "errorRate=0.5", "--slo", "segmentTtfbP50=1us"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["start", "stop", "summary", "slo", "slo", "error"],
        "{stderr}"
    );
    for e in &events {
        assert!(e["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert!(e["message"].is_string() && e["level"].is_string(), "{e}");
    }
    assert_eq!(events[0]["clients"], 2);
    assert_eq!(events[1]["reason"], "duration reached");
    assert_eq!(events[3]["figure"], "segmentTtfbP50");
    assert_eq!(events[3]["pass"], false);
    assert_eq!(events[4]["figure"], "errorRate");
    assert_eq!(events[4]["pass"], true);
    assert_eq!(events[5]["level"], "error");
    assert_eq!(events[5]["exitStatus"], 4);
    // the summary table stays on stdout, for people
    assert!(String::from_utf8_lossy(&out.stdout).contains("SLOs: 1 of 2 passed"));
}

/// The origin beside the swarm: its nginx stub_status and a real node
/// exporter (loopback, CPU collector only) read each second, into the
/// results' seconds and the report.
#[test]
fn the_origin_is_read_beside_the_swarm() {
    let _g = serial();
    let origin = TestOrigin::start(&[], 3);
    let ne_port = free_port();
    let mut exporter = testkit::Captured::spawn(
        testkit::tool("prometheus-node-exporter", "prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .args(["--collector.disable-defaults", "--collector.cpu"]),
    );
    let node = format!("http://127.0.0.1:{ne_port}/metrics");
    assert!(
        testkit::procs::wait_until(Duration::from_secs(10), || common::http_check::is_ok(
            &node,
            Duration::from_secs(1)
        )),
        "{}",
        exporter.output()
    );
    let status = format!("http://127.0.0.1:{}/nginx_status", origin.port);
    let tmp = tempfile::tempdir().unwrap();
    let (json, report) = (tmp.path().join("run.json"), tmp.path().join("report.html"));
    let out = Command::new(BIN)
        .args([
            "run",
            &origin.url(),
            "--set",
            "clients=3",
            "--duration",
            "6s",
        ])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--origin-status", &status, "--origin-node", &node])
        .arg("--summary-json")
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = summary(&json);
    let seconds = v["series"].as_array().unwrap();
    let later = &seconds[seconds.len() / 2..];
    // the viewers' keep-alive connections (and the reader's own) are open
    assert!(
        later
            .iter()
            .all(|s| s["originConnections"].as_u64().is_some_and(|c| c >= 3)),
        "{seconds:?}"
    );
    // nginx counts the viewers' requests
    assert!(
        later
            .iter()
            .any(|s| s["originRequests"].as_f64().is_some_and(|r| r >= 1.0)),
        "{seconds:?}"
    );
    // the machine is doing something, and not more than it has
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(
        later.iter().all(|s| s["originCpu"]
            .as_f64()
            .is_some_and(|c| c > 0.0 && c <= cores + 0.5)),
        "{seconds:?}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    for id in [
        "chart-origin-connections",
        "chart-origin-requests",
        "chart-origin-cpu",
    ] {
        assert!(html.contains(id), "{id}");
    }
    // a URL that is not a stub_status page: a warning, and the run goes on
    let out = Command::new(BIN)
        .args([
            "run",
            &origin.url(),
            "--set",
            "clients=1",
            "--duration",
            "2s",
        ])
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--origin-status",
            &origin.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gave no nginx stub_status"));
}

/// Results that follow the published results schema.
fn assert_valid_results(v: &Value) {
    let schema: Value = serde_json::from_str(&testkit::run_ok(
        Command::new(BIN).args(["schema", "--results"]),
    ))
    .unwrap();
    if let Err(e) = common::schema::validate(&schema, v, &Default::default()) {
        panic!("results do not follow the schema: {e}");
    }
}

/// Waits (`limit` at most) until `path` holds results with at least
/// `segments` segments, and returns them.
fn checkpoint_with(path: &Path, segments: u64, limit: Duration, s: &Swarm) -> Value {
    let t = Instant::now();
    loop {
        // a reader only ever sees whole files: each read parses
        if let Ok(text) = std::fs::read_to_string(path) {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a half-written results file: {e}"));
            if v["totals"]["segments"].as_u64() >= Some(segments) {
                return v;
            }
        }
        assert!(
            t.elapsed() < limit,
            "no checkpoint with {segments} segments:\n{}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_run_killed_outright_leaves_its_last_checkpoint_and_sigterm_writes_the_final() {
    let _g = serial();
    let origin = origin();
    for engine in ["native", "ffmpeg"] {
        // SIGKILL: no chance to write anything at the end
        let reports = tempfile::tempdir().unwrap();
        let report = reports.path().join("report.html");
        let (mut s, tmp) = Swarm::native(
            &origin.url(),
            3,
            "10m",
            &["--engine", engine, "--report", report.to_str().unwrap()],
        );
        let json = tmp.path().join("summary.json");
        // checkpoints come every 5 s: wait for two with figures in them
        let first = checkpoint_with(&json, 1, Duration::from_secs(30), &s);
        let more = first["totals"]["segments"].as_u64().unwrap() + 1;
        let second = checkpoint_with(&json, more, Duration::from_secs(30), &s);
        kill(Pid::from_raw(s.proc.child.id() as i32), Signal::SIGKILL).unwrap();
        s.wait(Duration::from_secs(10));
        let kept = summary(&json);
        assert_valid_results(&kept);
        assert!(
            kept["stoppedBy"]
                .as_str()
                .unwrap()
                .starts_with("checkpoint"),
            "{engine}"
        );
        assert_eq!(kept["totals"]["viewers"], 3, "{engine}");
        assert_eq!(kept["viewers"].as_array().unwrap().len(), 3, "{engine}");
        assert!(kept["totals"]["segments"].as_u64() >= second["totals"]["segments"].as_u64());
        let ran = |v: &Value| v["durationSec"].as_f64().unwrap();
        let apart = ran(&second) - ran(&first);
        assert!(apart >= 4.0, "{engine}: checkpoints {apart} s apart");
        assert!(ran(&kept) >= ran(&second));
        assert!(kept["totals"]["bytes"].as_u64().unwrap() > 0);
        // the viewers' figures add up to the totals, as in a final summary
        let sum: u64 = kept["viewers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["segments"].as_u64().unwrap())
            .sum();
        assert_eq!(Some(sum), kept["totals"]["segments"].as_u64(), "{engine}");
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(html.trim_end().ends_with("</html>"), "a whole report");
    }

    // SIGTERM: the final results replace the checkpoint
    let (mut s, tmp) = Swarm::native(&origin.url(), 3, "10m", &[]);
    let json = tmp.path().join("summary.json");
    let cp = checkpoint_with(&json, 1, Duration::from_secs(30), &s);
    std::thread::sleep(Duration::from_secs(1));
    kill(Pid::from_raw(s.proc.child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(s.wait(Duration::from_secs(15)).success(), "{}", s.output());
    let last = summary(&json);
    assert_valid_results(&last);
    assert_eq!(last["stoppedBy"], "SIGTERM");
    assert!(last["totals"]["segments"].as_u64() >= cp["totals"]["segments"].as_u64());
    assert!(last["durationSec"].as_f64() > cp["durationSec"].as_f64());
    // no temp file is left beside the results
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["summary.json"]);
}
