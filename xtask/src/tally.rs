//! `cargo xtask test`'s run of `cargo test`: its output passed through as
//! it comes, and at the end one line that adds up every test binary's
//! result (`tests: N passed, N failed, N skipped`), with the failed tests
//! named by binary, so that a failure far up the output is not missed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use anyhow::{Context, Result};

/// What the test binaries reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Binaries that reported a result.
    pub binaries: u64,
    /// `binary: test` of each failed test.
    pub failures: Vec<String>,
    /// The binary whose output is being read (from cargo's `Running` line).
    current: String,
}

/// The count before `word` in a `test result:` line (`3 passed;`).
fn count(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches([';', ',']) == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

impl Tally {
    /// Takes one line of cargo's or a test binary's output.
    pub fn line(&mut self, line: &str) {
        let l = line.trim();
        if let Some(rest) = l
            .strip_prefix("Running ")
            .or_else(|| l.strip_prefix("Doc-tests "))
        {
            // `Running tests/x.rs (target/debug/deps/x-0123)`: the source
            self.current = rest.split(" (").next().unwrap_or(rest).to_owned();
        } else if l.starts_with("test result:") {
            self.binaries += 1;
            self.passed += count(l, "passed");
            self.failed += count(l, "failed");
            self.ignored += count(l, "ignored");
        } else if let Some(name) = l
            .strip_prefix("test ")
            .and_then(|r| r.strip_suffix(" ... FAILED"))
        {
            self.failures.push(format!("{}: {name}", self.current));
        }
    }

    /// The closing lines.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "tests: {} passed, {} failed, {} skipped\n",
            self.passed, self.failed, self.ignored
        );
        s += &format!("({} test binaries", self.binaries);
        if self.failures.is_empty() {
            s += ")\n";
        } else {
            s += "; failed:)\n";
            for f in &self.failures {
                s += &format!("  {f}\n");
            }
        }
        s
    }
}

/// Runs `cargo ARGS…` from the workspace root, passing its output through,
/// then prints the tally. True when cargo succeeded.
pub fn run_tests(args: &[&str]) -> Result<bool> {
    eprintln!("$ cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .current_dir(crate::workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let readers: Vec<_> = [
        (
            false,
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        ),
        (true, Box::new(child.stderr.take().expect("piped"))),
    ]
    .into_iter()
    .map(|(err, r)| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send((err, line)).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut tally = Tally::default();
    for (err, line) in rx {
        if err {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        tally.line(&line);
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    print!("{}", tally.summary());
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_add_up_and_failures_are_named_by_binary() {
        let mut t = Tally::default();
        for l in [
            "     Running unittests src/lib.rs (target/debug/deps/common-1)",
            "test a ... ok",
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s",
            "     Running tests/faults.rs (target/debug/deps/faults-2)",
            "test an_origin_restart ... FAILED",
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            "   Doc-tests common",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
        ] {
            t.line(l);
        }
        assert_eq!((t.passed, t.failed, t.ignored, t.binaries), (15, 1, 1, 3));
        assert_eq!(t.failures, ["tests/faults.rs: an_origin_restart"]);
        let s = t.summary();
        assert_eq!(
            s.lines().next(),
            Some("tests: 15 passed, 1 failed, 1 skipped")
        );
        assert!(s.contains("  tests/faults.rs: an_origin_restart"), "{s}");
    }
}
