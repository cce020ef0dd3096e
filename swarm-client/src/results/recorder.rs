//! What native viewers measure, aggregated (PLAYER.md §3–4): HDR histograms of
//! request timings per kind, the download ratio, startup and live latency,
//! kept at 3 significant digits from 1 µs to 1 h, and merged exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Master,
    Playlist,
    Segment,
    /// An `EXT-X-MAP` initialisation section (fMP4): loaded once per
    /// variant, and again when the map changes.
    Init,
    /// An `EXT-X-PART` of a Low-Latency HLS segment.
    Part,
    /// The part an `EXT-X-PRELOAD-HINT` names, asked for beside the
    /// blocking reload before it is listed (the `avplayer` profile).
    Hint,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Master,
        Kind::Playlist,
        Kind::Segment,
        Kind::Init,
        Kind::Part,
        Kind::Hint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Playlist => "playlist",
            Kind::Segment => "segment",
            Kind::Init => "init",
            Kind::Part => "part",
            Kind::Hint => "hint",
        }
    }

    /// Results written before this kind was counted do not have its
    /// histograms: read as empty, not as a broken file.
    fn may_be_absent(self) -> bool {
        matches!(self, Kind::Init | Kind::Part | Kind::Hint)
    }
}

/// Highest trackable value of a timing histogram: 1 h in µs.
pub const MAX_MICROS: u64 = 3_600_000_000;
/// Download ratios are kept in thousandths, up to 1000×.
pub const RATIO_SCALE: f64 = 1000.0;
const MAX_RATIO_MILLI: u64 = 1_000_000;

fn timing() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

/// The timings of one request kind.
#[derive(Clone, Debug)]
pub struct KindTimings {
    pub connect: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub download: Histogram<u64>,
}

impl Default for KindTimings {
    fn default() -> Self {
        KindTimings {
            connect: timing(),
            ttfb: timing(),
            download: timing(),
        }
    }
}

/// The histograms of one network class (`networks` of the config).
#[derive(Clone, Debug)]
pub struct NetworkTimings {
    pub segment_ttfb: Histogram<u64>,
    pub startup: Histogram<u64>,
}

impl Default for NetworkTimings {
    fn default() -> Self {
        NetworkTimings {
            segment_ttfb: timing(),
            startup: timing(),
        }
    }
}

/// The names of a network class's histograms in [`Recorder::encoded`].
const NETWORK_HISTOGRAMS: [&str; 2] = ["segment.ttfb", "startup"];

impl NetworkTimings {
    fn get_mut(&mut self, name: &str) -> Option<&mut Histogram<u64>> {
        match name {
            "segment.ttfb" => Some(&mut self.segment_ttfb),
            "startup" => Some(&mut self.startup),
            _ => None,
        }
    }
}

/// One finished HTTP request.
#[derive(Clone, Debug)]
pub struct RequestSample {
    pub kind: Kind,
    pub connect: Option<Duration>,
    pub ttfb: Duration,
    pub download: Duration,
    /// `download / EXTINF` of a media segment (`download / DURATION` of a
    /// part).
    pub download_ratio: Option<f64>,
}

/// The swarm's histograms.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub kinds: BTreeMap<Kind, KindTimings>,
    /// Segment download ratio × 1000.
    pub download_ratio: Histogram<u64>,
    pub startup: Histogram<u64>,
    pub live_latency: Histogram<u64>,
    pub rebuffer: Histogram<u64>,
    /// Low-Latency HLS (PLAYER.md §7): blocking reloads' hold time
    /// (request written → response head), their overshoot (response head −
    /// the end of the part asked for, by the program date-time) and the
    /// playlist advance lag (a part's end → the viewer has a playlist
    /// listing it).
    pub reload_hold: Histogram<u64>,
    pub reload_overshoot: Histogram<u64>,
    pub advance_lag: Histogram<u64>,
    /// Part download ratio × 1000.
    pub part_download_ratio: Histogram<u64>,
    /// The latency target at each live-latency sample (PLAYER.md §7).
    pub live_latency_target: Histogram<u64>,
    /// Per network class, by its name.
    pub networks: BTreeMap<String, NetworkTimings>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            kinds: Kind::ALL
                .iter()
                .map(|k| (*k, KindTimings::default()))
                .collect(),
            download_ratio: Histogram::new_with_bounds(1, MAX_RATIO_MILLI, 3)
                .expect("valid histogram bounds"),
            startup: timing(),
            live_latency: timing(),
            rebuffer: timing(),
            reload_hold: timing(),
            reload_overshoot: timing(),
            advance_lag: timing(),
            part_download_ratio: Histogram::new_with_bounds(1, MAX_RATIO_MILLI, 3)
                .expect("valid histogram bounds"),
            live_latency_target: timing(),
            networks: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn request(&mut self, s: &RequestSample) {
        let k = self.kinds.entry(s.kind).or_default();
        if let Some(c) = s.connect {
            k.connect.saturating_record(micros(c));
        }
        k.ttfb.saturating_record(micros(s.ttfb));
        k.download.saturating_record(micros(s.download));
        if let Some(r) = s.download_ratio {
            let milli = (r * RATIO_SCALE).round();
            if milli.is_finite() {
                let h = if s.kind == Kind::Part {
                    &mut self.part_download_ratio
                } else {
                    &mut self.download_ratio
                };
                h.saturating_record((milli as u64).clamp(1, MAX_RATIO_MILLI));
            }
        }
    }

    pub fn startup(&mut self, d: Duration) {
        self.startup.saturating_record(micros(d));
    }

    /// A live-latency sample, and the latency the viewer aimed at then.
    pub fn latency(&mut self, d: Duration, target: Option<Duration>) {
        self.live_latency.saturating_record(micros(d));
        if let Some(t) = target {
            self.live_latency_target.saturating_record(micros(t));
        }
    }

    pub fn rebuffer(&mut self, d: Duration) {
        self.rebuffer.saturating_record(micros(d));
    }

    /// A blocking reload's hold time, and its overshoot when known.
    pub fn blocking_reload(&mut self, hold: Duration, overshoot: Option<Duration>) {
        self.reload_hold.saturating_record(micros(hold));
        if let Some(o) = overshoot {
            self.reload_overshoot.saturating_record(micros(o));
        }
    }

    pub fn advance_lag(&mut self, d: Duration) {
        self.advance_lag.saturating_record(micros(d));
    }

    /// The histograms results written before Low-Latency HLS do not have
    /// (read as empty), by name.
    fn low_latency_mut(&mut self) -> [(&'static str, &mut Histogram<u64>); 5] {
        [
            ("reload.hold", &mut self.reload_hold),
            ("reload.overshoot", &mut self.reload_overshoot),
            ("playlist.advanceLag", &mut self.advance_lag),
            ("part.downloadRatio", &mut self.part_download_ratio),
            ("liveLatency.target", &mut self.live_latency_target),
        ]
    }

    /// A segment's TTFB, seen by a viewer of network class `network`.
    pub fn network_ttfb(&mut self, network: &str, d: Duration) {
        self.network(network)
            .segment_ttfb
            .saturating_record(micros(d));
    }

    /// A startup, seen by a viewer of network class `network`.
    pub fn network_startup(&mut self, network: &str, d: Duration) {
        self.network(network).startup.saturating_record(micros(d));
    }

    fn network(&mut self, name: &str) -> &mut NetworkTimings {
        if !self.networks.contains_key(name) {
            self.networks
                .insert(name.to_owned(), NetworkTimings::default());
        }
        self.networks.get_mut(name).expect("inserted above")
    }

    /// Adds `other` in: counts of equal values add up, so percentiles of the
    /// merge are those of all samples together.
    pub fn merge(&mut self, other: &Recorder) {
        self.each_with(other, |a, b| {
            a.add(b).expect("histograms of the same bounds");
        });
    }

    /// What was recorded after `earlier` (a copy of this recorder taken
    /// before): each histogram less its earlier counts.
    pub fn since(&self, earlier: &Recorder) -> Recorder {
        let mut out = self.clone();
        out.each_with(earlier, |a, b| {
            // a later copy holds every count an earlier one did
            let _ = a.subtract(b);
        });
        out
    }

    /// Calls `op` on each histogram of this recorder with the same one of
    /// `other` (made here when this one lacks it).
    fn each_with(&mut self, other: &Recorder, op: impl Fn(&mut Histogram<u64>, &Histogram<u64>)) {
        let add = |a: &mut Histogram<u64>, b: &Histogram<u64>| op(a, b);
        for (k, t) in &other.kinds {
            let mine = self.kinds.entry(*k).or_default();
            add(&mut mine.connect, &t.connect);
            add(&mut mine.ttfb, &t.ttfb);
            add(&mut mine.download, &t.download);
        }
        add(&mut self.download_ratio, &other.download_ratio);
        add(&mut self.startup, &other.startup);
        add(&mut self.live_latency, &other.live_latency);
        add(&mut self.rebuffer, &other.rebuffer);
        add(&mut self.reload_hold, &other.reload_hold);
        add(&mut self.reload_overshoot, &other.reload_overshoot);
        add(&mut self.advance_lag, &other.advance_lag);
        add(&mut self.part_download_ratio, &other.part_download_ratio);
        add(&mut self.live_latency_target, &other.live_latency_target);
        for (name, t) in &other.networks {
            let mine = self.network(name);
            add(&mut mine.segment_ttfb, &t.segment_ttfb);
            add(&mut mine.startup, &t.startup);
        }
    }
}

impl Recorder {
    /// Every histogram by name (`segment.ttfb`, `startup`, …), encoded so
    /// that it merges exactly: what the results file keeps.
    pub fn encoded(&self) -> BTreeMap<String, Encoded> {
        let mut out = BTreeMap::new();
        for (k, t) in &self.kinds {
            let k = k.as_str();
            out.insert(format!("{k}.connect"), Encoded::of(&t.connect));
            out.insert(format!("{k}.ttfb"), Encoded::of(&t.ttfb));
            out.insert(format!("{k}.download"), Encoded::of(&t.download));
        }
        out.insert(
            "segment.downloadRatio".into(),
            Encoded::of(&self.download_ratio),
        );
        out.insert("startup".into(), Encoded::of(&self.startup));
        out.insert("rebuffer".into(), Encoded::of(&self.rebuffer));
        out.insert("liveLatency".into(), Encoded::of(&self.live_latency));
        out.insert("reload.hold".into(), Encoded::of(&self.reload_hold));
        out.insert(
            "reload.overshoot".into(),
            Encoded::of(&self.reload_overshoot),
        );
        out.insert("playlist.advanceLag".into(), Encoded::of(&self.advance_lag));
        out.insert(
            "part.downloadRatio".into(),
            Encoded::of(&self.part_download_ratio),
        );
        out.insert(
            "liveLatency.target".into(),
            Encoded::of(&self.live_latency_target),
        );
        for (name, t) in &self.networks {
            out.insert(
                format!("network.{name}.segment.ttfb"),
                Encoded::of(&t.segment_ttfb),
            );
            out.insert(format!("network.{name}.startup"), Encoded::of(&t.startup));
        }
        out
    }

    /// The network-class histograms of an encoded set, as
    /// (class, histogram name, histogram); a name it does not know is an error.
    fn encoded_networks(
        m: &BTreeMap<String, Encoded>,
    ) -> Result<Vec<(&str, &str, &Encoded)>, String> {
        let mut out = Vec::new();
        for (key, e) in m.range("network.".to_owned()..) {
            let Some(rest) = key.strip_prefix("network.") else {
                break;
            };
            let hist = NETWORK_HISTOGRAMS
                .iter()
                .find(|h| rest.ends_with(&format!(".{h}")))
                .ok_or_else(|| format!("the histogram `{key}` is not one a run writes"))?;
            out.push((&rest[..rest.len() - hist.len() - 1], *hist, e));
        }
        Ok(out)
    }

    /// The recorder [`Recorder::encoded`] wrote; an error names a histogram
    /// that is missing or does not decode.
    pub fn from_encoded(m: &BTreeMap<String, Encoded>) -> Result<Recorder, String> {
        let get = |name: &str| -> Result<Histogram<u64>, String> {
            m.get(name)
                .ok_or_else(|| format!("the histogram `{name}` is missing"))?
                .decode()
                .ok_or_else(|| format!("the histogram `{name}` does not decode"))
        };
        let mut r = Recorder::default();
        for k in Kind::ALL {
            let s = k.as_str();
            if k.may_be_absent() && !m.contains_key(&format!("{s}.ttfb")) {
                continue;
            }
            r.kinds.insert(
                k,
                KindTimings {
                    connect: get(&format!("{s}.connect"))?,
                    ttfb: get(&format!("{s}.ttfb"))?,
                    download: get(&format!("{s}.download"))?,
                },
            );
        }
        r.download_ratio = get("segment.downloadRatio")?;
        r.startup = get("startup")?;
        r.rebuffer = get("rebuffer")?;
        r.live_latency = get("liveLatency")?;
        for (name, h) in r.low_latency_mut() {
            if m.contains_key(name) {
                *h = get(name)?;
            }
        }
        r.merge_networks(m)?;
        Ok(r)
    }

    fn merge_networks(&mut self, m: &BTreeMap<String, Encoded>) -> Result<(), String> {
        for (class, hist, e) in Recorder::encoded_networks(m)? {
            let h = self
                .network(class)
                .get_mut(hist)
                .expect("one of NETWORK_HISTOGRAMS");
            e.add_to(h)
                .map_err(|err| format!("the histogram `network.{class}.{hist}`: {err}"))?;
        }
        Ok(())
    }
}

impl Recorder {
    /// Adds the histograms [`Recorder::encoded`] wrote (another run's) to
    /// these, as [`Recorder::merge`] does, without decoding them first.
    pub fn merge_encoded(&mut self, m: &BTreeMap<String, Encoded>) -> Result<(), String> {
        let add = |name: &str, h: &mut Histogram<u64>| -> Result<(), String> {
            m.get(name)
                .ok_or_else(|| format!("the histogram `{name}` is missing"))?
                .add_to(h)
                .map_err(|e| format!("the histogram `{name}`: {e}"))
        };
        for k in Kind::ALL {
            let s = k.as_str();
            if k.may_be_absent() && !m.contains_key(&format!("{s}.ttfb")) {
                continue;
            }
            let t = self.kinds.entry(k).or_default();
            add(&format!("{s}.connect"), &mut t.connect)?;
            add(&format!("{s}.ttfb"), &mut t.ttfb)?;
            add(&format!("{s}.download"), &mut t.download)?;
        }
        add("segment.downloadRatio", &mut self.download_ratio)?;
        add("startup", &mut self.startup)?;
        add("rebuffer", &mut self.rebuffer)?;
        add("liveLatency", &mut self.live_latency)?;
        for (name, h) in self.low_latency_mut() {
            if m.contains_key(name) {
                add(name, h)?;
            }
        }
        self.merge_networks(m)
    }
}

/// A histogram's summary: count, mean, percentiles, max — in milliseconds
/// for timings, plain for ratios.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Stats {
    /// Summarises `h`, dividing each value by `scale` (1000: µs → ms).
    pub fn of(h: &Histogram<u64>, scale: f64) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let q = |p: f64| round3(h.value_at_quantile(p) as f64 / scale);
        Stats {
            count: h.len(),
            mean: round3(h.mean() / scale),
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: round3(h.max() as f64 / scale),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A histogram in a form that merges exactly: the recorded buckets as
/// `[value, count]` pairs (each value the highest equivalent value of its
/// bucket), with the histogram's bounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Encoded {
    pub low: u64,
    pub high: u64,
    pub sigfig: u8,
    pub counts: Pairs,
}

/// `[value, count]` pairs in ascending value, kept packed in memory (value
/// steps and counts as LEB128 varints: a run keeps one histogram a second,
/// about 3 bytes a bucket instead of 16) and written as a JSON array of
/// pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(Box<[u8]>);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    while let Some(b) = bytes.get(*at) {
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

impl Pairs {
    /// Packs pairs given in ascending value; `None` when they are not.
    pub fn from_sorted(pairs: impl IntoIterator<Item = (u64, u64)>) -> Option<Pairs> {
        let mut out = Vec::new();
        let mut last = 0u64;
        for (i, (v, n)) in pairs.into_iter().enumerate() {
            if i > 0 && v <= last {
                return None;
            }
            put_varint(&mut out, v - if i > 0 { last } else { 0 });
            put_varint(&mut out, n);
            last = v;
        }
        Some(Pairs(out.into_boxed_slice()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut at = 0;
        let mut value = 0u64;
        std::iter::from_fn(move || {
            if at >= self.0.len() {
                return None;
            }
            value += get_varint(&self.0, &mut at);
            Some((value, get_varint(&self.0, &mut at)))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The packed bytes, for storing elsewhere.
    pub(crate) fn packed(&self) -> &[u8] {
        &self.0
    }

    /// Pairs from bytes [`Pairs::packed`] gave.
    pub(crate) fn from_packed(bytes: &[u8]) -> Pairs {
        Pairs(bytes.into())
    }
}

impl Serialize for Pairs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut pairs: Vec<(u64, u64)> = Vec::deserialize(d)?;
        // values a run wrote are ascending and distinct; anything else is
        // put in order, equal values summed
        pairs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(pairs.len());
        for (v, n) in pairs {
            match merged.last_mut() {
                Some(last) if last.0 == v => last.1 = last.1.saturating_add(n),
                _ => merged.push((v, n)),
            }
        }
        Ok(Pairs::from_sorted(merged).expect("sorted and distinct"))
    }
}

impl schemars::JsonSchema for Pairs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Pairs".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<(u64, u64)>>::json_schema(g)
    }
}

impl Encoded {
    pub fn of(h: &Histogram<u64>) -> Encoded {
        Encoded {
            low: h.low(),
            high: h.high(),
            sigfig: h.sigfig(),
            counts: Pairs::from_sorted(
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())),
            )
            .expect("a histogram's buckets ascend"),
        }
    }

    /// `h` with `sigfig` significant digits (fewer than its own): fewer,
    /// wider buckets; `None` when it cannot be made.
    pub fn coarse(h: &Histogram<u64>, sigfig: u8) -> Option<Encoded> {
        let mut c = Histogram::new_with_bounds(h.low(), h.high(), sigfig).ok()?;
        for v in h.iter_recorded() {
            c.record_n(v.value_iterated_to(), v.count_at_value()).ok()?;
        }
        Some(Encoded::of(&c))
    }

    /// Adds these counts to `h`, a histogram of the same bounds, without
    /// making a histogram of them first (merging many shards stays cheap).
    pub fn add_to(&self, h: &mut Histogram<u64>) -> Result<(), String> {
        if (h.low(), h.high(), h.sigfig()) != (self.low, self.high, self.sigfig) {
            return Err("histograms of other bounds".into());
        }
        for (v, n) in self.counts.iter() {
            h.record_n(v, n)
                .map_err(|_| format!("the value {v} is out of the histogram's bounds"))?;
        }
        Ok(())
    }

    /// The histogram again (`None` when the bounds are unusable).
    pub fn decode(&self) -> Option<Histogram<u64>> {
        let mut h = Histogram::new_with_bounds(self.low, self.high, self.sigfig).ok()?;
        for (v, n) in self.counts.iter() {
            h.record_n(v, n).ok()?;
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_pack_and_read_back_and_write_as_json_pairs() {
        let list = vec![(1, 5), (127, 1), (128, 300), (3_600_000_000, u64::MAX)];
        let p = Pairs::from_sorted(list.clone()).unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), list);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            "[[1,5],[127,1],[128,300],[3600000000,18446744073709551615]]"
        );
        let back: Pairs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        // out of order or repeated values in a file are put right
        let odd: Pairs = serde_json::from_str("[[9,1],[2,1],[9,2]]").unwrap();
        assert_eq!(odd.iter().collect::<Vec<_>>(), vec![(2, 1), (9, 3)]);
        assert!(Pairs::from_sorted([(3, 1), (3, 1)]).is_none());
        assert!(Pairs::from_sorted(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn percentiles_merge_and_encode() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        let mut all = Recorder::default();
        for i in 1..=1000u64 {
            let s = RequestSample {
                kind: Kind::Segment,
                connect: None,
                ttfb: Duration::from_micros(i * 100),
                download: Duration::from_millis(i),
                download_ratio: Some(i as f64 / 1000.0),
            };
            if i % 3 == 0 { &mut a } else { &mut b }.request(&s);
            all.request(&s);
        }
        a.merge(&b);
        let seg = &a.kinds[&Kind::Segment];
        let whole = &all.kinds[&Kind::Segment];
        assert_eq!(Stats::of(&seg.ttfb, 1000.0), Stats::of(&whole.ttfb, 1000.0));
        let st = Stats::of(&seg.download, 1000.0);
        assert_eq!(st.count, 1000);
        // 3 significant digits
        assert!((st.p50 - 500.0).abs() <= 0.5, "{st:?}");
        assert!((st.p99 - 990.0).abs() <= 1.0, "{st:?}");
        let r = Stats::of(&a.download_ratio, RATIO_SCALE);
        assert!((r.p90 - 0.9).abs() < 0.002, "{r:?}");
        // the encoding gives back the same histogram
        let e = Encoded::of(&seg.download);
        let back = e.decode().unwrap();
        assert_eq!(back, seg.download);
        let json = serde_json::to_string(&e).unwrap();
        let again: Encoded = serde_json::from_str(&json).unwrap();
        assert_eq!(again.decode().unwrap(), seg.download);
        // nothing recorded: zeros, not a panic
        assert_eq!(
            Stats::of(&Recorder::default().startup, 1000.0),
            Stats::default()
        );
    }

    /// The Low-Latency histograms merge exactly, decoded or encoded; results
    /// written before them read as empty.
    #[test]
    fn low_latency_histograms_merge_and_may_be_absent() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        let mut all = Recorder::default();
        for i in 1..=500u64 {
            let hold = Duration::from_micros(150_000 + i * 97);
            let over = (i % 4 != 0).then(|| Duration::from_micros(i * 53));
            let lag = Duration::from_micros(i * 31);
            for r in [if i % 2 == 0 { &mut a } else { &mut b }, &mut all] {
                r.blocking_reload(hold, over);
                r.advance_lag(lag);
            }
        }
        let mut encoded = a.clone();
        encoded.merge_encoded(&b.encoded()).unwrap();
        a.merge(&b);
        for r in [&a, &encoded, &Recorder::from_encoded(&a.encoded()).unwrap()] {
            assert_eq!(r.reload_hold, all.reload_hold);
            assert_eq!(r.reload_overshoot, all.reload_overshoot);
            assert_eq!(r.advance_lag, all.advance_lag);
        }
        assert_eq!(all.reload_overshoot.len(), 375);
        // an older results file, without them
        let mut old = a.encoded();
        for name in [
            "reload.hold",
            "reload.overshoot",
            "playlist.advanceLag",
            "part.downloadRatio",
            "liveLatency.target",
        ] {
            assert!(old.remove(name).is_some(), "{name}");
        }
        let back = Recorder::from_encoded(&old).unwrap();
        assert!(back.reload_hold.is_empty() && back.advance_lag.is_empty());
        let mut merged = Recorder::default();
        merged.merge_encoded(&old).unwrap();
        assert!(merged.reload_overshoot.is_empty());
    }
}
