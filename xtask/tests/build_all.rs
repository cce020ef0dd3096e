//! `cargo xtask build-all` and `nix-profiles` driven through the xtask
//! binary: the index, reuse, filters, and a profile added to a temp copy of
//! the workspace showing up everywhere with no other edit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::printed;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn build_all_writes_an_index_and_reuses_what_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "build-all",
        "--debug",
        "--out",
        out,
        "--component",
        "hls-probe",
        "--target",
        "configs",
        "--target",
        "runner",
        "--target",
        "systemd",
    ];
    let first = xtask(&args);
    assert!(first.status.success(), "{}", printed(&first));
    assert!(
        printed(&first).contains("6 built, 0 reused"),
        "{}",
        printed(&first)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let artifacts = index["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 6);
    let mut seen = Vec::new();
    for a in artifacts {
        seen.push(format!(
            "{}/{}",
            a["profile"].as_str().unwrap(),
            a["target"].as_str().unwrap()
        ));
        for f in a["files"].as_array().unwrap() {
            let path = dir.path().join(f["path"].as_str().unwrap());
            assert_eq!(
                sha256(&path),
                f["sha256"].as_str().unwrap(),
                "{}",
                path.display()
            );
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                f["size"].as_u64().unwrap()
            );
        }
    }
    for p in ["default", "frequent"] {
        for t in ["configs", "runner", "systemd"] {
            assert!(
                seen.contains(&format!("{p}/{t}")),
                "{p}/{t} not in {seen:?}"
            );
        }
    }
    let script = dir
        .path()
        .join("hls-probe/frequent/runner/bin/run-hls-probe");
    assert!(std::fs::read_to_string(&script)
        .unwrap()
        .contains("profile frequent"));

    // nothing changed: everything reused, the index byte-identical
    let before = std::fs::read(dir.path().join("index.json")).unwrap();
    let again = xtask(&args);
    assert!(
        printed(&again).contains("0 built, 6 reused"),
        "{}",
        printed(&again)
    );
    assert_eq!(
        before,
        std::fs::read(dir.path().join("index.json")).unwrap()
    );

    // a deleted artifact is rebuilt, only that one
    std::fs::remove_file(&script).unwrap();
    let third = xtask(&args);
    assert!(
        printed(&third).contains("1 built, 5 reused"),
        "{}",
        printed(&third)
    );
    assert!(script.is_file());
}

#[test]
fn build_all_refuses_unknown_names_with_a_suggestion() {
    for (wrong, meant) in [
        ("--component test-orign", "test-origin"),
        ("--profile low-latncy", "low-latency"),
        ("--target contaner", "container"),
    ] {
        let (flag, value) = wrong.split_once(' ').unwrap();
        let hint = format!("did you mean `{meant}`");
        let dir = tempfile::tempdir().unwrap();
        let o = xtask(&[
            "build-all",
            "--debug",
            "--out",
            dir.path().to_str().unwrap(),
            flag,
            value,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", printed(&o));
        assert!(printed(&o).contains(&hint), "{}", printed(&o));
        assert!(!dir.path().join("index.json").exists());
    }
}

/// Copies the workspace sources (not .git, target or out at its top).
fn copy_tree(from: &Path, to: &Path, top: bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if top && [".git", "target", "out"].iter().any(|x| name == *x) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst, false);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Adding a profile is one edit of the profile file: `profiles`, build-all and
/// nix/profiles.json pick it up. Runs in a copy of the workspace with its own
/// target dir for its programs (kept between runs in target/profile-copy);
/// what the two builds share (every dependency) is compiled once, in the
/// workspace's build dir.
#[test]
fn a_new_profile_appears_in_profiles_build_all_and_nix_profiles() {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&root(), copy.path(), true);
    let profiles = copy.path().join("test-origin/profiles.toml");
    let mut t = std::fs::read_to_string(&profiles).unwrap();
    t.push_str("\n[profiles.night-shift]\ndescription = \"a profile added by a test\"\nextends = [\"default\"]\n[profiles.night-shift.config.hls]\nsegmentDuration = 6\n");
    std::fs::write(&profiles, t).unwrap();
    let main_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let target = main_target.join("profile-copy");
    let build_dir = std::env::var_os("CARGO_BUILD_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or(main_target);
    // `cargo run -p PACKAGE -- ARGS` in the copy: its stdout
    let cargo_run = |package: &str, args: &[&str]| {
        testkit::run_ok(
            Command::new(env!("CARGO"))
                .args(["run", "-q", "--offline", "-p", package, "--"])
                .args(args)
                .current_dir(copy.path())
                .env("CARGO_TARGET_DIR", &target)
                .env("CARGO_BUILD_BUILD_DIR", &build_dir),
        )
    };
    let listed = cargo_run("test-origin", &["profiles"]);
    assert!(
        listed.contains("night-shift") && listed.contains("a profile added by a test"),
        "{listed}"
    );

    cargo_run("xtask", &["nix-profiles"]);
    let nix: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.path().join("nix/profiles.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = nix["components"][0]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"night-shift"), "{names:?}");

    let out = copy.path().join("artifacts");
    cargo_run(
        "xtask",
        &[
            "build-all",
            "--debug",
            "--out",
            out.to_str().unwrap(),
            "--profile",
            "night-shift",
            "--target",
            "configs",
            "--target",
            "runner",
        ],
    );
    let config =
        std::fs::read_to_string(out.join("test-origin/night-shift/configs/test-origin.json"))
            .unwrap();
    assert!(config.contains("\"segmentDuration\": 6"), "{config}");
    assert!(out
        .join("test-origin/night-shift/runner/bin/test-hls-origin")
        .is_file());
}

/// Without nginx on PATH the origin's image is skipped with a note saying what
/// to install; its text targets still build.
#[test]
fn missing_host_programs_skip_a_target_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let cargo_dir = Path::new(env!("CARGO")).parent().unwrap().to_path_buf();
    let path = format!("{}:/usr/bin:/bin", cargo_dir.display());
    assert!(!Path::new("/usr/bin/nginx").exists() && !Path::new("/bin/nginx").exists());
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "build-all",
            "--debug",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .args(["--component", "test-origin", "--profile", "default"])
        .args(["--target", "configs", "--target", "container"])
        .current_dir(root())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", printed(&o));
    assert!(
        printed(&o).contains(
            "skipped test-origin default container: needs nginx (apt-get install nginx-light)"
        ),
        "{}",
        printed(&o)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["skipped"][0]["target"], "container");
    assert_eq!(index["artifacts"][0]["target"], "configs");
    assert!(!dir.path().join("test-origin/container").exists());
}

/// The images of a component's profiles go into one image layout, tagged by
/// profile, and share the layers they have in common; microVMs share one
/// kernel and one base, and keep only their config.
#[test]
fn images_and_microvms_share_what_profiles_share() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let built = xtask(&[
        "build-all",
        "--debug",
        "--out",
        out,
        "--component",
        "hls-probe",
        "--target",
        "container",
    ]);
    assert!(built.status.success(), "{}", printed(&built));
    let layout = dir.path().join("hls-probe/container");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(tags, ["default", "frequent"]);
    let mut layers = 0;
    for tag in &tags {
        // each tag is an image skopeo reads
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .output()
            .expect("skopeo is installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        layers += m["layers"].as_array().unwrap().len();
    }
    let blobs = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count();
    // two manifests, two configs, and the layers once: only the generated
    // configs' layer differs between the profiles
    assert_eq!(
        blobs,
        4 + layers / 2 + 1,
        "{blobs} blobs for {layers} layers"
    );
    // built again for one profile: the other profile's image stays
    let one = xtask(&[
        "build-all",
        "--debug",
        "--out",
        out,
        "--component",
        "hls-probe",
        "--profile",
        "frequent",
        "--target",
        "container",
    ]);
    assert!(one.status.success(), "{}", printed(&one));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(
        std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs
    );

    let built = xtask(&[
        "build-all",
        "--debug",
        "--out",
        out,
        "--component",
        "swarm-client",
        "--target",
        "microvm",
    ]);
    assert!(built.status.success(), "{}", printed(&built));
    let shared = dir.path().join("microvm-base");
    let pieces: Vec<String> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pieces.len(), 2, "one kernel and one base: {pieces:?}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let mut own = 0;
    for a in index["artifacts"].as_array().unwrap() {
        let size: u64 = a["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["size"].as_u64().unwrap())
            .sum();
        if a["target"] == "microvm" {
            own += 1;
            assert!(
                size < 1 << 20,
                "a profile's microVM is its config and scripts: {size}"
            );
        } else {
            assert_eq!(a["target"], "microvm-base");
            assert!(size > 50 << 20, "{size}");
        }
    }
    assert_eq!(own, 8, "every profile");
    // a base no microVM links to goes at the next run
    std::fs::create_dir_all(shared.join("0123456789abcdef")).unwrap();
    let again = xtask(&[
        "build-all",
        "--debug",
        "--out",
        out,
        "--component",
        "swarm-client",
        "--target",
        "microvm",
    ]);
    assert!(
        printed(&again).contains("0 built, 8 reused"),
        "{}",
        printed(&again)
    );
    assert!(!shared.join("0123456789abcdef").exists());
}
