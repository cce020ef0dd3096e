//! The lab's parts on this machine, for the commands that run it (`demo`,
//! `bench`, `soak`): its binaries built, and a light local test origin.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

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
