//! Real tools on generated files. Each returns the tool's complaint on
//! failure, so a test can also show that a broken file is caught.

use std::path::Path;
use std::process::Command;

fn run(mut cmd: Command, what: &str, package: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): apt-get install {package}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `nginx -t` of `conf` written into `prefix` (also nginx's prefix).
pub fn nginx_t(conf: &str, prefix: &Path) -> Result<(), String> {
    let file = prefix.join("nginx.conf");
    std::fs::write(&file, conf).map_err(|e| e.to_string())?;
    let mut c = Command::new("nginx");
    c.arg("-t").arg("-p").arg(prefix).arg("-c").arg(&file);
    run(c, "nginx", "nginx-light")
}

/// shellcheck of a script.
pub fn shellcheck(script: &Path) -> Result<(), String> {
    let mut c = Command::new("shellcheck");
    c.arg(script);
    run(c, "shellcheck", "shellcheck")
}

/// `nix-instantiate --parse` of a .nix file.
pub fn nix_parse(file: &Path) -> Result<(), String> {
    let mut c = Command::new("nix-instantiate");
    c.arg("--parse").arg(file);
    run(c, "nix-instantiate", "nix-bin")
}

/// `systemd-analyze verify` of units; it exits 0 with warnings, so every
/// line it writes about a unit named `hls-*` or `*swarm*` counts as a failure.
pub fn systemd_verify(units: &[&Path]) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units)
        .output()
        .expect("systemd-analyze is installed (systemd)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("hls-") || l.contains("swarm"))
        .collect();
    if out.status.success() && ours.is_empty() {
        Ok(())
    } else {
        Err(err)
    }
}
