//! Runs merged as one: counters add up, histograms merge (so the
//! percentiles are those of every sample together, not averages of
//! percentiles), seconds merge by wall-clock time, and shards of one run are
//! checked to be all there, once each.

use std::collections::BTreeMap;

use super::{
    figures, min_active_share, Encoded, NativeTotals, Recorder, Results, Second, Seconds, Shard,
    ViewerFigures, RESULTS_FORMAT, RESULTS_VERSION,
};

/// Checks that shards of one run are all there, once each: the same count
/// and total, every index from 0 to count − 1, viewer ranges that tile the
/// whole run. `shards` holds each merged run's shard (`None`: a whole run).
pub fn check_shards(shards: &[Option<Shard>]) -> Result<(), String> {
    let parts: Vec<_> = shards.iter().flatten().copied().collect();
    if parts.is_empty() {
        return Ok(());
    }
    if parts.len() < shards.len() {
        return Err(
            "some results are shards of a run and some are not; merge the shards \
                    of one run"
                .into(),
        );
    }
    let first = parts[0];
    if let Some(o) = parts
        .iter()
        .find(|s| (s.count, s.total_viewers) != (first.count, first.total_viewers))
    {
        return Err(format!(
            "shards of different runs: {} shards of {} viewers, and {} of {}",
            first.count, first.total_viewers, o.count, o.total_viewers
        ));
    }
    let mut seen = vec![0u32; first.count as usize];
    for s in &parts {
        seen[s.index as usize] += 1;
        let expected = Shard::of(s.index, s.count, s.total_viewers)?;
        if *s != expected {
            return Err(format!(
                "shard {} holds viewers {}..{}; expected {}..{}",
                s.index,
                s.first_viewer,
                s.first_viewer + s.viewers,
                expected.first_viewer,
                expected.first_viewer + expected.viewers
            ));
        }
    }
    let list = |pred: &dyn Fn(u32) -> bool| {
        (0..first.count)
            .filter(|i| pred(seen[*i as usize]))
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
    };
    let twice = list(&|n| n > 1);
    if !twice.is_empty() {
        return Err(format!(
            "shard {} reported more than once (a retried pod's output too?); keep one \
             results block per shard",
            twice.join(", ")
        ));
    }
    let missing = list(&|n| n == 0);
    if !missing.is_empty() {
        return Err(format!(
            "shard {} of {} missing: {} of {} shards reported; collect the logs of every pod \
             (kubectl logs --max-log-requests={})",
            missing.join(", "),
            first.count,
            parts.len(),
            first.count,
            first.count
        ));
    }
    Ok(())
}

/// Distinct values in order of first appearance.
fn push_distinct(seen: &mut Vec<String>, v: &str) {
    if !seen.iter().any(|s| s == v) {
        seen.push(v.to_owned());
    }
}

/// Seconds of several runs merged by wall-clock second, one run at a time:
/// counts add up, TTFB histograms merge; a second is after the ramp when it
/// is in every run that has it, and counts for `minActiveViewers` only when
/// every run has a sample in it.
#[derive(Default)]
pub struct SeriesMerger {
    by_t: BTreeMap<u64, (Second, usize, Option<hdrhistogram::Histogram<u64>>)>,
    /// Each run's target line: (second, target) where it changes.
    targets: Vec<Vec<(u64, u64)>>,
}

impl SeriesMerger {
    pub fn add(&mut self, run: &Seconds) -> Result<(), String> {
        let mut line: Vec<(u64, u64)> = Vec::new();
        for s in run.iter() {
            if line.last().is_none_or(|l| l.1 != s.target) {
                line.push((s.t, s.target));
            }
        }
        self.targets.push(line);
        for s in run.iter() {
            let e = self.by_t.entry(s.t).or_insert_with(|| {
                (
                    Second {
                        t: s.t,
                        after_ramp: true,
                        ..Default::default()
                    },
                    0,
                    None,
                )
            });
            e.0.active += s.active;
            e.0.stalled += s.stalled;
            e.0.target += s.target;
            e.0.after_ramp &= s.after_ramp;
            e.0.bytes += s.bytes;
            e.0.requests += s.requests;
            e.0.errors += s.errors;
            // shards watch one origin: its figures are the same, not added
            e.0.origin_connections = e.0.origin_connections.max(s.origin_connections);
            e.0.origin_requests = max_f(e.0.origin_requests, s.origin_requests);
            e.0.origin_cpu = max_f(e.0.origin_cpu, s.origin_cpu);
            e.1 += 1;
            if let Some(enc) = &s.ttfb {
                match &mut e.2 {
                    Some(all) => enc
                        .add_to(all)
                        .map_err(|err| format!("the TTFB histogram of second {}: {err}", s.t))?,
                    None => {
                        e.2 = Some(enc.decode().ok_or_else(|| {
                            format!("the TTFB histogram of second {} does not decode", s.t)
                        })?)
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Seconds {
        let targets = self.targets;
        let runs = targets.len();
        self.by_t
            .into_values()
            .map(|(mut s, n, h)| {
                // a second some run has no sample of: its viewers are not
                // counted, so it cannot tell the fewest active; its target
                // is each run's as of then (its first before it began)
                if n < runs {
                    s.after_ramp = false;
                    s.target = targets
                        .iter()
                        .map(|line| {
                            let i = line.partition_point(|(t, _)| *t <= s.t);
                            line.get(i.saturating_sub(1)).map_or(0, |l| l.1)
                        })
                        .sum();
                }
                if let Some(h) = h.filter(|h| !h.is_empty()) {
                    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                    s.ttfb_p50_ms = Some(ms(0.5));
                    s.ttfb_p99_ms = Some(ms(0.99));
                    s.ttfb = Some(Encoded::of(&h));
                }
                s
            })
            .collect()
    }
}

/// The seconds of several runs merged (see [`SeriesMerger`]).
pub fn merge_series(runs: &[&Seconds]) -> Result<Seconds, String> {
    let mut m = SeriesMerger::default();
    for r in runs {
        m.add(r)?;
    }
    Ok(m.finish())
}

fn max_f(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Runs merged one at a time (so that a merge of many shards holds only
/// the merged figures and the run being read): [`Merger::add`] each, then
/// [`Merger::finish`].
#[derive(Default)]
pub struct Merger {
    /// The first run, without its viewers and seconds.
    first: Option<Results>,
    urls: Vec<String>,
    profiles: Vec<String>,
    stopped: Vec<String>,
    viewers: Vec<ViewerFigures>,
    recorder: Option<Recorder>,
    all_native: bool,
    series: SeriesMerger,
    totals: figures::Totals,
    counts: figures::NativeCounts,
    networks: BTreeMap<String, figures::NetworkTotals>,
    longest: f64,
    shards: Vec<Option<Shard>>,
    /// The capacity searches of the runs that made one.
    capacities: Vec<super::capacity::Capacity>,
}

impl Merger {
    pub fn add(&mut self, mut r: Results) -> Result<(), String> {
        if let Some(first) = &self.first {
            if r.engine != first.engine {
                return Err(format!(
                    "runs of different engines ({} and {}) measure different figures; merge \
                     the runs of one engine",
                    first.engine, r.engine
                ));
            }
        } else {
            self.all_native = true;
        }
        push_distinct(&mut self.urls, &r.url);
        push_distinct(&mut self.profiles, &r.profile);
        push_distinct(&mut self.stopped, &r.stopped_by);
        self.viewers.append(&mut r.viewers);
        match r.totals.native.as_ref().map(|n| &n.histograms) {
            Some(h) if self.all_native => match &mut self.recorder {
                Some(all) => all.merge_encoded(h)?,
                None => self.recorder = Some(Recorder::from_encoded(h)?),
            },
            _ => {
                self.all_native = false;
                self.recorder = None;
            }
        }
        self.series.add(&r.series)?;
        r.series = Seconds::new();
        self.totals.viewers += r.totals.viewers;
        self.totals.add_counts(&r.totals);
        if let Some(n) = &r.totals.native {
            self.counts += &n.counts;
            for (name, t) in &n.networks {
                *self.networks.entry(name.clone()).or_default() += t;
            }
        }
        self.longest = self.longest.max(r.duration_sec);
        self.shards.push(r.shard);
        self.capacities.extend(r.capacity.take());
        if self.first.is_none() {
            r.totals = figures::Totals::default();
            self.first = Some(r);
        }
        Ok(())
    }

    /// The results of the runs added, as one run's.
    pub fn finish(self) -> Result<Results, String> {
        let first = self.first.ok_or("nothing to merge")?;
        check_shards(&self.shards)?;
        let mut viewers = self.viewers;
        viewers.sort_by_key(|v| v.id);
        if self.shards.iter().any(Option::is_some) {
            if let Some(w) = viewers.windows(2).find(|w| w[0].id == w[1].id) {
                return Err(format!("viewer {} is in two shards", w[0].id));
            }
        }
        let series = self.series.finish();
        // the runs ran side by side: the merged run lasts from the first
        // second to the last, or as long as the longest run without seconds
        let duration = match (series.first(), series.last()) {
            (Some(a), Some(b)) => (b.t - a.t + 1) as f64,
            _ => self.longest,
        };
        let mut totals = self.totals;
        totals.min_active_share = min_active_share(&series);
        totals.native = self
            .recorder
            .as_ref()
            .map(|r| NativeTotals::of(self.counts, self.networks, r));
        // judged by the first run's objectives (`merge` may judge again)
        let objectives: super::slo::Slo = first
            .settings
            .get("slo")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let capacity = match self.capacities.as_slice() {
            [] => None,
            all => Some(super::capacity::merge(
                &all.iter().collect::<Vec<_>>(),
                &series,
                &objectives,
            )?),
        };
        let mut settings = first.settings.clone();
        if let Some(c) = settings.get_mut("clients") {
            *c = totals.viewers.into();
        }
        Ok(Results {
            format: RESULTS_FORMAT.into(),
            version: RESULTS_VERSION,
            engine: first.engine.clone(),
            url: self.urls.join(", "),
            profile: self.profiles.join(", "),
            seed: first.seed,
            duration_sec: duration,
            stopped_by: self.stopped.join(", "),
            settings,
            totals,
            viewers,
            series,
            slo: Vec::new(),
            shard: None,
            capacity,
        })
    }
}

/// The results of `runs` as one run's.
pub fn merge(runs: &[Results]) -> Result<Results, String> {
    let mut m = Merger::default();
    for r in runs {
        m.add(r.clone())?;
    }
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Counters, Kind, RequestSample};
    use std::time::Duration;

    /// A run of the viewers `ids`, each with its own requests, as `run` would
    /// summarise it; and the recorder of those requests.
    fn shard(ids: std::ops::Range<u32>, t0: u64, secs: u64) -> Results {
        let mut r = Recorder::default();
        let mut viewers = Vec::new();
        let mut seconds = Vec::new();
        for id in ids.clone() {
            for i in 0..50u64 {
                r.request(&RequestSample {
                    kind: Kind::Segment,
                    connect: None,
                    ttfb: Duration::from_micros(200 + u64::from(id) * 37 + i * 11),
                    download: Duration::from_millis(1 + i),
                    download_ratio: Some(0.001 * i as f64),
                });
            }
            r.startup(Duration::from_millis(100 + u64::from(id)));
            viewers.push(ViewerFigures {
                id,
                counts: Counters {
                    starts: 1,
                    segments: 50,
                    playlists: 40,
                    bytes: 1000 * u64::from(id + 1),
                    timeouts: u64::from(id % 2),
                    ..Default::default()
                },
                native: Some(Default::default()),
                ..Default::default()
            });
        }
        let n = ids.len() as u64;
        for t in t0..t0 + secs {
            seconds.push(Second {
                t,
                active: if t == t0 + 3 { n - 1 } else { n },
                target: n,
                after_ramp: t > t0,
                bytes: 100 * n,
                requests: 9 * n,
                ..Default::default()
            });
        }
        let mut s = Results::new(
            crate::results::Run {
                engine: "native".into(),
                url: "http://o/s.m3u8".into(),
                profile: "default".into(),
                seed: 1,
                settings: serde_json::json!({ "clients": n }),
                clients: n as u32,
                ran_for: Duration::from_secs(secs),
                stopped_by: "duration reached".into(),
            },
            viewers,
            Some(&r),
            seconds.iter().collect(),
        );
        // Results::new numbers viewers from 0; a shard keeps its own ids
        for (v, id) in s.viewers.iter_mut().zip(ids) {
            v.id = id;
        }
        s
    }

    #[test]
    fn shards_merge_to_the_whole() {
        let whole = shard(0..10, 1000, 8);
        // the same viewers in three shards, one starting a second later
        let parts = [
            shard(0..3, 1000, 8),
            shard(3..7, 1000, 8),
            shard(7..10, 1001, 7),
        ];
        let merged = merge(&parts).unwrap();
        let (m, w) = (&merged.totals, &whole.totals);
        assert_eq!(m.viewers, 10);
        assert_eq!(
            (&m.counts, m.viewers_started),
            (&w.counts, w.viewers_started)
        );
        // percentiles of all samples, as one machine would have measured them
        let (mn, wn) = (m.native.as_ref().unwrap(), w.native.as_ref().unwrap());
        assert_eq!(mn.requests["segment"], wn.requests["segment"]);
        assert_eq!(mn.startup_ms, wn.startup_ms);
        assert_eq!(mn.segment_download_ratio, wn.segment_download_ratio);
        assert_eq!(mn.histograms, wn.histograms);
        // seconds by wall clock; the second the third shard misses does
        // not count for the fewest active
        assert_eq!(merged.series.len(), 8);
        let series: Vec<Second> = merged.series.iter().collect();
        assert_eq!(series[0].active, 7);
        assert!(!series[0].after_ramp);
        assert_eq!(series[2].bytes, 1000);
        // each shard had one viewer fewer in its fourth second: 1003 for
        // the first two, 1004 for the third
        assert_eq!(series[3].active, 8);
        assert_eq!(series[4].active, 9);
        assert_eq!(m.min_active_share, Some(0.8));
        let ids: Vec<u32> = merged.viewers.iter().map(|v| v.id).collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert_eq!(merged.settings["clients"], 10);
        // a merge of merges is the same merge
        let again = merge(&[merge(&parts[..2]).unwrap(), parts[2].clone()]).unwrap();
        assert_eq!(again.totals.native.unwrap().histograms, mn.histograms);
    }

    #[test]
    fn what_is_not_results_is_refused_clearly() {
        assert!(crate::results::parse("{")
            .unwrap_err()
            .starts_with("not JSON"));
        assert!(crate::results::parse("{\"a\": 1}")
            .unwrap_err()
            .contains("not hls-swarm results"));
        let mut v = serde_json::to_value(shard(0..1, 1, 1)).unwrap();
        v["version"] = 9.into();
        assert!(crate::results::parse(&v.to_string())
            .unwrap_err()
            .contains("results version 9"));
        let mut ff = shard(0..1, 1, 1);
        ff.engine = "ffmpeg".into();
        assert!(merge(&[shard(1..2, 1, 1), ff])
            .unwrap_err()
            .contains("different engines"));
        // a written results file reads back the same
        let s = shard(0..2, 5, 3);
        let back = crate::results::parse(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(
            back.totals.native.unwrap().histograms,
            s.totals.native.unwrap().histograms
        );
    }
}
