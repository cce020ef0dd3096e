//! The whole lab on this machine: a local test origin and a swarm on it.
//! `cargo xtask demo` runs it for people; `cargo xtask bench` measures it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

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

/// A local test origin (the tests' fixture) from the binaries in `bin`: the
/// light stream with `extra` settings, its output shown unless `quiet`.
/// Ready once the playlist lists 4 segments: viewers start 3 segments back
/// from the live edge, so the first ones would rebuffer with fewer. Stopped
/// with SIGTERM when dropped.
pub fn origin(bin: &Path, extra: &[&str], quiet: bool) -> Result<testkit::origin::TestOrigin> {
    let mut args = LIGHT_ORIGIN.to_vec();
    args.extend(extra);
    testkit::origin::TestOrigin::launch(bin, &args, !quiet, 4).map_err(|e| anyhow!("{e}"))
}

/// `cargo xtask demo`: origin + 10 viewers for 30 s + summary.
pub fn demo(root: &Path) -> Result<bool> {
    let bin = build(root, false)?;
    println!("== starting a local test origin (light 360p stream)");
    let origin = origin(&bin, &[], false)?;
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
