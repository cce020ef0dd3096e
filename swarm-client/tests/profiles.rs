//! The profile system as the swarm-client CLI exposes it.

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

fn run(args: &[&str]) -> Output {
    testkit::output(Command::new(BIN).args(args))
}

fn derived(profile: &str) -> Value {
    derived_with(profile, &[])
}

fn derived_with(profile: &str, set: &[&str]) -> Value {
    let mut args = vec!["config", "--json", "--profile", profile];
    for s in set {
        args.extend(["--set", s]);
    }
    let out = testkit::output_ok(Command::new(BIN).args(&args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `derived` values of the config `v` are `expected`: `key=value`
/// pairs, split at spaces.
fn assert_derived(v: &Value, expected: &str) {
    for pair in expected.split_whitespace() {
        let (key, value) = pair.split_once('=').unwrap();
        let value: u64 = value.parse().unwrap();
        assert_eq!(v["derived"][key], value, "derived.{key}");
    }
}

#[test]
fn lists_every_profile_in_order() {
    let out = run(&["profiles"]);
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["default", "stress", "gentle", "burst", "extreme", "step", "spike", "soak"]
    );
}

/// A load shape sizes the run by its peak, and a stage that does not read
/// is refused with its key path.
#[test]
fn stages_size_the_run_by_their_peak_and_bad_stages_are_refused() {
    let d = derived("spike");
    assert_eq!(d["stages"].as_array().unwrap().len(), 7);
    // the peak of 500 first reached 100 s in; a native viewer's memory
    assert_derived(
        &d,
        "rampDuration=100 estimatedMemoryMB=96 recommendedFdLimit=2024 recommendedPorts=1000",
    );
    assert_derived(&derived("soak"), "rampDuration=120");
    for (set, key, says) in [
        (
            "stages=[{duration=\"30x\", target=5}]",
            "stages[0].duration",
            "",
        ),
        (
            "stages=[{duration=\"1m\", target=5}, {duration=\"0s\", target=0}]",
            "stages[1].duration",
            "must be above 0",
        ),
        (
            "stages=[{duration=\"1m\", target=0}]",
            "stages",
            "every target is 0",
        ),
        (
            "stages=[{duration=\"1m\", target=5, hold=1}]",
            "stages[0]",
            "hold",
        ),
        (
            "stages=[{duration=\"1000h\", target=5}]",
            "stages",
            "more than the limit of a week",
        ),
    ] {
        let bad = run(&["config", "--set", set]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains(&format!("`{key}")) && err.contains(says),
            "{set}: {err}"
        );
    }
    let bad = run(&["config", "--profile", "step", "--set", "engine=\"ffmpeg\""]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("load shapes are played by native viewers"),
        "{err}"
    );
}

/// SPEC §4 table and derived check values (the FFmpeg engine's sizing).
#[test]
fn profile_values_and_derived_check_values() {
    let d = derived_with("default", &["engine=\"ffmpeg\""]);
    assert_eq!(d["clients"], 50);
    assert_derived(
        &d,
        "rampDuration=10 estimatedMemoryMB=1014 recommendedFdLimit=1750 recommendedPorts=250 \
         containerMemoryMB=1217 vmMemoryMB=1575",
    );

    let b = derived_with("burst", &["engine=\"ffmpeg\""]);
    assert_eq!(b["clients"], 100);
    assert_eq!(b["reconnect"], false);
    assert_eq!(b["derived"]["estimatedMemoryMB"], 1964);

    // (profile, clients, rampRate, rampJitter, logLevel, variant, reconnect, delayMax, segMaxRetry, timeout)
    let table = [
        ("default", 50u64, 5, 100, "info", "all", true, 5, 3, 15),
        ("stress", 200, 20, 50, "warning", "all", true, 3, 2, 10),
        ("gentle", 20, 1, 500, "info", "first", true, 10, 5, 30),
        ("burst", 100, 50, 10, "warning", "all", false, 0, 1, 5),
        ("extreme", 500, 50, 20, "error", "all", true, 2, 1, 5),
    ];
    for (p, clients, rate, jitter, level, variant, reconnect, delay, retry, timeout) in table {
        let v = derived_with(p, &["engine=\"ffmpeg\""]);
        assert_eq!(v["clients"], clients, "{p}");
        assert_eq!(v["rampRate"], rate, "{p}");
        assert_eq!(v["rampJitter"], jitter, "{p}");
        assert_eq!(v["logLevel"], level, "{p}");
        assert_eq!(v["variant"], variant, "{p}");
        assert_eq!(v["reconnect"], reconnect, "{p}");
        assert_eq!(v["reconnectDelayMax"], delay, "{p}");
        assert_eq!(v["segMaxRetry"], retry, "{p}");
        assert_eq!(v["timeout"], timeout, "{p}");
        assert_eq!(v["metricsPort"], 9090, "{p}");
        let est: u64 = clients * 19 + 64;
        assert_eq!(v["derived"]["estimatedMemoryMB"], est, "{p}");
        assert_eq!(
            v["derived"]["containerMemoryMB"],
            (est * 12).div_ceil(10),
            "{p}"
        );
        assert_eq!(
            v["derived"]["vmMemoryMB"],
            (est * 13).div_ceil(10) + 256,
            "{p}"
        );
        assert_eq!(
            v["derived"]["recommendedFdLimit"],
            clients * 15 + 1000,
            "{p}"
        );
    }
}

/// The native engine's sizing (PLAYER.md §5): 64 KB and 2 descriptors a
/// viewer, not an FFmpeg process's 19 MB and 15.
#[test]
fn native_sizing_follows_the_native_engine() {
    let d = derived("default");
    assert_eq!(d["engine"], "native");
    // 50 viewers: ceil(50 × 64 / 1024) + 64
    assert_derived(
        &d,
        "estimatedMemoryMB=68 recommendedFdLimit=1124 recommendedPorts=100 \
         containerMemoryMB=82 vmMemoryMB=345",
    );
    let big = derived_with("default", &["clients=10000"]);
    assert_derived(
        &big,
        "estimatedMemoryMB=689 recommendedFdLimit=21024 containerMemoryMB=827 vmMemoryMB=1152",
    );
    let ff = derived_with("default", &["clients=10000", "engine=\"ffmpeg\""]);
    assert_derived(&ff, "estimatedMemoryMB=190064 recommendedFdLimit=151000");
}

#[test]
fn errors_exit_2() {
    // `config ARGS` (split at spaces), and what its error names
    for (args, needle) in [
        ("-p burts", "did you mean `burst`"),
        ("--set client=3", "did you mean `clients`"),
        ("--set clients=0", "clients"),
        ("--set variant=middle", "variant"),
        ("--set headers.X-A=\"a\\r\\nb\"", "headers.X-A"),
        ("--set metricsPort=0", "metricsPort"),
    ] {
        let err =
            testkit::stderr_of_failed(Command::new(BIN).arg("config").args(args.split(' ')), 2);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn schema_snapshot() {
    let out = run(&["schema"]);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    insta::assert_json_snapshot!("swarm-client-schema", schema);
}

/// The swarm config's bounds: the value just inside is taken, the value just
/// over is refused with exit 2 and the key named.
#[test]
fn every_bound_is_enforced_just_over_it() {
    let headers = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("X-H{i}='v'")).collect();
        format!("headers={{{}}}", list.join(", "))
    };
    let networks = |n: usize| {
        let share = 1.0 / n as f64;
        let list: Vec<String> = (0..n).map(|i| format!("n{i}={{share={share}}}")).collect();
        format!("networks={{{}}}", list.join(", "))
    };
    let value = |n: usize| format!("headers.X-Long=\"{}\"", "v".repeat(n));
    let cases: Vec<(String, String, &str)> = vec![
        ("clients=100000".into(), "clients=100001".into(), "clients"),
        ("rampRate=10000".into(), "rampRate=10001".into(), "rampRate"),
        ("timeout=3600".into(), "timeout=3601".into(), "timeout"),
        (headers(32), headers(33), "headers"),
        (value(1024), value(1025), "headers.X-Long"),
        (networks(16), networks(17), "networks"),
        (
            "networks.a={share=1.0, rtt=\"10s\"}".into(),
            "networks.a={share=1.0, rtt=\"11s\"}".into(),
            "networks.a.rtt",
        ),
    ];
    for (inside, over, key) in &cases {
        testkit::run_ok(Command::new(BIN).args(["config", "--set", inside]));
        let bad = run(&["config", "--set", over]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{over}: {err}");
        assert!(err.contains(&format!("`{key}")), "{over}: {err}");
        assert!(bad.stdout.is_empty());
    }
}

/// A printing command whose reader has gone (`schema | head -1`) ends
/// quietly with success; an input file that is not there is bad input
/// (exit 2) — in every binary of the workspace.
#[test]
fn a_closed_stdout_is_not_an_error_and_a_missing_file_is_bad_input() {
    let bins = testkit::origin::binaries();
    for bin in ["test-origin", "swarm-client", "hls-probe"] {
        for args in [&["schema"][..], &["config", "--json"], &["profiles"]] {
            // the read end closed before the program writes a byte: its
            // first write fails, whatever the output's size
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = Command::new(bins.join(bin))
                .args(args)
                .stdout(writer)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.is_empty(),
                "{bin} {args:?}: {} {stderr}",
                out.status
            );
        }
        for args in [
            &["config", "--overrides", "/nonexistent/o.toml"][..],
            &["config", "--profiles", "/nonexistent/p.toml"],
        ] {
            let out = Command::new(bins.join(bin)).args(args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{bin} {args:?}");
        }
    }
    for args in [
        &["merge", "/nonexistent/a.json", "-o", "/tmp/never.json"][..],
        &[
            "merge",
            "--from-logs",
            "/nonexistent/logs",
            "-o",
            "/tmp/never.json",
        ],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("/nonexistent/"), "{stderr}");
    }
}

/// Every subcommand's `--help` of every binary, by subcommand.
fn helps(bin: &std::path::Path) -> Vec<(String, String)> {
    let top = Command::new(bin).arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    let subs: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap_or("")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_owned)
        .collect();
    assert!(!subs.is_empty(), "{top}");
    subs.into_iter()
        .map(|s| {
            let out = Command::new(bin).args([&s, "--help"]).output().unwrap();
            (s, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

/// The examples in every help text work as written: each `--set` example
/// is a key of that binary's own config, the kubernetes target lists only
/// the flags it takes, and `--start-at`'s example is accepted.
#[test]
fn every_help_example_runs() {
    let bins = testkit::origin::binaries();
    for name in ["test-origin", "swarm-client", "hls-probe"] {
        let bin = bins.join(name);
        let mut examples = std::collections::BTreeSet::new();
        for (sub, help) in helps(&bin) {
            for piece in help.split("`--set ").skip(1) {
                let example = piece.split('`').next().unwrap().to_owned();
                // a form with placeholders (`slo.FIGURE=LIMIT`) is no example
                let placeholder = example
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .any(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_uppercase()));
                if !placeholder {
                    examples.insert(example);
                }
            }
            if sub == "kubernetes" {
                let runs = name == "swarm-client";
                for flag in ["--pods", "--start-at", "--results-claim"] {
                    assert_eq!(
                        help.contains(flag),
                        runs,
                        "{name} kubernetes --help: {flag}"
                    );
                }
                if runs {
                    let at = help
                        .split("RFC 3339, e.g. ")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .expect("a --start-at example");
                    let dir = tempfile::tempdir().unwrap();
                    testkit::run_ok(
                        Command::new(&bin)
                            .args(["kubernetes", "--image", "r.io/s:1", "--start-at", at, "-o"])
                            .arg(dir.path().join("k")),
                    );
                }
            }
        }
        assert!(examples.len() >= 2, "{name}: {examples:?}");
        for example in examples {
            testkit::run_ok(Command::new(&bin).args(["config", "--set", &example]));
        }
    }
}

/// Errors say what was wrong, where the value came from, once, and briefly.
#[test]
fn errors_name_the_rule_the_layer_and_the_units() {
    let bins = testkit::origin::binaries();
    let stderr = |bin: &str, args: &[&str]| {
        testkit::stderr_of_failed(Command::new(bins.join(bin)).args(args), 2)
    };
    // a header name too long: the rule, and the --set that broke it
    let name = "X".repeat(70);
    let e = stderr(
        "swarm-client",
        &["config", "--set", &format!("headers.{name}=v")],
    );
    assert!(e.contains("a header name of 1 to 64"), "{e}");
    assert!(e.contains("(set by --set headers.XXX"), "{e}");
    assert!(
        !e.contains("propertyNames") && !e.contains("base config"),
        "{e}"
    );
    // 33 headers: the table's last layer, not the base config's empty one
    let mut args = vec!["config".to_owned()];
    for i in 0..33 {
        args.extend(["--set".to_owned(), format!("headers.X-H{i}=v")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = stderr("swarm-client", &args);
    assert!(e.contains("at most 32 entries allowed, got 33"), "{e}");
    assert!(e.contains("(set by --set headers.X-H"), "{e}");
    // one bad bitrate, one error
    let e = stderr(
        "test-origin",
        &["config", "--set", "video.bitrate=99999999k"],
    );
    assert_eq!(e.matches("`video.bitrate`").count(), 1, "{e}");
    // a long value is not echoed in full
    let long = format!("userAgent=\"{}\"", "a".repeat(3000));
    let e = stderr("swarm-client", &["config", "--set", &long]);
    assert!(e.len() < 600, "{} bytes: {e}", e.len());
    assert!(e.contains("(3012 characters)"), "{e}");
    // an objective's duration: the units and the bound
    let e = stderr(
        "swarm-client",
        &["run", "http://127.0.0.1:9/x.m3u8", "--slo", "startupP95=1h"],
    );
    assert!(e.contains("us, ms, s or m") && e.contains("60m"), "{e}");
}

/// A live gate's table is checked as the config loads: a typo is named
/// with what was meant, a figure the series cannot tell is refused.
#[test]
fn live_gates_are_checked_as_the_config_loads() {
    let ok = "slo.errorRate={limit=0.05, abortOnFail=true, window=\"10s\", delayAbortEval=\"1m\"}";
    testkit::run_ok(std::process::Command::new(BIN).args(["config", "--set", ok]));
    for (set, says) in [
        (
            "slo.errorRate={limit=0.05, abortOnFail=true, windw=\"10s\"}",
            "`slo.errorRate.windw`: unknown key; did you mean `slo.errorRate.window`?",
        ),
        (
            "slo.rebufferRatio={limit=0.01, abortOnFail=true}",
            "`slo.rebufferRatio`: judged only at the end of a run",
        ),
        (
            "slo.errorRate={limit=0.05, abortOnFail=true, window=\"2h\"}",
            "`slo.errorRate.window`",
        ),
        (
            "slo.segmentTtfbP99={limit=300, abortOnFail=true}",
            "`slo.segmentTtfbP99.limit`",
        ),
    ] {
        let bad = run(&["config", "--set", set]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(says), "{set}: {err}");
    }
    let bad = run(&[
        "run",
        "http://127.0.0.1:9/s.m3u8",
        "--abort-on",
        "startupP95=2s",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`startupP95` is judged only at the end of a run"),
        "{err}"
    );
}
