//! The native viewer beside a real player: hls.js (from npm, in headless
//! Chromium) and native viewers play the same fresh test origin — its
//! playlist holding one segment when they start — for the same 30 s. A gap
//! shorter than a frame is no stall for a media element, and none for a
//! native viewer either (PLAYER.md §2): a native viewer counts no more
//! stalls than hls.js does. (Here hls.js, which also transmuxes each
//! segment in JavaScript on a busy 2-core machine, stalls a few times at
//! such a live edge, for 0.5–2 s each; the native viewers, whose segments
//! come in a few ms before the buffer runs dry, count those few ms as
//! micro gaps.)

mod support;

use std::process::Stdio;
use std::time::Duration;

use testkit::origin::TestOrigin;

const SECONDS: u64 = 30;

/// The page: hls.js with its default config plays `stream` muted, counts
/// the times the media element waited for data after it started playing,
/// and after `SECONDS` reports to `report`.
fn page(hls: &std::path::Path, stream: &str, report: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><video id="v" muted playsinline></video>
<script src="file://{hls}"></script>
<script>
const v = document.getElementById("v");
let started = false, stalls = 0, errors = 0, since = null, gaps = [];
v.addEventListener("playing", () => {{
  if (since !== null) {{ gaps.push(Math.round(performance.now() - since)); since = null; }}
  started = true;
}});
v.addEventListener("waiting", () => {{ if (started) {{ stalls++; since = performance.now(); }} }});
const hls = new Hls();
hls.on(Hls.Events.ERROR, (_, d) => {{ if (d.fatal) errors++; }});
hls.loadSource("{stream}");
hls.attachMedia(v);
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());
setTimeout(() => fetch("{report}?started=" + started + "&stalls=" + stalls +
  "&gaps=" + gaps.join(",") + "&errors=" + errors + "&played=" + v.currentTime.toFixed(1)), {ms});
</script>"#,
        hls = hls.display(),
        ms = SECONDS * 1000,
    )
}

#[test]
fn native_viewers_stall_no_more_than_hlsjs_on_a_fresh_origin() {
    let hls = testkit::player::hlsjs();
    let _g = testkit::serial();
    // 2 s segments, as the default profile; one in the playlist at the start
    let origin = TestOrigin::start(
        &["--set", "hls.segmentDuration=2", "--set", "hls.listSize=10"],
        1,
    );
    let tmp = tempfile::tempdir().unwrap();
    let reported = testkit::player::Report::new();
    let report = reported.url();
    let html = tmp.path().join("player.html");
    std::fs::write(&html, page(&hls, &origin.url(), &report)).unwrap();

    let json = tmp.path().join("native.json");
    let swarm = support::run_command(&origin.url(), &json)
        .args(["--seed", "5", "--plain", "--set", "clients=3"])
        .args(["--set", "rampRate=10", "--set", "rampJitter=0"])
        .args(["--duration", &format!("{SECONDS}s")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut browser = testkit::chromium(&tmp.path().join("profile"))
        .args([
            "--autoplay-policy=no-user-gesture-required",
            "--allow-file-access-from-files",
        ])
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // the page's report, within the run and a margin
    let line = reported.wait(Duration::from_secs(SECONDS + 60));
    let _ = browser.kill();
    let _ = browser.wait();
    let out = swarm.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let field = |name: &str| testkit::player::field(&line, name);
    assert_eq!(field("started"), "true", "hls.js did not play: {line}");
    assert_eq!(field("errors"), "0", "{line}");
    let played: f64 = field("played").parse().unwrap();
    assert!(
        played > (SECONDS / 2) as f64,
        "hls.js played {played} s: {line}"
    );
    let hls_stalls: u64 = field("stalls").parse().unwrap();

    let v = support::results(&json);
    for viewer in &v.viewers {
        let n = &viewer.native.as_ref().expect("a native viewer").counts;
        assert!(
            n.rebuffers <= hls_stalls,
            "a native viewer stalled more than hls.js on the same stream: {n:?}\nhls.js: {line}"
        );
    }
    eprintln!(
        "hls.js: {line}; native micro gaps: {}",
        support::native(&v).counts.micro_gaps
    );
}
