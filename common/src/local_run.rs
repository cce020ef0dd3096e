//! The local run: a component's run description — the same [`Script`] the
//! runner target renders as bash — executed here, its services under the
//! [`Supervisor`]. What the runner script does, this does: settings from
//! their defaults or the caller, checked by kind; computed values; free
//! ports; directories and files; the banner; the services, restarted when
//! they die; the wait for readiness; cleanup of the state dir at the end.
//! The two cannot drift apart, because both read one description.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::deploy::description::{Ready, Script, VarKind};
use crate::host::{ensure_port_free, ensure_writable_dir, find_program};
use crate::render::{resolve_all, Template};
use crate::supervise::{shutdown_flag, Event, Spec, Supervisor};

/// How to run a description here.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Values that replace settings' defaults (variable, value), e.g.
    /// `("HLS_DIR", "/srv/hls")`; each is checked by its kind.
    pub set: Vec<(&'static str, String)>,
    /// How long services get between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Programs found here rather than on PATH: (name, path), e.g. the
    /// component's own binary.
    pub programs: Vec<(&'static str, PathBuf)>,
}

/// A description running here.
pub struct Running {
    name: String,
    state: Option<tempfile::TempDir>,
    vars: BTreeMap<&'static str, String>,
    ready: Vec<Ready>,
    services: Vec<(String, usize)>,
    sup: Supervisor,
    shutdown: Arc<AtomicBool>,
    grace: Duration,
}

/// The address a client uses for a listen address (`0.0.0.0` → 127.0.0.1).
fn url_host(listen: &str) -> String {
    match listen {
        "0.0.0.0" => "127.0.0.1".into(),
        "[::]" => "[::1]".into(),
        other => other.into(),
    }
}

/// The variable a template is, when it is exactly one (`HLS_DIR`).
fn only_var(t: &Template) -> Option<&'static str> {
    match t.vars().as_slice() {
        [v] if t.as_plain().is_none() && t.pieces().len() == 1 => Some(v),
        _ => None,
    }
}

/// The file in a run's state dir that names the process owning it.
const OWNER_FILE: &str = ".owner";

/// This process as an owner: its pid and start time (clock ticks after
/// boot, from /proc), so that a reused pid is not taken for it.
fn owner_of(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the fields after the command, which is in parentheses
    let rest = stat.rsplit_once(')')?.1;
    let start = rest.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Removes the state dirs of earlier runs named `prefix…` in `tmp` whose
/// owner is gone (killed outright, with no chance to clean up): each had
/// an owner file naming a process that no longer runs. Dirs of runs still
/// going, and dirs without an owner file, are left alone. Returns those
/// removed.
pub fn remove_stale(tmp: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(e.path().join(OWNER_FILE)) else {
            continue;
        };
        let alive = owner
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .and_then(owner_of)
            .is_some_and(|now| now == owner.trim());
        if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// The longest a preparation step may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Runs `program args` to its end (at most [`STEP_LIMIT`]); its output goes
/// to a log in `state`, quoted in the error when it fails.
fn run_step(program: &str, args: &[String], env: &[(&str, &str)], state: &Path) -> Result<()> {
    let log_path = state.join("prepare.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let deadline = Instant::now() + STEP_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{program}` did not finish within {} s",
                STEP_LIMIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        let out = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = out.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`{program} {}` failed ({status}):\n{}",
            args.join(" "),
            tail.join("\n")
        );
    }
    Ok(())
}

/// Starts `script` here: checks everything first (programs, settings, ports,
/// directories), then writes its files, prints its banner and starts its
/// services. Nothing is started when a check fails. State dirs that runs
/// killed outright left behind are removed first.
pub fn start(script: &Script, opts: &Options) -> Result<Running> {
    let find = |name: &str, package: &str| -> Result<PathBuf> {
        match opts.programs.iter().find(|(n, _)| *n == name) {
            Some((_, p)) => Ok(p.clone()),
            None => find_program(name, package),
        }
    };
    let mut programs = Vec::new();
    for s in &script.services {
        programs.push(find(s.program, s.debian_package)?);
    }
    for step in script.prepare.iter().flat_map(|p| &p.steps) {
        find(step.program, step.debian_package)?;
    }
    let prefix = format!("{}-", script.name);
    for dir in remove_stale(&std::env::temp_dir(), &prefix) {
        println!(
            "removed {}: the state of a run that was killed before it could clean up",
            dir.display()
        );
    }
    let state = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .context("cannot create a temp dir")?;
    if let Some(me) = owner_of(std::process::id()) {
        std::fs::write(state.path().join(OWNER_FILE), format!("{me}\n"))
            .context("cannot write the run's owner file")?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        // services started by root drop to other users (nginx workers): they
        // must reach what is in here
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
    let state_dir = state
        .path()
        .to_str()
        .ok_or_else(|| anyhow!("the temp dir {} is not UTF-8", state.path().display()))?;
    vars.insert("STATE_DIR", state_dir.to_owned());
    let lookup = |vars: &BTreeMap<&'static str, String>, t: &Template| {
        t.resolve(&|v| vars.get(v).cloned())
            .map_err(anyhow::Error::from)
    };
    for v in &script.env {
        let given = opts.set.iter().find(|(n, _)| *n == v.name);
        let value = match given {
            Some((_, x)) => x.clone(),
            None => lookup(&vars, &v.default)?,
        };
        let value = v.kind.check(v.name, &value)?;
        if v.kind == VarKind::ListenAddr {
            vars.insert("URL_HOST", url_host(&value));
        }
        vars.insert(v.name, value);
    }
    for (name, t) in &script.computed {
        let value = lookup(&vars, t)?;
        vars.insert(name, value);
    }
    for (addr, port) in &script.free_ports {
        let ip: IpAddr = vars[addr]
            .trim_matches(['[', ']'])
            .parse()
            .with_context(|| format!("{addr} is not an address"))?;
        let p: u16 = vars[port].parse()?;
        ensure_port_free(ip, p, &format!("--port or {port}"))?;
    }
    for d in &script.dirs {
        let path = PathBuf::from(lookup(&vars, d)?);
        let hint = only_var(d).unwrap_or("its setting");
        ensure_writable_dir(&path, hint)?;
    }
    for (path, content) in &script.files {
        let path = lookup(&vars, path)?;
        std::fs::write(&path, lookup(&vars, content)?)
            .with_context(|| format!("cannot write {path}"))?;
    }
    for p in &script.prepare {
        let made: Vec<String> = p
            .unless_exists
            .iter()
            .map(|t| lookup(&vars, t))
            .collect::<Result<_>>()?;
        if !made.is_empty() && made.iter().all(|f| Path::new(f).is_file()) {
            continue;
        }
        for step in &p.steps {
            let args = resolve_all(&step.args, &|v| vars.get(v).cloned())?;
            run_step(step.program, &args, &step.env, state.path())
                .with_context(|| format!("cannot make {}", p.what))?;
        }
    }
    if let Some(b) = &script.banner {
        print!("{}", lookup(&vars, b)?);
    }
    let shutdown = shutdown_flag()?;
    let mut sup = Supervisor::new()?;
    let mut services = Vec::new();
    for (s, program) in script.services.iter().zip(programs) {
        let args = resolve_all(&s.args, &|v| vars.get(v).cloned())?;
        let idx = sup.start(Spec {
            name: s.name.clone(),
            program,
            args,
            env: Vec::new(),
            echo: true,
        })?;
        services.push((s.name.clone(), idx));
    }
    Ok(Running {
        name: script.name.clone(),
        state: Some(state),
        vars,
        ready: script.ready.clone(),
        services,
        sup,
        shutdown,
        grace: opts.grace,
    })
}

impl Running {
    /// A setting's or computed value of the run (`BASE_URL`, `HLS_DIR`).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The run's state dir (removed at the end).
    pub fn state_dir(&self) -> &Path {
        self.state.as_ref().expect("until the end").path()
    }

    fn value(&self, t: &Template) -> String {
        t.resolve(&|v| self.vars.get(v).cloned())
            .unwrap_or_default()
    }

    /// Each readiness condition and whether it holds now.
    fn readiness(&self) -> Vec<(String, bool)> {
        self.ready
            .iter()
            .map(|r| match r {
                Ready::File(p) => {
                    let p = self.value(p);
                    let ok = Path::new(&p).is_file();
                    (p, ok)
                }
                Ready::Http {
                    port_var,
                    path,
                    tls,
                } => {
                    let scheme = if *tls { "https" } else { "http" };
                    let url = format!(
                        "{scheme}://{}:{}{path}",
                        self.vars
                            .get("URL_HOST")
                            .map_or("127.0.0.1", |s| s.as_str()),
                        self.vars.get(port_var).map_or("", |s| s.as_str())
                    );
                    let ok = if *tls {
                        crate::http_check::is_ok_any_certificate(&url, Duration::from_secs(1))
                    } else {
                        crate::http_check::is_ok(&url, Duration::from_secs(1))
                    };
                    (url, ok)
                }
            })
            .collect()
    }

    /// Passes on the supervisor's events; a service that gave up ends the run.
    fn watch(&mut self) -> Result<()> {
        for e in self.sup.poll() {
            if let Event::GaveUp { last_output, .. } = &e {
                let mut msg = e.to_string();
                msg.push_str("\nits last lines:");
                for l in last_output.iter().rev().take(15).rev() {
                    msg.push_str(&format!("\n  {l}"));
                }
                self.sup.stop_all(self.grace);
                bail!(msg);
            }
            eprintln!("{}: {e}", self.name);
        }
        Ok(())
    }

    /// Waits until every readiness condition holds: `Some(time taken)`, or
    /// `None` when a stop was asked for first. Fails (stopping everything)
    /// after `timeout`, naming each condition and the services' last lines.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Option<Duration>> {
        let started = Instant::now();
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return Ok(None);
            }
            self.watch()?;
            let conds = self.readiness();
            if conds.iter().all(|(_, ok)| *ok) {
                return Ok(Some(started.elapsed()));
            }
            if started.elapsed() > timeout {
                let mut msg = format!("not ready within {} s:", timeout.as_secs());
                for (what, ok) in conds {
                    let state = match (what.starts_with("http"), ok) {
                        (true, true) => "answers",
                        (true, false) => "does not answer",
                        (false, true) => "exists",
                        (false, false) => "missing",
                    };
                    msg.push_str(&format!("\n  {what} {state}"));
                }
                for (name, idx) in &self.services {
                    msg.push_str(&format!("\nlast lines of {name}:"));
                    for l in self.sup.last_output(*idx).iter().rev().take(10).rev() {
                        msg.push_str(&format!("\n  {l}"));
                    }
                }
                self.sup.stop_all(self.grace);
                bail!(msg);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether Ctrl-C or SIGTERM asked the run to stop.
    pub fn stop_requested(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Stops every service and removes the state dir.
    pub fn stop(mut self) -> Result<()> {
        self.sup.stop_all(self.grace);
        if let Some(s) = self.state.take() {
            s.close().context("cannot remove the temp dir")?;
        }
        Ok(())
    }

    /// Runs until Ctrl-C or SIGTERM (then stops cleanly: Ok) or until a
    /// service keeps failing (Err, with its last lines).
    pub fn run_until_stopped(self) -> Result<()> {
        self.run_until_stopped_checking(|| None)
    }

    /// The same, asking `check` about once a second whether a service that
    /// runs is stuck: when it answers (service, why), the reason is printed
    /// and the service killed, so that the supervisor starts it again with
    /// its backoff (and ends the run if it keeps failing).
    pub fn run_until_stopped_checking(
        mut self,
        mut check: impl FnMut() -> Option<(String, String)>,
    ) -> Result<()> {
        let mut next_check = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            if std::time::Instant::now() >= next_check {
                next_check += Duration::from_secs(1);
                if let Some((service, why)) = check() {
                    let idx = self
                        .services
                        .iter()
                        .find(|(name, _)| *name == service)
                        .map(|(_, i)| *i);
                    if let Some(pid) = idx.and_then(|i| self.sup.pid(i)) {
                        eprintln!("{}: {why}; restarting {service}", self.name);
                        crate::supervise::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
            if self.shutdown.load(Ordering::Relaxed) {
                eprintln!("{}: stopping", self.name);
                let name = self.name.clone();
                self.stop()?;
                eprintln!("{name}: stopped");
                return Ok(());
            }
            self.watch()?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_by_kind() {
        assert_eq!(VarKind::Port.check("PORT", "8080").unwrap(), "8080");
        for bad in ["0", "65536", "x", ""] {
            let e = VarKind::Port.check("PORT", bad).unwrap_err().to_string();
            assert!(e.starts_with("PORT: expected a port"), "{e}");
        }
        assert_eq!(VarKind::Path.check("D", "/srv/hls").unwrap(), "/srv/hls");
        for bad in ["relative", "/a b", "/a;b", "/a$b", "/a{b"] {
            assert!(VarKind::Path.check("D", bad).is_err(), "{bad}");
        }
        assert_eq!(VarKind::ListenAddr.check("L", "::1").unwrap(), "[::1]");
        assert_eq!(
            VarKind::ListenAddr.check("L", "0.0.0.0").unwrap(),
            "0.0.0.0"
        );
        assert!(VarKind::ListenAddr.check("L", "localhost").is_err());
        assert!(VarKind::Url.check("U", "ftp://x").is_err());
        assert!(VarKind::Url.check("U", "http://x/$(id)").is_err());
        assert_eq!(url_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(url_host("[::]"), "[::1]");
        assert_eq!(url_host("10.0.0.2"), "10.0.0.2");
    }

    #[test]
    fn only_single_variable_templates_name_a_setting() {
        assert_eq!(only_var(&Template::var("HLS_DIR")), Some("HLS_DIR"));
        assert_eq!(only_var(&Template::var("STATE_DIR").join("/run")), None);
        assert_eq!(only_var(&Template::text("/x")), None);
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    fn only_dirs_of_runs_that_are_gone_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |name: &str, owner: Option<String>| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            if let Some(o) = owner {
                std::fs::write(d.join(OWNER_FILE), o).unwrap();
            }
            d
        };
        // a process that has ended
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = child.id();
        let gone = owner_of(gone_pid).unwrap_or(format!("{gone_pid} 1"));
        child.wait().unwrap();
        let me = owner_of(std::process::id()).unwrap();
        let stale = dir("origin-aaa", Some(gone));
        let live = dir("origin-bbb", Some(me.clone()));
        // this pid, but another start time: the pid was reused
        let reused = dir("origin-ccc", Some(format!("{} 1", std::process::id())));
        let unknown = dir("origin-ddd", None);
        let other = dir("other-eee", Some(format!("{gone_pid} 1")));
        let removed = remove_stale(tmp.path(), "origin-");
        assert_eq!(removed, vec![stale.clone(), reused.clone()]);
        assert!(!stale.exists() && !reused.exists());
        assert!(live.exists() && unknown.exists() && other.exists());
    }
}
