//! Which variants a viewer follows: the tracks a master playlist gives
//! it, the ABR switch after each segment (PLAYER.md §1) and, for `hlsjs`
//! ABR viewers, hls.js's emergency switch down during a load too slow for
//! the buffer.

use std::time::{Duration, Instant};

use url::Url;

use super::io::{Event, Request, Target};
use super::profile::PlayerProfile;
use super::track::Track;
use super::{Player, VariantMode, MAX_TRACKS};
use crate::native::abr::{self, Estimator, Loading};
use crate::native::playlist::{MediaType, Variant};
use crate::results::Kind;

impl Player {
    /// The master playlist's `variants` and `renditions`: the tracks to
    /// follow, and for an ABR viewer its ladder and first variant.
    pub(super) fn on_master(
        &mut self,
        variants: &[Variant],
        renditions: &[(Url, MediaType)],
        now: Instant,
    ) {
        let mut ladder: Vec<(Url, u64)> = variants
            .iter()
            .map(|v| (v.url.clone(), v.bandwidth))
            .collect();
        let urls: Vec<Url> = match self.cfg.variant {
            VariantMode::All => {
                let mut u: Vec<Url> = variants.iter().map(|v| v.url.clone()).collect();
                for (r, _) in renditions {
                    if !u.contains(r) {
                        u.push(r.clone());
                    }
                }
                u
            }
            VariantMode::First => vec![variants[0].url.clone()],
            VariantMode::Highest => {
                vec![ladder
                    .iter()
                    .max_by_key(|v| v.1)
                    .expect("variants")
                    .0
                    .clone()]
            }
            VariantMode::Lowest => {
                vec![ladder
                    .iter()
                    .min_by_key(|v| v.1)
                    .expect("variants")
                    .0
                    .clone()]
            }
            VariantMode::Abr => {
                ladder.sort_by_key(|v| v.1);
                let bws: Vec<u64> = ladder.iter().map(|v| v.1).collect();
                self.current = abr::initial(&bws);
                vec![ladder[self.current].0.clone()]
            }
        };
        if self.cfg.variant == VariantMode::Abr {
            self.ladder = ladder;
        }
        // a frame of the stream: the longest gap no one sees
        if let Some(fps) = variants
            .iter()
            .find(|v| Some(&v.url) == urls.first())
            .and_then(|v| v.frame_rate)
        {
            self.playout.set_frame(Duration::from_secs_f64(1.0 / fps));
        }
        if urls.len() > MAX_TRACKS {
            self.events
                .push(Event::VariantsNotFollowed((urls.len() - MAX_TRACKS) as u64));
        }
        self.top_bandwidth = variants.iter().map(|v| v.bandwidth).max();
        self.tracks = urls
            .into_iter()
            .take(MAX_TRACKS)
            .map(|u| {
                let mut t = Track::new(u, now);
                if let Some(v) = variants.iter().find(|v| v.url == t.url) {
                    (t.media, t.bandwidth) = (v.media, Some(v.bandwidth));
                } else if let Some(r) = renditions.iter().find(|r| r.0 == t.url) {
                    t.media = r.1;
                }
                t
            })
            .collect();
    }

    /// The ABR switch after a segment of the first track came in.
    pub(super) fn adapt(&mut self, now: Instant) {
        if self.ladder.is_empty() {
            return;
        }
        let bws: Vec<u64> = self.ladder.iter().map(|v| v.1).collect();
        let next = abr::choose(&bws, self.current, self.estimator.estimate());
        if next != self.current {
            self.switch(next, now);
        }
    }

    /// The first track plays variant `to` of the ladder from `now` on (its
    /// playlist is loaded next); counted as a switch up or down.
    fn switch(&mut self, to: usize, now: Instant) {
        let (url, bandwidth) = self.ladder[to].clone();
        self.events.push(Event::Switch {
            up: to > self.current,
            bandwidth,
        });
        self.current = to;
        self.tracks[0].switch_to(url, now);
        self.tracks[0].bandwidth = Some(bandwidth);
    }

    /// Whether loads of `req` are watched by hls.js's abandon rule: whole
    /// segments of the first track of an `hlsjs` ABR viewer playing its
    /// third variant or a higher one ([`abr::abandon`]).
    pub fn watches(&self, req: &Request) -> bool {
        self.cfg.profile == PlayerProfile::Hlsjs
            && req.kind == Kind::Segment
            && req.target == Target::Track(0)
            && self.current >= 2
            && self.current < self.ladder.len()
    }

    /// The variant to load `req` from instead, judged at `now` on the load
    /// so far — begun at `started`, its first byte in at `first_byte`,
    /// `loaded` bytes in — once playback has begun; `None`: go on.
    pub fn abandon_for(
        &self,
        req: &Request,
        started: Instant,
        first_byte: Option<Instant>,
        loaded: u64,
        now: Instant,
    ) -> Option<usize> {
        if !self.watches(req) || !self.playout.started() {
            return None;
        }
        let since = |t: Instant| t.saturating_duration_since(started).as_secs_f64();
        let l = Loading {
            variant: self.current,
            duration: req.duration?,
            elapsed: since(now),
            first_byte: first_byte.map(since),
            loaded,
            buffered: self.playout.level(now),
        };
        let bws: Vec<u64> = self.ladder.iter().map(|v| v.1).collect();
        abr::abandon(&bws, &l, self.estimator.estimate())
    }

    /// The load of `req` was given up at `now` for variant `to`: what came
    /// is sampled, the estimate starts over at that variant's bandwidth when
    /// it would switch straight back up, and the segment is loaded again
    /// from `to` (as hls.js does).
    pub fn on_abandoned(
        &mut self,
        req: &Request,
        started: Instant,
        first_byte: Option<Instant>,
        loaded: u64,
        to: usize,
        now: Instant,
    ) {
        let Some(&(_, bandwidth)) = self.ladder.get(to) else {
            return;
        };
        if loaded > 0 {
            let ttfb = first_byte.map_or(abr::DEFAULT_TTFB_SEC, |t| {
                t.saturating_duration_since(started).as_secs_f64()
            });
            let took = now.saturating_duration_since(started).as_secs_f64();
            self.estimator
                .sample(took - ttfb.min(abr::DEFAULT_TTFB_SEC), loaded);
        }
        if self.estimator.estimate() * abr::UP_FACTOR > bandwidth as f64 {
            self.estimator = Estimator::starting_at(bandwidth as f64);
        }
        self.events.push(Event::Abandoned);
        self.switch(to, now);
        let t = &mut self.tracks[0];
        t.next_seq = req.seq;
        t.next_part = 0;
        t.part_sec = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::{at, cfg, file_name, get, loaded, media};
    use super::super::{Event, VariantMode};
    use crate::results::Kind;

    const LADDER: &[u8] = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=200000\nv200.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300000\nv300.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=450000\nv450.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000\nv2000.m3u8\n";

    #[test]
    fn a_segment_too_slow_for_the_buffer_is_given_up_for_a_lower_variant() {
        let t0 = Instant::now();
        // the default estimate (500 kbit/s) starts it on the third variant
        let (mut p, _) = loaded(cfg(VariantMode::Abr), LADDER, t0);
        let r = get(p.next(t0));
        assert_eq!(file_name(&r), "v450.m3u8");
        p.on_playlist(&r, &r.url.clone(), &media(0, 10, false), t0, t0)
            .unwrap();
        // the first segment (7) fast: 2 s buffered, playing
        let first = get(p.next(t0));
        assert_eq!(first.seq, Some(7));
        assert!(
            p.watches(&first),
            "a segment of the third variant is watched"
        );
        assert_eq!(
            p.abandon_for(&first, t0, None, 0, at(t0, 1.5)),
            None,
            "not playing yet"
        );
        p.on_segment_done(&first, 112_000, t0, at(t0, 0.4));
        p.drain_events().for_each(drop);
        // the second (8) crawls: 10 kB in 1.1 s after a 0.1 s first byte,
        // 102 kB to go at 9 kB/s — 11 s, with 0.8 s buffered
        let slow = get(p.next(at(t0, 0.4)));
        assert_eq!(slow.seq, Some(8));
        let started = at(t0, 0.4);
        let first_byte = Some(at(t0, 0.5));
        assert_eq!(
            p.abandon_for(&slow, started, first_byte, 5_000, at(t0, 1.3)),
            None,
            "within half its duration"
        );
        let to = p
            .abandon_for(&slow, started, first_byte, 10_000, at(t0, 1.6))
            .expect("given up");
        assert_eq!(
            to, 0,
            "the 300 kbit/s one would take 8.5 s, too long for the buffer: the lowest"
        );
        p.on_abandoned(&slow, started, first_byte, 10_000, to, at(t0, 1.6));
        let ev: Vec<Event> = p.drain_events().collect();
        assert_eq!(
            ev,
            [
                Event::Abandoned,
                Event::Switch {
                    up: false,
                    bandwidth: 200_000
                }
            ]
        );
        // the lowest variant's playlist, then the same segment from it
        let r = get(p.next(at(t0, 1.6)));
        assert_eq!(
            (file_name(&r), r.kind),
            ("v200.m3u8".into(), Kind::Playlist)
        );
        p.on_playlist(
            &r,
            &r.url.clone(),
            &media(0, 10, false),
            at(t0, 1.6),
            at(t0, 1.7),
        )
        .unwrap();
        let again = get(p.next(at(t0, 1.7)));
        assert_eq!((file_name(&again), again.seq), ("seg8.ts".into(), Some(8)));
        assert!(!p.watches(&again), "nothing below the lowest to go to");
    }
}
