//! `cargo xtask demo` and `cargo xtask test` check the host first; without
//! the right to install they print the one command to run and exit 1.

use std::process::Command;

#[test]
fn without_privileges_a_missing_program_gives_the_install_command() {
    let empty = tempfile::tempdir().unwrap();
    // ffmpeg and the others are found on PATH only (nginx also in /usr/sbin)
    let mut cmd = if nix_is_root() {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_xtask"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
    };
    let out = cmd
        .arg("demo")
        .env("PATH", empty.path())
        .current_dir(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the demo needs: ffmpeg (ffmpeg)"), "{err}");
    assert!(
        err.contains(
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends --no-remove ffmpeg"
        ),
        "{err}"
    );
    // nothing was started
    assert!(!err.contains("starting a local test origin"), "{err}");
}

#[test]
fn a_host_with_everything_passes_the_check() {
    // nothing to say, nothing to install: stdout and stderr stay empty
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["test", "--setup-only"])
        .stderr(std::process::Stdio::piped());
    assert_eq!(testkit::run_ok(&mut cmd), "");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}
