//! Supervising child processes.
//!
//! * Every child runs in its own process group, so a signal reaches a program and
//!   everything it forked (nginx's workers), and a Ctrl-C typed at the terminal
//!   reaches only the supervisor, which then stops the children in order.
//! * Every child gets a parent-death signal (SIGKILL), and a watchdog process
//!   holds the other end of a pipe from the supervisor: when the supervisor dies
//!   for any reason, SIGKILL included, the pipe closes and the watchdog kills the
//!   process groups of every child still registered. That also covers processes
//!   a child forked (parent-death signals are not inherited).
//! * A child that exits is restarted with exponential backoff; several quick
//!   failures in a row give up.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Exponential backoff with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
    /// ± this fraction of the delay, e.g. 0.2 for ±20 %.
    pub jitter: f64,
    /// A child that ran at least this long starts again from `initial`.
    pub reset_after: Duration,
}

impl Backoff {
    /// The delay before restart number `attempt` (1 = first restart), with
    /// `unit` in [0, 1) drawn by the caller (so runs can be replayed).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial.as_secs_f64() * self.factor.powi(attempt.saturating_sub(1) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let jittered = capped * (1.0 + self.jitter * (2.0 * unit - 1.0));
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

/// One child's place in a restart policy: pure, driven by the times it is
/// given, so the policy is tested without processes. The supervisor and
/// both swarm engines keep one per child.
#[derive(Clone, Debug, Default)]
pub struct Restarts {
    attempt: u32,
    started: Option<Instant>,
}

impl Restarts {
    /// It started at `at`.
    pub fn started(&mut self, at: Instant) {
        self.started = Some(at);
    }

    /// It ended — or could not start — at `at`: how long it ran, and the
    /// delay before the next start under `policy` (a run of at least
    /// `reset_after` starts the backoff over; `unit` in [0, 1) draws the
    /// jitter).
    pub fn ended(&mut self, policy: &Backoff, at: Instant, unit: f64) -> (Duration, Duration) {
        let ran = self
            .started
            .take()
            .map_or(Duration::ZERO, |s| at.saturating_duration_since(s));
        if ran >= policy.reset_after {
            self.attempt = 0;
        }
        self.attempt += 1;
        (ran, policy.delay(self.attempt, unit))
    }

    /// Restarts in the current series (0 before the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(10),
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        }
    }
}

/// A flag that turns true on SIGINT, SIGTERM or SIGHUP (Ctrl-C, `kill`, a closed
/// terminal). The supervisor polls it and stops the children in order.
pub fn shutdown_flag() -> Result<Arc<std::sync::atomic::AtomicBool>> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("cannot install a signal handler")?;
    }
    Ok(flag)
}

/// Spawns `cmd` in a new process group with a parent-death signal.
pub fn spawn_in_group(cmd: &mut Command) -> std::io::Result<Child> {
    prepare_in_group(cmd);
    cmd.spawn()
}

/// Makes `cmd` start in a new process group with a parent-death signal
/// (SIGKILL when the spawning thread ends).
pub fn prepare_in_group(cmd: &mut Command) {
    cmd.process_group(0);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// Sends `sig` to the process group led by `pid` (ignoring "no such process").
pub fn signal_group(pid: u32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pid as i32), sig);
}

/// Kills the registered process groups when the supervisor dies.
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

/// The watchdog: reads `add PGID` / `del PGID` lines; on end of input (the
/// supervisor is gone) SIGKILLs every group still registered. It ignores INT and
/// TERM so that a Ctrl-C at the terminal cannot take it down first.
const WATCHDOG_SH: &str = r#"trap '' INT TERM HUP
groups=" "
while read -r op pg; do
  case "$op" in
    add) groups="$groups$pg " ;;
    del) groups="${groups/ $pg / }" ;;
  esac
done
for pg in $groups; do kill -KILL -- "-$pg" 2>/dev/null; done
exit 0
"#;

impl Watchdog {
    pub fn start() -> Result<Self> {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WATCHDOG_SH)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start the watchdog (bash)")?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    fn send(&mut self, line: &str) {
        if let Some(p) = &mut self.pipe {
            let _ = writeln!(p, "{line}");
            let _ = p.flush();
        }
    }

    /// Registers a process group to kill if the supervisor dies.
    pub fn add(&mut self, pgid: u32) {
        self.send(&format!("add {pgid}"));
    }

    /// Forgets a process group (it has ended).
    pub fn remove(&mut self, pgid: u32) {
        self.send(&format!("del {pgid}"));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the pipe ends the watchdog; every child is gone by now.
        drop(self.pipe.take());
        let _ = self.child.wait();
    }
}

/// What a supervised child is.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Short name for logs (`ffmpeg`, `nginx`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Print the child's output lines, prefixed with its name, on stderr.
    pub echo: bool,
}

/// The last lines a child wrote (stdout and stderr).
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    const KEEP: usize = 40;

    fn push(&self, line: String) {
        let mut q = self.0.lock().expect("tail lock");
        if q.len() == Self::KEEP {
            q.pop_front();
        }
        q.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("tail lock").iter().cloned().collect()
    }
}

fn pump(reader: impl Read + Send + 'static, name: String, tail: Tail, echo: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[{name}] {line}");
            }
            tail.push(line);
        }
    });
}

/// Something that happened to a child.
#[derive(Debug, Clone)]
pub enum Event {
    Exited {
        name: String,
        status: String,
        ran_for: Duration,
        restart_in: Duration,
        attempt: u32,
    },
    Restarted {
        name: String,
        pid: u32,
    },
    GaveUp {
        name: String,
        status: String,
        quick_failures: u32,
        last_output: Vec<String>,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Exited {
                name,
                status,
                ran_for,
                restart_in,
                attempt,
            } => write!(
                f,
                "{name} exited ({status}) after {:.1} s; restart #{attempt} in {:.1} s",
                ran_for.as_secs_f64(),
                restart_in.as_secs_f64()
            ),
            Event::Restarted { name, pid } => write!(f, "{name} restarted (pid {pid})"),
            Event::GaveUp {
                name,
                status,
                quick_failures,
                ..
            } => write!(
                f,
                "{name} failed {quick_failures} times in a row, last {status}; giving up"
            ),
        }
    }
}

struct Supervised {
    spec: Spec,
    child: Option<Child>,
    restart_at: Option<Instant>,
    policy: Restarts,
    quick_failures: u32,
    restarts: u32,
    tail: Tail,
}

/// Runs children, restarts them, stops them.
pub struct Supervisor {
    children: Vec<Supervised>,
    watchdog: Watchdog,
    pub backoff: Backoff,
    /// An exit within this time of the start counts as a quick failure.
    pub quick: Duration,
    /// This many quick failures in a row give up.
    pub max_quick_failures: u32,
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!(
            "killed by {}",
            Signal::try_from(s)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| format!("signal {s}"))
        ),
        _ => status.to_string(),
    }
}

impl Supervisor {
    pub fn new() -> Result<Self> {
        Ok(Self {
            children: Vec::new(),
            watchdog: Watchdog::start()?,
            backoff: Backoff::default(),
            quick: Duration::from_secs(5),
            max_quick_failures: 3,
        })
    }

    fn spawn(spec: &Spec, tail: &Tail, watchdog: &mut Watchdog) -> Result<Child> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_in_group(&mut cmd)
            .with_context(|| format!("cannot start {} ({})", spec.name, spec.program.display()))?;
        watchdog.add(child.id());
        pump(
            child.stdout.take().expect("piped"),
            spec.name.clone(),
            tail.clone(),
            spec.echo,
        );
        pump(
            child.stderr.take().expect("piped"),
            spec.name.clone(),
            tail.clone(),
            spec.echo,
        );
        Ok(child)
    }

    /// Starts a child; returns its index.
    pub fn start(&mut self, spec: Spec) -> Result<usize> {
        let tail = Tail::default();
        let child = Self::spawn(&spec, &tail, &mut self.watchdog)?;
        let mut policy = Restarts::default();
        policy.started(Instant::now());
        self.children.push(Supervised {
            spec,
            child: Some(child),
            restart_at: None,
            policy,
            quick_failures: 0,
            restarts: 0,
            tail,
        });
        Ok(self.children.len() - 1)
    }

    pub fn pid(&self, idx: usize) -> Option<u32> {
        self.children[idx].child.as_ref().map(Child::id)
    }

    pub fn restarts(&self, idx: usize) -> u32 {
        self.children[idx].restarts
    }

    pub fn last_output(&self, idx: usize) -> Vec<String> {
        self.children[idx].tail.lines()
    }

    /// Notices exits, schedules and performs restarts. Call often (every 100 ms).
    pub fn poll(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let now = Instant::now();
        for c in &mut self.children {
            if let Some(child) = &mut c.child {
                let Ok(Some(status)) = child.try_wait() else {
                    continue;
                };
                let pid = child.id();
                // take down anything the child left in its group
                signal_group(pid, Signal::SIGKILL);
                self.watchdog.remove(pid);
                c.child = None;
                let (ran_for, delay) = c.policy.ended(&self.backoff, now, 0.5);
                if ran_for < self.quick {
                    c.quick_failures += 1;
                } else {
                    c.quick_failures = 0;
                }
                if c.quick_failures >= self.max_quick_failures {
                    events.push(Event::GaveUp {
                        name: c.spec.name.clone(),
                        status: describe(status),
                        quick_failures: c.quick_failures,
                        last_output: c.tail.lines(),
                    });
                    continue;
                }
                c.restart_at = Some(now + delay);
                events.push(Event::Exited {
                    name: c.spec.name.clone(),
                    status: describe(status),
                    ran_for,
                    restart_in: delay,
                    attempt: c.policy.attempt(),
                });
            } else if c.restart_at.is_some_and(|t| t <= now) {
                c.restart_at = None;
                match Self::spawn(&c.spec, &c.tail, &mut self.watchdog) {
                    Ok(child) => {
                        events.push(Event::Restarted {
                            name: c.spec.name.clone(),
                            pid: child.id(),
                        });
                        c.child = Some(child);
                        c.policy.started(now);
                        c.restarts += 1;
                    }
                    Err(e) => {
                        c.tail.push(format!("{e:#}"));
                        events.push(Event::GaveUp {
                            name: c.spec.name.clone(),
                            status: format!("{e:#}"),
                            quick_failures: c.quick_failures,
                            last_output: c.tail.lines(),
                        });
                    }
                }
            }
        }
        events
    }

    /// Whether child `idx` is running now.
    pub fn is_running(&mut self, idx: usize) -> bool {
        match &mut self.children[idx].child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops every child: SIGTERM to each process group, then SIGKILL to those
    /// still there after `grace`.
    pub fn stop_all(&mut self, grace: Duration) {
        for c in &mut self.children {
            c.restart_at = None;
            if let Some(child) = &c.child {
                signal_group(child.id(), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut running = false;
            for c in &mut self.children {
                if let Some(child) = &mut c.child {
                    if matches!(child.try_wait(), Ok(None)) {
                        running = true;
                    }
                }
            }
            if !running || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for c in &mut self.children {
            if let Some(mut child) = c.child.take() {
                let pid = child.id();
                signal_group(pid, Signal::SIGKILL);
                let _ = child.wait();
                self.watchdog.remove(pid);
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(2));
    }
}

/// `cmd`'s output (stdin closed), or an error once it has run longer than
/// `limit` (it is killed then); the error names the `setting` that sets it.
pub fn output_within(
    cmd: &mut Command,
    limit: Duration,
    setting: &str,
) -> Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{} did not finish within {} s ({setting})",
                std::path::Path::new(cmd.get_program()).display(),
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_within_returns_the_output_or_kills_at_the_limit() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
            "x",
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        let started = Instant::now();
        let e = output_within(
            Command::new("sleep").arg("30"),
            Duration::from_millis(200),
            "--the-limit",
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            e.to_string(),
            "sleep did not finish within 0.2 s (--the-limit)"
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(250),
            factor: 1.7,
            max: Duration::from_secs(5),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        };
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(250));
        assert_eq!(b.delay(2, 0.5).as_millis(), 425);
        assert_eq!(b.delay(20, 0.5), Duration::from_secs(5));
        assert_eq!(b.delay(1, 0.0).as_millis(), 200);
        assert_eq!(b.delay(1, 1.0).as_millis(), 300);
    }

    #[test]
    fn restarts_back_off_and_start_over_after_a_long_run() {
        let policy = Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(5),
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = Restarts::default();
        // could not start at all: the first delay
        assert_eq!(
            r.ended(&policy, at(0), 0.5),
            (Duration::ZERO, Duration::from_secs(1))
        );
        // quick failures: 2, 4, then capped at 5
        let mut delays = Vec::new();
        for s in [1u64, 4, 9] {
            r.started(at(s));
            let (ran, d) = r.ended(&policy, at(s + 1), 0.5);
            assert_eq!(ran, Duration::from_secs(1));
            delays.push(d.as_secs());
        }
        assert_eq!(delays, [2, 4, 5]);
        assert_eq!(r.attempt(), 4);
        // a run of 30 s starts the series over
        r.started(at(20));
        assert_eq!(r.ended(&policy, at(50), 0.5).1, Duration::from_secs(1));
        assert_eq!(r.attempt(), 1);
    }
}
