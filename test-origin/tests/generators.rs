//! The generators, checked with the real tools: `nginx -t` for every profile and
//! flavour, snapshots of every artifact, escaping of every string field.

use std::path::Path;
use std::process::Command;

use common::render::Template;
use common::{Loaded, Request};
use serde_json::Value;
use test_origin::cache::cache_policy;
use test_origin::nginx::{nginx_config, required_dirs, Flavour, LocalSite, NGINX_USER};
use test_origin::{ffmpeg, TestOrigin};

fn profiles() -> Vec<String> {
    common::profile_names::<TestOrigin>().unwrap()
}

fn load(req: Request) -> Loaded<TestOrigin> {
    common::load::<TestOrigin>(&req).unwrap()
}

fn profile(name: &str) -> Loaded<TestOrigin> {
    load(Request {
        profile: name.into(),
        ..Default::default()
    })
}

fn plain(t: &Template) -> String {
    t.as_plain().expect("no open variables")
}

/// The full flavour runs workers as `nginx`; Debian has no such user.
fn ensure_nginx_user() {
    let exists = Command::new("id")
        .arg(NGINX_USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let ok = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                NGINX_USER,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "the full nginx flavour needs a user `{NGINX_USER}`: run `useradd --system {NGINX_USER}` as root");
    }
}

fn local_site(dir: &Path) -> (Flavour, String) {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let root = dir.join("hls");
    let flavour = Flavour::Local(LocalSite::fixed(
        "127.0.0.1",
        18080,
        root.to_str().unwrap(),
        run.to_str().unwrap(),
    ));
    (flavour, run.to_str().unwrap().to_owned())
}

#[test]
fn every_profile_passes_nginx_t_in_both_flavours() {
    ensure_nginx_user();
    for name in profiles() {
        let l = profile(&name);
        let dir = tempfile::tempdir().unwrap();
        // a TLS profile's certificate: where the unit's credentials would
        // be, and in the local run's TLS directory
        let tls = dir.path().join("run/tls");
        testkit::tools::self_signed(&tls);
        let full = plain(&nginx_config(&l.config, &l.derived, &Flavour::Full))
            .replace("/run/credentials/hls-nginx.service", tls.to_str().unwrap());
        if let Err(e) = testkit::tools::nginx_t(&full, dir.path()) {
            panic!("{name} full:\n{e}");
        }
        let (flavour, _) = local_site(dir.path());
        for d in required_dirs(&l.config, &flavour) {
            std::fs::create_dir_all(plain(&d)).unwrap();
        }
        let local = plain(&nginx_config(&l.config, &l.derived, &flavour));
        assert!(
            !local.contains("\nuser "),
            "{name}: local flavour has no user"
        );
        if let Err(e) = testkit::tools::nginx_t(&local, dir.path()) {
            panic!("{name} local:\n{e}");
        }
    }
}

/// TLS in both flavours: `listen … ssl http2`, the certificate the config
/// names (or the one made in the TLS directory), and nginx accepts it.
#[test]
fn tls_configs_pass_nginx_t_with_http2_on_the_listen_line() {
    ensure_nginx_user();
    let dir = tempfile::tempdir().unwrap();
    // where the local flavour of `local_site` looks for a made certificate
    let tls = dir.path().join("run/tls");
    testkit::tools::self_signed(&tls);
    let given = load(Request {
        profile: "default".into(),
        sets: vec![
            "tls.enable=true".into(),
            format!("tls.certFile={}", tls.join("cert.pem").display()),
            format!("tls.keyFile={}", tls.join("key.pem").display()),
        ],
        ..Default::default()
    });
    // the local flavour reads the files the config names
    let (flavour, _) = local_site(dir.path());
    let local = plain(&nginx_config(&given.config, &given.derived, &flavour));
    assert!(local.contains(" ssl http2 reuseport;"), "{local}");
    assert!(
        local.contains(&format!("ssl_certificate \"{}/cert.pem\";", tls.display())),
        "{local}"
    );
    if let Err(e) = testkit::tools::nginx_t(&local, dir.path()) {
        panic!("local:\n{e}");
    }
    // the full flavour reads the certificate, made or given, from the
    // credentials systemd hands its unit
    let made = load(Request {
        profile: "default".into(),
        sets: vec!["tls.enable=true".into()],
        ..Default::default()
    });
    for l in [&given, &made] {
        let full = plain(&nginx_config(&l.config, &l.derived, &Flavour::Full));
        assert!(full.contains("listen 17080 ssl http2 reuseport;"), "{full}");
        assert!(
            full.contains("ssl_certificate_key \"/run/credentials/hls-nginx.service/key.pem\";"),
            "{full}"
        );
        let at_hand = full.replace("/run/credentials/hls-nginx.service", tls.to_str().unwrap());
        if let Err(e) = testkit::tools::nginx_t(&at_hand, dir.path()) {
            panic!("full:\n{e}");
        }
    }
    // a made certificate in the local flavour: in the run's TLS directory
    let local = plain(&nginx_config(&made.config, &made.derived, &flavour));
    assert!(
        local.contains(&format!(
            "ssl_certificate_key \"{}/key.pem\";",
            tls.display()
        )),
        "{local}"
    );
}

#[test]
fn snapshots_of_every_artifact_of_every_profile() {
    for name in profiles() {
        let l = profile(&name);
        let dir = Template::text(l.config.server.hls_dir.as_str());
        let args: Vec<String> = ffmpeg::ffmpeg_args(&l.config, &l.derived, &dir)
            .iter()
            .map(plain)
            .collect();
        insta::assert_snapshot!(format!("ffmpeg-{name}"), args.join("\n"));
        insta::assert_snapshot!(
            format!("nginx-full-{name}"),
            plain(&nginx_config(&l.config, &l.derived, &Flavour::Full))
        );
        let local = Flavour::Local(LocalSite::fixed(
            "127.0.0.1",
            17080,
            "/srv/hls",
            "/run/test-origin",
        ));
        insta::assert_snapshot!(
            format!("nginx-local-{name}"),
            plain(&nginx_config(&l.config, &l.derived, &local))
        );
    }
}

#[test]
fn config_values_reach_the_nginx_config() {
    let l = profile("default");
    let full = plain(&nginx_config(&l.config, &l.derived, &Flavour::Full));
    assert!(full.contains("open_file_cache max=51 inactive=30s;"));
    assert!(full.contains("listen 17080 reuseport;"));
    assert!(full.contains("root \"/var/hls\";"));
    assert!(full.contains("user nginx;"));
    assert!(full.contains("access_log off;"));
    assert!(!full.contains("segments.log"));

    let logged = profile("logged");
    let text = plain(&nginx_config(
        &logged.config,
        &logged.derived,
        &Flavour::Full,
    ));
    assert!(
        text.contains("access_log \"/var/log/nginx/segments.log\" hls_perf buffer=512k flush=10s;"),
        "{text}"
    );
    assert!(!text.contains("manifests.log"), "segments only");

    let debug = profile("debug");
    let text = plain(&nginx_config(&debug.config, &debug.derived, &Flavour::Full));
    assert!(
        text.contains(
            "access_log \"/var/log/nginx/manifests.log\" timing buffer=256k flush=5s gzip=4;"
        ),
        "{text}"
    );
    assert!(text
        .contains("access_log \"/var/log/nginx/access.log\" timing buffer=256k flush=5s gzip=4;"));
    assert!(text.contains(
        "access_log \"/var/log/nginx/segments.log\" hls_perf buffer=256k flush=5s gzip=4;"
    ));

    let abr = profile("4k-abr");
    let text = plain(&nginx_config(&abr.config, &abr.derived, &Flavour::Full));
    assert!(text.contains("open_file_cache max=243 inactive=30s;"));
}

#[test]
fn cache_policy_check_values() {
    let d = cache_policy(&profile("default").config);
    assert_eq!(
        d.manifest,
        "public, max-age=1, stale-while-revalidate=2, no-transform"
    );
    assert_eq!(d.segment, "public, max-age=60, immutable, no-transform");
    assert_eq!(
        d.master,
        "public, max-age=5, stale-while-revalidate=10, no-transform"
    );
    let ll = cache_policy(&profile("low-latency").config);
    assert_eq!(
        ll.manifest,
        "public, max-age=0, stale-while-revalidate=1, no-transform"
    );
    let long = load(Request {
        sets: vec!["hls.segmentDuration=7".into()],
        profile: "default".into(),
        ..Default::default()
    });
    assert_eq!(
        cache_policy(&long.config).manifest,
        "public, max-age=3, stale-while-revalidate=7, no-transform"
    );
}

#[test]
fn ffmpeg_args_follow_the_config() {
    let l = profile("default");
    let args: Vec<String> = ffmpeg::ffmpeg_args(&l.config, &l.derived, &Template::text("/h"))
        .iter()
        .map(plain)
        .collect();
    let after = |flag: &str| {
        args[args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}"))
            + 1]
        .clone()
    };
    assert_eq!(after("-i"), "testsrc2=size=1280x720:rate=30");
    assert_eq!(after("-g"), "60");
    assert_eq!(after("-keyint_min"), "60");
    assert_eq!(after("-minrate"), "2000k", "minrate defaults to bitrate");
    assert_eq!(after("-maxrate"), "2200k");
    assert_eq!(
        after("-hls_flags"),
        "delete_segments+omit_endlist+temp_file"
    );
    assert_eq!(after("-hls_segment_filename"), "/h/seg%05d.ts");
    assert_eq!(args.last().unwrap(), "/h/stream.m3u8");

    let abr = profile("4k-abr");
    let args: Vec<String> =
        ffmpeg::ffmpeg_args(&abr.config, &abr.derived, &Template::var("HLS_DIR"))
            .iter()
            .map(|t| t.resolve(&|_| Some("/h".into())).unwrap())
            .collect();
    let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(after("-i"), "testsrc2=size=3840x2160:rate=30");
    assert!(after("-filter_complex")
        .starts_with("[0:v]split=5[v0][v1][v2][v3][v4];[v0]scale=3840:2160[out0]"));
    assert_eq!(after("-var_stream_map"), "v:0,a:0,name:2160p v:1,a:1,name:1080p v:2,a:2,name:720p v:3,a:3,name:480p v:4,a:4,name:360p");
    assert_eq!(after("-master_pl_name"), "master.m3u8");
    assert_eq!(after("-b:v:4"), "500k");
    assert_eq!(after("-hls_segment_filename"), "/h/%v/seg%05d.ts");
    assert_eq!(args.last().unwrap(), "/h/%v/stream.m3u8");
}

#[test]
fn sysctl_file_is_sorted_and_complete() {
    let out = Command::new(env!("CARGO_BIN_EXE_test-origin"))
        .arg("sysctl")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for line in [
        "net.core.somaxconn = 65535",
        "net.ipv4.tcp_rmem = 4096 1000000 16000000",
        "net.core.default_qdisc = cake",
        "net.ipv4.ip_local_port_range = 1026 65535",
        "net.ipv4.tcp_fastopen = 3",
        "net.ipv4.tcp_fin_timeout = 30",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sub/99-origin.conf");
    let st = Command::new(env!("CARGO_BIN_EXE_test-origin"))
        .args(["sysctl", "-o", f.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(f).unwrap(), text);
}

/// Every string leaf of a config, as a JSON pointer.
fn string_leaves(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| string_leaves(x, format!("{path}/{i}"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| string_leaves(x, format!("{path}/{k}"), out)),
        _ => {}
    }
}

/// Hostile values in every string field either fail validation or come out
/// inert: `nginx -t` still passes and the value appears only quoted.
#[test]
fn hostile_strings_are_rejected_or_inert() {
    ensure_nginx_user();
    let bad = [
        "/tmp/a b", "x;y", "}", "\"", "$", "a\nb", "/ok/$uri", "/x\\y", "/a#b",
    ];
    let dir = tempfile::tempdir().unwrap();
    for name in ["default", "4k-abr", "debug"] {
        let base = serde_json::to_value(&profile(name).config).unwrap();
        let mut leaves = Vec::new();
        string_leaves(&base, String::new(), &mut leaves);
        assert!(leaves.len() > 20, "{name}: {leaves:?}");
        for ptr in &leaves {
            for value in bad {
                let mut v = base.clone();
                *v.pointer_mut(ptr).unwrap() = Value::from(value);
                let f = dir.path().join("o.json");
                std::fs::write(&f, serde_json::to_string(&v).unwrap()).unwrap();
                let req = Request {
                    profile: name.into(),
                    override_files: vec![f],
                    ..Default::default()
                };
                match common::load::<TestOrigin>(&req) {
                    Err(common::ConfigError::Invalid { problems }) => {
                        let segs: Vec<String> = ptr.split('/').skip(1).map(String::from).collect();
                        let path = common::profile::dotted(&v, &segs);
                        assert!(
                            problems.iter().any(|p| p.path == path),
                            "{ptr}={value:?}: {problems:?}"
                        );
                    }
                    Err(e) => panic!("{ptr}={value:?}: unexpected error {e}"),
                    Ok(l) => {
                        let conf = plain(&nginx_config(&l.config, &l.derived, &Flavour::Full));
                        testkit::tools::nginx_t(&conf, dir.path()).unwrap_or_else(|e| {
                            panic!("{ptr}={value:?} accepted but nginx -t fails: {e}")
                        });
                    }
                }
            }
        }
    }
}
