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
    // (profile, engine, LimitNOFILE, MemoryMax): each engine's own sizing
    for (profile, engine, nofile, memory) in [
        ("default", "native", 1124, 82),
        ("extreme", "native", 2024, 116),
        ("default", "ffmpeg", 1750, 1217),
        ("extreme", "ffmpeg", 8500, 11477),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine_set = format!("engine=\"{engine}\"");
        run(&[
            "systemd",
            "-p",
            profile,
            "--set",
            &engine_set,
            "-o",
            dir.path().to_str().unwrap(),
        ]);
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
            insta::assert_snapshot!(format!("systemd-swarm-client-default-{engine}"), normalized);
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
    testkit::tools::nix_parse(&file).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&file).unwrap();
    // burst: 100 native viewers, 2 descriptors each and 1024 more
    assert!(text.contains("LimitNOFILE = \"1224\";"), "{text}");
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

/// The image's entrypoint, for every profile: shellcheck passes, and the
/// settings it reads from the environment reach the swarm as `--set`s that
/// the swarm's own config loading accepts with the values given.
#[test]
fn the_entrypoint_passes_the_environment_on_as_settings() {
    use swarm_client::targets::entrypoint_script;
    let dir = tempfile::tempdir().unwrap();
    // stands in for /usr/local/bin/swarm-client: prints its arguments, one per line
    let echo = dir.path().join("args");
    std::fs::write(&echo, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&echo)
        .status()
        .unwrap();
    for profile in common::profile_names::<swarm_client::SwarmClient>().unwrap() {
        let l = common::load::<swarm_client::SwarmClient>(&common::Request {
            profile: profile.clone(),
            ..Default::default()
        })
        .unwrap();
        let script = dir.path().join(format!("entrypoint-{profile}"));
        std::fs::write(&script, entrypoint_script(&profile, &l.config)).unwrap();
        testkit::tools::shellcheck(&script).unwrap_or_else(|e| panic!("{profile}: {e}"));
        let text = entrypoint_script(&profile, &l.config)
            .replace("/usr/local/bin/swarm-client", echo.to_str().unwrap());
        std::fs::write(&script, text).unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg(&script).env_clear().env("PATH", "/usr/bin:/bin");
        // a load shape is played by native viewers only
        let engine = if l.config.stages.is_empty() {
            "ffmpeg"
        } else {
            "native"
        };
        for (var, value) in [
            ("STREAM_URL", "http://127.0.0.1:9/s.m3u8"),
            ("CLIENTS", "7"),
            ("RAMP_RATE", "3"),
            ("RAMP_JITTER", "0"),
            ("METRICS_PORT", "9191"),
            ("LOG_LEVEL", "debug"),
            ("VARIANT", "lowest"),
            ("TIMEOUT", "4"),
            ("ENGINE", engine),
            ("DURATION", "5s"),
        ] {
            cmd.env(var, value);
        }
        let out = testkit::run_ok(&mut cmd);
        let args: Vec<&str> = out.lines().collect();
        assert_eq!(
            args[..4],
            ["run", "http://127.0.0.1:9/s.m3u8", "--profile", &profile]
        );
        assert!(
            out.contains("\n--metrics-addr\n0.0.0.0:9191\n--duration\n5s\n"),
            "{out}"
        );
        // the same --set arguments, given to the swarm's own config loading
        let sets: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--set")
            .flat_map(|w| w.to_vec())
            .collect();
        assert_eq!(sets.len(), 16, "{out}");
        let config = run(&[&["config", "--json", "-p", &profile][..], &sets].concat());
        let v: serde_json::Value = serde_json::from_str(&config).unwrap();
        let c = v.get("config").unwrap_or(&v);
        assert_eq!(c["clients"], 7, "{profile}");
        assert_eq!(c["logLevel"], "debug");
        assert_eq!(c["variant"], "lowest");
        assert_eq!(c["engine"], engine);
        assert_eq!(c["metricsPort"], 9191);
    }
}

/// `grafana-dashboard -o FILE` writes the dashboard Grafana imports: JSON
/// with the swarm's panels, a Prometheus data-source variable, the same
/// bytes each time.
#[test]
fn the_grafana_dashboard_is_written_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.json");
    run(&["grafana-dashboard", "-o", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text, run(&["grafana-dashboard"]), "the same bytes");
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["uid"], "hls-swarm");
    assert_eq!(d["templating"]["list"][0]["query"], "prometheus");
    let exprs: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(
        exprs.contains(&"sum(hls_swarm_viewers_active)"),
        "{exprs:?}"
    );
    assert!(exprs
        .iter()
        .any(|e| e.contains("hls_swarm_request_ttfb_seconds_bucket")));
}
