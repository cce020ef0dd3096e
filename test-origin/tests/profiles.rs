//! The profile system as the test-origin CLI exposes it: profiles, config,
//! schema, every error path, and the SPEC's derived check values.

use std::process::{Command, Output};

use common::Component;
use serde_json::Value;
use test_origin::TestOrigin;

/// The built-in profiles, in order.
const PROFILES: [&str; 10] = [
    "default",
    "low-latency",
    "4k-abr",
    "stress-test",
    "logged",
    "debug",
    "tap",
    "tap-logged",
    "ll-hls",
    "ll-hls-abr",
];

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

fn run(args: &[&str]) -> Output {
    testkit::output(Command::new(BIN).args(args))
}

fn config_json(args: &[&str]) -> Value {
    let out = testkit::output_ok(Command::new(BIN).args(["config", "--json"]).args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a command that must fail with exit 2, print nothing on stdout, and
/// mention every needle on stderr.
fn fails(args: &[&str], needles: &[&str]) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}:\n{err}");
    }
}

#[test]
fn lists_every_profile_in_order() {
    let out = run(&["profiles"]);
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(names, PROFILES);
}

#[test]
fn low_latency_has_one_second_segments_and_derived_values() {
    let v = config_json(&["--profile", "low-latency"]);
    assert_eq!(v["hls"]["segmentDuration"], 1);
    assert_eq!(v["hls"]["listSize"], 6);
    assert_eq!(v["encoder"]["preset"], "ultrafast");
    assert_eq!(v["encoder"]["tune"], "zerolatency");
    // gop = 30 fps × 1 s; lifetime = (6 + 5) × 1
    assert_eq!(v["derived"]["gopSize"], 30);
    assert_eq!(v["derived"]["segmentLifetimeSec"], 11);
}

/// SPEC §3 check values for the default profile.
#[test]
fn default_profile_check_values() {
    let d = &config_json(&[])["derived"];
    assert_eq!(d["gopSize"], 60);
    assert_eq!(d["segmentLifetimeSec"], 30);
    assert_eq!(d["segmentSizeKB"], 532);
    assert_eq!(d["filesPerVariant"], 16);
    assert_eq!(d["openFileCacheMax"], 51);
    assert_eq!(d["recommendedTmpfsMB"], 74);
}

#[test]
fn derived_values_follow_the_formulas_for_every_profile() {
    let loaded = |p: &str| {
        common::load::<TestOrigin>(&common::Request {
            profile: p.into(),
            ..Default::default()
        })
        .unwrap()
    };
    for name in PROFILES {
        let l = loaded(name);
        let c = &l.config;
        let d = &l.derived;
        let seg = u64::from(c.hls.segment_duration);
        let total = c.video.bitrate.kbps() + c.video.audio_bitrate.kbps();
        let variants = if c.multibitrate {
            c.variants.len() as u64
        } else {
            1
        };
        // an fMP4 stream's init segment is one more file
        let init = u64::from(c.hls.segment_type == test_origin::config::SegmentType::Fmp4);
        let files = u64::from(c.hls.list_size + c.hls.delete_threshold) + 1 + init;
        assert_eq!(d.gop_size, u64::from(c.encoder.framerate) * seg, "{name}");
        assert_eq!(d.segment_size_kb, total * seg / 8, "{name}");
        assert_eq!(d.open_file_cache_max, (files * variants + 1) * 3, "{name}");
        assert_eq!(
            d.recommended_tmpfs_mb,
            total / 8 * u64::from(c.hls.list_size) * seg * 2 * variants / 1024 + 64,
            "{name}"
        );
    }
    // hand-computed for the ladder: 5 variants × 16 files + 1 master = 81 files
    let abr = loaded("4k-abr");
    assert_eq!(abr.derived.variant_count, 5);
    assert_eq!(abr.derived.total_hls_files, 81);
    assert_eq!(abr.derived.open_file_cache_max, 243);
    assert_eq!(
        abr.config.video.width, 1280,
        "4k-abr keeps the default video"
    );
    // stress-test: 1500k + 96k = 1596 kbit/s × 2 s / 8 = 399 KB; 15+5+1 files
    let st = loaded("stress-test");
    assert_eq!(st.derived.segment_size_kb, 399);
    assert_eq!(st.derived.files_per_variant, 21);
    assert_eq!(st.derived.gop_size, 50);
}

#[test]
fn tap_logged_is_tap_plus_logged() {
    let tl = config_json(&["-p", "tap-logged"]);
    let tap = config_json(&["-p", "tap"]);
    let logged = config_json(&["-p", "logged"]);
    assert_eq!(tl["networking"], tap["networking"]);
    assert_eq!(tl["logging"], logged["logging"]);
    assert_eq!(tl["networking"]["mode"], "tap");
    assert_eq!(tl["logging"]["segmentsOnly"], true);
}

#[test]
fn minrate_defaults_to_bitrate_in_every_profile() {
    for p in ["default", "low-latency", "stress-test", "logged"] {
        let v = config_json(&["-p", p]);
        assert!(v["video"].get("minrate").is_none(), "{p}");
    }
    let v = config_json(&["--set", "video.minrate=1000k"]);
    assert_eq!(v["video"]["minrate"], "1000k");
}

#[test]
fn overrides_win_over_the_profile_and_toml_output_parses() {
    let out = run(&[
        "config",
        "-p",
        "low-latency",
        "--set",
        "hls.segmentDuration=4",
        "--toml",
    ]);
    assert!(out.status.success());
    let t: toml::Table = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(t["hls"]["segmentDuration"].as_integer(), Some(4));
    assert_eq!(t["derived"]["gopSize"].as_integer(), Some(120));
}

#[test]
fn override_and_profile_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o.json");
    std::fs::write(&o, r#"{"server": {"port": 8080}}"#).unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "[profiles.mine]\ndescription = 'my own'\nextends = ['low-latency']\nconfig = { hls = { listSize = 3 } }\n").unwrap();
    let (o, p) = (o.to_str().unwrap(), p.to_str().unwrap());
    let v = config_json(&["--overrides", o, "--profiles", p, "-p", "mine"]);
    assert_eq!(v["server"]["port"], 8080);
    assert_eq!(v["hls"]["listSize"], 3);
    assert_eq!(v["hls"]["segmentDuration"], 1);
    let out = run(&["profiles", "--profiles", p]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("mine"));
}

#[test]
fn every_error_path_exits_2_with_a_useful_message() {
    // the arguments, split at spaces; the needles, at `|`
    let twice = "-p 4k-abr --set variants=[{name='a',width=64,height=64,bitrate='1k',maxrate='1k',bufsize='1k',audioBitrate='1k'},{name='a',width=64,height=64,bitrate='1k',maxrate='1k',bufsize='1k',audioBitrate='1k'}]";
    for (args, needles) in [
        (
            "--profile low-latancy",
            "low-latency|available profiles|tap-logged",
        ),
        (
            "--set hls.segmentDuraton=3",
            "hls.segmentDuraton|did you mean `hls.segmentDuration`|--set hls.segmentDuraton=3",
        ),
        ("--set video.bitrate=fast", "video.bitrate|\"fast\"|2000k"),
        ("--set hls.listSize=-1", "hls.listSize|≥ 1|-1"),
        ("--set hls.segmentDuration=0", "hls.segmentDuration|≥ 1"),
        ("--set video.minrate=9000k", "video.minrate|9000k|2000k"),
        ("--set video.maxrate=1000k", "video.maxrate|below bitrate"),
        ("--set server.port=70000", "server.port|65535"),
        ("--set server.hlsDir=relative", "server.hlsDir|absolute"),
        ("--set server.hlsDir=/x;y", "server.hlsDir"),
        ("--set video.width=641", "video.width|odd"),
        (
            "--set hls.segmentType=fmp4",
            "hls.segmentPattern|does not end in .m4s|set hls.segmentPattern=seg%05d.m4s",
        ),
        (
            "--set hls.segmentType=cmaf",
            "hls.segmentType|\"cmaf\"|fmp4",
        ),
        (
            "-p 4k-abr --set variants=[]",
            "variants|at least one variant",
        ),
        (twice, "variants[1].name|used twice"),
        (
            "--set encoder.preset=ultrafst",
            "encoder.preset|did you mean \"ultrafast\"",
        ),
        ("--set nosuchkey=1", "nosuchkey|unknown key"),
        ("--set broken", "--set|PATH=VALUE"),
        ("--overrides /nonexistent/o.toml", "/nonexistent/o.toml"),
        ("--profile debug --profile-typo", "--profile-typo"),
    ] {
        let args: Vec<&str> = ["config"].into_iter().chain(args.split(' ')).collect();
        fails(&args, &needles.split('|').collect::<Vec<_>>());
    }
    // a value with a space
    fails(
        &["config", "--set", "server.hlsDir=/tmp/a b"],
        &["server.hlsDir"],
    );
}

#[test]
fn values_remember_the_profile_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[profiles.bad]\ndescription = 'x'\nconfig = { hls = { listSize = 0 } }\n",
    )
    .unwrap();
    fails(
        &["config", "--profiles", p.to_str().unwrap(), "-p", "bad"],
        &["hls.listSize", "profile `bad` in"],
    );
}

#[test]
fn schema_snapshot() {
    let out = run(&["schema"]);
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema, common::schema::<TestOrigin>());
    insta::assert_json_snapshot!("test-origin-schema", schema);
}

#[test]
fn every_profile_validates_and_round_trips() {
    let set = common::profile::ProfileSet::from_component_toml(
        TestOrigin::NAME,
        TestOrigin::PROFILES_TOML,
    )
    .unwrap();
    for name in set.names() {
        let v = config_json(&["-p", name]);
        let mut c = v.clone();
        c.as_object_mut().unwrap().remove("derived");
        let typed: test_origin::Config = serde_json::from_value(c.clone()).unwrap();
        assert_eq!(serde_json::to_value(typed).unwrap(), c, "{name}");
    }
}

/// Every bound of the config, tried with the value just inside (accepted) and
/// just over (exit 2 naming the key, nothing written).
#[test]
fn every_bound_is_enforced_just_over_it() {
    // the reported defect: a rate that fits no integer was handed to FFmpeg
    fails(
        &["config", "--set", "video.bitrate=99999999999999999999999k"],
        &["`video.bitrate`", "at most `999999k`"],
    );
    let variant = |n: usize| {
        let one = "{name='v%',width=64,height=64,bitrate='100k',maxrate='100k',bufsize='100k',audioBitrate='32k'}";
        let list: Vec<String> = (0..n).map(|i| one.replace('%', &i.to_string())).collect();
        format!("variants=[{}]", list.join(","))
    };
    let long_name = format!("hls.playlistName={}", "a".repeat(256));
    let long_dir = format!("server.hlsDir=/{}", "a".repeat(1024));
    let allow = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("'10.0.{i}.0/24'")).collect();
        format!("server.statusAllow=[{}]", list.join(","))
    };
    let cases: Vec<(String, String, &str)> = vec![
        // (just inside, just over, key)
        (
            "video.maxrate=999999k".into(),
            "video.maxrate=1000000k".into(),
            "video.maxrate",
        ),
        (
            "video.maxrate=999M".into(),
            "video.maxrate=1000M".into(),
            "video.maxrate",
        ),
        (
            "logging.buffer=64m".into(),
            "logging.buffer=65m".into(),
            "logging.buffer",
        ),
        (
            "logging.flushInterval=60m".into(),
            "logging.flushInterval=61m".into(),
            "logging.flushInterval",
        ),
        (
            "hls.listSize=1000".into(),
            "hls.listSize=1001".into(),
            "hls.listSize",
        ),
        (
            "hls.segmentDuration=60".into(),
            "hls.segmentDuration=61".into(),
            "hls.segmentDuration",
        ),
        (
            "server.port=65535".into(),
            "server.port=65536".into(),
            "server.port",
        ),
        (variant(16), variant(17), "variants"),
        (allow(64), allow(65), "server.statusAllow"),
        (
            format!("hls.playlistName={}", "a".repeat(255)),
            long_name,
            "hls.playlistName",
        ),
        (
            format!("server.hlsDir=/{}", "a".repeat(1023)),
            long_dir,
            "server.hlsDir",
        ),
    ];
    for (inside, over, key) in &cases {
        config_json(&["--set", inside]);
        fails(&["config", "--set", over], &[&format!("`{key}")]);
    }
    // minrate ≤ bitrate ≤ maxrate holds at the top of the range too
    fails(
        &[
            "config",
            "--set",
            "video.bitrate=999999k",
            "--set",
            "video.maxrate=999M",
        ],
        &["`video.maxrate`", "below bitrate"],
    );
    // a bad value leaves no artifact behind
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("units");
    let o = out.to_str().unwrap();
    fails(
        &["systemd", "--set", "video.bitrate=1000000k", "-o", o],
        &["`video.bitrate`"],
    );
    assert!(!out.exists(), "a refused config wrote {o}");
    // an overrides file over 1 MiB is refused before it is parsed
    let big = dir.path().join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(1024 * 1024))).unwrap();
    fails(
        &["config", "--overrides", big.to_str().unwrap()],
        &["big.toml", "larger than the limit of 1024 KiB"],
    );
    fails(
        &["profiles", "--profiles", big.to_str().unwrap()],
        &["larger than the limit"],
    );
}

/// `sysctl` takes the profile arguments every other subcommand takes.
#[test]
fn sysctl_takes_a_profile() {
    let plain = run(&["sysctl"]);
    let logged = run(&["sysctl", "--profile", "logged", "--set", "hls.listSize=4"]);
    assert!(
        logged.status.success(),
        "{}",
        String::from_utf8_lossy(&logged.stderr)
    );
    assert_eq!(
        plain.stdout, logged.stdout,
        "the host settings do not depend on the profile"
    );
    assert!(String::from_utf8_lossy(&logged.stdout).contains("net.core.somaxconn = 65535"));
    fails(&["sysctl", "-p", "nope"], &["unknown profile `nope`"]);
    fails(&["sysctl", "--set", "hls.listSize=0"], &["`hls.listSize`"]);
}
