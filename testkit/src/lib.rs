//! What the workspace's tests share (a dev-dependency of every component):
//! free ports, a hostile HTTP server, the lock that runs heavy tests one at a time, process
//! helpers, and the validators that run real tools on generated files
//! (`nginx -t`, shellcheck, `nix-instantiate --parse`, `systemd-analyze
//! verify`).

pub mod cdp;
pub mod hostile;
pub mod netns;
pub mod origin;
pub mod player;
pub mod procs;
pub mod proxy;
pub mod registry;
pub mod tools;
pub mod unix_http;

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that start encoders, origins, containers or VMs run one at a time
/// (within a test binary; cargo runs the binaries one after another).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP port on 127.0.0.1 nothing listens on right now, from 20000 up to
/// the kernel's ephemeral range (`ip_local_port_range`): a port of that
/// range may be taken by any outgoing connection (of the suites running
/// beside this one) between now and the moment the server it is for binds
/// it; one below it only by another listener. (The project's own default
/// ports, 17080 and the like, lie below 20000.) Each process starts at its
/// own place and takes the ports in turn, so that binaries picking at once
/// rarely pick the same.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FLOOR: u32 = 20_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let bindable = |port: u32| std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok();
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(65_536);
    if low > FLOOR + 1_000 {
        let span = low - FLOOR;
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        for _ in 0..span {
            let port = FLOOR + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if bindable(port) {
                return port as u16;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port on 127.0.0.1")
        .local_addr()
        .expect("its address")
        .port()
}

/// Runs `cmd` to its end and returns its stdout; panics with what it
/// printed when it fails.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    String::from_utf8_lossy(&output_ok(cmd).stdout).into_owned()
}

/// [`run_ok`], returning the whole output (stdout as bytes, and stderr).
pub fn output_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        printed(&out)
    );
    out
}

/// Runs `cmd` to its end, whatever its exit status; panics only when it
/// cannot be started.
pub fn output(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` to its end: its exit code (-1 when a signal ended it) and
/// what it printed.
pub fn run_any(cmd: &mut std::process::Command) -> (i32, String) {
    let out = output(cmd);
    (out.status.code().unwrap_or(-1), printed(&out))
}

/// What a finished command printed: its stdout, then its stderr.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, which must fail with exit status `code`; returns its stderr.
pub fn stderr_of_failed(cmd: &mut std::process::Command, code: i32) -> String {
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {stderr}");
    stderr
}

/// The strings of the JSON array `v`; panics on anything else.
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

/// A command for host program `name` (from Debian package `package`); a
/// test that needs a program this host lacks fails saying how to get it.
pub fn tool(name: &str, package: &str) -> std::process::Command {
    match which::which(name) {
        Ok(path) => std::process::Command::new(path),
        Err(_) => panic!(
            "`{name}` is not installed: `cargo xtask test --setup-only` installs everything \
             the tests use (or: sudo apt-get install {package})"
        ),
    }
}

/// Headless Chromium as root on a machine without network: no sandbox, no
/// GPU, no background connections, the profile in `profile`.
pub fn chromium(profile: &std::path::Path) -> std::process::Command {
    let mut c = tool("chromium", "chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// A child process whose stdout and stderr are collected, line by line, as
/// it runs.
pub struct Captured {
    pub child: std::process::Child,
    output: std::sync::Arc<Mutex<String>>,
    /// Its pipes not yet read to their end.
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Captured {
    /// Spawns `cmd` with stdin closed and its output collected.
    pub fn spawn(cmd: &mut std::process::Command) -> Captured {
        Captured::spawn_echoing(cmd, false)
    }

    /// [`Captured::spawn`], also printing each line as it comes when `echo`
    /// (for a person watching, as `cargo xtask demo` is).
    pub fn spawn_echoing(cmd: &mut std::process::Command, echo: bool) -> Captured {
        use std::io::BufRead;
        use std::process::Stdio;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let output = std::sync::Arc::new(Mutex::new(String::new()));
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
        for r in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let out = std::sync::Arc::clone(&output);
            let open = std::sync::Arc::clone(&open);
            std::thread::spawn(move || {
                // split on bytes: a line that is not UTF-8 is kept (lossily)
                // rather than ending the read before the pipe does
                for line in std::io::BufReader::new(r)
                    .split(b'\n')
                    .map_while(Result::ok)
                {
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    let line = String::from_utf8_lossy(line);
                    if echo {
                        println!("{line}");
                    }
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    o.push_str(&line);
                    o.push('\n');
                }
                open.fetch_sub(1, std::sync::atomic::Ordering::Release);
            });
        }
        Captured {
            child,
            output,
            open,
        }
    }

    /// Waits until both pipes are read to their end (`limit` at most): a
    /// child that has exited may still have its last lines in a reader's
    /// hands. Call it after the child is waited for, before reading what
    /// it printed last.
    pub fn drain(&self, limit: std::time::Duration) {
        procs::wait_until(limit, || {
            self.open.load(std::sync::atomic::Ordering::Acquire) == 0
        });
    }

    /// Waits for the child to exit (`limit` at most; `None` if it has not)
    /// and then for its last lines ([`Captured::drain`]).
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let status = procs::poll(limit, || self.child.try_wait().ok().flatten())?;
        self.drain(std::time::Duration::from_secs(5));
        Some(status)
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A child still running when its test lets go of it is stopped as Ctrl-C
/// would (SIGTERM: an origin stops what it started), and killed if it has
/// not ended 10 s later — a test that panicked, or forgot, leaves nothing
/// running to load the machine under the tests after it.
impl Drop for Captured {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(10) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Kubernetes versions the manifests are validated against: the oldest
/// supported and the newest kubernetes-validate knows.
pub const KUBERNETES_VERSIONS: &[&str] = &["1.33.0", "1.37.0"];

/// Validates Kubernetes manifests with the official schemas
/// (kubernetes-validate, strict: unknown fields are errors) of every
/// [`KUBERNETES_VERSIONS`]; panics with the validator's output when one
/// fails, or when the validator is missing.
pub fn kubernetes_validate(files: &[std::path::PathBuf]) {
    let have = std::process::Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "kubernetes-validate is not installed: `cargo xtask test --setup-only` installs \
         everything the tests use (or: python3 -m pip install kubernetes-validate)"
    );
    for v in KUBERNETES_VERSIONS {
        let out = std::process::Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "-k", v])
            .args(files)
            .output()
            .expect("python3 runs");
        let text = printed(&out);
        assert!(
            out.status.success() && !text.contains("ERROR"),
            "Kubernetes {v} rejects {files:?}:\n{text}"
        );
    }
}

/// The snapshot test of every text the component `$component` (binary
/// `$bin`) generates, for every profile. A macro, so that the snapshots are
/// the calling test's (its crate needs `common` and `insta`).
#[macro_export]
macro_rules! every_generated_text_of_every_profile {
    ($component:ty, $bin:expr) => {
        #[test]
        fn every_generated_text_of_every_profile() {
            let docs = common::deploy::profile_documents::<$component>($bin).unwrap();
            let profiles = common::profile_names::<$component>().unwrap();
            assert_eq!(docs.len(), profiles.len());
            for (profile, doc) in docs {
                insta::assert_snapshot!(format!("artifacts-{profile}"), doc);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    /// Ports come from below the ephemeral range, differ from one call to
    /// the next, and nothing listens on them.
    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_distinct() {
        let low: Option<u32> = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        let ports: Vec<u16> = (0..50).map(|_| super::free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in ports {
            // (a machine whose ephemeral range starts that low gets one of it)
            if let Some(low) = low.filter(|l| *l > 21_000) {
                assert!(
                    u32::from(p) < low && p >= 20_000,
                    "{p} (ephemeral from {low})"
                );
            }
            assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        }
    }
}
