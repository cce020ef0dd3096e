//! The native engine against the scriptable HLS server (`support/hls_server.rs`):
//! request order and timing, exact bytes, startup, rebuffers, gone segments,
//! connections, ABR, redirects, VOD, malformed playlists and SIGTERM. Each run
//! is the real `swarm-client run` binary against the in-process server.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::hls_server::{Entry, HlsServer, Shape};
use support::{native, results, Results};

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// Runs `swarm-client run URL` with `args`; returns the results and stdout.
fn swarm(url: &str, args: &[&str]) -> (Results, String) {
    swarm_exit(url, args, 0)
}

/// The same, expecting exit status `code`.
fn swarm_exit(url: &str, args: &[&str], code: i32) -> (Results, String) {
    let seeded = [&["--seed", "7", "--set", "rampJitter=0"][..], args].concat();
    support::run_to_end(url, &seeded, code)
}

/// Two viewers, started at once.
const TWO_VIEWERS: [&str; 4] = ["--set", "clients=2", "--set", "rampRate=10"];

/// One viewer, with a 2 s timeout, for `secs`.
fn one_viewer(secs: &str) -> [&str; 6] {
    [
        "--set",
        "clients=1",
        "--set",
        "timeout=2",
        "--duration",
        secs,
    ]
}

/// Requests of the swarm (the preflight GET has another user agent).
fn viewer_requests(s: &HlsServer) -> Vec<Entry> {
    s.log()
        .into_iter()
        .filter(|e| e.user_agent.contains("/client-"))
        .collect()
}

/// The viewers counted what the server sent them (`log`): the same
/// segments, playlists and bytes, but for one request a viewer at most —
/// its last, which the end of the run may cut after the server has logged
/// it (its bytes counted in part, the request not).
fn counted_as_served(v: &Results, log: &[Entry]) {
    let counts = &v.totals.counts;
    let mut last = std::collections::BTreeMap::new();
    for e in log {
        last.insert(e.user_agent.as_str(), e.bytes);
    }
    let served = |ext: &str| log.iter().filter(|e| e.path.ends_with(ext)).count() as u64;
    let (segments, playlists) = (served(".ts"), served(".m3u8"));
    assert_eq!(segments + playlists, log.len() as u64, "{log:#?}");
    let cut = match (
        segments.checked_sub(counts.segments),
        playlists.checked_sub(counts.playlists),
    ) {
        (Some(s), Some(p)) if s + p <= last.len() as u64 => s + p,
        _ => panic!(
            "counted {} segments and {} playlists, served {segments} and {playlists}: {log:#?}",
            counts.segments, counts.playlists
        ),
    };
    let served: u64 = log.iter().map(|e| e.bytes).sum();
    let bytes = native(v).counts.body_bytes;
    if cut == 0 {
        assert_eq!(bytes, served, "exact bytes");
    } else {
        let cut_bytes: u64 = last.values().sum();
        assert!(
            bytes <= served && bytes + cut_bytes >= served,
            "{bytes} bytes counted, {served} served, {cut_bytes} in the last requests"
        );
    }
}

/// Reloads logged at `times` (the server's clock) keep to "never sooner
/// than `nominal(gap)` after the last load began", and are late by a busy
/// machine's scheduling at most (a quarter second; other suites run beside
/// this one). The server logs a request a little after the viewer began
/// it, so a request logged late makes the next gap look short by as much:
/// that lateness (a quarter second at most) is carried into the next gap.
fn paced(times: &[f64], nominal: impl Fn(f64) -> f64) {
    let mut late = 0.0;
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        let n = nominal(gap);
        assert!(
            gap + late >= n - 0.05 && gap <= n + 0.25,
            "reload gap {gap:.3} s (due {n} s, the last logged up to {late:.3} s late): {times:?}"
        );
        late = (gap + late - n).clamp(0.0, 0.25);
    }
}

fn seq(path: &str) -> u64 {
    path.rsplit("seg")
        .next()
        .unwrap()
        .trim_end_matches(".ts")
        .parse()
        .unwrap()
}

#[test]
fn live_edge_reload_timing_order_bytes_and_one_connection() {
    let s = HlsServer::start(Shape::default());
    let (v, _) = swarm(
        &s.url("/live/stream.m3u8"),
        &["--set", "clients=1", "--duration", "7s"],
    );
    let log = viewer_requests(&s);
    let playlists: Vec<&Entry> = log.iter().filter(|e| e.path.ends_with(".m3u8")).collect();
    let segments: Vec<&Entry> = log.iter().filter(|e| e.path.ends_with(".ts")).collect();
    // live edge: 3 target durations from the end of a 6-segment window
    let first_playlist_newest = {
        let first = playlists[0].at;
        // the window's newest segment when the first playlist was served
        (first / 1.0) as u64 + 6 - 1
    };
    assert_eq!(
        seq(&segments[0].path),
        first_playlist_newest - 2,
        "the first segment is the 3rd from the end: {log:#?}"
    );
    // each segment once, in order, no gaps
    let seqs: Vec<u64> = segments.iter().map(|e| seq(&e.path)).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{seqs:?}");
    }
    // reloads: a target duration (1 s) after a changed playlist, half of it
    // after an unchanged one; never faster
    let times: Vec<f64> = playlists.iter().map(|e| e.at).collect();
    paced(&times, |gap| if gap < 0.8 { 0.5 } else { 1.0 });
    assert!(playlists.len() >= 6, "{playlists:#?}");
    // exact bytes: what the server sent is what the viewer counted
    counted_as_served(&v, &log);
    // one keep-alive connection
    assert!(log.iter().all(|e| e.conn == log[0].conn), "{log:#?}");
    assert_eq!(native(&v).requests["segment"].connect_ms.count, 0);
    assert_eq!(native(&v).requests["playlist"].connect_ms.count, 1);
    // startup: first request → first segment in, a few ms on loopback,
    // then hls.js's media start (the default profile's 120 ms)
    let startup = native(&v).startup_ms.p50;
    assert!((120.0..600.0).contains(&startup), "{startup}");
    assert_eq!(native(&v).counts.rebuffers, 0);
    // live latency: 3 segments behind the live edge, within a reload
    let lat = native(&v).live_latency_ms.p50;
    assert!((2900.0..=4200.0).contains(&lat), "{lat}");
}

#[test]
fn stalled_playlist_reloads_at_half_the_target_duration() {
    let s = HlsServer::start(Shape::default());
    s.set(|k| k.stall_playlist = true);
    swarm(
        &s.url("/live/stream.m3u8"),
        &["--set", "clients=1", "--duration", "4s"],
    );
    let log = viewer_requests(&s);
    let playlists: Vec<f64> = log
        .iter()
        .filter(|e| e.path.ends_with(".m3u8"))
        .map(|e| e.at)
        .collect();
    assert!(playlists.len() >= 6, "{playlists:?}");
    // the first load brought segments: a full target duration; then halves
    paced(&playlists[1..], |_| 0.5);
    // the three segments of the start, nothing more
    assert_eq!(log.iter().filter(|e| e.path.ends_with(".ts")).count(), 3);
}

#[test]
fn gone_segment_slow_segment_rebuffer_and_startup() {
    let s = HlsServer::start(Shape::default());
    // the 2nd segment takes 2.5 s: playback started on the 1st (1 s of media),
    // so the buffer runs dry 1 s in and waits ~1.5 s; the 5th answers 404
    s.set(|k| {
        k.slow_nth = Some((2, Duration::from_millis(2500)));
        k.gone_nth = Some(5);
    });
    let (v, _) = swarm(
        &s.url("/live/stream.m3u8"),
        &["--set", "clients=1", "--duration", "8s"],
    );
    let n = native(&v);
    assert_eq!(n.counts.rebuffers, 1, "{n:#?}");
    assert_eq!(v.totals.counts.stalls, 1);
    let rebuffer = n.counts.rebuffer_sec;
    assert!((1.3..=2.0).contains(&rebuffer), "rebuffer {rebuffer}");
    let play = n.counts.play_sec;
    assert!((n.rebuffer_ratio - rebuffer / (play + rebuffer)).abs() < 1e-9);
    assert_eq!(n.counts.segments_gone, 1);
    assert_eq!(v.totals.counts.http_errors.get(&404), Some(&1));
    // the slow segment's download ratio: 2.5 s for 1 s of media
    let max_ratio = n.segment_download_ratio.max;
    assert!((2.4..=3.0).contains(&max_ratio), "{max_ratio}");
    let v0 = v.viewers[0].native.as_ref().unwrap();
    assert_eq!(v0.counts.rebuffers, 1);
    assert!(v0.startup_ms.unwrap() < 600.0);
}

#[test]
fn closed_connections_are_reopened() {
    let s = HlsServer::start(Shape::default());
    s.set(|k| k.close = true);
    let (v, _) = swarm(
        &s.url("/live/stream.m3u8"),
        &[&TWO_VIEWERS[..], &["--duration", "4s"]].concat(),
    );
    let log = viewer_requests(&s);
    let mut conns: Vec<u64> = log.iter().map(|e| e.conn).collect();
    conns.sort();
    conns.dedup();
    assert_eq!(conns.len(), log.len(), "a connection per request: {log:#?}");
    assert!(v.totals.counts.segments >= 8);
    assert_eq!(native(&v).counts.errors, Default::default());
    assert_eq!(
        native(&v).requests["segment"].connect_ms.count,
        v.totals.counts.segments
    );
}

#[test]
fn abr_switches_down_under_a_throttled_variant_and_back_up() {
    let s = HlsServer::start(Shape::default());
    let url = s.url("/master.m3u8");
    let s = std::sync::Arc::new(s);
    let driver = {
        let s = std::sync::Arc::clone(&s);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            // 60 kB/s: a hi segment (375 kB) takes 6 s
            s.set(|k| {
                k.throttle.insert("hi".into(), 60_000);
            });
            std::thread::sleep(Duration::from_secs(8));
            s.set(|k| k.throttle.clear());
        })
    };
    let (v, _) = swarm(
        &url,
        &[
            "--set",
            "clients=1",
            "--set",
            "variant=\"abr\"",
            "--duration",
            "26s",
        ],
    );
    driver.join().unwrap();
    // how often the estimate crosses a variant's bandwidth while the
    // throughput changes depends on the timing of each segment: only the
    // least is known (up to hi at the start and again after the throttle,
    // down once under it)
    let n = &native(&v).counts;
    assert!(n.switches_up >= 3, "{n:#?}");
    assert!(n.switches_down >= 1, "{n:#?}");
    let log = viewer_requests(&s);
    let rank = |e: &Entry| match e.path.split('/').nth(2) {
        Some("lo") => 0,
        Some("mid") => 1,
        _ => 2,
    };
    let segs: Vec<(f64, u32)> = log
        .iter()
        .filter(|e| e.path.ends_with(".ts"))
        .map(|e| (e.at, rank(e)))
        .collect();
    assert!(
        segs.iter().any(|(t, r)| *t < 5.0 && *r == 2),
        "up to hi before the throttle: {segs:?}"
    );
    let (low_at, low) = segs
        .iter()
        .filter(|(t, _)| *t > 5.0)
        .min_by_key(|(_, r)| *r)
        .copied()
        .unwrap();
    assert!(low < 2, "down while hi is throttled: {segs:?}");
    assert!(
        segs.iter().any(|(t, r)| *t > low_at && *r > low),
        "up again once the throttle is lifted: {segs:?}"
    );
}

#[test]
fn redirects_vod_and_malformed_playlists() {
    let s = HlsServer::start(Shape::default());
    let run = |path: &str, secs: &str| swarm(&s.url(path), &one_viewer(secs)).0;
    // a redirect is followed (and counted as a request, not an error)
    let v = run("/redirect/stream.m3u8", "3s");
    assert!(v.totals.counts.segments >= 3);
    assert_eq!(native(&v).counts.errors, Default::default());
    // VOD: from the first segment to the end, then done
    let v = run("/vod/stream.m3u8", "3s");
    assert_eq!(v.totals.counts.segments, 3);
    assert_eq!(v.totals.counts.restarts, 0);
    let log = viewer_requests(&s);
    let vod: Vec<&str> = log
        .iter()
        .filter(|e| e.path.starts_with("/vod/seg"))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(vod, ["/vod/seg0.ts", "/vod/seg1.ts", "/vod/seg2.ts"]);
    // errors with a clear message; no playlist ever played: exit 3
    for (path, message) in [
        ("/loop.m3u8", "more than 5 redirects"),
        ("/bad/garbage.m3u8", "bad playlist: not an M3U8 playlist"),
        (
            "/bad/notd.m3u8",
            "bad playlist: missing or zero EXT-X-TARGETDURATION",
        ),
        (
            "/bad/negdur.m3u8",
            "bad playlist: EXTINF duration not in (0, 3600] s",
        ),
        ("/bad/nonutf8.m3u8", "bad playlist: not UTF-8"),
        ("/bad/huge.m3u8", "bad playlist: larger than 1 MiB"),
    ] {
        let v = swarm_exit(&s.url(path), &one_viewer("3s"), 3).0;
        let errors = &native(&v).counts.errors;
        let count = errors
            .iter()
            .find(|(k, _)| k.starts_with(message))
            .map(|(_, n)| *n);
        assert!(count.is_some_and(|n| n >= 2), "{path}: {errors:#?}");
        assert_eq!(v.totals.counts.segments, 0);
    }
}

#[test]
fn sigterm_stops_every_viewer_and_writes_the_summary() {
    let s = HlsServer::start(Shape::default());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let mut child = support::run_command(&s.url("/live/stream.m3u8"), &json)
        .args(["--set", "clients=20", "--set", "rampRate=100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let v = results(&json);
    assert_eq!(v.stopped_by, "SIGTERM");
    assert_eq!(v.totals.viewers_started, 20);
    assert_eq!(v.engine, "native");
    // every viewer's bytes were counted up to the stop
    let served: u64 = viewer_requests(&s).iter().map(|e| e.bytes).sum();
    let counted = native(&v).counts.body_bytes;
    assert!(
        counted <= served && counted + 200_000 >= served,
        "{counted} vs {served}"
    );
}

#[test]
fn user_agent_resolve_and_ipv6() {
    // the user agent's base is configurable; the viewer id is appended
    let s = HlsServer::start(Shape::default());
    let port = s.addr.port();
    let url = format!("http://origin.invalid:{port}/live/stream.m3u8");
    let (v, _) = swarm(
        &url,
        &[
            &TWO_VIEWERS[..],
            &[
                "--set",
                "userAgent=\"lab test/1.0\"",
                "--resolve",
                "127.0.0.1",
                "--header",
                "X-Test-Run: 42",
                "--header",
                "Authorization: Bearer s3cr3t",
                "--duration",
                "3s",
            ],
        ]
        .concat(),
    );
    assert!(v.totals.counts.segments >= 6, "{:#?}", v.totals);
    // the results say how to make the run again, credentials left out
    assert_eq!(
        v.settings["request"],
        serde_json::json!({
            "headers": { "X-Test-Run": "42", "Authorization": "<redacted>" },
            "resolve": "127.0.0.1"
        })
    );
    assert!(!serde_json::to_string(&v).unwrap().contains("s3cr3t"));
    let log = viewer_requests(&s);
    let mut agents: Vec<&str> = log.iter().map(|e| e.user_agent.as_str()).collect();
    agents.sort();
    agents.dedup();
    assert_eq!(agents, ["lab test/1.0/client-0", "lab test/1.0/client-1"]);
    // --resolve: connected to 127.0.0.1, the Host header kept the URL's host
    assert!(
        log.iter()
            .all(|e| e.host == format!("origin.invalid:{port}")),
        "{log:#?}"
    );

    // IPv6
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipping the IPv6 half");
        return;
    };
    drop(probe);
    let s6 = HlsServer::start_on("[::1]:0", Shape::default());
    let (v, _) = swarm(
        &s6.url("/live/stream.m3u8"),
        &["--set", "clients=1", "--duration", "3s"],
    );
    assert!(v.totals.counts.segments >= 3, "{:#?}", v.totals);
    assert!(viewer_requests(&s6)[0].host.starts_with("[::1]:"));
}

#[test]
fn check_prints_each_request() {
    let s = HlsServer::start(Shape::default());
    let out = Command::new(BIN)
        .args([
            "run",
            &s.url("/live/stream.m3u8"),
            "--check",
            "--duration",
            "3s",
        ])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" ttfb ")).collect();
    // the playlist, then the three segments of the live edge, each with its
    // status, TTFB, bytes and time
    assert!(lines.len() >= 5, "{text}");
    assert!(
        lines[0].contains("playlist 200") && lines[0].contains("new connection"),
        "{text}"
    );
    for l in &lines[1..4] {
        assert!(
            l.contains("segment  200") && l.contains("20000 B in"),
            "{l}"
        );
    }
    // one viewer
    let agents: std::collections::BTreeSet<String> = viewer_requests(&s)
        .into_iter()
        .map(|e| e.user_agent)
        .collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
}

#[test]
fn https_with_a_private_ca() {
    // a CA, and a certificate for 127.0.0.1 signed by it
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let s = HlsServer::start_tls(
        Shape::default(),
        vec![leaf.der().to_vec()],
        key.serialize_der(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let url = s.https_url("/live/stream.m3u8");
    let (v, _) = swarm(
        &url,
        &[
            &TWO_VIEWERS[..],
            &["--duration", "3s", "--ca-file", ca_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(v.totals.counts.segments >= 6, "{:#?}", v.totals);
    let log = viewer_requests(&s);
    counted_as_served(&v, &log);
    let served: u64 = log.iter().map(|e| e.bytes).sum();
    // on the wire: TLS records cost more than the bodies and heads
    assert!(v.totals.counts.bytes > served);
    // one connection per viewer, its connect time including the handshake;
    // HTTP/1.1: this server chooses no protocol by ALPN
    assert_eq!(native(&v).requests["playlist"].connect_ms.count, 2);
    assert_eq!(
        native(&v).counts.connections,
        [("http/1.1".to_owned(), 2)].into()
    );

    // `http = "2"` with an origin that does not choose it: each request
    // fails, said plainly; never reachable
    let ca_arg = [
        "--ca-file",
        ca_file.to_str().unwrap(),
        "--set",
        "http=\"2\"",
    ];
    let (v, _) = swarm_exit(&url, &[&one_viewer("2s")[..], &ca_arg].concat(), 3);
    let errors = &native(&v).counts.errors;
    assert!(
        errors
            .keys()
            .any(|k| k.starts_with("HTTP/2 not chosen by the origin")),
        "{errors:?}"
    );
    assert_eq!(v.totals.counts.segments, 0);
    // ... and with a plain http URL, or FFmpeg viewers: refused before the run
    for (u, extra) in [
        (s.url("/live/stream.m3u8"), &[][..]),
        (url.clone(), &["--engine", "ffmpeg"][..]),
    ] {
        let out = Command::new(BIN)
            .args([
                "run",
                &u,
                "--set",
                "http=\"2\"",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains("http") && e.contains("HTTP/2"), "{e}");
    }

    // without the CA: the handshake fails, said plainly; never reachable
    let (v, _) = swarm_exit(&url, &one_viewer("3s"), 3);
    let errors = &native(&v).counts.errors;
    assert!(
        errors.keys().any(|k| k.starts_with("TLS handshake failed")),
        "{errors:?}"
    );
    // a --ca-file that is not PEM: bad input
    std::fs::write(&ca_file, "not a certificate").unwrap();
    let out = Command::new(BIN)
        .args([
            "run",
            &url,
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PEM certificate"));
}

/// A second swarm on the host: the profile's metrics port is taken, so it
/// serves on a free one and says so; a port the user chose is not
/// replaced.
#[test]
fn a_taken_metrics_port_gives_way_unless_it_was_chosen() {
    let s = HlsServer::start(Shape::default());
    // the first swarm's port (or whatever already holds it)
    let _first = std::net::TcpListener::bind("127.0.0.1:9090");
    assert!(std::net::TcpListener::bind("127.0.0.1:9090").is_err());
    let url = s.url("/vod/stream.m3u8");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["run", &url, "--seed", "7", "--plain", "--set", "clients=1"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let at = stdout
        .lines()
        .find_map(|l| l.strip_prefix("metrics on http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no metrics line: {stdout}"));
    assert_ne!(at, "9090/metrics", "{stdout}");
    assert!(stderr.contains("port 9090 is taken"), "{stderr}");
    let out = run(&["--set", "metricsPort=9090"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot serve metrics on 127.0.0.1:9090"),
        "{stderr}"
    );
}

/// Series whose labels are known before the run are at 0 from its start:
/// a dashboard shows 0, not "no data".
#[test]
fn known_series_are_exported_at_zero_from_the_start() {
    let s = HlsServer::start(Shape::default());
    let port = testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["run", &s.url("/live/stream.m3u8"), "--seed", "7", "--plain"])
        .args([
            "--set",
            "clients=1",
            "--duration",
            "4s",
            "--metrics-addr",
            &addr,
        ])
        .args(["--set", "networks.slow={share=0.5, rate=\"2mbit\"}"])
        .args(["--set", "networks.fast={share=0.5}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/metrics");
    let mut text = String::new();
    testkit::procs::wait_until(
        Duration::from_secs(10),
        || match common::http_check::http_get(&url, Duration::from_secs(1)) {
            Ok((200, t)) => {
                text = t;
                true
            }
            _ => false,
        },
    );
    let _ = child.wait();
    for line in [
        "hls_swarm_failed_requests_total 0",
        "hls_swarm_abr_switches_total{direction=\"up\"} 0",
        "hls_swarm_abr_switches_total{direction=\"down\"} 0",
        "hls_swarm_network_rebuffers_total{network=\"slow\"} 0",
        "hls_swarm_network_failed_requests_total{network=\"fast\"} 0",
        "hls_swarm_errors_total{reason=\"connection closed or broken mid-response\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}
