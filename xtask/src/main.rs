//! `cargo xtask <command>`: workspace automation.
//!
//! Commands:
//!   check   cargo fmt --check, clippy -D warnings, the whole test suite;
//!           prints a pass/fail table and exits non-zero on any failure
//!   demo    a local test origin with 10 viewers on it for 30 s, then a summary
//!   bench   every criterion benchmark of the workspace, summarised in one
//!           table and written to docs/BENCHMARKS.md with the machine description

use std::process::{Command, ExitCode};

use anyhow::Result;

mod bench;
mod lab;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check(),
        Some("bench") => bench::run(&workspace_root()),
        Some("demo") => lab::demo(&workspace_root()),
        Some("help" | "--help" | "-h") | None => {
            print_help();
            Ok(true)
        }
        Some(other) => {
            eprintln!("error: unknown xtask command `{other}`\n");
            print_help();
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         demo    start a local test origin, put 10 viewers on it for 30 s, print the summary\n  \
         check   cargo fmt --check, clippy -D warnings and the test suite, with a pass/fail table\n  \
         bench   run the benchmarks and write docs/BENCHMARKS.md"
    );
}

/// Runs `program args…` from the workspace root, streaming its output.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<bool> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    Ok(status.success())
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn check() -> Result<bool> {
    let steps: [(&str, &str, &[&str]); 3] = [
        ("rustfmt", "cargo", &["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("tests", "cargo", &["test", "--workspace"]),
    ];
    let mut results = Vec::new();
    for (name, program, args) in steps {
        results.push((name, run(program, args)?));
    }
    println!("\n{:<10} result", "check");
    for (name, ok) in &results {
        println!("{name:<10} {}", if *ok { "pass" } else { "FAIL" });
    }
    Ok(results.iter().all(|(_, ok)| *ok))
}
