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
/// The time to first byte the abandon rule takes before one is known
/// (hls.js's default TTFB estimate).
pub const DEFAULT_TTFB_SEC: f64 = 0.1;

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
    /// The estimate before any sample.
    first: f64,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator::starting_at(DEFAULT_ESTIMATE)
    }
}

impl Estimator {
    /// An estimator with no samples whose estimate is `bps` until its
    /// first (hls.js starts one so after an emergency switch down).
    pub fn starting_at(bps: f64) -> Self {
        Estimator {
            fast: Ewma::new(3.0),
            slow: Ewma::new(9.0),
            first: bps,
        }
    }

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
            self.first
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

/// A segment load in progress, as the abandon rule sees it.
#[derive(Clone, Copy, Debug)]
pub struct Loading {
    /// The variant it is of (an index into the ascending bandwidths).
    pub variant: usize,
    /// Its media duration, seconds.
    pub duration: f64,
    /// Seconds since its request began.
    pub elapsed: f64,
    /// When its first byte came, seconds after the request began.
    pub first_byte: Option<f64>,
    /// Body bytes in so far.
    pub loaded: u64,
    /// Media seconds buffered ahead of the playhead.
    pub buffered: f64,
}

/// hls.js's emergency switch down (its abandon rules, checked every 100 ms
/// of a load once half the segment's duration has passed): when the rest
/// of the segment would take longer than the buffer lasts, and a whole
/// segment of a lower variant (with its playlist) would come before the
/// buffer runs out — and within a segment's duration — and sooner than the
/// rest of this one, the variant to load it from instead. As in hls.js
/// 1.7, the lowest variant is never a candidate, so a viewer switches this
/// way only from the third variant up, to the second at the lowest.
pub fn abandon(bandwidths: &[u64], l: &Loading, estimate: f64) -> Option<usize> {
    if l.variant < 2 || l.variant >= bandwidths.len() {
        return None;
    }
    let ttfb = l.first_byte.unwrap_or(DEFAULT_TTFB_SEC);
    if l.elapsed <= ttfb.max(l.duration / 2.0) {
        return None;
    }
    let expected = (l.loaded as f64).max(l.duration * bandwidths[l.variant] as f64 / 8.0);
    let load_rate = match l.first_byte {
        Some(t) if l.loaded > 0 => l.loaded as f64 / (l.elapsed - t).max(1e-3),
        _ => 0.0,
    };
    let rest = if load_rate > 0.0 {
        (expected - l.loaded as f64) / load_rate
    } else {
        expected * 8.0 / estimate + ttfb
    };
    if rest <= l.buffered {
        return None;
    }
    let bwe = if load_rate > 0.0 {
        load_rate * 8.0
    } else {
        estimate
    };
    // a live stream's lower variant needs its playlist first
    let load_time = |v: usize| 2.0 * ttfb + l.duration * bandwidths[v] as f64 / bwe;
    let mut chosen = (0, f64::INFINITY);
    for v in (1..l.variant).rev() {
        chosen = (v, load_time(v));
        if chosen.1 < l.buffered.min(l.duration + ttfb) {
            break;
        }
        chosen.0 = 0;
    }
    let (v, time) = chosen;
    (time < rest && time <= l.duration * 10.0).then_some(v)
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

    #[test]
    fn a_load_too_slow_for_the_buffer_is_abandoned_for_a_lower_variant() {
        let bws = [200_000, 500_000, 1_000_000, 2_000_000];
        // a 2 s segment of the 2 Mbit/s variant (500 kB), 1.2 s in, 100 kB
        // in after a 0.1 s first byte: 91 kB/s, 4.4 s to go, 1 s buffered
        let l = Loading {
            variant: 3,
            duration: 2.0,
            elapsed: 1.2,
            first_byte: Some(0.1),
            loaded: 100_000,
            buffered: 1.0,
        };
        // at 727 kbit/s a 1 Mbit/s segment takes 2.95 s, too long for the
        // buffer; a 500 kbit/s one 1.58 s, too long too, so the lowest
        // but one is out of reach and hls.js goes to the lowest
        assert_eq!(abandon(&bws, &l, 5e6), Some(0));
        // with 2 s buffered the 500 kbit/s variant comes in time
        assert_eq!(abandon(&bws, &Loading { buffered: 2.0, ..l }, 5e6), Some(1));
        // with 5 s buffered the rest comes in time: go on
        assert_eq!(abandon(&bws, &Loading { buffered: 5.0, ..l }, 5e6), None);
        // before half the duration has passed nothing is judged
        assert_eq!(abandon(&bws, &Loading { elapsed: 0.9, ..l }, 5e6), None);
        // from the second variant there is nothing to go to (hls.js never
        // considers the lowest in the loop)
        let second = Loading { variant: 1, ..l };
        assert_eq!(abandon(&bws, &second, 5e6), None);
        // nothing in yet: the estimate says how long it takes
        let blind = Loading {
            first_byte: None,
            loaded: 0,
            ..l
        };
        // at 300 kbit/s: 13.4 s for it, 3.5 s for a 500 kbit/s segment
        // (too long for the buffer): the lowest
        assert_eq!(abandon(&bws, &blind, 300_000.0), Some(0));
        // at 1.5 Mbit/s: 2.8 s for it, more than the 1.9 s buffered; 1.5 s
        // for a 1 Mbit/s one
        assert_eq!(
            abandon(
                &bws,
                &Loading {
                    buffered: 1.9,
                    ..blind
                },
                1.5e6
            ),
            Some(2)
        );
    }

    #[test]
    fn an_estimator_can_start_at_a_given_estimate() {
        let e = Estimator::starting_at(700_000.0);
        assert_eq!(e.estimate(), 700_000.0);
        assert!(!e.sampled());
    }
}
