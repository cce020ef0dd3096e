//! Bytes each viewer received over the network, from the kernel's TCP
//! counters (`bytes_received` of every socket, as `ss -tinpe` prints them).
//!
//! FFmpeg reports no input byte count while it runs, and `/proc/PID/io` does
//! not count socket reads, so the swarm asks the kernel once a second. A socket
//! that closes between two polls loses what it received since the last poll
//! (at most one second of one connection).

use std::collections::{BTreeMap, BTreeSet};

/// `bytes_received` of every TCP socket: inode → (owning pids, bytes).
pub fn parse_ss(text: &str) -> BTreeMap<u64, (Vec<u32>, u64)> {
    let mut out = BTreeMap::new();
    let mut current: Option<(u64, Vec<u32>)> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((ino, pids)) = current.take() {
                let bytes = field(line, "bytes_received:").unwrap_or(0);
                out.insert(ino, (pids, bytes));
            }
        } else {
            if let Some((ino, pids)) = current.take() {
                out.insert(ino, (pids, 0));
            }
            let pids: Vec<u32> = line
                .split("pid=")
                .skip(1)
                .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                .collect();
            if let Some(ino) = field(line, "ino:") {
                current = Some((ino, pids));
            }
        }
    }
    if let Some((ino, pids)) = current {
        out.insert(ino, (pids, 0));
    }
    out
}

fn field(line: &str, key: &str) -> Option<u64> {
    let rest = line.split(key).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Turns successive socket snapshots into per-process byte deltas.
#[derive(Default)]
pub struct NetBytes {
    seen: BTreeMap<u64, u64>,
}

impl NetBytes {
    /// New bytes per pid (among `pids`) since the last snapshot.
    pub fn update(
        &mut self,
        snapshot: &BTreeMap<u64, (Vec<u32>, u64)>,
        pids: &BTreeSet<u32>,
    ) -> BTreeMap<u32, u64> {
        let mut delta = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (ino, (owners, bytes)) in snapshot {
            let Some(pid) = owners.iter().find(|p| pids.contains(p)) else {
                continue;
            };
            let before = self.seen.get(ino).copied().unwrap_or(0);
            *delta.entry(*pid).or_default() += bytes.saturating_sub(before);
            seen.insert(*ino, *bytes);
        }
        self.seen = seen;
        delta
    }
}

/// One snapshot from `ss`, or `None` when `ss` cannot be run.
pub async fn snapshot() -> Option<BTreeMap<u64, (Vec<u32>, u64)>> {
    let out = tokio::process::Command::new("ss")
        .args(["-tinpeH"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| parse_ss(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SS: &str = "ESTAB 0 0 127.0.0.1:37374 127.0.0.1:18191 users:((\"ffmpeg\",pid=15564,fd=4)) ino:60261 sk:4 cgroup:/ <->\n\t ts sack bytes_sent:468 bytes_acked:469 bytes_received:700429 segs_out:21\nESTAB 0 0 127.0.0.1:1 127.0.0.1:2 users:((\"nginx\",pid=7,fd=9)) ino:5 sk:1 <->\n\t ts sack bytes_acked:1\nCLOSE-WAIT 0 0 127.0.0.1:3 127.0.0.1:18191 users:((\"ffmpeg\",pid=15564,fd=3)) ino:60260 sk:3\n\t bytes_received:808 segs_in:3\n";

    #[test]
    fn parses_sockets_and_counts_deltas() {
        let s = parse_ss(SS);
        assert_eq!(s[&60261], (vec![15564], 700429));
        assert_eq!(s[&5], (vec![7], 0));
        assert_eq!(s[&60260], (vec![15564], 808));
        let mut nb = NetBytes::default();
        let pids = BTreeSet::from([15564]);
        assert_eq!(nb.update(&s, &pids)[&15564], 701237);
        let later = parse_ss(&SS.replace("700429", "900429"));
        assert_eq!(nb.update(&later, &pids)[&15564], 200000);
        // a closed socket contributes nothing more; a new one counts from 0
        let next = parse_ss(
            "ESTAB 0 0 a b users:((\"ffmpeg\",pid=15564,fd=5)) ino:77\n\t bytes_received:10\n",
        );
        assert_eq!(nb.update(&next, &pids)[&15564], 10);
    }
}
