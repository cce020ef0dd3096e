//! The origin beside the swarm: its nginx `stub_status` (connections,
//! requests) and its node exporter (CPU), read once a second on a thread of
//! their own while a run goes on, so the figures of both sides line up and a
//! user sees which gave out first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The origin's figures at one moment (what could be read).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OriginSample {
    /// nginx's active client connections.
    pub connections: Option<u64>,
    /// Requests nginx served per second, over the last second.
    pub requests_per_sec: Option<f64>,
    /// CPU the origin's machine used over the last second, in cores.
    pub cpu_cores: Option<f64>,
}

/// `Active connections` and the total of requests of a `stub_status` page.
pub fn parse_stub_status(text: &str) -> Option<(u64, u64)> {
    let active = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Active connections:"))?
        .trim()
        .parse()
        .ok()?;
    // "server accepts handled requests" then " 16630948 16630948 31070465"
    let mut lines = text.lines();
    lines.find(|l| l.trim().starts_with("server accepts handled requests"))?;
    let requests = lines.next()?.split_whitespace().nth(2)?.parse().ok()?;
    Some((active, requests))
}

/// CPU seconds the machine has been busy (every mode but `idle` and
/// `iowait`, over every CPU) in a node exporter's metrics.
pub fn parse_node_cpu(text: &str) -> Option<f64> {
    let mut busy = 0.0;
    let mut seen = false;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("node_cpu_seconds_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once('}')?;
        if labels.contains("mode=\"idle\"") || labels.contains("mode=\"iowait\"") {
            continue;
        }
        busy += value.split_whitespace().next()?.parse::<f64>().ok()?;
        seen = true;
    }
    seen.then_some(busy)
}

/// Where to read the origin: the flags of `run` for it.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Sources {
    /// The origin's nginx `stub_status` (e.g.
    /// http://origin:17080/nginx_status): its connections and requests/s,
    /// read each second, beside the swarm's figures
    #[arg(long = "origin-status", value_name = "URL")]
    pub status: Option<String>,
    /// The origin's node exporter (e.g. http://origin:9100/metrics): the
    /// CPU its machine uses, read each second
    #[arg(long = "origin-node", value_name = "URL")]
    pub node: Option<String>,
}

/// Reads the sources once a second until dropped.
pub struct Watcher {
    latest: Arc<Mutex<OriginSample>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Starts reading; `None` when there is nothing to read.
    pub fn start(sources: Sources) -> Option<Watcher> {
        if sources.status.is_none() && sources.node.is_none() {
            return None;
        }
        let latest = Arc::new(Mutex::new(OriginSample::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (Arc::clone(&latest), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("origin-watch".into())
            .spawn(move || watch(&sources, &l, &s))
            .ok()?;
        Some(Watcher {
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// The figures of the last second.
    pub fn latest(&self) -> OriginSample {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(sources: &Sources, latest: &Mutex<OriginSample>, stop: &AtomicBool) {
    let timeout = Duration::from_millis(800);
    let get = |url: &str| match common::http_check::http_get(url, timeout) {
        Ok((200, body)) => Some(body),
        _ => None,
    };
    let mut warned = false;
    let mut prev_requests: Option<(u64, Instant)> = None;
    let mut prev_cpu: Option<(f64, Instant)> = None;
    while !stop.load(Ordering::Relaxed) {
        let tick = Instant::now();
        let mut sample = OriginSample::default();
        if let Some(url) = &sources.status {
            match get(url).as_deref().and_then(parse_stub_status) {
                Some((active, total)) => {
                    sample.connections = Some(active);
                    if let Some((p, t)) = prev_requests {
                        let secs = tick.duration_since(t).as_secs_f64().max(1e-3);
                        sample.requests_per_sec = Some(total.saturating_sub(p) as f64 / secs);
                    }
                    prev_requests = Some((total, tick));
                }
                None if !warned => {
                    warned = true;
                    crate::log::warning(
                        "origin",
                        &format!("{url} gave no nginx stub_status; origin figures are missing"),
                    );
                }
                None => {}
            }
        }
        if let Some(url) = &sources.node {
            match get(url).as_deref().and_then(parse_node_cpu) {
                Some(busy) => {
                    if let Some((p, t)) = prev_cpu {
                        let secs = tick.duration_since(t).as_secs_f64().max(1e-3);
                        sample.cpu_cores = Some(((busy - p) / secs).max(0.0));
                    }
                    prev_cpu = Some((busy, tick));
                }
                None if !warned => {
                    warned = true;
                    crate::log::warning(
                        "origin",
                        &format!("{url} gave no node_cpu_seconds_total; origin CPU is missing"),
                    );
                }
                None => {}
            }
        }
        *latest.lock().unwrap_or_else(|e| e.into_inner()) = sample;
        // the next read a second after this one began
        while tick.elapsed() < Duration::from_secs(1) && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_status_and_node_cpu_are_read() {
        let status = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";
        assert_eq!(parse_stub_status(status), Some((291, 31_070_465)));
        assert_eq!(parse_stub_status("<html>not found</html>"), None);
        let node = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1000.5\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 20.25\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"system\"} 5\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"iowait\"} 3\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 10\n";
        assert_eq!(parse_node_cpu(node), Some(35.25));
        assert_eq!(parse_node_cpu("go_goroutines 8\n"), None);
    }
}
