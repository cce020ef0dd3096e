//! `cargo xtask demo`: the whole lab on this machine, for people to see: a
//! local test origin and a swarm of native viewers on it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::lab::{build, origin};

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
