//! The real test origin — `test-origin run`: FFmpeg and nginx from the one
//! builder of each — with a tiny stream, for the tests of every component
//! (and the workspace's binaries those tests need); `cargo xtask demo` and
//! `bench` start the same fixture from release binaries with a stream of
//! their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Captured;

/// A tiny stream: 320x180 at 10 fps, ultrafast.
pub const TINY: &[&str] = &[
    "--set",
    "video.width=320",
    "--set",
    "video.height=180",
    "--set",
    "encoder.framerate=10",
    "--set",
    "encoder.preset=ultrafast",
];

/// A light Low-Latency stream (with [`TINY`]): 300 kbit/s, 64 kbit/s audio,
/// 1 s segments of the profile's 200 ms parts.
pub const LIGHT_LL: &[&str] = &[
    "--set",
    "video.bitrate=300k",
    "--set",
    "video.maxrate=330k",
    "--set",
    "video.bufsize=300k",
    "--set",
    "video.audioBitrate=64k",
    "--set",
    "hls.segmentDuration=1",
];

/// Short segments, so a test sees many in a few seconds: 1 s, 6 listed.
pub const SHORT_SEGMENTS: &[&str] = &["--set", "hls.segmentDuration=1", "--set", "hls.listSize=6"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

/// The directory holding the workspace's binaries (`test-origin`,
/// `swarm-client`, …): the one of the running test's build when `cargo test
/// --workspace` built them, else a build of our own in `target/lab-test`
/// (a target dir of its own, so it never waits for the build running us).
pub fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/debug/deps/<test> → target/debug
    let here = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test runs from target/<profile>/deps")
        .to_path_buf();
    let names = ["test-origin", "swarm-client", "hls-probe"];
    if names.iter().all(|n| here.join(n).is_file()) {
        return here;
    }
    let target = workspace_root().join("target").join("lab-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "--target-dir"]).arg(&target);
    for n in names {
        cmd.args(["-p", n]);
    }
    let ok = cmd
        .current_dir(workspace_root())
        .status()
        .expect("cargo runs")
        .success();
    assert!(ok, "cargo build of the workspace's binaries failed");
    target.join("debug")
}

/// A running `test-origin run` on a free port of 127.0.0.1, its stream in a
/// temp dir this test can add files to. Stopped (SIGTERM, as a user would)
/// when dropped.
pub struct TestOrigin {
    proc: Option<Captured>,
    pub port: u16,
    hls: tempfile::TempDir,
    /// How it was started, for [`TestOrigin::restart`].
    program: PathBuf,
    args: Vec<String>,
    echo: bool,
    /// The network namespace it runs in, if not the test's own.
    netns: Option<String>,
}

impl TestOrigin {
    /// Starts it with the [`TINY`] stream in [`SHORT_SEGMENTS`] and `extra`
    /// arguments, and waits until it says it is ready and the playlist lists
    /// `segments`. Panics (with its output) when it does not come up.
    pub fn start(extra: &[&str], segments: usize) -> TestOrigin {
        let mut args = TINY.to_vec();
        args.extend(SHORT_SEGMENTS);
        args.extend(extra);
        TestOrigin::launch(&binaries(), &args, false, segments).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestOrigin::start`] inside the network namespace `ns`: its URL
    /// (127.0.0.1) is reached from there only.
    pub fn start_in(ns: &crate::netns::Netns, extra: &[&str], segments: usize) -> TestOrigin {
        let mut args = TINY.to_vec();
        args.extend(SHORT_SEGMENTS);
        args.extend(extra);
        let mut o = TestOrigin::new(&binaries(), &args, false).unwrap_or_else(|e| panic!("{e}"));
        o.netns = Some(ns.name().to_owned());
        o.spawn(segments).unwrap_or_else(|e| panic!("{e}"));
        o
    }

    /// Starts `test-origin run` from the binaries in `bin` with `args` (the
    /// stream's settings), printing its output as it comes when `echo`, and
    /// waits (40 s at most) until it says it is ready and the playlist lists
    /// `segments`. The error holds its output.
    pub fn launch(
        bin: &Path,
        args: &[&str],
        echo: bool,
        segments: usize,
    ) -> Result<TestOrigin, String> {
        let mut o = TestOrigin::new(bin, args, echo)?;
        o.spawn(segments)?;
        Ok(o)
    }

    /// One not started yet.
    fn new(bin: &Path, args: &[&str], echo: bool) -> Result<TestOrigin, String> {
        let hls = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
        let program = bin.join("test-origin");
        if !program.is_file() {
            return Err(format!("{} is missing (build it first)", program.display()));
        }
        Ok(TestOrigin {
            proc: None,
            port: crate::free_port(),
            hls,
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            echo,
            netns: None,
        })
    }

    /// Stops it (as Ctrl-C would) and starts it again on the same port and
    /// HLS dir, as an operator restarting the origin would; waits until the
    /// playlist lists `segments` again.
    pub fn restart(&mut self, segments: usize) -> Result<(), String> {
        self.restart_after(Duration::ZERO, segments)
    }

    /// [`TestOrigin::restart`], staying down (nothing listening on its
    /// port) for `gap` first: an outage of a known length.
    pub fn restart_after(&mut self, gap: Duration, segments: usize) -> Result<(), String> {
        self.stop();
        std::thread::sleep(gap);
        self.spawn(segments)
    }

    /// Its media playlist on disk.
    pub fn playlist(&self) -> PathBuf {
        self.hls.path().join("stream.m3u8")
    }

    fn spawn(&mut self, segments: usize) -> Result<(), String> {
        let started = Instant::now();
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = crate::tool("ip", "iproute2");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        self.proc = Some(Captured::spawn_echoing(
            command
                .args(["run", "--port", &self.port.to_string(), "--hls-dir"])
                .arg(self.hls.path())
                .args(&self.args),
            self.echo,
        ));
        let playlist = self.hls.path().join("stream.m3u8");
        loop {
            let p = self.proc.as_mut().expect("running");
            if let Ok(Some(s)) = p.child.try_wait() {
                return Err(format!("test-origin exited ({s}):\n{}", p.output()));
            }
            // a playlist written by this run (a restart finds the last one's)
            let listed = std::fs::metadata(&playlist)
                .and_then(|m| m.modified())
                .ok()
                .filter(|m| *m >= std::time::SystemTime::now() - started.elapsed())
                .and_then(|_| std::fs::read_to_string(&playlist).ok())
                .map(|p| p.matches("#EXTINF").count())
                .unwrap_or(0);
            if p.output().contains("ready after") && listed >= segments {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(40) {
                return Err(format!(
                    "test-origin not ready within 40 s:\n{}",
                    p.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process id of `test-origin run` (nginx and FFmpeg are its
    /// children), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    /// The media playlist's URL (`https://` when started with
    /// `tls.enable=true`).
    pub fn url(&self) -> String {
        let scheme = if self.args.iter().any(|a| a == "tls.enable=true") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/stream.m3u8", self.port)
    }

    /// The CA certificate of a certificate made at start, as the banner
    /// names it (`  CA       /tmp/…/ca.pem (made at start …)`).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.output().lines().find_map(|l| {
            let rest = l.strip_prefix("  CA ")?.trim_start();
            Some(PathBuf::from(rest.split_whitespace().next()?))
        })
    }

    /// Where the stream is written (files put here are served too).
    pub fn hls_dir(&self) -> &Path {
        self.hls.path()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.proc.as_ref().map(Captured::output).unwrap_or_default()
    }

    /// Stops it as Ctrl-C would, and waits (10 s at most, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut p) = self.proc.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = p.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.stop();
    }
}
