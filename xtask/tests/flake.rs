//! The Nix side: every .nix file parses, and the flake's package and app
//! names (evaluated against a stand-in for nixpkgs, which cannot be fetched
//! here) include the old flake's public names (SPEC §5).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn nix_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("flake.nix")];
    let mut nix: Vec<PathBuf> = std::fs::read_dir(root().join("nix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    nix.sort();
    files.extend(nix);
    files.push(root().join("xtask/tests/flake-names.nix"));
    files
}

#[test]
fn every_nix_file_parses() {
    let files = nix_files();
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        testkit::tools::nix_parse(&f).unwrap_or_else(|e| panic!("{e}"));
    }
    // and a broken file is caught
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.nix");
    std::fs::write(&bad, "{ a = 1; ").unwrap();
    assert!(testkit::tools::nix_parse(&bad).is_err());
}

fn evaluate() -> serde_json::Value {
    let mut cmd = Command::new("nix-instantiate");
    cmd.args(["--eval", "--strict", "--json"])
        .arg(root().join("xtask/tests/flake-names.nix"))
        .arg("--arg")
        .arg("root")
        .arg(root());
    serde_json::from_slice(&testkit::output_ok(&mut cmd).stdout).unwrap()
}

#[test]
fn the_old_public_names_are_packages_and_apps() {
    let v = evaluate();
    let packages = testkit::strings(&v["packages"]);
    let mut spec = vec![
        "default".to_owned(),
        "test-origin".into(),
        "test-origin-container".into(),
        "test-origin-vm".into(),
        "test-origin-nginx-config".into(),
        "swarm-client".into(),
        "swarm-client-container".into(),
    ];
    for p in ["low-latency", "4k-abr", "stress", "logged", "debug"] {
        spec.push(format!("test-origin-{p}"));
    }
    for p in [
        "low-latency",
        "stress",
        "logged",
        "debug",
        "tap",
        "tap-logged",
    ] {
        spec.push(format!("test-origin-vm-{p}"));
    }
    for p in ["low-latency", "4k-abr", "stress", "logged", "debug"] {
        spec.push(format!("test-origin-nginx-config-{p}"));
    }
    for p in ["stress", "gentle", "burst", "extreme"] {
        spec.push(format!("swarm-client-{p}"));
    }
    for name in &spec {
        assert!(
            packages.contains(&name.as_str()),
            "package `{name}` is missing"
        );
    }
    // stress is stress-test: the same derivation name
    assert_eq!(
        v["packageNames"]["test-origin-stress"],
        "test-origin-stress-test"
    );

    let modules = testkit::strings(&v["modules"]);
    for m in "test-origin swarm-client test-origin-logged swarm-client-burst".split(' ') {
        assert!(
            modules.contains(&m),
            "nixosModules.{m} is missing: {modules:?}"
        );
    }
    assert!(
        !modules.iter().any(|m| m.starts_with("hls-probe")),
        "hls-probe has no NixOS module"
    );

    let apps = v["apps"].as_object().unwrap();
    for name in [
        "test-origin",
        "test-origin-low-latency",
        "swarm-client-burst",
        "test-origin-vm-tap",
        "nginx-config",
    ] {
        assert!(apps.contains_key(name), "app `{name}` is missing");
    }
    assert!(apps["test-origin"]
        .as_str()
        .unwrap()
        .ends_with("-test-origin-default/bin/test-hls-origin"));
    assert!(apps["test-origin-vm-logged"]
        .as_str()
        .unwrap()
        .ends_with("-test-origin-vm-logged/bin/microvm-run"));
    // every app runs something a package builds
    let outs: Vec<String> = v["packageNames"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| format!("-{}/bin/", n.as_str().unwrap()))
        .collect();
    for (name, program) in apps {
        let p = program.as_str().unwrap();
        assert!(
            name == "nginx-config" || outs.iter().any(|o| p.contains(o.as_str())),
            "app `{name}` runs {p}, which no package builds"
        );
    }
}
