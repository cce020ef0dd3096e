//! The swarm: viewers started on a ramp, supervised, measured. Two engines
//! — `native` (an async player per viewer) and `ffmpeg` (a process per
//! viewer) — share one run loop (`run_loop`, driving the `conductor`), the
//! restart backoff, the metrics and the results.

pub mod conductor;
pub mod display;
pub mod ffmpeg;
pub mod ffmpeg_viewer;
pub mod metrics;
pub mod native;
mod native_fetch;
pub mod native_shared;
pub mod native_viewer;
pub mod netbytes;
pub mod progress;
pub mod remote_write;
pub mod run_loop;
pub mod search;
pub mod shape;

use std::time::Duration;

use common::supervise::Backoff;

use crate::config::Config;
use crate::results::{self, Results, Shard};

/// The backoff of viewer restarts: 250 ms × 1.7ⁿ up to 5 s, ±20 %, reset after
/// 30 s of uptime.
pub const VIEWER_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(250),
    factor: 1.7,
    max: Duration::from_secs(5),
    jitter: 0.2,
    reset_after: Duration::from_secs(30),
};

/// Writes a run's results as they stand while it goes on (the results
/// files, atomically), so that a run killed outright leaves its last one.
/// The series is lent to it, not copied: it is handed back in the results.
pub type Checkpoint = Box<dyn FnMut(&mut Results) + Send>;

/// The head of a run's results: what ran, how long, why it ended.
pub fn run_of(
    profile: &str,
    url: &str,
    c: &Config,
    seed: u64,
    ran_for: Duration,
    stopped_by: &str,
) -> results::Run {
    results::Run {
        engine: c.engine.as_str().to_owned(),
        url: url.to_owned(),
        profile: profile.to_owned(),
        seed,
        settings: serde_json::to_value(c).expect("configs serialize"),
        clients: c.clients,
        ran_for,
        stopped_by: stopped_by.to_owned(),
    }
}

/// How a run ended.
pub struct Outcome {
    pub results: Results,
    /// No viewer ever read the stream.
    pub never_reached: bool,
    /// Why a live gate stopped it, if one did.
    pub aborted: Option<String>,
}

/// The start time of each viewer of `shard`: viewer `id` of the whole run
/// starts `id / rampRate` seconds in, plus up to `rampJitter` ms of jitter
/// seeded by `seed` (the same for every shard), so that the shards' ramps
/// together are the whole run's ramp.
pub fn ramp_schedule(c: &Config, seed: u64, shard: Shard) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..shard.first_viewer + shard.viewers)
        .map(|i| {
            let base = Duration::from_secs_f64(f64::from(i) / f64::from(c.ramp_rate));
            let jitter = if c.ramp_jitter == 0 {
                0
            } else {
                rng.u32(0..c.ramp_jitter)
            };
            base + Duration::from_millis(u64::from(jitter))
        })
        .skip(shard.first_viewer as usize)
        .collect()
}

/// The seed of each viewer of `shard`, as in the whole run.
pub fn viewer_seeds(seed: u64, shard: Shard) -> Vec<u64> {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(1));
    (0..shard.first_viewer + shard.viewers)
        .map(|_| rng.u64(..))
        .skip(shard.first_viewer as usize)
        .collect()
}

/// The network class of viewer `id` (numbered in the whole run), as an
/// index into `shares` (which add up to 1): a golden-ratio sequence from the
/// seed spreads each class evenly over the ramp and gives it its share of
/// viewers within one or two, the same in every shard.
pub fn network_index(seed: u64, id: u32, shares: &[f64]) -> Option<usize> {
    let last = shares.len().checked_sub(1)?;
    let offset = (seed % 1_000_003) as f64 / 1_000_003.0;
    let u = (offset + f64::from(id) * 0.618_033_988_749_894_9).fract();
    let mut upto = 0.0;
    for (i, share) in shares.iter().enumerate() {
        upto += share;
        if u < upto {
            return Some(i);
        }
    }
    Some(last)
}

/// The series of a run: one [`results::Second`] per wall-clock second (so
/// runs on several machines line up), made from running totals sampled
/// just after each second ends.
pub struct Series {
    aim: shape::Aim,
    last: Option<u64>,
    prev: (u64, u64, u64),
    prev_ttfb: Option<hdrhistogram::Histogram<u64>>,
    pub seconds: results::Seconds,
}

/// Significant digits of each second's TTFB histogram in the results.
pub const SECOND_TTFB_SIGFIG: u8 = 1;

/// Now as Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Series {
    /// A series for a run aiming at `aim`.
    pub fn new(aim: shape::Aim) -> Self {
        Series {
            aim,
            last: None,
            prev: (0, 0, 0),
            prev_ttfb: None,
            seconds: results::Seconds::new(),
        }
    }

    /// The wall-clock second (Unix time) `now` is in, when it differs from
    /// the last sample's: time to take one.
    pub fn due(&self, now: u64) -> Option<u64> {
        (self.last != Some(now)).then_some(now)
    }

    /// The origin's figures of the last sample's second.
    pub fn origin(&mut self, o: crate::origin::OriginSample) {
        if let Some(mut s) = self.seconds.last() {
            s.origin_connections = o.connections;
            s.origin_requests = o.requests_per_sec;
            s.origin_cpu = o.cpu_cores;
            self.seconds.set_last(&s);
        }
    }

    /// A sample at Unix second `t`, `elapsed` into the run: viewers active
    /// and stalled, the running totals (bytes, requests, failed requests),
    /// and the running histogram of segment TTFB (native).
    pub fn sample(
        &mut self,
        t: u64,
        elapsed: Duration,
        (active, stalled): (u64, u64),
        (bytes, requests, errors): (u64, u64, u64),
        ttfb: Option<&hdrhistogram::Histogram<u64>>,
    ) {
        let (b0, r0, e0) = self.prev;
        let mut second = results::Second {
            t,
            active,
            stalled,
            target: self.aim.target(elapsed),
            after_ramp: self.aim.settled(elapsed),
            bytes: bytes.saturating_sub(b0),
            requests: requests.saturating_sub(r0),
            errors: errors.saturating_sub(e0),
            ..Default::default()
        };
        if let Some(h) = ttfb {
            let mut within = h.clone();
            if let Some(p) = &self.prev_ttfb {
                let _ = within.subtract(p);
            }
            if !within.is_empty() {
                let ms = |q: f64| within.value_at_quantile(q) as f64 / 1000.0;
                second.ttfb_p50_ms = Some(ms(0.5));
                second.ttfb_p99_ms = Some(ms(0.99));
                // for merging seconds of many shards: one significant
                // digit (buckets about 6 % wide) keeps a 10-minute series of
                // a shard small; the shard's own p50/p99 above are exact
                second.ttfb = results::Encoded::coarse(&within, SECOND_TTFB_SIGFIG);
            }
            self.prev_ttfb = Some(h.clone());
        }
        self.prev = (bytes, requests, errors);
        self.last = Some(t);
        self.seconds.push(&second);
    }

    /// The last, partial second at the end of a run: what came in after the
    /// last sample (the running totals as of the stop) is added to that
    /// sample's second, or made a second of its own when the clock has
    /// moved on, so that the series adds up to the totals.
    pub fn close(&mut self, t: u64, elapsed: Duration, totals: (u64, u64, u64)) {
        let (bytes, requests, errors) = totals;
        match (self.due(t), self.seconds.last()) {
            (None, Some(mut last)) => {
                let (b0, r0, e0) = self.prev;
                last.bytes += bytes.saturating_sub(b0);
                last.requests += requests.saturating_sub(r0);
                last.errors += errors.saturating_sub(e0);
                self.seconds.set_last(&last);
                self.prev = totals;
            }
            _ => {
                let (active, stalled) = self
                    .seconds
                    .last()
                    .map_or((0, 0), |s| (s.active, s.stalled));
                self.sample(t, elapsed, (active, stalled), totals, None);
            }
        }
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
    /// Where the metrics are served.
    pub metrics_addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Control {
    /// Serves metrics on `addr` (target viewers set) and listens for
    /// SIGTERM and SIGINT.
    pub async fn start(at: metrics::MetricsAt, clients: u32) -> anyhow::Result<Control> {
        use tokio::signal::unix::{signal, SignalKind};
        let metrics = metrics::Metrics::default();
        metrics.viewers_target.set(i64::from(clients));
        let (server, metrics_addr) = metrics::start(at, &metrics).await?;
        Ok(Control {
            metrics,
            metrics_addr,
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

    /// Waits until `at` (wall clock), answering `/readyz` only after it;
    /// the reason when a signal came first.
    pub async fn wait_until(&mut self, at: Option<std::time::SystemTime>) -> Option<&'static str> {
        if let Some(at) = at {
            if let Ok(wait) = at.duration_since(std::time::SystemTime::now()) {
                println!(
                    "waiting {} s for the start at {}",
                    wait.as_secs(),
                    humantime::format_rfc3339_seconds(at)
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    r = self.signalled() => return Some(r),
                }
            }
        }
        self.metrics
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        None
    }

    /// Stops the metrics endpoint.
    pub fn finish(&self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn network_classes_get_their_shares_evenly_and_alike_in_shards() {
        let shares = [0.3, 0.7];
        for n in [10u32, 100, 1000, 10_000] {
            let mobile = (0..n)
                .filter(|id| super::network_index(7, *id, &shares) == Some(0))
                .count() as f64;
            assert!((mobile - 0.3 * f64::from(n)).abs() <= 2.0, "{n}: {mobile}");
            // and in the first tenth of the ramp too
            let early = (0..n / 10)
                .filter(|id| super::network_index(7, *id, &shares) == Some(0))
                .count() as f64;
            assert!((early - 0.03 * f64::from(n)).abs() <= 2.0, "{n}: {early}");
        }
        assert_eq!(super::network_index(1, 5, &[]), None);
        assert_eq!(super::network_index(1, 5, &[1.0]), Some(0));
    }

    use super::*;

    #[test]
    fn shards_together_are_the_whole_run() {
        let mut c = common::component::load::<crate::SwarmClient>(&common::Request {
            profile: "default".into(),
            ..Default::default()
        })
        .expect("the default profile loads")
        .config;
        c.clients = 10;
        c.ramp_rate = 4;
        c.ramp_jitter = 300;
        let whole = Shard::whole(10);
        let all = ramp_schedule(&c, 9, whole);
        let seeds = viewer_seeds(9, whole);
        let mut joined = Vec::new();
        let mut joined_seeds = Vec::new();
        let mut ranges = Vec::new();
        for i in 0..3 {
            let s = Shard::of(i, 3, 10).unwrap();
            ranges.push((s.first_viewer, s.viewers));
            joined.extend(ramp_schedule(&c, 9, s));
            joined_seeds.extend(viewer_seeds(9, s));
        }
        assert_eq!(ranges, [(0, 3), (3, 3), (6, 4)]);
        assert_eq!(joined, all, "the same start times as one machine's run");
        assert_eq!(joined_seeds, seeds);
        assert!(
            all[9] >= Duration::from_millis(2250),
            "viewer 9 starts 9/4 s in"
        );
        assert_eq!(Shard::parse("2/3", 10).unwrap().first_viewer, 6);
        for (text, expected) in [
            ("0/0", "0 shards"),
            ("3/3", "counts from 0 to 2"),
            ("0/11", "11 shards for 10 viewers"),
            ("a/3", "expected INDEX/COUNT"),
        ] {
            let e = Shard::parse(text, 10).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn a_series_holds_each_seconds_own_counts() {
        let ms = Duration::from_millis;
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let mut s = Series::new(shape::Aim::held(&[ms(0), ms(2500), ms(1000), ms(0)]));
        assert_eq!(s.due(100), Some(100));
        h.record(1000).unwrap();
        s.sample(100, ms(1000), (1, 0), (10, 2, 0), Some(&h));
        assert_eq!(s.due(100), None, "one sample a second");
        for _ in 0..99 {
            h.record(5000).unwrap();
        }
        s.sample(101, ms(2000), (3, 1), (25, 6, 1), Some(&h));
        // no request in this second: no TTFB
        s.sample(103, ms(4000), (4, 0), (40, 6, 1), Some(&h));
        let got: Vec<_> = s
            .seconds
            .iter()
            .map(|x| {
                (
                    x.t,
                    x.active,
                    x.after_ramp,
                    x.bytes,
                    x.requests,
                    x.errors,
                    x.ttfb_p50_ms,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (100, 1, false, 10, 2, 0, Some(1.0)),
                // 5 ms at 3 significant digits: the bucket's highest value
                (101, 3, false, 15, 4, 1, Some(5.003)),
                (103, 4, true, 15, 0, 0, None),
            ]
        );
        // the second's own histogram: 99 samples of 5 ms, not the first 1 ms
        assert_eq!(
            s.seconds
                .iter()
                .nth(1)
                .unwrap()
                .ttfb
                .unwrap()
                .decode()
                .unwrap()
                .len(),
            99
        );
        assert_eq!(results::min_active_share(&s.seconds), Some(1.0));
        s.sample(104, ms(5000), (2, 0), (40, 6, 1), None);
        assert_eq!(results::min_active_share(&s.seconds), Some(0.5));
        // before the ramp is over: the last second's share
        assert_eq!(
            results::min_active_share(&s.seconds.iter().take(2).collect()),
            Some(0.75)
        );
    }
}
