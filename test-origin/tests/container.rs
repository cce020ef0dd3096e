//! The OCI images, checked with skopeo, umoci, podman and a local registry.
//! The swarm-client image comes from the sibling `swarm-client` binary that
//! `cargo test --workspace` builds.

mod support;
use support::{free_port, serial, TINY};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::registry::{auth_file, openssl, self_signed, Registry};

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

fn swarm_bin() -> PathBuf {
    let p = Path::new(BIN).with_file_name("swarm-client");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p swarm-client` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

fn build(bin: &Path, out: &Path, cache: &Path, extra: &[&str]) -> String {
    testkit::run_ok(
        Command::new(bin)
            .arg("container")
            .arg("-o")
            .arg(out)
            .arg("--cache-dir")
            .arg(cache)
            .args(extra),
    )
}

fn sha256(p: &Path) -> String {
    testkit::run_ok(Command::new("sha256sum").arg(p))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn skopeo(args: &[&str]) -> Value {
    serde_json::from_str(&testkit::run_ok(
        testkit::tool("skopeo", "skopeo").args(args),
    ))
    .unwrap()
}

/// The image config of the OCI archive `archive`.
fn image_config(archive: &Path) -> Value {
    skopeo(&[
        "inspect",
        "--config",
        &format!("oci-archive:{}", archive.display()),
    ])
}

fn layers(archive: &Path) -> Vec<String> {
    let v = skopeo(&["inspect", &format!("oci-archive:{}", archive.display())]);
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

fn podman() -> Command {
    let mut c = testkit::tool("podman", "podman");
    c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    c
}

const LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1000:1000",
];

#[test]
fn images_are_reproducible_layered_and_have_the_spec_config() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a.tar"),
        tmp.path().join("b.tar"),
        tmp.path().join("c.tar"),
    );
    let report = build(Path::new(BIN), &a, &tmp.path().join("cache1"), &[]);
    assert!(report.contains("8 of 8 layers compressed"), "{report}");
    // a second cold build (fresh cache), on one core, and a warm one give
    // the same bytes: the layers are cut into blocks by their bytes, not by
    // the cores that compress them
    let one_core = |out: &Path, cache: &str, extra: &[&str]| {
        testkit::run_ok(
            Command::new("taskset")
                .args(["-c", "0", BIN, "container", "-o"])
                .arg(out)
                .arg("--cache-dir")
                .arg(tmp.path().join(cache))
                .args(extra),
        )
    };
    let single = one_core(&b, "cache2", &[]);
    assert!(single.contains("8 of 8 layers compressed"), "{single}");
    assert_eq!(sha256(&a), sha256(&b));
    let warm = build(Path::new(BIN), &b, &tmp.path().join("cache1"), &[]);
    assert!(warm.contains("0 of 8 layers compressed"), "{warm}");
    assert_eq!(sha256(&a), sha256(&b));
    let manifest =
        |p: &Path| skopeo(&["inspect", "--raw", &format!("oci-archive:{}", p.display())]);
    assert_eq!(manifest(&a), manifest(&b));

    // another profile changes only the generated-config layer
    build(
        Path::new(BIN),
        &c,
        &tmp.path().join("cache1"),
        &["-p", "low-latency"],
    );
    let (la, lc) = (layers(&a), layers(&c));
    assert_eq!(la.len(), lc.len());
    let differ: Vec<usize> = (0..la.len()).filter(|i| la[*i] != lc[*i]).collect();
    assert_eq!(differ, [la.len() - 1], "only the config layer differs");

    // zstd layers: the same bytes on one core and on all, and podman runs them
    let (za, zb) = (tmp.path().join("za.tar"), tmp.path().join("zb.tar"));
    build(
        Path::new(BIN),
        &za,
        &tmp.path().join("cache3"),
        &["--compression", "zstd"],
    );
    one_core(&zb, "cache4", &["--compression", "zstd"]);
    assert_eq!(sha256(&za), sha256(&zb));
    let zm = manifest(&za);
    assert!(zm["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"));
    assert!(std::fs::metadata(&za).unwrap().len() < std::fs::metadata(&a).unwrap().len());
    let image = format!("localhost/hls-swarm-zstd-test:{}", std::process::id());
    let loaded = testkit::run_ok(podman().arg("load").arg("-i").arg(&za));
    let id = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("{loaded}"))
        .trim()
        .to_owned();
    testkit::run_ok(podman().args(["tag", &id, &image]));
    let version = testkit::run_ok(podman().args(["run", "--rm"]).args(LIMITS).args([
        "--network",
        "none",
        "--entrypoint",
        "/usr/bin/ffprobe",
        &image,
        "-version",
    ]));
    let _ = podman().args(["rmi", "-f", &image, &id]).output();
    assert!(version.contains("ffprobe version"), "{version}");

    let cfg = image_config(&a);
    let conf = &cfg["config"];
    assert_eq!(conf["User"], "nginx");
    assert_eq!(conf["ExposedPorts"], serde_json::json!({"17080/tcp": {}}));
    assert_eq!(conf["Volumes"], serde_json::json!({"/var/hls": {}}));
    let env = testkit::strings(&conf["Env"]);
    assert!(
        env.contains(&"HLS_DIR=/var/hls") && env.contains(&"PORT=17080"),
        "{env:?}"
    );
    let labels = &conf["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.title"],
        "hls-swarm-test-origin"
    );
    assert_eq!(labels["hls.profile"], "default");
    assert_eq!(labels["hls.segment-duration"], "2");
    assert_eq!(labels["hls.list-size"], "10");
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(labels["org.opencontainers.image.description"]
        .as_str()
        .unwrap()
        .contains("default"));
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(cfg["os"], "linux");

    // umoci unpacks it; owners and modes are the SPEC's
    let layout = tmp.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    testkit::run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&a)
            .arg("-C")
            .arg(&layout),
    );
    let bundle = tmp.path().join("bundle");
    testkit::run_ok(
        testkit::tool("umoci", "umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:default", layout.display()))
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &str| {
        std::fs::symlink_metadata(root.join(p.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    for (path, mode, uid, gid) in [
        ("/var/hls", 0o775, 0, 1000),
        ("/var/log/nginx", 0o755, 1000, 1000),
        ("/var/cache/nginx", 0o755, 1000, 1000),
        ("/tmp", 0o1777, 0, 0),
        ("/etc/passwd", 0o644, 0, 0),
        ("/usr/local/bin/test-hls-origin", 0o755, 0, 0),
    ] {
        let m = meta(path);
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (mode, uid, gid),
            "{path}"
        );
    }
    for p in [
        "/usr/bin/ffmpeg",
        "/usr/bin/ffprobe",
        "/usr/sbin/nginx",
        "/usr/bin/bash",
        "/etc/nginx/mime.types",
        "/etc/nsswitch.conf",
    ] {
        assert!(meta(p).is_file(), "{p}");
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nginx:x:1000:1000:"), "{passwd}");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    for line in shadow.lines() {
        let hash = line.split(':').nth(1).unwrap();
        assert!(
            hash.starts_with('!') || hash.starts_with('*'),
            "usable password in {line}"
        );
    }
    let mut setid = Vec::new();
    walk(&root, &mut |p, m| {
        if m.mode() & 0o6000 != 0 {
            setid.push(p.to_path_buf());
        }
    });
    assert!(setid.is_empty(), "setuid/setgid files: {setid:?}");

    // the swarm-client image
    let s = tmp.path().join("s.tar");
    build(
        &swarm_bin(),
        &s,
        &tmp.path().join("cache1"),
        &["-p", "gentle"],
    );
    let cfg = image_config(&s);
    let conf = &cfg["config"];
    assert_eq!(conf["User"], "swarm");
    let env = testkit::strings(&conf["Env"]);
    for e in [
        "CLIENTS=20",
        "RAMP_RATE=1",
        "RAMP_JITTER=500",
        "METRICS_PORT=9090",
        "LOG_LEVEL=info",
        "VARIANT=first",
        "TIMEOUT=30",
    ] {
        assert!(env.contains(&e), "{e} not in {env:?}");
    }
    assert_eq!(conf["Labels"]["swarm.profile"], "gentle");
    assert_eq!(conf["Labels"]["swarm.clients.default"], "20");
    assert_eq!(conf["ExposedPorts"], serde_json::json!({"9090/tcp": {}}));
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        f(&p, &m);
        if m.is_dir() {
            walk(&p, f);
        }
    }
}

#[test]
fn bad_binaries_fail_clearly_and_leave_nothing() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img.tar");
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--binary", "nosuch=/usr/bin/ffmpeg", "-o"])
            .arg(&out),
        2,
    );
    assert!(err.contains("no program `nosuch`"), "{err}");
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--binary", "ffmpeg=/etc/passwd", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .arg("-o")
            .arg(&out),
        1,
    );
    assert!(err.contains("/etc/passwd"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Removes a container and an image when the test ends, whatever happens.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = podman().args(args).output();
        }
    }
}

#[test]
fn podman_runs_the_origin_image_and_the_swarm_image_plays_it() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let origin = tmp.path().join("origin.tar");
    let mut tiny = TINY.to_vec();
    tiny.extend(["-p", "low-latency"]);
    let origin_report = build(Path::new(BIN), &origin, &cache, &tiny);
    let swarm = tmp.path().join("swarm.tar");
    let swarm_report = build(&swarm_bin(), &swarm, &cache, &[]);
    // FFmpeg's libraries, most of both images, are one layer they share
    let ffmpeg_libs = |report: &str| {
        report
            .lines()
            .find(|l| l.ends_with("libraries of ffmpeg"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    assert!(ffmpeg_libs(&origin_report).is_some(), "{origin_report}");
    assert_eq!(
        ffmpeg_libs(&origin_report),
        ffmpeg_libs(&swarm_report),
        "{swarm_report}"
    );
    let tag = format!("t{}", std::process::id());
    let name = format!("hls-swarm-origin-test-{tag}");
    let _cleanup = Cleanup(vec![
        vec![
            "rm".into(),
            "-f".into(),
            "-t".into(),
            "1".into(),
            name.clone(),
        ],
        vec![
            "rmi".into(),
            "-f".into(),
            "localhost/hls-swarm-test-origin:low-latency".into(),
        ],
        vec![
            "rmi".into(),
            "-f".into(),
            "localhost/hls-swarm-swarm-client:default".into(),
        ],
    ]);
    let loaded = testkit::run_ok(podman().arg("load").arg("-i").arg(&origin));
    assert!(
        loaded.contains("hls-swarm-test-origin:low-latency"),
        "{loaded}"
    );
    testkit::run_ok(podman().arg("load").arg("-i").arg(&swarm));

    let port = free_port();
    let t = Instant::now();
    testkit::run_ok(
        podman()
            .args(["run", "-d", "--name", &name])
            .args(LIMITS)
            .args([
                "-p",
                &format!("127.0.0.1:{port}:17080"),
                "localhost/hls-swarm-test-origin:low-latency",
            ]),
    );
    let base = format!("http://127.0.0.1:{port}");
    let ready = loop {
        let health =
            common::http_check::http_get(&format!("{base}/health"), Duration::from_secs(2));
        let playlist =
            common::http_check::http_get(&format!("{base}/stream.m3u8"), Duration::from_secs(2));
        if matches!(health, Ok((200, ref b)) if b.trim() == "OK")
            && matches!(playlist, Ok((200, ref p)) if p.contains("#EXTINF"))
        {
            break true;
        }
        if t.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let logs = || {
        String::from_utf8_lossy(&podman().args(["logs", &name]).output().unwrap().stderr)
            .into_owned()
    };
    assert!(ready, "no stream within 60 s:\n{}", logs());
    eprintln!(
        "origin container served a playlist after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let top = testkit::run_ok(podman().args(["top", &name, "user", "args"]));
    assert!(
        top.lines().skip(1).all(|l| l.starts_with("nginx ")),
        "not all as nginx:\n{top}"
    );
    assert!(
        top.contains("ffmpeg") && top.contains("nginx: worker"),
        "{top}"
    );

    let out = testkit::run_ok(
        podman()
            .args(["run", "--rm", "--network", "host"])
            .args(LIMITS)
            .args([
                "-e",
                &format!("STREAM_URL={base}/stream.m3u8"),
                "-e",
                "CLIENTS=2",
                "-e",
                &format!("METRICS_PORT={}", free_port()),
            ])
            .args([
                "localhost/hls-swarm-swarm-client:default",
                "--duration",
                "10s",
            ]),
    );
    assert!(out.contains("started 2 of 2 viewers"), "{out}");
    assert!(!out.contains(" 0 B "), "every viewer read bytes:\n{out}");

    // podman stop: SIGTERM to the script, which stops both and exits 0
    testkit::run_ok(podman().args(["stop", "-t", "10", &name]));
    let code =
        testkit::run_ok(podman().args(["inspect", &name, "--format", "{{.State.ExitCode}}"]));
    assert_eq!(code.trim(), "0", "{}", logs());
}

/// A push to a registry on this machine without TLS (plain HTTP, no
/// credentials) gives the digest of the image built.
#[test]
fn push_to_a_local_registry_matches_the_local_digest() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(tmp.path(), "");
    let reference = format!("127.0.0.1:{}/hls-swarm-test-origin:default", registry.port);
    let archive = tmp.path().join("img.tar");
    let report = build(
        Path::new(BIN),
        &archive,
        &tmp.path().join("cache"),
        &["--push", &reference],
    );
    assert!(report.contains("pushed to"), "{report}");
    let remote = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    let local = skopeo(&["inspect", &format!("oci-archive:{}", archive.display())]);
    assert_eq!(remote["Digest"], local["Digest"]);
    assert_eq!(remote["Labels"], local["Labels"]);
    // a reference without a registry host is refused before anything is built
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "--push", "hls-swarm/x:y", "-o"])
            .arg(tmp.path().join("x.tar"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
        2,
    );
    assert!(err.contains("HOST[:PORT]/NAME[:TAG]"), "{err}");
    assert!(!tmp.path().join("x.tar").exists());
}

/// A registry with TLS (a certificate of the test's own CA) and htpasswd
/// (basic) authentication: a push with the auth file's credentials; a second
/// image that differs in one layer sends only that layer and its config; a
/// wrong password or none fails before any upload, saying what to do and
/// never the password; skopeo pulls the pushed image back, checking every
/// blob's digest, and finds the digest of the image built.
#[test]
fn push_over_tls_with_credentials_reuses_what_the_registry_has() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (registry, certs) = Registry::with_tls_and_password(d, "pusher", "right-horse-battery");
    let host = format!("127.0.0.1:{}", registry.port);
    let good = d.join("auth.json");
    auth_file(&good, &host, "pusher", "right-horse-battery");
    let cache = d.join("cache");
    let push = |profile: &str, auth: &Path| {
        let mut c = Command::new(BIN);
        c.args(["container", "-p", profile, "-o"])
            .arg(d.join(format!("{profile}.tar")))
            .arg("--cache-dir")
            .arg(&cache)
            .args([
                "--push",
                &format!("{host}/hls-swarm-test-origin:{profile}"),
                "--cert-dir",
            ])
            .arg(&certs)
            .env("REGISTRY_AUTH_FILE", auth);
        c
    };
    let first = testkit::run_ok(&mut push("default", &good));
    let layers = first
        .lines()
        .filter(|l| l.trim_start().starts_with("layer "))
        .count();
    assert!(
        first.contains(&format!("{} blobs uploaded", layers + 1))
            && first.contains(", 0 already there"),
        "every layer and the config go up:\n{first}"
    );
    // another profile: its generated config layer and its image config
    // differ, the rest is there
    let second = testkit::run_ok(&mut push("low-latency", &good));
    assert!(
        second.contains("2 blobs uploaded")
            && second.contains(&format!(", {} already there", layers - 1)),
        "only the changed layer and the config go up:\n{second}"
    );

    let wrong = d.join("wrong.json");
    auth_file(&wrong, &host, "pusher", "wrong-horse-battery");
    let err = testkit::stderr_of_failed(&mut push("logged", &wrong), 1);
    assert!(
        err.contains("refused the credentials of user `pusher`"),
        "{err}"
    );
    assert!(err.contains("podman login"), "{err}");
    assert!(
        !err.contains("wrong-horse-battery"),
        "the password is never printed: {err}"
    );
    let none = d.join("none.json");
    std::fs::write(&none, r#"{"auths": {}}"#).unwrap();
    let err = testkit::stderr_of_failed(&mut push("logged", &none), 1);
    assert!(err.contains("asks for credentials"), "{err}");
    // without the CA, TLS fails and says where the CA goes
    let err = testkit::stderr_of_failed(
        Command::new(BIN)
            .args(["container", "-p", "logged", "-o"])
            .arg(d.join("logged.tar"))
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--push", &format!("{host}/hls-swarm-test-origin:logged")])
            .env("REGISTRY_AUTH_FILE", &good)
            .env("HOME", d),
        1,
    );
    assert!(err.contains("certs.d"), "{err}");

    // pulled back by skopeo, every blob checked against its digest
    let pulled = d.join("pulled");
    testkit::run_ok(testkit::tool("skopeo", "skopeo").args([
        "copy",
        "--src-cert-dir",
        certs.to_str().unwrap(),
        "--authfile",
        good.to_str().unwrap(),
        &format!("docker://{host}/hls-swarm-test-origin:default"),
        &format!("oci:{}:default", pulled.display()),
    ]));
    let remote = skopeo(&["inspect", &format!("oci:{}:default", pulled.display())]);
    let local = skopeo(&[
        "inspect",
        &format!("oci-archive:{}", d.join("default.tar").display()),
    ]);
    assert_eq!(remote["Digest"], local["Digest"]);
    let remote_low = skopeo(&[
        "inspect",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--authfile",
        good.to_str().unwrap(),
        &format!("docker://{host}/hls-swarm-test-origin:low-latency"),
    ]);
    let local_low = skopeo(&[
        "inspect",
        &format!("oci-archive:{}", d.join("low-latency.tar").display()),
    ]);
    assert_eq!(remote_low["Digest"], local_low["Digest"]);
}

/// A token service for the registry: it checks basic credentials and
/// answers a JWT (RS256, its certificate in `x5c`) granting pull and push
/// of the scope asked — but every other token (the 1st, the 3rd, …) pull
/// alone, as a token that no longer serves for a push, so that each push
/// meets a 401 midway; records the scopes it was asked for.
fn token_service(
    dir: &Path,
    user: &'static str,
    password: &'static str,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use base64::Engine;
    use std::io::{BufRead, Write};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let der = std::fs::read(dir.join("token.der")).unwrap();
    let header = b64.encode(
        serde_json::json!({
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
        })
        .to_string(),
    );
    let key = dir.join("token.key");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    std::thread::spawn(move || {
        let mut granted = 0;
        for conn in listener.incoming().take(64) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let target = line.split(' ').nth(1).unwrap_or("").to_owned();
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") && v.trim() == basic {
                        authorized = true;
                    }
                }
            }
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(|v| {
                        v.replace("%3A", ":")
                            .replace("%2C", ",")
                            .replace("%2F", "/")
                    })
                    .unwrap_or_default()
            };
            let scope = param("scope");
            seen.lock().unwrap().push(scope.clone());
            let reply = if authorized {
                granted += 1;
                let actions: &[&str] = if granted % 2 == 1 {
                    &["pull"]
                } else {
                    &["pull", "push"]
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let access: Vec<serde_json::Value> = scope
                    .split(' ')
                    .filter_map(|s| {
                        let mut p = s.split(':');
                        let (kind, name) = (p.next()?, p.next()?);
                        Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
                    })
                    .collect();
                let claims = b64.encode(
                    serde_json::json!({
                        "iss": "test-issuer",
                        "sub": user,
                        "aud": param("service"),
                        "exp": now + 600,
                        "nbf": now - 60,
                        "iat": now - 60,
                        "jti": format!("{now}-{}", scope.len()),
                        "access": access,
                    })
                    .to_string(),
                );
                let signed = format!("{header}.{claims}");
                let sig = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .and_then(|mut c| {
                        c.stdin.take().unwrap().write_all(signed.as_bytes())?;
                        c.wait_with_output()
                    })
                    .unwrap();
                let body =
                    serde_json::json!({"token": format!("{signed}.{}", b64.encode(sig.stdout))})
                        .to_string();
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (port, asked)
}

/// A registry that hands out bearer tokens (docker-registry's token
/// authentication, with a token service of the test's): the push gets a
/// token for pull and push of its repository with the auth file's
/// credentials and uses it; when the registry stops taking its token
/// midway (here: a token for pull alone), it gets a new one and goes on; a
/// wrong password is refused by the token service and said so.
#[test]
fn push_with_a_bearer_token_from_the_registry_token_service() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    self_signed(d, "token signer", "token.key", "token.pem", false);
    openssl(
        d,
        &[
            "x509",
            "-in",
            "token.pem",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ],
    );
    let (token_port, asked) = token_service(d, "pusher", "token-horse-battery");
    let registry = Registry::start(
        d,
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            d.join("token.pem").display()
        ),
    );
    let host = format!("127.0.0.1:{}", registry.port);
    let (good, wrong) = (d.join("auth.json"), d.join("wrong.json"));
    auth_file(&good, &host, "pusher", "token-horse-battery");
    auth_file(&wrong, &host, "pusher", "wrong");
    let push = |auth: &Path| {
        let mut c = Command::new(BIN);
        c.args(["container", "-o"])
            .arg(d.join("img.tar"))
            .arg("--cache-dir")
            .arg(d.join("cache"))
            .args(["--push", &format!("{host}/hls-swarm-test-origin:default")])
            .env("REGISTRY_AUTH_FILE", auth);
        c
    };
    let report = testkit::run_ok(&mut push(&good));
    assert!(
        report.contains("pushed to") && report.contains(", 0 already there"),
        "{report}"
    );
    // a token at the start (pull alone: the first upload is refused), a
    // new one for the rest
    let scope = "repository:hls-swarm-test-origin:pull,push";
    assert_eq!(*asked.lock().unwrap(), [scope; 2]);
    // pushed again: the registry has every blob (the blobs are looked at
    // with the first token, the manifest needs the second)
    let again = testkit::run_ok(&mut push(&good));
    assert!(again.contains("0 blobs uploaded"), "{again}");
    assert_eq!(*asked.lock().unwrap(), [scope; 4]);
    let err = testkit::stderr_of_failed(&mut push(&wrong), 1);
    assert!(
        err.contains("refused the credentials of user `pusher`"),
        "{err}"
    );
    assert!(!err.contains("wrong\n") && !err.contains(":wrong"), "{err}");
}

/// Whether the container `name` is running.
fn podman_running(name: &str) -> bool {
    let out = podman()
        .args(["inspect", name, "--format", "{{.State.Running}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// `curl --http2` of `url` trusting `ca` (`-k` when `None`): the HTTP
/// version and status it printed, or why it failed.
fn curl_h2(url: &str, ca: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http2", "--max-time", "5", "-o", "/dev/null"])
        .args(["-w", "%{http_version} %{http_code}"]);
    match ca {
        Some(ca) => cmd.arg("--cacert").arg(ca),
        None => cmd.arg("-k"),
    };
    let out = cmd.arg(url).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// An LL-HLS origin image (TLS on): the certificate is made when the
/// container starts (into a TLS_DIR the host mounted, so the host can trust
/// its CA), and a certificate mounted read-only is used as it is; the
/// image's own LL server answers blocking reloads through nginx.
#[test]
fn podman_runs_an_ll_hls_origin_with_a_certificate_made_at_start_or_mounted() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("origin.tar");
    let mut args = TINY.to_vec();
    args.extend(["-p", "ll-hls", "--set", "hls.segmentDuration=1"]);
    build(Path::new(BIN), &archive, &tmp.path().join("cache"), &args);
    let image = "localhost/hls-swarm-test-origin:ll-hls";
    let name = format!("hls-swarm-origin-tls-{}", std::process::id());
    let rm = |n: &str| {
        vec![
            "rm".to_owned(),
            "-f".into(),
            "-t".into(),
            "1".into(),
            n.to_owned(),
        ]
    };
    let _cleanup = Cleanup(vec![
        rm(&name),
        vec!["rmi".into(), "-f".into(), image.into()],
    ]);
    testkit::run_ok(podman().arg("load").arg("-i").arg(&archive));
    // the container's user (uid 1000) writes the certificate here
    let tls = tmp.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o777)).unwrap();
    let start = |mount: &str| -> String {
        let port = free_port();
        testkit::run_ok(
            podman()
                .args(["run", "-d", "--name", &name])
                .args(LIMITS)
                .args(["-p", &format!("127.0.0.1:{port}:17080")])
                .args(["-e", "TLS_DIR=/tls", "-v"])
                .arg(format!("{}:/tls:{mount}", tls.display()))
                .arg(image),
        );
        format!("https://127.0.0.1:{port}")
    };
    let wait = |url: &str, ca: Option<&Path>| {
        let t = Instant::now();
        loop {
            match curl_h2(url, ca) {
                Ok(r) if r == "2 200" => return,
                _ if !podman_running(&name) => {
                    let logs = podman().args(["logs", &name]).output().unwrap();
                    panic!(
                        "the container stopped:\n{}",
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
                r if t.elapsed() > Duration::from_secs(60) => {
                    let logs = podman().args(["logs", &name]).output().unwrap();
                    panic!(
                        "{r:?} after 60 s:\n{}",
                        String::from_utf8_lossy(&logs.stderr)
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    };
    let base = start("rw");
    let url = format!("{base}/master.m3u8");
    let ca = tls.join("ca.pem");
    // the CA appears when the container has made the certificate
    wait(&url, Some(&ca));
    assert!(!tls.join("ca.key").exists(), "the CA's key was deleted");
    // the LL server in the image: a blocking reload for the next segment
    let pl = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "5", "--cacert"])
        .arg(&ca)
        .arg(format!("{base}/video/stream.m3u8"))
        .output()
        .unwrap();
    let pl = String::from_utf8_lossy(&pl.stdout).into_owned();
    let msn: u64 = pl
        .lines()
        .rfind(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .and_then(|l| l.trim_end_matches(".m4s").parse().ok())
        .unwrap_or_else(|| panic!("no segment in:\n{pl}"));
    let t = Instant::now();
    let blocked = curl_h2(
        &format!("{base}/video/stream.m3u8?_HLS_msn={}", msn + 1),
        Some(&ca),
    );
    assert_eq!(blocked.as_deref(), Ok("2 200"));
    assert!(
        t.elapsed() > Duration::from_millis(50),
        "it waited for the segment"
    );
    testkit::run_ok(podman().args(["rm", "-f", "-t", "10", &name]));

    // mounted read-only: used as it is, nothing made
    let cert = std::fs::read(tls.join("cert.pem")).unwrap();
    std::fs::remove_file(&ca).unwrap();
    let url = format!("{}/master.m3u8", start("ro"));
    wait(&url, None);
    assert!(!ca.exists());
    assert_eq!(std::fs::read(tls.join("cert.pem")).unwrap(), cert);
}
