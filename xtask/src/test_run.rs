//! `cargo xtask test` without arguments: every test binary of the workspace
//! built once (`cargo test --workspace --no-run`), then run side by side,
//! [`JOBS`] at a time, as `cargo test` would run each one (from its
//! package's directory, with cargo's variables). Most suites spend their
//! time waiting on real servers and players, not on the CPU, so they share
//! the machine well; of those in [`HEAVY`], which keep every core busy, one
//! runs at a time; those in [`ALONE`] time what they see and run with
//! nothing beside them, at the end. Each binary's output is printed
//! whole when it ends, headed as cargo heads it, so the tally reads it as it
//! reads `cargo test`'s; a binary still running after [`LIMIT`] is killed
//! and counted as failed.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tally::Tally;

/// Test binaries running at once.
pub const JOBS: usize = 3;

/// Suites that run alone (by package and source): they compare timings
/// (stalls beside hls.js, the rates of a soak, faults during a run, a
/// blocked reload within 50 ms of its part, hls.js on LL-HLS, and a
/// capacity search whose steps must stall only for want of bandwidth).
pub const ALONE: &[&str] = &[
    "swarm-client tests/capacity.rs",
    "swarm-client tests/faults.rs",
    "swarm-client tests/hlsjs.rs",
    "test-origin tests/ll_hls.rs",
    "xtask tests/soak.rs",
];

/// Suites that keep every core busy (QEMU without KVM, nested cargo
/// builds, image layers compressed): one of them at a time beside the
/// others.
pub const HEAVY: &[&str] = &[
    "test-origin tests/microvm.rs",
    "test-origin tests/container.rs",
    "xtask tests/build_all.rs",
];

/// The longest one test binary may run.
pub const LIMIT: Duration = Duration::from_secs(20 * 60);

/// One test binary, as cargo built it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    pub exe: PathBuf,
    /// Its package's name.
    pub package: String,
    /// Its package's directory (cargo runs a test from there).
    pub dir: PathBuf,
    /// `tests/faults.rs`, `src/lib.rs`: its source, from the package's
    /// directory.
    pub src: String,
}

impl Binary {
    /// `swarm-client tests/faults.rs`.
    pub fn name(&self) -> String {
        format!("{} {}", self.package, self.src)
    }

    fn alone(&self) -> bool {
        ALONE.contains(&self.name().as_str())
    }

    fn heavy(&self) -> bool {
        HEAVY.contains(&self.name().as_str())
    }
}

/// The test binaries in the JSON messages of `cargo test --no-run
/// --message-format=json`.
pub fn binaries(messages: &str) -> Result<Vec<Binary>> {
    let mut out = Vec::new();
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let m: serde_json::Value = serde_json::from_str(line).context("a cargo message")?;
        if m["reason"] != "compiler-artifact" || m["profile"]["test"] != true {
            continue;
        }
        let Some(exe) = m["executable"].as_str() else {
            continue;
        };
        let manifest = Path::new(m["manifest_path"].as_str().context("manifest_path")?);
        let dir = manifest.parent().context("a manifest's directory")?;
        let src = Path::new(m["target"]["src_path"].as_str().context("src_path")?);
        out.push(Binary {
            exe: exe.into(),
            package: m["package_id"]
                .as_str()
                .and_then(package_name)
                .or_else(|| dir.file_name().and_then(|n| n.to_str()))
                .context("a package name")?
                .to_owned(),
            dir: dir.to_path_buf(),
            src: src
                .strip_prefix(dir)
                .unwrap_or(src)
                .to_string_lossy()
                .into_owned(),
        });
    }
    Ok(out)
}

/// The name in a package id: `path+file:///…/swarm-client#0.1.0` (a
/// directory named as the package) or `…#swarm-client@0.1.0`.
fn package_name(id: &str) -> Option<&str> {
    let tail = id.rsplit('#').next()?;
    match tail.split_once('@') {
        Some((name, _)) => Some(name),
        None => id.split('#').next()?.rsplit('/').next(),
    }
}

/// The slowest suites that run side by side, slowest first: started first,
/// so that the short ones fill in beside them. The heavy ones run one after
/// another, so the slowest of them starts at once.
const SLOW_FIRST: &[&str] = &[
    "xtask tests/build_all.rs",
    "swarm-client tests/swarm.rs",
    "test-origin tests/microvm.rs",
    "test-origin tests/container.rs",
    "test-origin tests/local_run.rs",
    "xtask tests/readme.rs",
    "swarm-client tests/native.rs",
];

/// The order they run in: the ones side by side (the slowest known first,
/// then by name), and the ones that run alone (by name).
pub fn plan(mut all: Vec<Binary>) -> (Vec<Binary>, Vec<Binary>) {
    all.sort_by_key(|b| {
        let name = b.name();
        let rank = SLOW_FIRST
            .iter()
            .position(|s| *s == name)
            .unwrap_or(SLOW_FIRST.len());
        (rank, name)
    });
    all.into_iter().partition(|b| !b.alone())
}

/// What one binary printed, and how it ended.
struct Ran {
    binary: Binary,
    output: String,
    ok: bool,
    took: Duration,
}

fn run_one(b: &Binary, cargo: &Path) -> Ran {
    let started = Instant::now();
    let fail = |why: String| Ran {
        binary: b.clone(),
        output: format!("test result: FAILED. 0 passed; 1 failed; {why}\n"),
        ok: false,
        took: started.elapsed(),
    };
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format!("no pipe: {e}")),
    };
    let child = writer.try_clone().and_then(|w2| {
        Command::new(&b.exe)
            .current_dir(&b.dir)
            .env("CARGO", cargo)
            .env("CARGO_MANIFEST_DIR", &b.dir)
            .env("CARGO_PKG_NAME", &b.package)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(w2)
            .spawn()
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run {}: {e}", b.exe.display())),
    };
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => break None,
        }
    };
    // a test's children may hold the pipe after it ended: wait a little
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut output = if out.is_finished() {
        String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned()
    } else {
        "(its output was held open by a process it left behind)\n".to_owned()
    };
    let ok = match status {
        Some(s) => s.success(),
        None => {
            output.push_str(&format!(
                "test result: FAILED. 0 passed; 1 failed; killed after {} s\n",
                LIMIT.as_secs()
            ));
            false
        }
    };
    Ran {
        binary: b.clone(),
        output,
        ok,
        took: started.elapsed(),
    }
}

/// What the binaries that ended said, together.
#[derive(Default)]
struct Progress {
    tally: Tally,
    /// Each binary's name and wall time.
    times: Vec<(String, Duration)>,
    /// A binary exited with a failure.
    failed: bool,
}

/// The binaries still to run, and whether a heavy one runs now.
struct Queue {
    waiting: VecDeque<Binary>,
    heavy_running: bool,
}

impl Queue {
    /// The next binary that may start now (a heavy one only when no other
    /// heavy one runs); `None` when none is left, `Some(None)` when the
    /// ones left must wait.
    fn next(&mut self) -> Option<Option<Binary>> {
        if self.waiting.is_empty() {
            return None;
        }
        let i = self
            .waiting
            .iter()
            .position(|b| !(b.heavy() && self.heavy_running));
        Some(i.and_then(|i| self.waiting.remove(i)).inspect(|b| {
            self.heavy_running |= b.heavy();
        }))
    }
}

/// Runs `list` `jobs` at a time (one heavy one at most), each printed and
/// tallied as it ends.
fn run_all(list: Vec<Binary>, jobs: usize, cargo: &Path, progress: &Mutex<Progress>) {
    let queue = Arc::new(Mutex::new(Queue {
        waiting: VecDeque::from(list),
        heavy_running: false,
    }));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let queue = Arc::clone(&queue);
            s.spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let b = match next {
                    None => break,
                    Some(None) => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    Some(Some(b)) => b,
                };
                let ran = run_one(&b, cargo);
                if b.heavy() {
                    queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .heavy_running = false;
                }
                let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                let head = format!(
                    "     Running {} ({}) [{} {:.1} s]",
                    ran.binary.src,
                    ran.binary.exe.display(),
                    ran.binary.package,
                    ran.took.as_secs_f64()
                );
                println!("{head}");
                p.tally.line(&head);
                for l in ran.output.lines() {
                    println!("{l}");
                    p.tally.line(l);
                }
                p.times.push((ran.binary.name(), ran.took));
                p.failed |= !ran.ok;
            });
        }
    });
}

/// Builds the test binaries, runs them and prints the tally. True when
/// every one passed.
pub fn run(root: &Path) -> Result<bool> {
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    eprintln!("$ cargo test --workspace --no-run");
    let built = Command::new(&cargo)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !built.status.success() {
        bail!("the tests do not build");
    }
    let all = binaries(&String::from_utf8_lossy(&built.stdout))?;
    let (side_by_side, alone) = plan(all);
    eprintln!(
        "running {} test binaries, {JOBS} at a time, then {} alone",
        side_by_side.len(),
        alone.len()
    );
    let started = Instant::now();
    let progress = Mutex::new(Progress::default());
    run_all(side_by_side, JOBS, &cargo, &progress);
    run_all(alone, 1, &cargo, &progress);
    let mut p = progress.into_inner().unwrap_or_else(|e| e.into_inner());
    p.times.sort_by_key(|t| std::cmp::Reverse(t.1));
    println!("slowest:");
    for (name, took) in p.times.iter().take(8) {
        println!("  {:>6.1} s  {name}", took.as_secs_f64());
    }
    println!("ran for {:.0} s", started.elapsed().as_secs_f64());
    print!("{}", p.tally.summary());
    Ok(!p.failed && p.tally.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_are_read_from_cargo_messages_and_planned() {
        let messages = [
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/swarm-client#0.1.0","manifest_path":"/w/swarm-client/Cargo.toml","target":{"kind":["test"],"name":"faults","src_path":"/w/swarm-client/tests/faults.rs"},"profile":{"test":true},"executable":"/w/target/debug/deps/faults-1"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/common#hls-swarm-common@0.1.0","manifest_path":"/w/common/Cargo.toml","target":{"kind":["lib"],"name":"common","src_path":"/w/common/src/lib.rs"},"profile":{"test":true},"executable":"/w/target/debug/deps/common-2"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/common#hls-swarm-common@0.1.0","manifest_path":"/w/common/Cargo.toml","target":{"kind":["lib"],"name":"common","src_path":"/w/common/src/lib.rs"},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        let all = binaries(&messages).unwrap();
        assert_eq!(
            all.iter().map(Binary::name).collect::<Vec<_>>(),
            [
                "swarm-client tests/faults.rs",
                "hls-swarm-common src/lib.rs"
            ]
        );
        assert_eq!(all[0].dir, Path::new("/w/swarm-client"));
        let (side, alone) = plan(all.clone());
        assert_eq!(side.len(), 1);
        assert_eq!(alone[0].src, "tests/faults.rs");
        // one heavy binary at a time
        let heavy = |src: &str| Binary {
            exe: "/x".into(),
            package: "test-origin".into(),
            dir: "/w".into(),
            src: src.into(),
        };
        let mut q = Queue {
            waiting: VecDeque::from([
                heavy("tests/microvm.rs"),
                heavy("tests/container.rs"),
                all[1].clone(),
            ]),
            heavy_running: false,
        };
        assert_eq!(q.next().unwrap().unwrap().src, "tests/microvm.rs");
        assert_eq!(q.next().unwrap().unwrap().package, "hls-swarm-common");
        assert_eq!(q.next(), Some(None), "the second heavy one waits");
        q.heavy_running = false;
        assert_eq!(q.next().unwrap().unwrap().src, "tests/container.rs");
        assert_eq!(q.next(), None);
    }
}
