//! Network namespaces a test makes for itself: hosts with their own
//! addresses on one machine, so that a test can send traffic from an address
//! that is not loopback without touching the machine's own interfaces.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace with its loopback up; deleted (with whatever still
/// runs in it losing its network) when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace; panics (saying why) where namespaces cannot be made.
    pub fn new() -> Self {
        let name = format!(
            "hlsw-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        crate::run_ok(crate::tool("ip", "iproute2").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS…` to success.
    pub fn ip(&self, args: &[&str]) {
        crate::run_ok(
            crate::tool("ip", "iproute2")
                .args(["-n", &self.name])
                .args(args),
        );
    }

    /// Gives the namespace's loopback another address, e.g. `10.213.0.1/32`.
    pub fn add_address(&self, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", "lo"]);
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = crate::tool("ip", "iproute2");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has joined the namespace: the sockets it
    /// opens are the namespace's.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path)
                    .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("cannot join {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
