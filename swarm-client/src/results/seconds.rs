//! The series of a run's seconds, packed: a run keeps one
//! [`Second`] a second for as long as it lasts, so each is stored as a
//! short record of varints (about 150 bytes with its TTFB histogram, against
//! about 330 as a struct with its own allocation) in blocks of 16 KiB. A
//! 60-minute run's series takes about half a megabyte, and nothing is left
//! behind for the allocator to fragment. Written and read as a JSON array
//! of seconds, exactly as a `Vec<Second>`.

use serde::{Deserialize, Serialize};

use super::recorder::{get_varint, put_varint, Encoded, Pairs};
use super::Second;

/// Bytes of a block; a record bigger than that gets a block of its own.
const BLOCK: usize = 16 * 1024;

/// Flags of a record: which optional figures follow.
const AFTER_RAMP: u8 = 1;
const P50: u8 = 2;
const P99: u8 = 4;
const TTFB: u8 = 8;
const ORIGIN_CONNECTIONS: u8 = 16;
const ORIGIN_REQUESTS: u8 = 32;
const ORIGIN_CPU: u8 = 64;

/// One block: the index of its first second, and its records.
#[derive(Clone, Debug, Default)]
struct Block {
    first: usize,
    bytes: Vec<u8>,
}

/// Seconds in order, packed (see the module's text).
#[derive(Clone, Debug, Default)]
pub struct Seconds {
    blocks: Vec<Block>,
    len: usize,
    /// Where the last record starts in the last block.
    last_at: usize,
    /// A record being encoded, kept to spare an allocation a second.
    scratch: Vec<u8>,
}

fn put_f64(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn get_f64(bytes: &[u8], at: &mut usize) -> f64 {
    let mut b = [0u8; 8];
    if let Some(s) = bytes.get(*at..*at + 8) {
        b.copy_from_slice(s);
    }
    *at += 8;
    f64::from_le_bytes(b)
}

fn encode(s: &Second, out: &mut Vec<u8>) {
    let flag = |on: bool, f: u8| if on { f } else { 0 };
    out.push(
        flag(s.after_ramp, AFTER_RAMP)
            | flag(s.ttfb_p50_ms.is_some(), P50)
            | flag(s.ttfb_p99_ms.is_some(), P99)
            | flag(s.ttfb.is_some(), TTFB)
            | flag(s.origin_connections.is_some(), ORIGIN_CONNECTIONS)
            | flag(s.origin_requests.is_some(), ORIGIN_REQUESTS)
            | flag(s.origin_cpu.is_some(), ORIGIN_CPU),
    );
    for n in [
        s.t, s.active, s.stalled, s.target, s.bytes, s.requests, s.errors,
    ] {
        put_varint(out, n);
    }
    for x in [s.ttfb_p50_ms, s.ttfb_p99_ms].into_iter().flatten() {
        put_f64(out, x);
    }
    if let Some(h) = &s.ttfb {
        put_varint(out, h.low);
        put_varint(out, h.high);
        out.push(h.sigfig);
        let packed = h.counts.packed();
        put_varint(out, packed.len() as u64);
        out.extend_from_slice(packed);
    }
    if let Some(n) = s.origin_connections {
        put_varint(out, n);
    }
    for x in [s.origin_requests, s.origin_cpu].into_iter().flatten() {
        put_f64(out, x);
    }
}

fn decode(bytes: &[u8], at: &mut usize) -> Second {
    let flags = bytes[*at];
    *at += 1;
    let has = |f: u8| flags & f != 0;
    let mut n = || get_varint(bytes, at);
    let (t, active, stalled, target, sent, requests, errors) = (n(), n(), n(), n(), n(), n(), n());
    let mut s = Second {
        t,
        active,
        stalled,
        target,
        after_ramp: has(AFTER_RAMP),
        bytes: sent,
        requests,
        errors,
        ..Default::default()
    };
    if has(P50) {
        s.ttfb_p50_ms = Some(get_f64(bytes, at));
    }
    if has(P99) {
        s.ttfb_p99_ms = Some(get_f64(bytes, at));
    }
    if has(TTFB) {
        let low = get_varint(bytes, at);
        let high = get_varint(bytes, at);
        let sigfig = bytes[*at];
        *at += 1;
        let len = get_varint(bytes, at) as usize;
        let counts = Pairs::from_packed(&bytes[*at..*at + len]);
        *at += len;
        s.ttfb = Some(Encoded {
            low,
            high,
            sigfig,
            counts,
        });
    }
    if has(ORIGIN_CONNECTIONS) {
        s.origin_connections = Some(get_varint(bytes, at));
    }
    if has(ORIGIN_REQUESTS) {
        s.origin_requests = Some(get_f64(bytes, at));
    }
    if has(ORIGIN_CPU) {
        s.origin_cpu = Some(get_f64(bytes, at));
    }
    s
}

impl Seconds {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `s` after the others.
    pub fn push(&mut self, s: &Second) {
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        encode(s, &mut rec);
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.bytes.len() + rec.len() <= b.bytes.capacity());
        if !fits {
            self.blocks.push(Block {
                first: self.len,
                bytes: Vec::with_capacity(BLOCK.max(rec.len())),
            });
        }
        let block = self.blocks.last_mut().expect("a block");
        self.last_at = block.bytes.len();
        block.bytes.extend_from_slice(&rec);
        self.len += 1;
        self.scratch = rec;
    }

    /// Replaces the last second with `s` (nothing when there is none).
    pub fn set_last(&mut self, s: &Second) {
        let Some(block) = self.blocks.last_mut() else {
            return;
        };
        block.bytes.truncate(self.last_at);
        if block.bytes.is_empty() {
            self.blocks.pop();
        }
        self.len -= 1;
        self.push(s);
    }

    /// The seconds from the `from`th on (counting from 0).
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = Second> + '_ {
        let start = self
            .blocks
            .partition_point(|b| b.first <= from)
            .saturating_sub(1);
        let mut skip = self
            .blocks
            .get(start)
            .map_or(0, |b| from.saturating_sub(b.first));
        self.blocks[start.min(self.blocks.len())..]
            .iter()
            .flat_map(|b| {
                let mut at = 0;
                std::iter::from_fn(move || (at < b.bytes.len()).then(|| decode(&b.bytes, &mut at)))
            })
            .filter(move |_| {
                let keep = skip == 0;
                skip = skip.saturating_sub(1);
                keep
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = Second> + '_ {
        self.iter_from(0)
    }

    pub fn first(&self) -> Option<Second> {
        self.iter().next()
    }

    pub fn last(&self) -> Option<Second> {
        let block = self.blocks.last()?;
        let mut at = self.last_at;
        Some(decode(&block.bytes, &mut at))
    }

    /// The bytes the records take (what the series costs in memory, but
    /// for the blocks' unused tails).
    pub fn packed_len(&self) -> usize {
        self.blocks.iter().map(|b| b.bytes.len()).sum()
    }
}

impl<'a> FromIterator<&'a Second> for Seconds {
    fn from_iter<I: IntoIterator<Item = &'a Second>>(it: I) -> Self {
        let mut out = Seconds::new();
        for s in it {
            out.push(s);
        }
        out
    }
}

impl FromIterator<Second> for Seconds {
    fn from_iter<I: IntoIterator<Item = Second>>(it: I) -> Self {
        let mut out = Seconds::new();
        for s in it {
            out.push(&s);
        }
        out
    }
}

impl PartialEq for Seconds {
    fn eq(&self, o: &Self) -> bool {
        self.len == o.len && self.iter().eq(o.iter())
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of seconds")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Seconds, A::Error> {
                let mut out = Seconds::new();
                while let Some(s) = a.next_element::<Second>()? {
                    out.push(&s);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Visit)
    }
}

impl schemars::JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Vec<Second>>::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<Second>>::json_schema(g)
    }
    fn inline_schema() -> bool {
        <Vec<Second>>::inline_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn second(i: u64) -> Second {
        Second {
            t: 1_700_000_000 + i,
            active: i % 7,
            stalled: i % 3,
            target: 300,
            after_ramp: i.is_multiple_of(2),
            bytes: i * 1_000_003,
            requests: i * 5,
            errors: i % 4,
            ttfb_p50_ms: (!i.is_multiple_of(5)).then_some(i as f64 / 3.0),
            ttfb_p99_ms: (!i.is_multiple_of(5)).then_some(i as f64 * 1.7),
            ttfb: (!i.is_multiple_of(5)).then(|| Encoded {
                low: 1,
                high: 60_000_000,
                sigfig: 1,
                counts: Pairs::from_sorted((1..=(i % 50)).map(|v| (v * 97, v * i + 1))).unwrap(),
            }),
            origin_connections: (i % 3 == 1).then_some(i * 11),
            origin_requests: (i % 3 == 1).then_some(i as f64 * 0.1),
            origin_cpu: (i % 3 == 2).then_some(1.0 / (i as f64 + 1.0)),
        }
    }

    #[test]
    fn seconds_come_back_as_they_went_in_across_blocks() {
        let all: Vec<Second> = (0..3000).map(second).collect();
        let packed: Seconds = all.iter().collect();
        assert!(
            packed.blocks.len() > 5,
            "spans blocks: {}",
            packed.blocks.len()
        );
        assert_eq!(packed.len(), all.len());
        assert_eq!(packed.iter().collect::<Vec<_>>(), all);
        assert_eq!(packed.first().as_ref(), all.first());
        assert_eq!(packed.last().as_ref(), all.last());
        for from in [0, 1, 99, 100, 1234, 2999, 3000, 5000] {
            assert_eq!(
                packed.iter_from(from).collect::<Vec<_>>(),
                all[from.min(all.len())..],
                "from {from}"
            );
        }
        // far smaller than the structs and their histograms
        let as_structs = all.len() * std::mem::size_of::<Second>()
            + all
                .iter()
                .filter_map(|s| s.ttfb.as_ref())
                .map(|h| h.counts.packed().len())
                .sum::<usize>();
        assert!(
            packed.packed_len() < as_structs / 2,
            "{} vs {as_structs}",
            packed.packed_len()
        );
    }

    #[test]
    fn the_json_is_that_of_a_vec_of_seconds() {
        let all: Vec<Second> = (0..200).map(second).collect();
        let packed: Seconds = all.iter().collect();
        let json = serde_json::to_string(&packed).unwrap();
        assert_eq!(json, serde_json::to_string(&all).unwrap());
        let back: Seconds = serde_json::from_str(&json).unwrap();
        assert_eq!(back, packed);
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(Seconds)).unwrap(),
            serde_json::to_value(schemars::schema_for!(Vec<Second>)).unwrap()
        );
    }

    #[test]
    fn the_last_second_is_replaced_in_place() {
        let mut s = Seconds::new();
        s.set_last(&second(1));
        assert!(s.is_empty(), "nothing to replace");
        for i in 0..150 {
            s.push(&second(i));
            let mut with_origin = second(i);
            with_origin.origin_connections = Some(42);
            with_origin.origin_cpu = Some(0.5);
            s.set_last(&with_origin);
            assert_eq!(s.last(), Some(with_origin));
        }
        assert_eq!(s.len(), 150);
        assert_eq!(s.iter().nth(7).unwrap().origin_connections, Some(42));
    }

    #[test]
    fn a_record_bigger_than_a_block_gets_its_own() {
        let mut big = second(1);
        big.ttfb.as_mut().unwrap().counts =
            Pairs::from_sorted((1..=10_000).map(|v| (v * 1000, v))).unwrap();
        let all = vec![second(2), big, second(3)];
        let packed: Seconds = all.iter().collect();
        assert_eq!(packed.iter().collect::<Vec<_>>(), all);
    }

    proptest! {
        #[test]
        fn any_second_round_trips(
            t in any::<u64>(), active in any::<u64>(), bytes in any::<u64>(),
            p50 in proptest::option::of(any::<f64>()), cpu in proptest::option::of(any::<f64>()),
            conns in proptest::option::of(any::<u64>()), ramp in any::<bool>(),
        ) {
            let s = Second {
                t, active, bytes, after_ramp: ramp, ttfb_p50_ms: p50, origin_cpu: cpu,
                origin_connections: conns, ..Default::default()
            };
            let packed: Seconds = [s.clone(), s.clone()].iter().collect();
            let back: Vec<Second> = packed.iter().collect();
            // NaN is not equal to itself: compare the bits
            prop_assert_eq!(format!("{:?}", back), format!("{:?}", vec![s.clone(), s]));
        }
    }
}
