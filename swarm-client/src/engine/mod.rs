//! The swarm: viewers started on a ramp, supervised, measured. Two engines
//! share the ramp, the restart backoff, the metrics and the summary:
//! `native` (an async player per viewer) and `ffmpeg` (a process per viewer).

pub mod ffmpeg;
pub mod ffmpeg_viewer;
pub mod metrics;
pub mod native;
pub mod netbytes;
pub mod progress;
pub mod summary;

use std::time::Duration;

use common::supervise::Backoff;

use crate::config::Config;
use summary::Summary;

/// The backoff of viewer restarts: 250 ms × 1.7ⁿ up to 5 s, ±20 %, reset after
/// 30 s of uptime.
pub const VIEWER_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(250),
    factor: 1.7,
    max: Duration::from_secs(5),
    jitter: 0.2,
    reset_after: Duration::from_secs(30),
};

/// How a run ended.
pub struct Outcome {
    pub summary: Summary,
    /// No viewer ever read the stream.
    pub never_reached: bool,
}

/// The start time of every viewer: `id / rampRate` seconds plus up to
/// `rampJitter` ms of seeded jitter.
pub fn ramp_schedule(c: &Config, seed: u64) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..c.clients)
        .map(|i| {
            let base = Duration::from_secs_f64(f64::from(i) / f64::from(c.ramp_rate));
            let jitter = if c.ramp_jitter == 0 {
                0
            } else {
                rng.u32(0..c.ramp_jitter)
            };
            base + Duration::from_millis(u64::from(jitter))
        })
        .collect()
}

/// The `minActiveViewers` figure: the fewest viewers active in any
/// once-a-second sample after the ramp (its last start, plus one second to
/// connect), as a share of the target; the last sample's share when the run
/// ended before that.
#[derive(Debug)]
pub struct ActiveShare {
    after: Duration,
    min: Option<f64>,
    last: Option<f64>,
}

impl ActiveShare {
    /// Counts samples from one second after the last start of `schedule`.
    pub fn after(schedule: &[Duration]) -> Self {
        ActiveShare {
            after: schedule.iter().max().copied().unwrap_or_default() + Duration::from_secs(1),
            min: None,
            last: None,
        }
    }

    /// `active` of `target` viewers at `elapsed` into the run.
    pub fn sample(&mut self, elapsed: Duration, active: usize, target: usize) {
        let share = active as f64 / target.max(1) as f64;
        self.last = Some(share);
        if elapsed >= self.after {
            self.min = Some(self.min.map_or(share, |m| m.min(share)));
        }
    }

    pub fn min(&self) -> Option<f64> {
        self.min.or(self.last)
    }
}

/// Prints the once-a-second status line: rewritten in place on a terminal,
/// one line each otherwise.
pub fn print_status(tty: bool, line: &str) {
    if tty {
        use std::io::Write;
        print!("\r\x1b[2K{line}");
        let _ = std::io::stdout().flush();
    } else {
        println!("{line}");
    }
}

/// What both engines start with: the metrics and their endpoint, and the
/// signals that stop a run.
pub struct Control {
    pub metrics: metrics::Metrics,
    server: tokio::task::JoinHandle<()>,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Control {
    /// Serves metrics on `addr` (target viewers set) and listens for
    /// SIGTERM and SIGINT.
    pub async fn start(addr: std::net::SocketAddr, clients: u32) -> anyhow::Result<Control> {
        use tokio::signal::unix::{signal, SignalKind};
        let metrics = metrics::Metrics::default();
        metrics.viewers_target.set(i64::from(clients));
        let server = metrics::start(addr, &metrics).await?;
        Ok(Control {
            metrics,
            server,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves with the reason when SIGTERM or SIGINT arrives.
    pub async fn signalled(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "interrupted",
        }
    }

    /// Stops the metrics endpoint.
    pub fn finish(&self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_share_counts_from_a_second_after_the_ramp() {
        let s = |ms| Duration::from_millis(ms);
        let mut a = ActiveShare::after(&[s(0), s(2500), s(1000)]);
        assert_eq!(a.min(), None);
        // during the ramp: only the last sample counts, as a fallback
        a.sample(s(1000), 1, 4);
        assert_eq!(a.min(), Some(0.25));
        a.sample(s(3000), 3, 4);
        assert_eq!(a.min(), Some(0.75));
        // after 2.5 s + 1 s: the fewest from here on
        a.sample(s(3500), 4, 4);
        a.sample(s(4500), 2, 4);
        a.sample(s(5500), 4, 4);
        assert_eq!(a.min(), Some(0.5));
    }
}
