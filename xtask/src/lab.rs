//! The whole lab on this machine: a local test origin and a swarm on it.
//! `cargo xtask demo` runs it for people; `cargo xtask bench` measures it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Overrides that keep the demo stream light enough for a laptop or CI.
pub const LIGHT_ORIGIN: &[&str] = &[
    "--set",
    "video.width=640",
    "--set",
    "video.height=360",
    "--set",
    "video.bitrate=800k",
    "--set",
    "video.maxrate=900k",
    "--set",
    "video.bufsize=1600k",
    "--set",
    "encoder.preset=ultrafast",
    "--set",
    "encoder.framerate=25",
];

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Builds the two binaries (release when `release`) and returns their directory.
pub fn build(root: &Path, release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "-q", "-p", "test-origin", "-p", "swarm-client"];
    if release {
        args.push("--release");
    }
    if !crate::run("cargo", &args)? {
        bail!("cargo build failed");
    }
    Ok(target_dir(root).join(if release { "release" } else { "debug" }))
}

/// How many segments the origin's playlist lists now (0 when it does not answer).
pub fn segments_listed(port: u16) -> usize {
    common::probe::http_get(
        &format!("http://127.0.0.1:{port}/stream.m3u8"),
        Duration::from_secs(2),
    )
    .map_or(0, |(status, body)| {
        if status == 200 {
            body.matches("#EXTINF").count()
        } else {
            0
        }
    })
}

/// A local test origin, stopped with SIGTERM on drop.
pub struct Origin {
    child: Child,
    pub port: u16,
}

impl Origin {
    pub fn start(bin: &Path, extra: &[&str], quiet: bool) -> Result<Origin> {
        let port = testkit::free_port();
        let mut cmd = Command::new(bin.join("test-origin"));
        cmd.args(["run", "--port", &port.to_string()])
            .args(LIGHT_ORIGIN)
            .args(extra)
            .stdin(Stdio::null());
        if quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = cmd.spawn().context("cannot start test-origin")?;
        let mut o = Origin { child, port };
        let t = Instant::now();
        // viewers start 3 segments back from the live edge: wait until the
        // playlist lists 4, or the first viewers would rebuffer
        let health = format!("http://127.0.0.1:{port}/health");
        while !(common::probe::is_ok(&health, Duration::from_secs(1)) && segments_listed(port) >= 4)
        {
            if let Some(s) = o.child.try_wait()? {
                bail!("the test origin exited ({s})");
            }
            if t.elapsed() > Duration::from_secs(40) {
                bail!("the test origin was not ready within 40 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(o)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/stream.m3u8", self.port)
    }

    /// The runner's process id (nginx and FFmpeg are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(8) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo xtask demo`: origin + 10 viewers for 30 s + summary.
pub fn demo(root: &Path) -> Result<bool> {
    let bin = build(root, false)?;
    println!("== starting a local test origin (light 360p stream)");
    let origin = Origin::start(&bin, &[], false)?;
    println!("\n== 10 native viewers for 30 s on {}", origin.url());
    let status = Command::new(bin.join("swarm-client"))
        .args([
            "run",
            &origin.url(),
            "--set",
            "clients=10",
            "--set",
            "rampRate=5",
            "--duration",
            "30s",
        ])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .status()
        .context("cannot start swarm-client")?;
    println!("\n== stopping the origin");
    drop(origin);
    Ok(status.success())
}
