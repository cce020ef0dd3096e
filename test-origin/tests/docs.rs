//! Shell completions and man pages come from the binary's own command line.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_test-origin");

#[test]
fn completions_are_valid_shell_and_cover_the_subcommands() {
    let bash = testkit::run_ok(Command::new(BIN).args(["completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test-origin.bash");
    std::fs::write(&file, &bash).unwrap();
    testkit::run_ok(Command::new("bash").arg("-n").arg(&file));
    for sub in ["run", "container", "nginx-config", "completions", "man"] {
        assert!(bash.contains(sub), "no `{sub}` in the bash completions");
    }
    let zsh = testkit::run_ok(Command::new(BIN).args(["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef test-origin"), "{}", &zsh[..40]);
    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_for_the_binary_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let listed = testkit::run_ok(Command::new(BIN).arg("man").arg("-o").arg(dir.path()));
    assert_eq!(
        listed.lines().count(),
        std::fs::read_dir(dir.path()).unwrap().count()
    );
    let run = std::fs::read_to_string(dir.path().join("test-origin-run.1")).unwrap();
    assert!(run.contains(".TH test-origin-run 1"), "{run}");
    assert!(run.contains("ready\\-timeout"), "{run}");
    assert!(dir.path().join("test-origin.1").is_file());
    assert!(!dir.path().join("test-origin-help.1").exists());
    // the same pages again: byte for byte
    let again = tempfile::tempdir().unwrap();
    testkit::run_ok(Command::new(BIN).arg("man").arg("-o").arg(again.path()));
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(again.path().join(e.file_name())).unwrap()
        );
    }
}
