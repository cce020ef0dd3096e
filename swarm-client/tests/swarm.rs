//! The swarm against the real test origin (`testkit::origin`, tiny stream in
//! 1 s segments): measurement, metrics, restarts, an origin that goes away,
//! an unreachable URL, signals.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::{native, results, Results};
use swarm_client::results::NetworkTotals;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

use testkit::origin::TestOrigin;
use testkit::procs::{children_named, live_mentioning, poll};
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

    /// `run URL` with `clients` viewers, metrics on a free port and the
    /// results written to `summary.json` in the temp dir it returns;
    /// `extra` arguments after.
    fn run(url: &str, clients: u32, extra: &[&str]) -> (Swarm, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        let json = tmp.path().join("summary.json");
        let clients = format!("clients={clients}");
        let mut args = vec!["run", url, "--set", &clients];
        args.extend(["--metrics-addr", "127.0.0.1:0"]);
        args.extend(["--summary-json", json.to_str().unwrap()]);
        args.extend(extra);
        (Swarm::start(&args), tmp)
    }

    /// [`Swarm::run`] at 10 viewers a second for `duration` (native ones,
    /// unless `extra` names another engine).
    fn native(
        url: &str,
        clients: u32,
        duration: &str,
        extra: &[&str],
    ) -> (Swarm, tempfile::TempDir) {
        let timed = ["--set", "rampRate=10", "--duration", duration];
        Swarm::run(url, clients, &[&timed[..], extra].concat())
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
        poll(Duration::from_secs(10), || {
            self.output()
                .lines()
                .find_map(|l| l.strip_prefix("metrics on ").map(String::from))
        })
        .unwrap_or_else(|| panic!("no metrics line:\n{}", self.output()))
    }

    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.proc
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("swarm still running after {limit:?}:\n{}", self.output()))
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

#[test]
fn five_viewers_are_measured_and_a_killed_one_is_restarted_once() {
    let _g = serial();
    let origin = origin();
    let (mut s, tmp) = Swarm::run(
        &origin.url(),
        5,
        &[
            "--engine",
            "ffmpeg",
            "--set",
            "rampRate=5",
            "--duration",
            "15s",
            "--seed",
            "7",
        ],
    );
    let json = tmp.path().join("summary.json");
    let (text, m) = s.metrics_after(Duration::from_secs(5));
    assert_eq!(m["hls_swarm_viewers_active"], 5.0, "{text}");
    assert_eq!(m["hls_swarm_viewers_target"], 5.0);
    // how far each FFmpeg got in its first seconds depends on the machine:
    // some bytes came; of segments at most the 6 listed and the 6 made
    // since, for each of the 5
    assert!(m["hls_swarm_bytes_total"] > 0.0, "{text}");
    assert!(
        (1.0..=60.0).contains(&m["hls_swarm_segments_total"]),
        "{text}"
    );

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

    let sum = results(&json);
    let t = &sum.totals;
    assert_eq!(t.viewers_started, 5);
    assert_eq!(t.counts.restarts, 1, "{t:?}");
    assert_eq!(t.counts.starts, 6);
    assert_eq!(t.counts.http_errors, Default::default());
    assert_eq!(sum.seed, 7);
    assert_eq!(sum.settings["clients"], 5);
    let viewers = &sum.viewers;
    assert_eq!(viewers.len(), 5);
    for v in viewers {
        let c = &v.counts;
        assert!(c.bytes > 10_000, "{v:?}");
        // each FFmpeg started by 1 s in and read the 14 s after: the live
        // edge and more; at most the 6 listed at each start and the 16
        // made during the run
        assert!((5..=6 * c.starts + 16).contains(&c.segments), "{v:?}");
    }
    assert_eq!(viewers.iter().filter(|v| v.counts.restarts == 1).count(), 1);
    // what the viewers report adds up
    let bytes: u64 = viewers.iter().map(|v| v.counts.bytes).sum();
    assert_eq!(t.counts.bytes, bytes);
    assert_eq!(live_with(&origin.url()), 0, "viewers left behind");
}

#[test]
fn an_origin_that_goes_away_is_counted_and_the_swarm_carries_on() {
    let _g = serial();
    let mut origin = origin();
    let url = origin.url();
    let (mut s, tmp) = Swarm::native(
        &url,
        3,
        "20s",
        &[
            "--engine",
            "ffmpeg",
            "--set",
            "timeout=2",
            "--set",
            "reconnectDelayMax=1",
        ],
    );
    let json = tmp.path().join("summary.json");
    std::thread::sleep(Duration::from_secs(6));
    origin.stop();
    let status = s.wait(Duration::from_secs(40));
    assert!(status.success(), "{status}:\n{}", s.output());
    let out = s.output();
    assert!(out.contains("stopping (duration reached)"), "{out}");
    // whether each FFmpeg exits or retries in place when its origin goes
    // away, and how often, depends on where it was: some did
    let t = &results(&json).totals;
    assert!(t.counts.restarts >= 1, "{t:?}");
    assert!(t.failed_requests() >= 1, "{t:?}");
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
    let (mut s, _tmp) = Swarm::run(
        &url,
        2,
        &[
            "--engine",
            "ffmpeg",
            "--set",
            "timeout=2",
            "--set",
            "variant=highest",
        ],
    );
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
    let ffmpeg = ["--engine", "ffmpeg", "--set", "rampRate=10"];
    let (mut s, _tmp) = Swarm::run(&origin.url(), 4, &ffmpeg);
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
    let v = results(&json);
    let verdicts: Vec<(String, bool)> = v.slo.iter().map(|x| (x.figure.clone(), x.pass)).collect();
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
    let ttfb = &native(&v).requests["segment"].ttfb_ms;
    assert_eq!(v.slo[0].measured, Some(ttfb.p50));
    assert_eq!(v.slo[3].measured, Some(1.0));
    assert_eq!(v.totals.min_active_share, Some(1.0));
}

/// Under the quiet profiles (log level warning/error) the FFmpeg engine still
/// counts segments and playlists: viewers log at `info` at least, and the
/// engine keeps only what the profile's level asks for in --viewer-logs.
#[test]
fn ffmpeg_engine_counts_requests_at_every_log_level() {
    let _g = serial();
    let origin = origin();
    for profile in ["stress", "burst", "extreme"] {
        let log_dir = tempfile::tempdir().unwrap();
        let logs = log_dir.path();
        let (mut s, tmp) = Swarm::run(
            &origin.url(),
            2,
            &[
                "--engine",
                "ffmpeg",
                "-p",
                profile,
                "--duration",
                "8s",
                "--viewer-logs",
                logs.to_str().unwrap(),
            ],
        );
        let json = tmp.path().join("summary.json");
        let status = s.wait(Duration::from_secs(30));
        assert!(status.success(), "{profile}: {}", s.output());
        let t = results(&json).totals;
        assert!(t.counts.segments >= 4, "{profile}: {t:?}");
        assert!(t.counts.playlists >= 2, "{profile}: {t:?}");
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
    // the segments' sizes are the encoder's: only that bytes came
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
    let v = results(&json);
    assert_eq!(v.engine, "native");
    let n = native(&v);
    assert_eq!(v.totals.viewers_started, 5);
    assert_eq!(v.totals.counts.http_errors, Default::default());
    assert_eq!(n.counts.rebuffers, 0, "{n:#?}");
    // the 3 segments of the live edge for each of the 5, and more
    assert!(n.requests["segment"].ttfb_ms.count >= 15);
    assert!(
        s.output().contains("segment download ratio"),
        "{}",
        s.output()
    );
}

/// An origin serving HTTPS with a certificate it made at start: viewers
/// that trust its CA play it without an error; viewers that do not are
/// refused at the handshake.
#[test]
fn a_tls_origin_plays_with_the_ca_it_made() {
    let _g = serial();
    let origin = TestOrigin::start(&["--set", "tls.enable=true"], 3);
    let url = origin.url();
    assert!(url.starts_with("https://"), "{url}");
    let ca = origin.ca_file().expect("the banner names the CA");
    let (v, _) = support::run_to_end(
        &url,
        &[
            "--set",
            "clients=2",
            "--duration",
            "4s",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        0,
    );
    let n = native(&v);
    assert_eq!(v.totals.viewers_started, 2);
    assert_eq!(n.counts.errors, Default::default(), "{n:#?}");
    // the 3 segments of the live edge for each of the 2
    assert!(n.requests["segment"].ttfb_ms.count >= 6, "{n:#?}");
    let (v, _) = support::run_to_end(&url, &["--set", "clients=1", "--duration", "2s"], 3);
    assert!(
        native(&v)
            .counts
            .errors
            .keys()
            .any(|k| k.starts_with("TLS handshake failed")),
        "{:?}",
        native(&v).counts.errors
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
        let mut cmd = Command::new(BIN);
        cmd.arg("merge")
            .args([&ja, &jb])
            .arg("-o")
            .arg(&all)
            .args(extra);
        cmd
    };
    let text = testkit::run_ok(&mut merge(&[
        "--slo",
        "errorRate=0.01",
        "--slo",
        "segmentTtfbP99=30s",
    ]));
    assert!(text.contains("merged 2 results: 5 viewers"), "{text}");
    assert!(text.contains("SLOs: 2 of 2 passed"), "{text}");
    // a run's results and a merge's both follow the published schema
    assert_valid_results(&ja);
    assert_valid_results(&all);
    // and results that do not are told apart (the raw JSON, on purpose)
    let mut broken: Value = serde_json::from_str(&std::fs::read_to_string(&all).unwrap()).unwrap();
    broken["series"][0]["active"] = "many".into();
    assert!(common::schema::validate(&results_schema(), &broken, &Default::default()).is_err());
    let (va, vb, m) = (results(&ja), results(&jb), results(&all));
    assert_eq!(m.format, "hls-swarm-results");
    assert_eq!(m.version, 1);
    // the counters are the sums of the runs'
    let sums = |f: fn(&Results) -> u64, what: &str| assert_eq!(f(&m), f(&va) + f(&vb), "{what}");
    sums(|v| v.totals.counts.segments, "segments");
    sums(|v| v.totals.counts.playlists, "playlists");
    sums(|v| v.totals.counts.bytes, "bytes");
    sums(|v| v.totals.viewers_started.into(), "viewersStarted");
    sums(|v| v.totals.viewers.into(), "viewers");
    sums(|v| native(v).counts.body_bytes, "bodyBytes");
    // the merged TTFB histogram holds every request of both, bucket by bucket
    let buckets = |v: &Results| -> std::collections::BTreeMap<u64, u64> {
        let mut m = std::collections::BTreeMap::new();
        for (value, n) in native(v).histograms["segment.ttfb"].counts.iter() {
            *m.entry(value).or_default() += n;
        }
        m
    };
    let mut both = buckets(&va);
    for (k, n) in buckets(&vb) {
        *both.entry(k).or_default() += n;
    }
    assert_eq!(buckets(&m), both);
    sums(
        |v| native(v).requests["segment"].ttfb_ms.count,
        "TTFB count",
    );
    // each network class: counters add up, its TTFB histogram merges
    for class in ["far", "near"] {
        let adds_up = |key: &str, f: fn(&NetworkTotals) -> u64| {
            let c = |v: &Results| native(v).networks.get(class).map_or(0, f);
            assert_eq!(c(&m), c(&va) + c(&vb), "{class}.{key}");
        };
        adds_up("viewers", |c| c.viewers);
        adds_up("segments", |c| c.segments);
        adds_up("bytes", |c| c.bytes);
        adds_up("segmentTtfbMs.count", |c| c.segment_ttfb_ms.count);
    }
    let classes = &native(&m).networks;
    assert_eq!(classes["far"].viewers + classes["near"].viewers, 5);
    // seconds by wall clock: where both ran, the viewers add up
    let series: Vec<_> = m.series.iter().collect();
    assert!(series.len() >= 6, "{series:?}");
    assert!(
        series.iter().any(|s| s.active == 5 && s.target == 5),
        "{series:?}"
    );
    assert_eq!(m.totals.min_active_share, Some(1.0));
    assert_eq!(m.settings["clients"], 5);
    // an objective the merged figures miss: exit 4, named
    let out = merge(&["--slo", "segmentTtfbP50=1us"]).output().unwrap();
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
        .args(["run", &origin.url(), "--set", "clients=2"])
        .args(["--duration", "3s", "--metrics-addr", "127.0.0.1:0"])
        .args(["--log-format", "json"])
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
    let out = testkit::output(
        support::run_command(&origin.url(), &json)
            .args(["--set", "clients=3", "--duration", "6s"])
            .args(["--origin-status", &status, "--origin-node", &node])
            .arg("--report")
            .arg(&report),
    );
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    assert!(out.status.success(), "{}", testkit::printed(&out));
    let seconds: Vec<_> = results(&json).series.iter().collect();
    let later = &seconds[seconds.len() / 2..];
    // a reading that takes over 800 ms (a loaded machine) is left out of
    // its second, not guessed: most seconds have one, and each one shows
    // the viewers' keep-alive connections (and the reader's own) open
    let read: Vec<u64> = later.iter().filter_map(|s| s.origin_connections).collect();
    assert!(read.len() * 2 >= later.len(), "{seconds:?}");
    assert!(read.iter().all(|c| *c >= 3), "{seconds:?}");
    // nginx counts the viewers' requests
    assert!(
        later
            .iter()
            .any(|s| s.origin_requests.is_some_and(|r| r >= 1.0)),
        "{seconds:?}"
    );
    // the machine is doing something, and not more than it has
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let cpu: Vec<f64> = later.iter().filter_map(|s| s.origin_cpu).collect();
    assert!(cpu.len() * 2 >= later.len(), "{seconds:?}");
    assert!(
        cpu.iter().all(|c| *c > 0.0 && *c <= cores + 0.5),
        "{seconds:?}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    for chart in ["connections", "requests", "cpu"] {
        assert!(html.contains(&format!("chart-origin-{chart}")), "{chart}");
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

/// The published results schema (`schema --results`).
fn results_schema() -> Value {
    serde_json::from_str(&testkit::run_ok(
        Command::new(BIN).args(["schema", "--results"]),
    ))
    .unwrap()
}

/// The results file at `path` follows the published results schema: the
/// JSON as written is checked, not the typed model, on purpose.
fn assert_valid_results(path: &Path) {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let Err(e) = common::schema::validate(&results_schema(), &v, &Default::default()) {
        panic!("{}: results do not follow the schema: {e}", path.display());
    }
}

/// Waits (`limit` at most) until `path` holds results with at least
/// `segments` segments, and returns them.
fn checkpoint_with(path: &Path, segments: u64, limit: Duration, s: &Swarm) -> Results {
    poll(limit, || {
        // a reader only ever sees whole files: each read parses
        let text = std::fs::read_to_string(path).ok()?;
        let v =
            support::parse(&text).unwrap_or_else(|e| panic!("a half-written results file: {e}"));
        (v.totals.counts.segments >= segments).then_some(v)
    })
    .unwrap_or_else(|| panic!("no checkpoint with {segments} segments:\n{}", s.output()))
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
        let more = first.totals.counts.segments + 1;
        let second = checkpoint_with(&json, more, Duration::from_secs(30), &s);
        kill(Pid::from_raw(s.proc.child.id() as i32), Signal::SIGKILL).unwrap();
        s.wait(Duration::from_secs(10));
        assert_valid_results(&json);
        let kept = results(&json);
        assert!(kept.stopped_by.starts_with("checkpoint"), "{engine}");
        assert_eq!(kept.totals.viewers, 3, "{engine}");
        assert_eq!(kept.viewers.len(), 3, "{engine}");
        assert!(kept.totals.counts.segments >= second.totals.counts.segments);
        let apart = second.duration_sec - first.duration_sec;
        assert!(apart >= 4.0, "{engine}: checkpoints {apart} s apart");
        assert!(kept.duration_sec >= second.duration_sec);
        // the segments' sizes are the encoder's, and when an engine last
        // read its viewers' byte counters is its own: only that some came
        assert!(kept.totals.counts.bytes > 0, "{engine}: {:?}", kept.totals);
        // the viewers' figures add up to the totals, as in a final summary
        let sum: u64 = kept.viewers.iter().map(|v| v.counts.segments).sum();
        assert_eq!(sum, kept.totals.counts.segments, "{engine}");
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
    assert_valid_results(&json);
    let last = results(&json);
    assert_eq!(last.stopped_by, "SIGTERM");
    assert!(last.totals.counts.segments >= cp.totals.counts.segments);
    assert!(last.duration_sec > cp.duration_sec);
    // no temp file is left beside the results
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["summary.json"]);
}

/// fMP4 from the real origin (FFmpeg's CMAF segments, nginx): each viewer
/// loads the `EXT-X-MAP` initialisation section once, counted as its own
/// request kind `init`, and plays the segments after it.
#[test]
fn an_fmp4_stream_loads_its_init_section_once_per_viewer() {
    let _g = serial();
    let origin = TestOrigin::start(
        &[
            "--set",
            "hls.segmentType=fmp4",
            "--set",
            "hls.segmentPattern=seg%05d.m4s",
        ],
        3,
    );
    let (mut s, tmp) = Swarm::native(&origin.url(), 3, "6s", &[]);
    let status = s.wait(Duration::from_secs(30));
    let out = s.output();
    assert!(status.success(), "{out}");
    let v = results(&tmp.path().join("summary.json"));
    let n = native(&v);
    // one map for the one variant, per viewer: the map does not change
    assert_eq!(n.requests["init"].ttfb_ms.count, 3, "{out}");
    let t = &v.totals.counts;
    assert!(t.segments >= 3 * 3, "{out}");
    assert_eq!(t.failed_requests(), 0, "{out}");
    assert_eq!(n.counts.rebuffers, 0, "{out}");
    // the summary table shows the kind
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("init")),
        "{out}"
    );
}
