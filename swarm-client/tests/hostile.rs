//! The native engine against a hostile origin (`testkit::hostile`): bodies
//! dripped a byte at a time or never ended, a preflight that must not hang,
//! a master with thousands of variants, playlists the parser would cut
//! short, durations with exponents, URLs too long to send, and runs in
//! which nothing could be played. Every run is the real `swarm-client run`
//! binary, bounded in time: a hang fails the test instead of holding it.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use swarm_client::results::{NativeTotals, Results};
use testkit::hostile::{Hostile, Reply};

/// Longer than any run here should take; a run still going then is a hang.
const HANG: Duration = Duration::from_secs(60);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    summary: Results,
    /// The results as written, for messages.
    json: String,
    took: Duration,
}

/// Runs `swarm-client run URL` (native, one viewer) with `args`, killing it
/// (and failing) if it is still running after [`HANG`].
fn swarm(url: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let began = Instant::now();
    let mut child = support::run_command(url, &json)
        .args(["--seed", "7", "--engine", "native", "--plain"])
        .args(["--set", "clients=1", "--set", "rampJitter=0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = testkit::procs::wait_until(HANG, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        done,
        "swarm-client still running after {HANG:?}: it hangs\n{stdout}\n{stderr}"
    );
    let json = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no summary written ({e})\n{stdout}\n{stderr}"));
    let summary = support::parse(&json).unwrap_or_else(|e| panic!("{e}\n{stdout}\n{stderr}"));
    Run {
        code: out.status.code(),
        stdout,
        stderr,
        summary,
        json,
        took,
    }
}

fn native(r: &Run) -> &NativeTotals {
    r.summary.totals.native.as_ref().expect("native totals")
}

fn errors(r: &Run, message: &str) -> u64 {
    native(r).counts.errors.get(message).copied().unwrap_or(0)
}

/// A server with `/live.m3u8` listing 6 segments, each answered with
/// `segments`.
fn live_with_segments(segments: Reply) -> Hostile {
    let s = Hostile::start();
    s.route("/live.m3u8", Reply::playlist(media(6)));
    s.route("/seg/*", segments);
    s
}

/// Exactly one request timed out: the viewer's first, at the 2 s deadline.
/// Nothing had been reached by then, so the run ended within its next tick
/// (100 ms), long before a second request could reach its own deadline.
fn assert_one_timeout(r: &Run) {
    assert_eq!(r.summary.totals.counts.timeouts, 1, "{}", r.json);
}

/// The sum of `f` over the seconds of the run's series.
fn series_sum(r: &Run, f: impl Fn(&swarm_client::results::Second) -> u64) -> u64 {
    r.summary.series.iter().map(|s| f(&s)).sum()
}

/// A live media playlist of `n` one-second segments under `/seg/`.
fn media(n: u64) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in 0..n {
        s += &format!("#EXTINF:1.000,\n/seg/{i}.ts\n");
    }
    s
}

#[test]
fn a_dripping_playlist_times_out_and_the_viewer_fails() {
    let s = Hostile::start();
    // a valid playlist at 10 bytes a second: every byte resets an idle
    // timer, so only a deadline on the whole request ends it
    s.route(
        "/drip.m3u8",
        Reply::Drip {
            body: media(20).into_bytes(),
            chunk: 1,
            every: Duration::from_millis(100),
        },
    );
    let r = swarm(
        &s.url("/drip.m3u8"),
        &["--set", "timeout=2", "--duration", "9s"],
    );
    let t = &r.summary.totals.counts;
    // the preflight and the viewer's first request each end at the 2 s
    // deadline; the playlist unreachable for the timeout ends the run
    assert_one_timeout(&r);
    assert_eq!(t.playlists, 0, "{}", r.json);
    assert_eq!(native(&r).counts.never_played, 1, "{}", r.json);
    assert_eq!(r.summary.stopped_by, "stream never reachable");
    assert!(r.took < Duration::from_secs(9), "took {:?}", r.took);
    assert_eq!(r.code, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no viewer could use a playlist") && r.stderr.contains("timeout ×"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_dripping_segment_times_out_within_its_deadline() {
    let s = live_with_segments(Reply::Drip {
        body: vec![0x47; 10_000],
        chunk: 1,
        every: Duration::from_millis(50),
    });
    // deadline: max(timeout 2 s, 4 × 1 s) = 4 s per segment request
    let r = swarm(
        &s.url("/live.m3u8"),
        &[
            "--set",
            "timeout=2",
            "--set",
            "segMaxRetry=0",
            "--duration",
            "10s",
        ],
    );
    let timeouts = r.summary.totals.counts.timeouts;
    assert!((1..=3).contains(&timeouts), "{}", r.json);
    assert_eq!(native(&r).counts.segments_failed, timeouts, "{}", r.json);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("no viewer played a segment"),
        "{}",
        r.stderr
    );
    // a viewer that never played counts as stalled once the timeout passed
    let stalled: Vec<u64> = r.summary.series.iter().map(|sec| sec.stalled).collect();
    assert!(
        stalled.iter().filter(|s| **s == 1).count() >= 5,
        "{stalled:?}"
    );
    assert_eq!(stalled.last(), Some(&1), "{stalled:?}");
}

#[test]
fn an_endless_playlist_does_not_hold_the_preflight_or_the_run() {
    let s = Hostile::start();
    s.route(
        "/endless.m3u8",
        Reply::Endless {
            chunk: "#EXT-X-PADDING\n".repeat(64).into_bytes(),
            every: Duration::from_millis(10),
        },
    );
    let r = swarm(
        &s.url("/endless.m3u8"),
        &["--set", "timeout=2", "--duration", "4s"],
    );
    // preflight (2 s) + the run (4 s), with room for the stop
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
    assert_one_timeout(&r);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
}

#[test]
fn a_head_that_never_ends_or_a_body_shorter_than_its_length_is_a_timeout() {
    let every = Duration::from_millis(100);
    let (claimed, body) = (100_000, media(3).into_bytes());
    let s = Hostile::start();
    s.route("/head.m3u8", Reply::EndlessHead { every });
    s.route("/lying.m3u8", Reply::Lying { claimed, body });
    for path in ["/head.m3u8", "/lying.m3u8"] {
        let r = swarm(&s.url(path), &["--set", "timeout=2", "--duration", "9s"]);
        assert_one_timeout(&r);
        assert_eq!(r.summary.stopped_by, "stream never reachable", "{path}");
        assert!(r.took < Duration::from_secs(9), "{path}: took {:?}", r.took);
        assert_eq!(r.code, Some(3), "{path}: {}", r.stderr);
    }
}

#[test]
fn a_master_with_thousands_of_variants_is_followed_in_part_and_said_so() {
    let variants: String = (0..3000)
        .map(|i| format!("#EXT-X-STREAM-INF:BANDWIDTH={}\n/v/{i}.m3u8\n", 100_000 + i))
        .collect();
    let s = Hostile::start();
    s.route(
        "/master.m3u8",
        Reply::playlist(format!("#EXTM3U\n{variants}")),
    );
    // 4 s segments: 16 playlists reloaded every 2 s leave time for segments
    s.route(
        "/v/*",
        Reply::playlist(
            media(500)
                .replace(":1.000,", ":4.000,")
                .replace("DURATION:1", "DURATION:4"),
        ),
    );
    s.route("/seg/*", Reply::segment(1000));
    let r = swarm(&s.url("/master.m3u8"), &["--duration", "8s"]);
    let variants: std::collections::BTreeSet<String> = s
        .hits()
        .into_iter()
        .filter(|h| h.path.starts_with("/v/"))
        .map(|h| h.path)
        .collect();
    assert_eq!(variants.len(), 16, "{variants:?}");
    assert_eq!(
        native(&r).counts.variants_not_followed,
        3000 - 16,
        "{}",
        r.json
    );
    assert!(
        r.stderr
            .contains("lists 3000 playlists; a viewer follows the first 16"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

/// A media playlist `body` that the viewer refuses, saying `message`:
/// nothing played, no segment requested, exit 3.
fn refused(body: String, message: &str) -> Run {
    let s = Hostile::start();
    s.route("/bad.m3u8", Reply::playlist(body));
    s.route("/seg/*", Reply::segment(1000));
    let r = swarm(&s.url("/bad.m3u8"), &["--duration", "3s"]);
    // the viewer loads the playlist again after each refusal, as often as
    // its retry delays fit in the 3 s: only the first is certain
    assert!(errors(&r, message) >= 1, "{}", r.json);
    assert_eq!(r.summary.totals.counts.segments, 0, "{}", r.json);
    let segments = s
        .hits()
        .iter()
        .filter(|h| h.path.starts_with("/seg/"))
        .count();
    assert_eq!(segments, 0);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    r
}

#[test]
fn a_playlist_the_parser_would_cut_short_is_refused_with_its_line() {
    // a lone CR in the URI on line 8: m3u8-rs alone would return the first
    // two segments as the whole playlist
    let body = media(6).replacen("/seg/2.ts", "/seg/2\r.ts", 1);
    let r = refused(body, "bad playlist: unreadable line");
    assert!(r.stderr.contains("unreadable line"), "{}", r.stderr);
}

#[test]
fn a_duration_with_an_exponent_is_refused() {
    let body = media(4).replacen("#EXTINF:1.000,", "#EXTINF:1e308,", 1);
    refused(
        body,
        "bad playlist: EXTINF duration not a decimal number of seconds",
    );
}

#[test]
fn a_url_too_long_to_send_is_counted_once_and_never_requested() {
    let s = Hostile::start();
    let long = format!("/seg/{}.ts", "x".repeat(70_000));
    let body = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n/seg/0.ts\n#EXTINF:1.0,\n{long}\n\
         #EXTINF:1.0,\n/seg/2.ts\n#EXT-X-ENDLIST\n"
    );
    s.route("/vod.m3u8", Reply::playlist(body));
    s.route("/seg/*", Reply::segment(1000));
    // a VOD and no --duration: the run ends when the viewer played it out
    let r = swarm(&s.url("/vod.m3u8"), &["--set", "segMaxRetry=3"]);
    assert_eq!(
        errors(&r, "URL too long (over 65534 bytes): not requested"),
        1,
        "{}",
        r.json
    );
    assert_eq!(native(&r).counts.segments_failed, 1, "{}", r.json);
    assert_eq!(r.summary.totals.counts.segments, 2, "{}", r.json);
    assert!(
        s.hits().iter().all(|h| h.path.len() < 1000) && s.heads_too_long() == 0,
        "the long URL reached the server"
    );
    assert_eq!(r.summary.stopped_by, "every viewer finished");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn runs_in_which_nothing_played_exit_3_and_say_why() {
    let s = Hostile::start();
    // every playlist too large: bytes were read, so "never reachable" is wrong
    s.route(
        "/huge.m3u8",
        Reply::playlist(format!("#EXTM3U\n{}", "#EXT-X-PADDING\n".repeat(80_000))),
    );
    let r = swarm(&s.url("/huge.m3u8"), &["--duration", "3s"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("answered (")
            && r.stderr.contains("no viewer could use a playlist")
            && r.stderr.contains("bad playlist: larger than 1 MiB ×"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("never reachable"), "{}", r.stderr);
    // a master that lists itself: every playlist refused; exit 0 before
    s.route(
        "/loop.m3u8",
        Reply::playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n/loop.m3u8\n"),
    );
    let r = swarm(&s.url("/loop.m3u8"), &["--duration", "3s"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("no viewer played a segment") && r.stderr.contains("not an M3U8"),
        "{}",
        r.stderr
    );
    // nothing listening: never reachable, as before
    let port = testkit::free_port();
    let r = swarm(
        &format!("http://127.0.0.1:{port}/x.m3u8"),
        &["--set", "timeout=1", "--duration", "5s"],
    );
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("was never reachable"), "{}", r.stderr);
}

#[test]
fn the_reports_failed_requests_are_the_errors_its_chart_draws() {
    // every segment cut short: "connection closed or broken mid-response"
    let s = live_with_segments(Reply::Cut {
        claimed: 10_000,
        body: vec![0x47; 1000],
    });
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let r = swarm(
        &s.url("/live.m3u8"),
        &["--duration", "4s", "--report", report.to_str().unwrap()],
    );
    let broken = errors(&r, "connection closed or broken mid-response");
    // each cut segment is retried: how many fit in the 4 s depends on the
    // retry delays, at least the first segment and its retry
    assert!(broken >= 2, "{}", r.json);
    assert_eq!(series_sum(&r, |sec| sec.errors), broken, "{}", r.json);
    // and the series adds up to the totals in bytes and requests too
    let t = &r.summary.totals.counts;
    assert_eq!(series_sum(&r, |sec| sec.bytes), t.bytes);
    assert_eq!(series_sum(&r, |sec| sec.requests), t.segments + t.playlists);
    let html = std::fs::read_to_string(&report).unwrap();
    let cell = html
        .split("<td id=\"failed-requests\">")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no failed-requests cell in the report"));
    assert_eq!(cell, broken.to_string(), "the totals row");
}

/// A live media playlist of ten 2 s segments under `/v{v}/`.
fn variant_media(v: u32) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in 0..10 {
        s += &format!("#EXTINF:2.000,\n/v{v}/{i}.ts\n");
    }
    s
}

/// hls.js's emergency switch down in the `hlsjs` profile: an ABR viewer
/// starts on the third of four variants (450 kbit/s, the highest under its
/// first estimate), gets its first segment in 1.5 s and plays; the next
/// drips at 10 kB/s, 11 s for its 112 kB with 2 s buffered. Once half the
/// segment's duration has passed the load is given up — counted, its
/// connection closed — and the same segment is loaded from the lowest
/// variant (the second lowest would not come in time either).
#[test]
fn a_segment_too_slow_for_the_buffer_is_abandoned_for_a_lower_variant() {
    let s = Hostile::start();
    let mut master = String::from("#EXTM3U\n");
    for v in [200, 300, 450, 2000] {
        master += &format!("#EXT-X-STREAM-INF:BANDWIDTH={}\n/v{v}.m3u8\n", v * 1000);
        s.route(&format!("/v{v}.m3u8"), Reply::playlist(variant_media(v)));
    }
    s.route("/master.m3u8", Reply::playlist(master));
    let drip = |bytes: usize, per_100ms: usize| Reply::Drip {
        body: vec![0x47; bytes],
        chunk: per_100ms,
        every: Duration::from_millis(100),
    };
    // at 600 kbit/s: too slow for the next variant up
    s.route("/v450/7.ts", drip(112_000, 7_500));
    s.route("/v450/*", drip(112_000, 1_000));
    // the lower variants at 200 kbit/s: no reason to switch up again
    s.route("/v300/*", drip(75_000, 2_500));
    s.route("/v200/*", drip(50_000, 2_500));
    let r = swarm(
        &s.url("/master.m3u8"),
        &[
            "--set",
            "variant=abr",
            "--set",
            "player=hlsjs",
            "--duration",
            "7s",
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let n = native(&r);
    assert_eq!(n.counts.segments_abandoned, 1, "{}", r.json);
    assert!(n.counts.switches_down >= 1, "{}", r.json);
    assert!(
        r.stdout.contains("(1 of them loads abandoned)"),
        "{}",
        r.stdout
    );
    let hits = s.hits();
    let at = |path: &str| {
        hits.iter()
            .find(|h| h.path == path)
            .unwrap_or_else(|| panic!("no {path} in {hits:#?}"))
            .at
    };
    assert_eq!(s.hits_of("/v450/8.ts"), 1, "{hits:#?}");
    let gave_up_after = at("/v200/8.ts") - at("/v450/8.ts");
    assert!(
        gave_up_after >= Duration::from_secs(1) && gave_up_after < Duration::from_secs(3),
        "judged only after half the segment's duration, then at once: {gave_up_after:?}"
    );
    assert!(
        at("/v200.m3u8") < at("/v200/8.ts"),
        "the new variant's playlist first"
    );
}
