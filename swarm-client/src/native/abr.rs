//! The bandwidth estimate of an `abr` viewer, as hls.js makes it: two
//! exponentially weighted moving averages of segment download rates, weighted
//! by download time (half-lives 3 s and 9 s); the estimate is the lower one,
//! 500 kbit/s before the first sample.

/// The estimate before any sample, bits per second.
pub const DEFAULT_ESTIMATE: f64 = 500_000.0;
/// Switch down when `estimate × DOWN_FACTOR` < the variant's bandwidth.
pub const DOWN_FACTOR: f64 = 0.95;
/// Switch up when `estimate × UP_FACTOR` ≥ the next variant's bandwidth.
pub const UP_FACTOR: f64 = 0.7;
/// Shorter downloads count as this long (hls.js's 50 ms floor).
const MIN_SAMPLE_SEC: f64 = 0.05;

#[derive(Clone, Debug)]
struct Ewma {
    alpha: f64,
    estimate: f64,
    total_weight: f64,
}

impl Ewma {
    fn new(half_life_sec: f64) -> Self {
        Ewma {
            alpha: (0.5f64.ln() / half_life_sec).exp(),
            estimate: 0.0,
            total_weight: 0.0,
        }
    }

    fn sample(&mut self, weight: f64, value: f64) {
        let a = self.alpha.powf(weight);
        self.estimate = value * (1.0 - a) + a * self.estimate;
        self.total_weight += weight;
    }

    /// The average, corrected for its zero start.
    fn get(&self) -> f64 {
        let zero_factor = 1.0 - self.alpha.powf(self.total_weight);
        if zero_factor > 0.0 {
            self.estimate / zero_factor
        } else {
            self.estimate
        }
    }
}

/// Two EWMAs of download bandwidth.
#[derive(Clone, Debug)]
pub struct Estimator {
    fast: Ewma,
    slow: Ewma,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator {
            fast: Ewma::new(3.0),
            slow: Ewma::new(9.0),
        }
    }
}

impl Estimator {
    /// Adds one download: `bytes` in `seconds` (request start to last byte).
    pub fn sample(&mut self, seconds: f64, bytes: u64) {
        let secs = seconds.max(MIN_SAMPLE_SEC);
        let bps = bytes as f64 * 8.0 / secs;
        self.fast.sample(secs, bps);
        self.slow.sample(secs, bps);
    }

    /// Whether a download was sampled.
    pub fn sampled(&self) -> bool {
        self.fast.total_weight > 0.0
    }

    /// The estimate in bits per second.
    pub fn estimate(&self) -> f64 {
        if self.fast.total_weight <= 0.0 {
            DEFAULT_ESTIMATE
        } else {
            self.fast.get().min(self.slow.get())
        }
    }
}

/// The variant to play next, given bandwidths sorted ascending, the current
/// index and the estimate (PLAYER.md §1 ABR).
pub fn choose(bandwidths: &[u64], current: usize, estimate: f64) -> usize {
    let fits = |i: usize| bandwidths[i] as f64 <= estimate * DOWN_FACTOR;
    if estimate * DOWN_FACTOR < bandwidths[current] as f64 {
        (0..current).rev().find(|&i| fits(i)).unwrap_or(0)
    } else if current + 1 < bandwidths.len()
        && estimate * UP_FACTOR >= bandwidths[current + 1] as f64
    {
        current + 1
    } else {
        current
    }
}

/// The first variant an `abr` viewer plays: the highest that fits the default
/// estimate, else the lowest.
pub fn initial(bandwidths: &[u64]) -> usize {
    (0..bandwidths.len())
        .rev()
        .find(|&i| bandwidths[i] as f64 <= DEFAULT_ESTIMATE * DOWN_FACTOR)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_follows_samples_and_takes_the_lower_average() {
        let mut e = Estimator::default();
        assert_eq!(e.estimate(), DEFAULT_ESTIMATE);
        // 1 s downloads of 1 MB: 8 Mbit/s
        for _ in 0..5 {
            e.sample(1.0, 1_000_000);
        }
        assert!((e.estimate() - 8e6).abs() < 1.0, "{}", e.estimate());
        // a slow download pulls the fast average down more: the estimate is it
        e.sample(2.0, 100_000); // 0.4 Mbit/s
        let fast = e.fast.get();
        let slow = e.slow.get();
        assert!(fast < slow);
        assert_eq!(e.estimate(), fast);
        // half-life 3 s: a 3 s sample moves the average halfway to it
        // (4 then 2 Mbit/s, divided by the zero-start correction 1 − 0.5²)
        let mut h = Estimator::default();
        h.sample(3.0, 3_000_000); // 8 Mbit/s
        h.sample(3.0, 0);
        assert!((h.fast.get() - 2e6 / 0.75).abs() < 1.0, "{}", h.fast.get());
    }

    #[test]
    fn switching_rules() {
        let bws = [500_000, 1_000_000, 2_000_000];
        assert_eq!(initial(&bws), 0);
        // up only when 0.7 × estimate reaches the next one
        assert_eq!(choose(&bws, 0, 1_400_000.0), 0);
        assert_eq!(choose(&bws, 0, 1_430_000.0), 1);
        // down when 0.95 × estimate falls below the current one
        assert_eq!(choose(&bws, 2, 2_200_000.0), 2);
        assert_eq!(choose(&bws, 2, 2_000_000.0), 1);
        assert_eq!(choose(&bws, 2, 600_000.0), 0);
        assert_eq!(choose(&bws, 1, 100.0), 0);
    }
}
