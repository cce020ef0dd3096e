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
