//! Faults during a run, with real parts: FFmpeg killed, an nginx worker
//! killed, the whole origin stopped and started again, connections reset by
//! a proxy in the way. For each, the origin recovers, the swarm counts what
//! it saw, keeps the other viewers going, and writes complete results.
//!
//! Each test has an origin and a swarm of its own, a few viewers of a tiny
//! stream, so two run at once ([`two_at_a_time`]).

mod support;

use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use swarm_client::results::{NativeCounts, Results, Second};
use testkit::origin::TestOrigin;
use testkit::procs::{children_named, wait_until};

/// A place among the two tests that run at once, whatever the machine's
/// cores (the harness runs one a core): two origins of a tiny stream and
/// their swarms share 2 cores well; more would time the machine rather
/// than the fault.
struct Slot;

static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn two_at_a_time() -> Slot {
    let (running, freed) = &RUNNING;
    let mut n = running.lock().unwrap_or_else(|e| e.into_inner());
    while *n >= 2 {
        n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
    }
    *n += 1;
    Slot
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (running, freed) = &RUNNING;
        *running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// A native swarm of `clients` on `url` for `secs`; `fault` runs `at`
/// seconds in, while the swarm plays. Returns the results.
fn swarm_with_fault(url: &str, clients: u32, secs: u64, at: u64, fault: impl FnOnce()) -> Results {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let child = support::run_command(url, &json)
        .args(["--seed", "3", "--plain"])
        .args([
            "--set",
            &format!("clients={clients}"),
            "--set",
            "rampRate=20",
        ])
        .args(["--duration", &format!("{secs}s")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(at));
    fault();
    let out = child.wait_with_output().unwrap();
    let text = testkit::printed(&out);
    assert!(out.status.success(), "{text}");
    let text = std::fs::read_to_string(&json).unwrap();
    let v = support::parse(&text).unwrap();
    assert_eq!(v.stopped_by, "duration reached", "complete results: {text}");
    v
}

/// The native engine's counters of the whole run.
fn native(v: &Results) -> &NativeCounts {
    &v.totals.native.as_ref().expect("native totals").counts
}

/// New connections the viewers opened, for segments and playlists.
fn connects(v: &Results) -> u64 {
    let requests = &v.totals.native.as_ref().expect("native totals").requests;
    requests["segment"].connect_ms.count + requests["playlist"].connect_ms.count
}

/// Every viewer still plays at the end: active in the last second, and
/// segments came in over the last 5 seconds.
fn all_play_at_the_end(v: &Results, clients: u64) {
    let series: Vec<Second> = v.series.iter().collect();
    let last = &series[series.len() - 2];
    assert_eq!(last.active, clients, "{last:?}");
    let late: u64 = series[series.len() - 6..].iter().map(|s| s.requests).sum();
    assert!(late >= clients, "{late} requests in the last 5 s");
    for viewer in &v.viewers {
        assert!(viewer.counts.segments >= 5, "{viewer:?}");
    }
}

/// The newest segment the playlist at `path` lists.
fn newest_segment(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .rev()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
}

/// FFmpeg killed during a run with `segment_sec` segments: restarted by the
/// origin, and each viewer counts the segments it missed in media time, not
/// as a sequence reset — the new FFmpeg numbers its segments from the clock
/// (`-hls_start_number_source epoch`, one number a second), so with 2 s
/// segments the numbers jump by about twice the segments missed.
fn ffmpeg_killed(segment_sec: u64) {
    let _slot = two_at_a_time();
    let d = format!("hls.segmentDuration={segment_sec}");
    let list = if segment_sec == 1 {
        "hls.listSize=6"
    } else {
        "hls.listSize=3"
    };
    let origin = TestOrigin::start(&["--set", &d, "--set", list], 3);
    let pid = origin.pid().unwrap();
    let playlist = origin.playlist();
    let mut outage = Duration::ZERO;
    let v = swarm_with_fault(&origin.url(), 4, 30, 8, || {
        let old = children_named(pid, "ffmpeg")[0];
        let last = newest_segment(&playlist);
        let killed = Instant::now();
        kill(Pid::from_raw(old as i32), Signal::SIGKILL).unwrap();
        // down until the new FFmpeg has written a segment
        assert!(wait_until(Duration::from_secs(20), || {
            newest_segment(&playlist).is_some_and(|s| Some(&s) != last.as_ref())
        }));
        outage = killed.elapsed();
        assert!(children_named(pid, "ffmpeg")
            .first()
            .is_some_and(|p| *p != old));
    });
    eprintln!("{segment_sec} s segments: FFmpeg away for {outage:?}");
    assert!(
        origin.output().contains("ffmpeg restarted"),
        "{}",
        origin.output()
    );
    let nt = native(&v);
    assert_eq!(nt.sequence_resets, 0, "{segment_sec} s: {nt:?}");
    assert_eq!(nt.viewer_failures, 0, "{segment_sec} s: {nt:?}");
    // each viewer missed the media of the outage: at least a segment, and
    // no more than the outage holds (plus one at each end)
    let most = outage.as_secs_f64() / segment_sec as f64 + 2.0;
    for viewer in &v.viewers {
        let skipped = viewer.native.as_ref().unwrap().counts.segments_skipped;
        assert!(
            skipped >= 1 && skipped as f64 <= most,
            "{segment_sec} s segments, away {outage:?}: {skipped} skipped: {viewer:?}"
        );
    }
    all_play_at_the_end(&v, 4);
}

#[test]
fn ffmpeg_killed_is_restarted_and_viewers_follow_the_new_stream() {
    ffmpeg_killed(1);
}

#[test]
fn ffmpeg_killed_with_2_s_segments_is_counted_in_media_time() {
    ffmpeg_killed(2);
}

#[test]
fn an_nginx_worker_killed_costs_connections_not_viewers() {
    let _slot = two_at_a_time();
    let origin = TestOrigin::start(&[], 4);
    let pid = origin.pid().unwrap();
    let nginx = children_named(pid, "nginx")[0];
    let workers = || children_named(nginx, "nginx");
    let before = workers();
    let v = swarm_with_fault(&origin.url(), 6, 20, 6, || {
        for w in &before {
            kill(Pid::from_raw(*w as i32), Signal::SIGKILL).unwrap();
        }
        assert!(wait_until(Duration::from_secs(10), || {
            let now = workers();
            !now.is_empty() && now.iter().all(|w| !before.contains(w))
        }));
    });
    // the master started new workers; every viewer opened a new connection
    // (kept-alive ones died with the workers) and played on
    let connects = connects(&v);
    assert!(connects >= 12, "{connects} new connections for 6 viewers");
    assert_eq!(native(&v).viewer_failures, 0, "{:?}", native(&v));
    assert_eq!(v.totals.counts.restarts, 0);
    assert!(
        !origin.output().contains("nginx restarted"),
        "the master stayed"
    );
    all_play_at_the_end(&v, 6);
}

#[test]
fn an_origin_stopped_and_started_again_is_counted_and_played_through() {
    let _slot = two_at_a_time();
    let mut origin = TestOrigin::start(&[], 4);
    let url = origin.url();
    let mut down = Duration::ZERO;
    let v = swarm_with_fault(&url, 4, 35, 8, || {
        let t = Instant::now();
        // nothing listens for 3 s: longer than any viewer's reload interval
        // (1 s segments: at most 1 s), so every viewer meets the outage
        origin.restart_after(Duration::from_secs(3), 4).unwrap();
        down = t.elapsed();
    });
    eprintln!("the origin was away for {down:?}");
    // requests in the gap were refused; each viewer connected again when
    // the origin came back, and played on
    // how many requests a viewer makes into the 3 s gap depends on where
    // its reloads and retries fall in it: at least one each
    assert!(v.totals.failed_requests() >= 4, "{:?}", v.totals);
    for viewer in &v.viewers {
        let f = viewer.failed_requests();
        assert!(f >= 1, "each viewer met the outage: {viewer:?}");
        // after the outage the viewer rejoined 3 target durations behind
        // the live edge, and its rebuffers stopped: the outage's own stall
        // (and one more at most, the new encoder's first segments being
        // late), not one every segment for the rest of the run
        let rebuffers = viewer.native.as_ref().unwrap().counts.rebuffers;
        assert!(rebuffers <= 2, "{rebuffers} rebuffers: {viewer:?}");
    }
    let connects = connects(&v);
    assert!(
        connects >= 8,
        "{connects} connections for 4 viewers and a restart"
    );
    assert_eq!(
        native(&v).viewer_failures,
        0,
        "a gap of {down:?} is below the 15 s timeout"
    );
    all_play_at_the_end(&v, 4);
}

#[test]
fn connections_reset_in_the_way_are_counted_and_retried() {
    let _slot = two_at_a_time();
    let origin = TestOrigin::start(&[], 4);
    let proxy = testkit::proxy::ResetProxy::start(([127, 0, 0, 1], origin.port).into());
    let url = format!("http://{}/stream.m3u8", proxy.addr);
    let v = swarm_with_fault(&url, 4, 25, 6, || {
        // reset every connection 10 times, 1 s apart
        for _ in 0..10 {
            proxy.reset_all();
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let resets = proxy.resets.load(std::sync::atomic::Ordering::Relaxed);
    assert!(resets >= 10, "{resets} connections reset");
    let connects = connects(&v);
    // each connection reset is a new one
    assert!(
        connects >= resets,
        "{connects} connections for {resets} resets"
    );
    assert_eq!(native(&v).viewer_failures, 0, "{:?}", native(&v));
    all_play_at_the_end(&v, 4);
}

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_hls_filesystem_is_said_clearly_and_the_stream_comes_back_when_freed() {
    let _slot = two_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let hls = tmp.path().join("hls");
    std::fs::create_dir(&hls).unwrap();
    testkit::run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&hls),
    );
    let _mount = Tmpfs(hls.clone());
    let port = testkit::free_port();
    let mut args: Vec<&str> = testkit::origin::TINY.to_vec();
    args.extend(testkit::origin::SHORT_SEGMENTS);
    let origin = testkit::Captured::spawn(
        Command::new(testkit::origin::binaries().join("test-origin"))
            .args(["run", "--port", &port.to_string(), "--hls-dir"])
            .arg(&hls)
            .args(&args),
    );
    let playlist = hls.join("stream.m3u8");
    let listed = || {
        std::fs::read_to_string(&playlist)
            .map(|p| p.matches("#EXTINF").count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(40), || listed() >= 4),
        "{}",
        origin.output()
    );
    let url = format!("http://127.0.0.1:{port}/stream.m3u8");
    let filler = hls.join("filler");
    let v = swarm_with_fault(&url, 3, 40, 6, || {
        // fill the filesystem, and keep it full: FFmpeg deletes its old
        // segments, and the room they leave is taken at once, so that its
        // next segment has none, wherever its writes fall
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4 * 1024];
        let mut fill = || while std::io::Write::write_all(&mut f, &block).is_ok() {};
        assert!(
            wait_until(Duration::from_secs(20), || {
                fill();
                origin.output().contains("No space left on device")
            }),
            "the origin does not say why: {}",
            origin.output()
        );
        drop(f);
        // free it: the supervisor's next restart of FFmpeg goes on
        std::fs::remove_file(&filler).unwrap();
    });
    let out = origin.output();
    assert!(out.contains("ffmpeg exited"), "{out}");
    // the stream came back: segments were written after the filler went
    let fresh = std::fs::metadata(&playlist).unwrap().modified().unwrap();
    assert!(fresh.elapsed().unwrap() < Duration::from_secs(5), "{out}");
    // the swarm saw the stream stop (no new segments: the viewers' buffers
    // ran dry or the window moved on) and played on when it came back
    let nt = native(&v);
    assert!(
        nt.rebuffers + nt.segments_skipped + nt.segments_gone >= 3,
        "{nt:?}"
    );
    assert_eq!(nt.viewer_failures, 0, "{nt:?}");
    all_play_at_the_end(&v, 3);
}
