//! `cargo xtask <command>`: workspace automation. See `cargo xtask --help`.

use std::process::{Command, ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod bench_artifacts;
mod bench_capacity;
mod bench_ll;
mod bench_merge;
mod bench_origin;
mod bench_swarm;
mod build_all;
mod check;
mod demo;
mod lab;
mod nix_profiles;
mod registry;
mod setup;
mod soak;
mod tally;
mod test_run;

/// Builds, checks and measures the hls-swarm workspace.
#[derive(Parser)]
#[command(name = "cargo xtask", about)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build every artifact of every component × profile × target into DIR,
    /// with DIR/index.json (files, sha256, sizes) and a summary table
    ///
    /// Components, profiles and targets come from the registry and the
    /// components' profile files. Targets whose host programs are missing are
    /// skipped with a note; unchanged jobs are reused.
    BuildAll(build_all::Options),
    /// cargo fmt --check, clippy -D warnings, the tests, then nginx -t,
    /// shellcheck, nix-instantiate --parse and systemd-analyze verify on the
    /// generated files; a pass/fail table, non-zero exit on any failure
    Check {
        /// Only check the generated files (skip fmt, clippy and the tests)
        #[arg(long)]
        artifacts_only: bool,
    },
    /// Run the benchmarks and write docs/BENCHMARKS.md
    Bench {
        /// Run one part only; the other parts' rows in docs/BENCHMARKS.md stay
        #[arg(long, value_enum)]
        only: Option<bench::Part>,
    },
    /// Start a local test origin, put 10 viewers on it for 30 s, print the summary
    ///
    /// Installs FFmpeg and nginx first when they are missing and it may (root,
    /// or sudo without a password); otherwise prints the command to run.
    Demo,
    /// Run the test suite (every test binary of the workspace, or `cargo test ARGS…`)
    ///
    /// First checks the host programs the tests use (nginx, FFmpeg, podman,
    /// QEMU, Nix's parser, …) and installs the missing Debian packages when it
    /// may (root, or sudo without a password); otherwise prints the one command
    /// to run and exits 1. Without ARGS the test binaries are built once and
    /// run three at a time (one at a time of those that keep every core
    /// busy; the few that time what they see alone, at the end), each one's
    /// output printed whole when it ends; a tally and the slowest binaries
    /// close the run.
    Test {
        /// Only check (and install) what the tests need; run no test
        #[arg(long)]
        setup_only: bool,
        /// Let the install remove packages that conflict with what it
        /// installs (refused by default, saying which)
        #[arg(long)]
        allow_remove: bool,
        /// Arguments for `cargo test` instead of `--workspace`
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CARGO_TEST_ARGS"
        )]
        args: Vec<String>,
    },
    /// Write nix/profiles.json (components, profiles, targets) for the flake
    NixProfiles,
    /// Run the lab for a long while and check what a long run must show
    ///
    /// A local test origin logging every request, and a native swarm of
    /// --viewers on it for --minutes. Reports listed segments that answered
    /// 404 (must be 0), the swarm's body bytes against nginx's logs (within
    /// 0.5 %), the swarm's RSS and open files (less than 5 % growth after
    /// the warm-up: 2 minutes, or half the run if shorter) and restarts.
    /// Exit 1 when a check fails.
    Soak(soak::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Task::BuildAll(o) => build_all::run(&root, &o),
        Task::Check { artifacts_only } => check::run(&root, artifacts_only),
        Task::Bench { only } => bench::run(&root, only),
        Task::Demo => setup::ensure("the demo", setup::DEMO, false, false).and_then(|ready| {
            if ready {
                demo::demo(&root)
            } else {
                Ok(false)
            }
        }),
        Task::Test {
            setup_only,
            allow_remove,
            args,
        } => setup::ensure("the tests", setup::TESTS, true, allow_remove).and_then(|ready| {
            if !ready || setup_only {
                return Ok(ready);
            }
            if args.is_empty() {
                return test_run::run(&root);
            }
            let mut a = vec!["test"];
            a.extend(args.iter().map(String::as_str));
            tally::run_tests(&a)
        }),
        Task::NixProfiles => nix_profiles::write(&root).map(|_| true),
        Task::Soak(o) => setup::ensure("the soak", setup::DEMO, false, false).and_then(|ready| {
            if ready {
                soak::run(&root, &o)
            } else {
                Ok(false)
            }
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(common::error::exit_status(&e))
        }
    }
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

pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
