//! hls-probe against a real stream (the test origin, `testkit::origin`):
//! the probe, its generated runner script and its image report health.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hls-probe");

use testkit::free_port;
use testkit::origin::TestOrigin;

/// (status, body) of GET path, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let status = r.split(' ').nth(1)?.parse().ok()?;
    Some((status, r.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()))
}

fn wait_for(port: u16, path: &str, status: u16, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < end {
        last = get(port, path);
        if let Some((s, body)) = &last {
            if *s == status {
                return body.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("GET {path} did not answer {status} within {secs} s; last: {last:?}");
}

/// Stops a child with SIGTERM (a runner script then stops what it started).
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// The real test origin with a light stream; returns it and its URL.
fn serve_stream() -> (TestOrigin, String) {
    let o = TestOrigin::start(&[], 2);
    let url = o.url();
    (o, url)
}

#[test]
fn health_follows_the_stream() {
    let (mut origin, url) = serve_stream();
    let port = free_port();
    let _probe = Kill(
        Command::new(BIN)
            .args([
                "run",
                "--profile",
                "frequent",
                "--url",
                &url,
                "--port",
                &port.to_string(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = wait_for(port, "/health", 200, 20);
    // one entry per stream (ffprobe lists a stream again for each program)
    // one entry per stream, in the stream's order (ffprobe lists a stream
    // again for each program)
    assert_eq!(body, "ok: streams h264,aac\n");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("hls_probe_up 1"), "{metrics}");
    assert!(!metrics.contains("hls_probe_checks_total 0\n"), "{metrics}");
    assert_eq!(get(port, "/nothing").unwrap().0, 404);

    // the origin goes away: after 3 failed probes (frequent) it is unhealthy
    origin.stop();
    let body = wait_for(port, "/health", 503, 30);
    assert!(body.starts_with("unhealthy"), "{body}");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("hls_probe_up 0"), "{metrics}");
}

#[test]
fn bad_input_exits_2_and_says_where() {
    for (args, expect) in [
        (vec!["run", "--url", "http://x/$(id)"], "`url`"),
        (
            vec!["run", "--profile", "frequnt"],
            "did you mean `frequent`",
        ),
        (
            vec!["config", "--set", "timeout=20"],
            "`timeout`: must be at most `interval`",
        ),
        (vec!["config", "--set", "intervall=3"], "interval"),
    ] {
        let err = testkit::stderr_of_failed(Command::new(BIN).args(&args), 2);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // targets the component does not have are refused the same way
    let err = testkit::stderr_of_failed(Command::new(BIN).args(["microvm", "-o", "/tmp/never"]), 2);
    assert!(err.contains("has no microvm target"), "{err}");
    assert!(!Path::new("/tmp/never").exists());
}

/// The runner script `common` generates from the probe's Deployment runs it.
#[test]
fn the_generated_runner_script_runs_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let (_origin, url) = serve_stream();
    let out = dir.path().join("runner");
    testkit::run_ok(Command::new(BIN).args([
        "runner",
        "-p",
        "frequent",
        "-o",
        out.to_str().unwrap(),
    ]));
    let script = out.join("bin/run-hls-probe");
    if let Err(e) = testkit::tools::shellcheck(&script) {
        panic!("{e}");
    }

    let path = format!(
        "{}:{}",
        Path::new(BIN).parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    // a URL that is not inert is refused before anything starts
    let bad = Command::new(&script)
        .env("PATH", &path)
        .env("STREAM_URL", "http://x/'; id")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("STREAM_URL must be an http:// or https:// URL"));

    let port = free_port();
    let _run = Kill(
        Command::new(&script)
            .env("PATH", &path)
            .env("STREAM_URL", &url)
            .env("PORT", port.to_string())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = wait_for(port, "/health", 200, 30);
    assert!(body.contains("h264"), "{body}");
}

/// The image `common` builds from the probe's Deployment: its config, then
/// podman running it against a stream on the host.
#[test]
fn the_generated_image_runs_the_probe_in_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (_origin, url) = serve_stream();
    let image = dir.path().join("probe.oci.tar");
    testkit::run_ok(
        Command::new(BIN)
            .args(["container", "-p", "frequent", "-o", image.to_str().unwrap()])
            .arg("--cache-dir")
            .arg(dir.path().join("cache")),
    );

    let inspect = testkit::output_ok(testkit::tool("skopeo", "skopeo").args([
        "inspect",
        "--config",
        &format!("oci-archive:{}", image.display()),
    ]));
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "probe");
    assert_eq!(c["Entrypoint"][0], "/usr/local/bin/run-hls-probe");
    assert!(c["ExposedPorts"]["17090/tcp"].is_object(), "{c}");
    assert_eq!(c["Labels"]["hls-probe.profile"], "frequent");
    let env = testkit::strings(&c["Env"]);
    for want in [
        "STREAM_URL=http://127.0.0.1:17080/stream.m3u8",
        "PORT=17090",
        "LISTEN_ADDR=0.0.0.0",
    ] {
        assert!(env.contains(&want), "{env:?}");
    }

    let podman = || {
        let mut c = testkit::tool("podman", "podman");
        c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
        c
    };
    testkit::run_ok(podman().arg("load").arg("-i").arg(&image));
    let port = free_port();
    let name = format!("hls-probe-test-{}", std::process::id());
    testkit::run_ok(
        podman()
            .args(["run", "-d", "--rm", "--name", &name, "--network", "host"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1000:1000",
            ])
            .args([
                "-e",
                &format!("STREAM_URL={url}"),
                "-e",
                &format!("PORT={port}"),
            ])
            .args([
                "-e",
                "LISTEN_ADDR=127.0.0.1",
                "localhost/hls-swarm-hls-probe:frequent",
            ]),
    );
    struct Stop<'a>(&'a str);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = testkit::tool("podman", "podman")
                .args([
                    "--runtime",
                    "runc",
                    "--cgroup-manager",
                    "cgroupfs",
                    "rm",
                    "-f",
                    self.0,
                ])
                .output();
        }
    }
    let _stop = Stop(&name);
    let body = wait_for(port, "/health", 200, 60);
    assert!(body.contains("h264"), "{body}");
}

/// `timeout` bounds a whole probe: a playlist that drips forever (each byte
/// in time for ffprobe's per-read timeout) is a failed probe after
/// `timeout` s, not a probe that never ends. Ctrl-C then stops the probe
/// cleanly: exit 0, "stopped".
#[test]
fn a_dripping_stream_fails_the_probe_within_its_timeout_and_ctrl_c_stops_it() {
    use std::os::unix::process::CommandExt;
    let server = testkit::hostile::Hostile::start();
    server.route(
        "/stream.m3u8",
        testkit::hostile::Reply::Endless {
            chunk: b"#".to_vec(),
            every: Duration::from_millis(200),
        },
    );
    let port = free_port();
    let mut probe = testkit::Captured::spawn(
        Command::new(BIN)
            .args(["run", "--profile", "frequent", "--url"])
            .arg(server.url("/stream.m3u8"))
            .args(["--port", &port.to_string()])
            .process_group(0),
    );
    // frequent: a 2 s timeout, every 2 s; 3 failed probes take ~6 s
    let end = Instant::now() + Duration::from_secs(20);
    let mut failures = 0;
    while failures < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        failures = probe.output().matches("probe failed").count();
    }
    assert!(failures >= 2, "{}", probe.output());
    assert!(
        probe
            .output()
            .contains("did not finish within 2 s (timeout)"),
        "{}",
        probe.output()
    );
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.contains("hls_probe_up 0"), "{metrics}");

    let group = format!("-{}", probe.child.id());
    Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    let status = probe
        .wait_exit(Duration::from_secs(10))
        .expect("stopped within 10 s of Ctrl-C");
    assert!(status.success(), "{status}: {}", probe.output());
    assert!(
        probe.output().contains("hls-probe: stopped"),
        "{}",
        probe.output()
    );
}
