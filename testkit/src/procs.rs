//! Processes as /proc shows them: who runs, whose child, zombie or not.

use std::time::{Duration, Instant};

/// One process: pid, parent pid, state (`R`, `S`, `Z`, …), name, command line.
#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub comm: String,
    pub cmdline: String,
}

impl Process {
    pub fn live(&self) -> bool {
        self.state != 'Z'
    }
}

/// Every process now.
pub fn processes() -> Vec<Process> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        out.push(Process {
            pid,
            ppid: rest.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
            state: rest.first().and_then(|s| s.chars().next()).unwrap_or('?'),
            comm: stat[open + 1..close].to_owned(),
            cmdline: std::fs::read_to_string(e.path().join("cmdline"))
                .unwrap_or_default()
                .replace('\0', " "),
        });
    }
    out
}

/// Live children of `parent` named `comm`.
pub fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.live() && p.ppid == parent && p.comm == comm)
        .map(|p| p.pid)
        .collect()
}

/// Live processes whose command line mentions `needle`: (pid, command line).
pub fn live_mentioning(needle: &str) -> Vec<(u32, String)> {
    processes()
        .into_iter()
        .filter(|p| p.live() && p.cmdline.contains(needle))
        .map(|p| (p.pid, p.cmdline))
        .collect()
}

/// Polls `f` every 100 ms until it holds or `limit` passes; its last answer.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Polls `f` every 50 ms until it gives a value or `limit` passes; that
/// value, or `None`.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `root` and every process under it.
pub fn descendants(root: u32) -> Vec<u32> {
    let all = processes();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(all.iter().filter(|c| c.ppid == p).map(|c| c.pid));
        i += 1;
    }
    out
}

/// CPU time a process has used so far, in nanoseconds: the scheduler's exact
/// run time of each of its threads (`/proc/PID/task/*/schedstat`). Unlike
/// utime + stime, which are sampled at the clock tick, this does not miss
/// processes that run for a few microseconds at a time (an FFmpeg viewer).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// [`cpu_ns`] of `root` and every process under it.
pub fn tree_cpu_ns(root: u32) -> u64 {
    descendants(root).into_iter().map(cpu_ns).sum()
}

/// A control group that counts the CPU time of every process started in it,
/// children included, even those that have exited since (a helper that runs
/// for a moment once a second, such as `ss`, is missed by sampling
/// [`tree_cpu_ns`]). Needs a writable cgroup hierarchy (root): cgroup v1's
/// `cpuacct`, or cgroup v2.
pub struct CpuGroup {
    dir: std::path::PathBuf,
    v2: bool,
}

impl CpuGroup {
    /// A new, empty group, or `None` when this machine does not let us make one.
    pub fn create(name: &str) -> Option<CpuGroup> {
        let leaf = format!("hls-swarm-{name}-{}", std::process::id());
        let candidates = [
            ("/sys/fs/cgroup/cpuacct", false),
            ("/sys/fs/cgroup/unified", true),
            ("/sys/fs/cgroup", true),
        ];
        for (base, v2) in candidates {
            let base = std::path::Path::new(base);
            let usage = if v2 { "cpu.stat" } else { "cpuacct.usage" };
            if !base.join(usage).exists() && !base.join("cgroup.procs").exists() {
                continue;
            }
            let dir = base.join(&leaf);
            if std::fs::create_dir(&dir).is_ok() && dir.join(usage).exists() {
                return Some(CpuGroup { dir, v2 });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }

    /// A command that runs `program` inside the group: a shell puts itself
    /// in the group and then becomes `program`, so nothing it starts is
    /// outside.
    pub fn command(&self, program: &std::path::Path) -> std::process::Command {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"")
            .arg(&self.dir)
            .arg(program);
        cmd
    }

    /// CPU time used by the group's processes so far, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        if self.v2 {
            let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
            stat.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(0, |us| us * 1000)
        } else {
            std::fs::read_to_string(self.dir.join("cpuacct.usage"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        }
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // the group can be removed once its last process has been reaped
        let _ = wait_until(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
        });
    }
}

/// A figure in kB from a /proc file of `pid` (`status`, `smaps_rollup`):
/// the number after `key` (`VmRSS:`, `Pss:`), 0 when the process or the
/// line is not there.
pub fn kb(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_group_counts_the_cpu_of_children_that_have_exited() {
        let Some(group) = CpuGroup::create("test") else {
            eprintln!("no writable cgroup hierarchy here: not tested");
            return;
        };
        assert_eq!(group.cpu_ns(), 0);
        // a shell that starts short-lived children which burn CPU and exit
        let status = group
            .command(std::path::Path::new("sh"))
            .args([
                "-c",
                "for i in 1 2 3; do sh -c 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done'; done",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let used = group.cpu_ns();
        assert!(used > 5_000_000, "the group counted only {used} ns");
    }
}
