//! The swarm's systemd, NixOS-module and sysctl targets.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_unit_verifies_and_carries_the_derived_limits() {
    for (profile, nofile, memory) in [("default", 1750, 1217), ("extreme", 8500, 11477)] {
        let dir = tempfile::tempdir().unwrap();
        run(&["systemd", "-p", profile, "-o", dir.path().to_str().unwrap()]);
        let unit = dir.path().join("systemd/hls-swarm-client.service");
        if let Err(e) = testkit::tools::systemd_verify(&[&unit]) {
            panic!("{profile}: {e}");
        }
        let text = std::fs::read_to_string(&unit).unwrap();
        assert!(
            text.lines().any(|l| l == format!("LimitNOFILE={nofile}")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == format!("MemoryMax={memory}M")),
            "{text}"
        );
        assert!(text.contains("Restart=on-failure\nRestartSec=5s\n"));
        assert!(
            !text.contains("[Install]"),
            "not started by default: it needs a STREAM_URL"
        );
        assert!(text.contains(" run ${STREAM_URL} --profile "), "{text}");
        if profile == "default" {
            let normalized = text.replace(BIN, "/usr/local/bin/swarm-client");
            insta::assert_snapshot!("systemd-swarm-client-default", normalized);
        }
    }
}

#[test]
fn the_nixos_module_parses() {
    let dir = tempfile::tempdir().unwrap();
    run(&[
        "nixos-module",
        "-p",
        "burst",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    let file = dir.path().join("swarm-client.nix");
    if let Err(e) = testkit::tools::nix_parse(&file) {
        panic!("{}", e);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("LimitNOFILE = \"2500\";"));
    assert!(text.contains("wantedBy = lib.mkIf (cfg.streamUrl != null)"));
    assert!(!text.contains("password") && !text.contains("authorizedKeys"));
}

#[test]
fn client_sysctls_differ_from_the_origins_where_spec_says() {
    let text = run(&["sysctl"]);
    assert!(text.lines().any(|l| l == "net.ipv4.tcp_fin_timeout = 15"));
    assert!(text.lines().any(|l| l == "net.ipv4.tcp_fastopen = 1"));
    assert!(!text.contains("somaxconn"));
    assert!(text
        .lines()
        .any(|l| l == "net.ipv4.tcp_rmem = 4096 1000000 16000000"));
}
