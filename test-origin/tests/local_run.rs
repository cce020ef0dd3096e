//! The local run and the runner script, as real processes on free ports with a
//! tiny stream: requests, freshness, restarts, signals, cleanup, preflight.

mod support;

use support::{free_port, serial, TINY};
use testkit::procs::{children_named, live_mentioning, processes, wait_until};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn headers_named(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn request(method: &str, url: &str) -> Resp {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .unwrap();
    let mut r = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        r.body_mut().read_to_vec().unwrap()
    };
    Resp {
        status: r.status().as_u16(),
        headers,
        body,
    }
}

fn get(url: &str) -> Resp {
    request("GET", url)
}

/// A running origin (the Rust runner or the script) and what it printed.
struct Origin {
    proc: testkit::Captured,
    base: String,
}

impl Origin {
    fn spawn(mut cmd: Command, port: u16) -> Origin {
        Origin {
            proc: testkit::Captured::spawn(&mut cmd),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn rust(profile: &str, port: u16, extra: &[&str]) -> Origin {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-p", profile, "--port", &port.to_string()])
            .args(TINY)
            .args(extra);
        Origin::spawn(cmd, port)
    }

    fn output(&self) -> String {
        self.proc.output()
    }

    /// Waits until /health answers and the playlist is served.
    fn wait_ready(&mut self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Some(s) = self.proc.child.try_wait().unwrap() {
                panic!("origin exited with {s}:\n{}", self.output());
            }
            if self.output().contains("ready after")
                && get(&format!("{}/stream.m3u8", self.base)).status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("not ready in 30 s:\n{}", self.output());
    }

    /// Waits until it says it is ready (over HTTPS, which `wait_ready`'s
    /// plain GETs cannot judge); its base URL becomes `https://`.
    fn wait_ready_https(&mut self, port: u16) {
        let t = Instant::now();
        while !self.output().contains("ready after") {
            let out = self.output();
            assert!(t.elapsed() < Duration::from_secs(30), "not ready:\n{out}");
            assert!(self.proc.child.try_wait().unwrap().is_none(), "{out}");
            std::thread::sleep(Duration::from_millis(200));
        }
        self.base = format!("https://127.0.0.1:{port}");
    }

    /// The state dir the run printed (`HLS dir  /tmp/…/hls`).
    fn hls_dir(&self) -> PathBuf {
        let out = self.output();
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("HLS dir"))
            .expect("banner has the HLS dir");
        PathBuf::from(line.trim_start().trim_start_matches("HLS dir").trim())
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.proc.child.id() as i32), sig).unwrap();
    }

    /// SIGTERM: it exits with success within 5 s, and no process that
    /// mentions `state` (its state dir) is left.
    fn stop_leaving_nothing_of(&mut self, state: &Path) {
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "{status}: {}", self.output());
        let needle = state.to_str().unwrap();
        assert!(
            wait_until(Duration::from_secs(1), || live_mentioning(needle)
                .is_empty()),
            "{:?}",
            live_mentioning(needle)
        );
    }

    /// Waits for the exit; panics after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.proc
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("still running after {limit:?}:\n{}", self.output()))
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if matches!(self.proc.child.try_wait(), Ok(None)) {
            let _ = self.proc.child.kill();
            let _ = self.proc.child.wait();
        }
    }
}

/// `#EXT-X-MEDIA-SEQUENCE` and the segment URIs of a playlist.
fn parse_playlist(text: &str) -> (u64, Vec<String>) {
    let seq = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0);
    let segs = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(String::from)
        .collect();
    (seq, segs)
}

/// The request contract of SPEC §3 against a running origin.
fn check_requests(base: &str) {
    let pl = get(&format!("{base}/stream.m3u8"));
    assert_eq!(pl.status, 200);
    assert_eq!(
        pl.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(
        pl.header("cache-control"),
        Some("public, max-age=1, stale-while-revalidate=2, no-transform")
    );
    assert_eq!(pl.header("access-control-allow-origin"), Some("*"));
    let (_, segs) = parse_playlist(&pl.text());
    let seg = get(&format!("{base}/{}", segs.last().expect("a segment")));
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-type"), Some("video/mp2t"));
    assert_eq!(
        seg.header("cache-control"),
        Some("public, max-age=60, immutable, no-transform")
    );
    assert_eq!(seg.header("accept-ranges"), Some("bytes"));
    assert_eq!(seg.headers_named("accept-ranges"), 1);
    assert!(
        seg.body.len() > 1000 && seg.body[0] == 0x47,
        "an MPEG-TS segment"
    );
    let h = get(&format!("{base}/health"));
    assert_eq!((h.status, h.text().trim()), (200, "OK"));
    assert_eq!(h.header("cache-control"), Some("no-store"));
    assert_eq!(request("POST", &format!("{base}/stream.m3u8")).status, 405);
    assert_eq!(request("DELETE", &format!("{base}/health")).status, 405);
    let o = request("OPTIONS", &format!("{base}/stream.m3u8"));
    assert_eq!(o.status, 204);
    assert_eq!(
        o.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(o.header("access-control-allow-headers"), Some("Range"));
    assert_eq!(o.header("access-control-max-age"), Some("86400"));
    let st = get(&format!("{base}/nginx_status"));
    assert_eq!(st.status, 200);
    assert!(st.text().contains("Active connections"), "{}", st.text());
    let files: serde_json::Value =
        serde_json::from_slice(&get(&format!("{base}/files/json/")).body).unwrap();
    assert!(files
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "stream.m3u8"));
    assert_eq!(request("HEAD", &format!("{base}/files/")).status, 200);
}

fn http_date(s: &str) -> std::time::SystemTime {
    httpdate(s)
}

/// Parses an IMF-fixdate (`Wed, 25 Nov 2026 21:00:21 GMT`).
fn httpdate(s: &str) -> std::time::SystemTime {
    let p: Vec<&str> = s.split([' ', ':']).collect();
    let day: u64 = p[1].parse().unwrap();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == p[2])
    .unwrap() as u64
        + 1;
    let year: u64 = p[3].parse().unwrap();
    let (h, m, sec): (u64, u64, u64) = (
        p[4].parse().unwrap(),
        p[5].parse().unwrap(),
        p[6].parse().unwrap(),
    );
    // days from civil (Howard Hinnant)
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    std::time::UNIX_EPOCH + Duration::from_secs(days * 86400 + h * 3600 + m * 60 + sec)
}

#[test]
fn local_run_serves_fresh_segments_restarts_and_stops_cleanly() {
    let _g = serial();
    let port = free_port();
    let mut o = Origin::rust("default", port, &[]);
    o.wait_ready();
    let hls = o.hls_dir();
    let state = hls.parent().unwrap().to_path_buf();
    assert!(
        state.starts_with(std::env::temp_dir()),
        "{}",
        state.display()
    );
    check_requests(&o.base);

    // Freshness and availability: 60 s of polling every 500 ms.
    let seg_dur = 2.0;
    let mut first_newest = None;
    let mut last_seq = 0;
    let mut newest = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let pl = get(&format!("{}/stream.m3u8", o.base));
        assert_eq!(pl.status, 200);
        let (seq, segs) = parse_playlist(&pl.text());
        assert!(
            seq >= last_seq,
            "media sequence went back from {last_seq} to {seq}"
        );
        last_seq = seq;
        // the newest segment's number advances every segment duration
        newest = seq + segs.len() as u64 - 1;
        first_newest.get_or_insert(newest);
        let date = http_date(pl.header("date").unwrap());
        let modified = http_date(pl.header("last-modified").unwrap());
        let age = date
            .duration_since(modified)
            .unwrap_or_default()
            .as_secs_f64();
        // one segment duration, plus the 1 s resolution of HTTP dates
        assert!(age <= seg_dur + 1.0, "playlist {age} s stale");
        for s in &segs {
            let r = request("HEAD", &format!("{}/{s}", o.base));
            assert_eq!(r.status, 200, "{s} named in the playlist is gone");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let advanced = newest - first_newest.unwrap();
    assert!(
        (27..=32).contains(&advanced),
        "{advanced} new segments in 60 s of 2 s segments"
    );

    // Kill FFmpeg from outside: it is restarted and the stream goes on.
    let ffmpeg_pid = |o: &Origin| children_named(o.proc.child.id(), "ffmpeg").first().copied();
    let old = ffmpeg_pid(&o).expect("an ffmpeg child");
    kill(Pid::from_raw(old as i32), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || ffmpeg_pid(&o)
            .is_some_and(|p| p != old)),
        "{}",
        o.output()
    );
    // The new child can be seen before the runner's line about it is read.
    assert!(
        wait_until(Duration::from_secs(5), || o
            .output()
            .contains("ffmpeg restarted")),
        "{}",
        o.output()
    );
    let before = parse_playlist(&get(&format!("{}/stream.m3u8", o.base)).text()).0;
    assert!(
        wait_until(Duration::from_secs(15), || parse_playlist(
            &get(&format!("{}/stream.m3u8", o.base)).text()
        )
        .0 > before),
        "the stream did not continue after the restart"
    );
    check_requests(&o.base);

    // SIGTERM: out within 5 s, nothing left, temp dir gone.
    o.stop_leaving_nothing_of(&state);
    assert!(!state.exists(), "{} left behind", state.display());
}

/// An fMP4 (CMAF) run: the playlist names its init segment, and nginx serves
/// the init and the segments with their types and immutable cache headers.
#[test]
fn fmp4_run_serves_its_init_segment_and_cmaf_segments() {
    let _g = serial();
    let port = free_port();
    let mut o = Origin::rust(
        "default",
        port,
        &[
            "--set",
            "hls.segmentType=fmp4",
            "--set",
            "hls.segmentPattern=seg%05d.m4s",
        ],
    );
    o.wait_ready();
    let pl = get(&format!("{}/stream.m3u8", o.base)).text();
    assert!(pl.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{pl}");
    let immutable = Some("public, max-age=60, immutable, no-transform");
    let init = get(&format!("{}/init.mp4", o.base));
    assert_eq!(init.status, 200);
    assert_eq!(init.header("content-type"), Some("video/mp4"));
    assert_eq!(init.header("cache-control"), immutable);
    assert_eq!(&init.body[4..8], b"ftyp");
    let (_, segs) = parse_playlist(&pl);
    let seg = get(&format!("{}/{}", o.base, segs.last().expect("a segment")));
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-type"), Some("video/iso.segment"));
    assert_eq!(seg.header("cache-control"), immutable);
    assert!(
        [&b"moof"[..], b"styp"].contains(&&seg.body[4..8]),
        "a CMAF segment starts with styp or moof"
    );
    assert!(o.output().contains("s fmp4 segments"), "{}", o.output());
    assert!(
        o.output()
            .contains("init:      public, max-age=60, immutable"),
        "{}",
        o.output()
    );
}

/// `(http version, status)` of a GET by curl, trusting `ca` (or nothing
/// but the system's CAs when `None`); `None` when curl fails (an untrusted
/// certificate).
fn curl(url: &str, ca: Option<&Path>, http: &str) -> Option<(String, u16)> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "--max-time",
        "5",
        "-w",
        "%{http_version} %{http_code}",
        http,
    ]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.arg(url).output().expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (version, code) = text.split_once(' ')?;
    out.status
        .success()
        .then(|| (version.to_owned(), code.parse().unwrap()))
}

/// TLS with a certificate made at start: HTTPS with HTTP/2 and HTTP/1.1 by
/// ALPN, a certificate for 127.0.0.1 signed by a CA of the run whose key is
/// gone, and the same files under HTTPS as under HTTP.
#[test]
fn tls_run_serves_https_and_http2_with_a_certificate_made_at_start() {
    let _g = serial();
    let port = free_port();
    let mut o = Origin::rust("default", port, &["--set", "tls.enable=true"]);
    o.wait_ready_https(port);
    let out = o.output();
    let ca = PathBuf::from(
        out.lines()
            .find_map(|l| l.strip_prefix("  CA "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no CA line:\n{out}")),
    );
    let tls = ca.parent().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(tls)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // the CA's key was deleted once it signed the server's certificate
    assert_eq!(files, ["ca.pem", "cert.pem", "key.pem"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tls.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key is its owner's alone: {mode:o}");
    let stream = format!("{}/stream.m3u8", o.base);
    assert_eq!(curl(&stream, Some(&ca), "--http2"), Some(("2".into(), 200)));
    assert_eq!(
        curl(&stream, Some(&ca), "--http1.1"),
        Some(("1.1".into(), 200))
    );
    assert_eq!(
        curl(&stream, None, "--http2"),
        None,
        "only the run's CA vouches for it"
    );
    // the stream's files are in no way different under TLS
    let (_, segs) = parse_playlist(&String::from_utf8_lossy(
        &Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&ca)
            .arg(&stream)
            .output()
            .unwrap()
            .stdout,
    ));
    let seg = format!("{}/{}", o.base, segs.last().expect("a segment"));
    assert_eq!(curl(&seg, Some(&ca), "--http2"), Some(("2".into(), 200)));
    assert!(
        out.contains(&format!("--ca-file {}", ca.display())),
        "{out}"
    );
    // plain HTTP on the TLS port is refused, not served
    assert_ne!(
        curl(
            &format!("http://127.0.0.1:{port}/health"),
            None,
            "--http1.1"
        )
        .map(|r| r.1),
        Some(200)
    );
    o.signal(Signal::SIGTERM);
    o.wait_exit(Duration::from_secs(15));
    assert!(!tls.exists(), "the run's certificate goes with the run");
}

#[test]
fn sigkill_of_the_runner_takes_the_children_down() {
    let _g = serial();
    let port = free_port();
    let mut o = Origin::rust("low-latency", port, &[]);
    // Ask for the playlist before it exists, as impatient players do …
    let url = format!("{}/stream.m3u8", o.base);
    let t = Instant::now();
    while !o.output().contains("ready after") && t.elapsed() < Duration::from_secs(30) {
        let _ = agent().get(&url).call();
        std::thread::sleep(Duration::from_millis(20));
    }
    // … and once the run says it is ready, no worker may answer 404.
    for _ in 0..40 {
        assert_eq!(
            get(&url).status,
            200,
            "a stale 404 for the playlist:\n{}",
            o.output()
        );
    }
    o.wait_ready();
    let state = o.hls_dir().parent().unwrap().to_path_buf();
    let needle = state.to_str().unwrap().to_owned();
    let before = live_mentioning(&needle);
    assert!(
        before.iter().any(|p| p.1.contains("ffmpeg"))
            && before.iter().any(|p| p.1.contains("nginx")),
        "{before:?}"
    );
    // nginx workers do not carry the path: find them as children of the master
    let master = before
        .iter()
        .find(|p| p.1.contains("nginx: master"))
        .unwrap()
        .0;
    let workers: Vec<u32> = processes()
        .into_iter()
        .filter(|p| p.ppid == master)
        .map(|p| p.pid)
        .collect();
    // `worker_processes auto`: one per core nginx sees, which need not be
    // the cores this process may use; at least one
    assert!(!workers.is_empty(), "no nginx workers under {master}");
    o.signal(Signal::SIGKILL);
    o.wait_exit(Duration::from_secs(2));
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(false)
    };
    let all: Vec<u32> = before.iter().map(|p| p.0).chain(workers).collect();
    assert!(
        wait_until(Duration::from_secs(2), || all.iter().all(|p| !alive(*p))),
        "left: {:?}",
        all.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    // killed outright, the run could not remove its state dir; the next
    // run does, and says so
    assert!(state.is_dir(), "{}", state.display());
    let mut next = Origin::rust("low-latency", free_port(), &[]);
    next.wait_ready();
    assert!(!state.exists(), "{} left behind", state.display());
    assert!(
        next.output()
            .contains(&format!("removed {}: the state of a run", state.display())),
        "{}",
        next.output()
    );
    // and its own, still running, is kept
    let own = next.hls_dir().parent().unwrap().to_path_buf();
    assert!(own.is_dir());
    next.signal(Signal::SIGTERM);
    next.wait_exit(Duration::from_secs(10));
}

fn write_script(dir: &Path, profile: &str) -> PathBuf {
    testkit::run_ok(
        Command::new(BIN)
            .args(["runner", "-p", profile, "-o"])
            .arg(dir)
            .args(TINY),
    );
    dir.join("bin/test-hls-origin")
}

#[test]
fn runner_script_is_deterministic_passes_shellcheck_and_serves() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let a = write_script(&tmp.path().join("a"), "default");
    let b = write_script(&tmp.path().join("b"), "default");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "byte-identical across runs"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
        0o755
    );
    if let Err(e) = testkit::tools::shellcheck(&a) {
        panic!("{e}");
    }

    let port = free_port();
    let mut cmd = Command::new("bash");
    cmd.arg(&a).env("PORT", port.to_string());
    let mut o = Origin::spawn(cmd, port);
    o.wait_ready();
    check_requests(&o.base);
    let state = o.hls_dir().parent().unwrap().to_path_buf();
    o.stop_leaving_nothing_of(&state);
    assert!(!state.exists());

    // bad environment is refused before anything starts
    for (k, v, needle) in [
        ("PORT", "99999", "PORT must be"),
        ("HLS_DIR", "/tmp/a b", "HLS_DIR must be"),
        ("LISTEN_ADDR", "nowhere", "LISTEN_ADDR must be"),
    ] {
        let out = Command::new("bash").arg(&a).env(k, v).output().unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{k}={v}"
        );
    }
}

/// The runner script of a TLS origin: it makes its certificate in
/// `TLS_DIR` and is ready over HTTPS; started again with a certificate
/// already there (one the user mounted), it uses that one as it is.
#[test]
fn tls_runner_script_makes_or_keeps_its_certificate() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    testkit::run_ok(
        Command::new(BIN)
            .args(["runner", "-p", "default", "-o"])
            .arg(tmp.path())
            .args(TINY)
            .args(["--set", "tls.enable=true"]),
    );
    let script = tmp.path().join("bin/test-hls-origin");
    if let Err(e) = testkit::tools::shellcheck(&script) {
        panic!("{e}");
    }
    let tls = tmp.path().join("tls");
    let start = || {
        let port = free_port();
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .env("PORT", port.to_string())
            .env("TLS_DIR", &tls);
        let mut o = Origin::spawn(cmd, port);
        o.wait_ready_https(port);
        o
    };
    let mut o = start();
    let ca = tls.join("ca.pem");
    let stream = format!("{}/stream.m3u8", o.base);
    assert_eq!(curl(&stream, Some(&ca), "--http2"), Some(("2".into(), 200)));
    assert!(!tls.join("ca.key").exists(), "the CA's key is deleted");
    o.signal(Signal::SIGTERM);
    o.wait_exit(Duration::from_secs(15));

    // a certificate already there is the user's: kept, not made again
    let cert = std::fs::read(tls.join("cert.pem")).unwrap();
    std::fs::remove_file(&ca).unwrap();
    let mut o = start();
    let stream = format!("{}/stream.m3u8", o.base);
    assert_eq!(std::fs::read(tls.join("cert.pem")).unwrap(), cert);
    assert!(!ca.exists(), "nothing was made");
    assert_eq!(curl(&stream, None, "--http2"), None);
    let mut insecure = Command::new("curl");
    insecure.args([
        "-sS",
        "-k",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &stream,
    ]);
    assert_eq!(testkit::output(&mut insecure).stdout, b"200");
    o.signal(Signal::SIGTERM);
    o.wait_exit(Duration::from_secs(15));
}

#[test]
fn preflight_errors_come_before_anything_starts() {
    let _g = serial();
    // port in use
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["run", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    drop(l);

    // a missing binary names the package
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/usr/bin/env", bin.path().join("env")).unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("apt-get install ffmpeg"), "{err}");

    // an HLS dir that cannot be written
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--port", &free_port().to_string()])
        .env("HLS_DIR", f.path().join("x"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HLS_DIR"), "{err}");

    // bad input is exit 2, with nothing started
    let out = Command::new(BIN)
        .args(["run", "-p", "low-latancy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_child_that_keeps_failing_ends_the_run_with_its_output() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("ffmpeg");
    let failing = "#!/bin/sh\necho 'boom: no encoder today' >&2\nexit 1\n";
    std::fs::write(&fake, failing).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--port", &free_port().to_string()])
        .args(TINY)
        .env("PATH", path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ffmpeg failed 3 times in a row"), "{err}");
    assert!(err.contains("boom: no encoder today"), "{err}");
    assert!(
        err.matches("restart #").count() >= 2,
        "restarts are logged: {err}"
    );
    assert!(t.elapsed() < Duration::from_secs(20));
}

/// A profile that logs keeps its logs: in `logging.directory` (or
/// `--log-dir`), named in the banner, there after the run.
#[test]
fn a_logged_run_keeps_its_access_logs_where_the_config_says() {
    let _g = serial();
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().join("nginx-logs");
    let port = free_port();
    let set = format!("logging.directory={}", dir.display());
    let mut o = Origin::rust(
        "debug",
        port,
        &["--set", &set, "--set", "logging.flushInterval=1s"],
    );
    o.wait_ready();
    let banner = o.output();
    assert!(
        banner.contains(&format!(
            "access logs: {} (kept after the run)",
            dir.display()
        )),
        "{banner}"
    );
    let (_, segs) = parse_playlist(&get(&format!("{}/stream.m3u8", o.base)).text());
    assert_eq!(get(&format!("{}/{}", o.base, segs[0])).status, 200);
    kill(Pid::from_raw(o.proc.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = o.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{}", o.output());
    assert!(o
        .output()
        .contains(&format!("access logs kept in {}", dir.display())));
    // nginx wrote its buffers on exit; the files (gzip 4 in `debug`) are there
    let segments = std::fs::read(dir.join("segments.log")).expect("segments.log kept");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&segments[..]),
        &mut text,
    )
    .expect("a gzip log");
    assert!(text.contains(&format!("/{}", segs[0])), "{text}");
    assert!(dir.join("manifests.log").is_file());

    // a log directory that cannot be written is refused before anything starts
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(BIN)
        .args(["run", "-p", "logged", "--port", &free_port().to_string()])
        .arg("--log-dir")
        .arg(f.path().join("logs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--log-dir") && err.contains("cannot write access logs"),
        "{err}"
    );
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("ready"));
}

/// Ctrl-C in a terminal reaches the whole foreground group: ffprobe of
/// `--verify` dies with the origin's own stop. That is a stop (exit 0,
/// nothing left), never "ffprobe could not read". Whether the signal lands
/// during the check or after it, the outcome is the same.
#[test]
fn ctrl_c_while_verifying_is_a_clean_stop() {
    use std::os::unix::process::CommandExt;
    let _g = serial();
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--port", &port.to_string(), "--verify"])
        .args(TINY)
        .process_group(0);
    let mut o = Origin::spawn(cmd, port);
    let t = Instant::now();
    while !o.output().contains("ready after") {
        assert!(t.elapsed() < Duration::from_secs(30), "{}", o.output());
        assert!(o.proc.child.try_wait().unwrap().is_none(), "{}", o.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    let group = Pid::from_raw(-(o.proc.child.id() as i32));
    kill(group, Signal::SIGINT).unwrap();
    let status = o.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", o.output());
    assert!(!o.output().contains("error:"), "{}", o.output());
    assert!(o.output().contains("stopped"), "{}", o.output());
}
