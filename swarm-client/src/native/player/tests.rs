//! The player driven with a virtual clock, rule by rule.

use super::*;

pub(super) fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

pub(super) fn cfg(variant: VariantMode) -> PlayerConfig {
    PlayerConfig {
        url: url("http://o.test/live/stream.m3u8"),
        variant,
        seg_max_retry: 2,
        timeout: Duration::from_secs(10),
        profile: PlayerProfile::Hlsjs,
        // the rules without the media pipeline's start (buffer.rs tests it)
        pipeline: super::Pipeline::default(),
    }
}

/// A live media playlist of `n` 2 s segments from `seq0`.
pub(super) fn media(seq0: u64, n: u64, end: bool) -> Vec<u8> {
    let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq0}\n");
    for q in seq0..seq0 + n {
        s += &format!("#EXTINF:2.000,\nseg{q}.ts\n");
    }
    if end {
        s += "#EXT-X-ENDLIST\n";
    }
    s.into_bytes()
}

pub(super) fn get(n: Next) -> Request {
    match n {
        Next::Get(r) => r,
        other => panic!("expected a GET, got {other:?}"),
    }
}

/// A player whose first request, made at `t0`, got `body` at once; and
/// the URL it asked.
pub(super) fn loaded(cfg: PlayerConfig, body: &[u8], t0: Instant) -> (Player, Url) {
    let mut p = Player::new(cfg, t0);
    let r = get(p.next(t0));
    let u = r.url.clone();
    p.on_playlist(&r, &u, body, t0, t0).unwrap();
    (p, u)
}

/// The last segment of a request's path (`seg3.ts`).
pub(super) fn file_name(r: &Request) -> String {
    r.url.path().rsplit('/').next().unwrap().to_owned()
}

pub(super) fn at(t0: Instant, s: f64) -> Instant {
    t0 + Duration::from_secs_f64(s)
}

#[test]
fn live_edge_start_reload_timing_and_order() {
    let t0 = Instant::now();
    let mut p = Player::new(cfg(VariantMode::All), t0);
    let r = get(p.next(t0));
    assert_eq!(r.target, Target::Root);
    let final_url = r.url.clone();
    let k = p
        .on_playlist(&r, &final_url, &media(100, 10, false), t0, at(t0, 0.01))
        .unwrap();
    assert_eq!(k, Kind::Playlist);
    // 3 target durations from the end of 100..=109: seq 107
    let mut got = Vec::new();
    let mut now = at(t0, 0.01);
    for _ in 0..3 {
        let r = get(p.next(now));
        assert_eq!(r.kind, Kind::Segment);
        got.push(r.seq.unwrap());
        now += Duration::from_millis(10);
        p.on_segment_done(&r, 1000, now - Duration::from_millis(10), now);
    }
    assert_eq!(got, vec![107, 108, 109]);
    // nothing left: wait for the reload one target duration after the load began
    assert_eq!(p.next(now), Next::WaitUntil(at(t0, 2.0)));
    // an unchanged playlist: the next reload half a target duration later
    let r = get(p.next(at(t0, 2.0)));
    assert_eq!(r.kind, Kind::Playlist);
    p.on_playlist(
        &r,
        &final_url,
        &media(100, 10, false),
        at(t0, 2.0),
        at(t0, 2.01),
    )
    .unwrap();
    assert_eq!(p.next(at(t0, 2.01)), Next::WaitUntil(at(t0, 3.0)));
    // a changed one: the new segment, once, then a full target duration
    let r = get(p.next(at(t0, 3.0)));
    p.on_playlist(
        &r,
        &final_url,
        &media(101, 10, false),
        at(t0, 3.0),
        at(t0, 3.01),
    )
    .unwrap();
    let r = get(p.next(at(t0, 3.01)));
    assert_eq!(r.seq, Some(110));
    p.on_segment_done(&r, 1000, at(t0, 3.01), at(t0, 3.02));
    assert_eq!(p.next(at(t0, 3.02)), Next::WaitUntil(at(t0, 5.0)));
    let ev: Vec<Event> = p.drain_events().collect();
    assert!(
        matches!(ev[0], Event::Buffer(BufferEvent::Startup(_))),
        "{ev:?}"
    );
}

#[test]
fn gone_skipped_and_retried_segments() {
    let t0 = Instant::now();
    let (mut p, u) = loaded(cfg(VariantMode::All), &media(0, 6, false), t0);
    // seq 3: 404 → gone, next is 4
    let r = get(p.next(t0));
    assert_eq!(r.seq, Some(3));
    p.on_failure(&r, Failure::Status(404), t0);
    let r = get(p.next(t0));
    assert_eq!(r.seq, Some(4));
    // 503 twice: retried with backoff; a third time: skipped (segMaxRetry 2)
    p.on_failure(&r, Failure::Status(503), t0);
    assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 0.25)));
    let r = get(p.next(at(t0, 0.25)));
    assert_eq!(r.seq, Some(4));
    p.on_failure(&r, Failure::Timeout, at(t0, 0.25));
    let r = get(p.next(at(t0, 1.0)));
    p.on_failure(&r, Failure::Broken, at(t0, 1.0));
    let r = get(p.next(at(t0, 1.0)));
    assert_eq!(r.seq, Some(5));
    p.on_segment_done(&r, 10, at(t0, 1.0), at(t0, 1.1));
    // the window jumps by 5: 6..=10 listed, next wanted 6: nothing skipped;
    // then a reload listing 12.. skips 11
    let r = get(p.next(at(t0, 2.0)));
    p.on_playlist(&r, &u, &media(6, 5, false), at(t0, 2.0), at(t0, 2.0))
        .unwrap();
    let r = get(p.next(at(t0, 2.0)));
    assert_eq!(r.seq, Some(6));
    let ev: Vec<Event> = p.drain_events().collect();
    assert!(
        ev.contains(&Event::SegmentGone) && ev.contains(&Event::SegmentFailed),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| matches!(e, Event::SegmentsSkipped(_))),
        "{ev:?}"
    );
    // pending 6..=10; the window moves to 12..=16: 6..=10 lost, 11 never listed
    let r2 = Request {
        kind: Kind::Playlist,
        target: Target::Track(0),
        seq: None,
        part: None,
        duration: None,
        url: u.clone(),
    };
    p.on_playlist(&r2, &u, &media(12, 5, false), at(t0, 4.0), at(t0, 4.0))
        .unwrap();
    let ev: Vec<Event> = p.drain_events().collect();
    assert!(ev.contains(&Event::SegmentsSkipped(6)), "{ev:?}");
    assert_eq!(get(p.next(at(t0, 4.0))).seq, Some(12));
    // a playlist a little behind (a stale cache): ignored, no reset
    p.on_playlist(&r2, &u, &media(10, 5, false), at(t0, 5.0), at(t0, 5.0))
        .unwrap();
    let ev: Vec<Event> = p
        .drain_events()
        .filter(|e| !matches!(e, Event::Buffer(_)))
        .collect();
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(get(p.next(at(t0, 5.0))).seq, Some(12));
    // a media sequence far ahead (an encoder restarted, numbering from
    // the clock): not a reset; the segments missed are 12..=16 (listed,
    // not loaded) and, counted by time, those between 16 (appeared at
    // 4 s) and the new window's first (12 s): at 6, 8 and 10 s; the
    // viewer starts again at the live edge
    p.on_playlist(&r2, &u, &media(5000, 5, false), at(t0, 20.0), at(t0, 20.0))
        .unwrap();
    let ev: Vec<Event> = p
        .drain_events()
        .filter(|e| !matches!(e, Event::Buffer(_)))
        .collect();
    assert_eq!(ev, vec![Event::SegmentsSkipped(5 + 3)]);
    assert_eq!(get(p.next(at(t0, 20.0))).seq, Some(5002));
    // a media sequence that goes back: a reset
    p.on_playlist(&r2, &u, &media(100, 5, false), at(t0, 21.0), at(t0, 21.0))
        .unwrap();
    let ev: Vec<Event> = p.drain_events().collect();
    assert!(ev.contains(&Event::SequenceReset), "{ev:?}");
}

/// FFmpeg numbers segments from the clock (`-hls_start_number_source
/// epoch`): one number a second, whatever the segment duration. A
/// restarted encoder's numbers jump by the seconds since the first
/// start, not by the segments missed; a viewer counts what it missed in
/// media time, for 1 s and 2 s segments alike.
#[test]
fn an_encoder_restart_counts_the_segments_missed_for_any_duration() {
    for d in [1u64, 2, 4] {
        let t0 = Instant::now();
        let epoch = 1_000_000u64;
        let list = 5u64;
        let playlist = |first: u64, n: u64| {
            let mut s =
                format!("#EXTM3U\n#EXT-X-TARGETDURATION:{d}\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
            for q in first..first + n {
                s += &format!("#EXTINF:{d}.000,\nseg{q}.ts\n");
            }
            s.into_bytes()
        };
        // the first encoder, started at t0 - 60 s: at time t it has
        // written (60 + t) / d segments numbered from the epoch second
        let before = |t: f64| {
            let written = ((60.0 + t) / d as f64) as u64;
            playlist(epoch + written.saturating_sub(list), list.min(written))
        };
        let mut p = Player::new(cfg(VariantMode::All), t0);
        let mut now = t0;
        // 30 s of play, then the encoder is away 6 s and starts again,
        // numbering from the clock: epoch + 60 + 36
        let restart = 36.0;
        let mut skipped = 0;
        let mut resets = 0;
        while now < at(t0, 60.0) {
            let t = (now - t0).as_secs_f64();
            match p.next(now) {
                Next::Get(r) if r.kind == Kind::Playlist => {
                    // the new encoder's first segment is written a
                    // duration after it starts; until then the last
                    // playlist of the old one is served
                    let written = ((t - restart).max(0.0) / d as f64) as u64;
                    let body = if t < 30.0 {
                        before(t)
                    } else if written == 0 {
                        before(30.0)
                    } else {
                        let first = epoch + 60 + restart as u64;
                        playlist(first + written.saturating_sub(list), written.min(list))
                    };
                    p.on_playlist(&r, &r.url.clone(), &body, now, now).unwrap();
                }
                Next::Get(r) => p.on_segment_done(&r, 1000, now, now),
                Next::WaitUntil(w) => now = w,
                other => panic!("{other:?}"),
            }
            for e in p.drain_events() {
                match e {
                    Event::SegmentsSkipped(n) => skipped += n,
                    Event::SequenceReset => resets += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(resets, 0, "{d} s segments");
        // media from 30 s to 36 s is missing: about 6 / d segments
        let want = 6 / d;
        assert!(
            skipped + 1 >= want && skipped <= want + 1,
            "{d} s segments: {skipped} skipped, about {want} expected"
        );
    }
}

#[test]
fn unreachable_playlist_fails_after_timeout() {
    let t0 = Instant::now();
    let mut p = Player::new(cfg(VariantMode::All), t0);
    let mut now = t0;
    let mut tries = 0;
    loop {
        match p.next(now) {
            Next::Get(r) => {
                tries += 1;
                p.on_failure(&r, Failure::Connect, now);
            }
            Next::WaitUntil(t) => now = t,
            Next::Failed => break,
            Next::Done | Next::GetBeside(..) => panic!("not done, no hints"),
        }
        assert!(now < at(t0, 30.0));
    }
    assert!(now >= at(t0, 10.0) && now < at(t0, 16.0), "{:?}", now - t0);
    assert!(tries > 3, "{tries}");
}

#[test]
fn vod_starts_at_the_first_segment_and_ends() {
    let t0 = Instant::now();
    let (mut p, _) = loaded(cfg(VariantMode::All), &media(0, 3, true), t0);
    for want in 0..3 {
        let r = get(p.next(t0));
        assert_eq!(r.seq, Some(want));
        p.on_segment_done(&r, 1, t0, t0);
    }
    // 6 s of media buffered: the viewer plays it out, then it is done
    assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 6.0)));
    assert_eq!(p.next(at(t0, 6.0)), Next::Done);
    let q = p.qoe(at(t0, 7.0));
    assert_eq!(q.rebuffer_count, 0, "the end is not a stall");
    assert!((q.play_time.as_secs_f64() - 6.0).abs() < 1e-6);
}

#[test]
fn master_variant_choice_and_abr_switching() {
    let master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhi.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=400000\nlo.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nmid.m3u8\n";
    let t0 = Instant::now();
    for (mode, want) in [
        (VariantMode::First, vec!["hi.m3u8"]),
        (VariantMode::Highest, vec!["hi.m3u8"]),
        (VariantMode::Lowest, vec!["lo.m3u8"]),
        (VariantMode::All, vec!["hi.m3u8", "lo.m3u8", "mid.m3u8"]),
        (VariantMode::Abr, vec!["lo.m3u8"]),
    ] {
        let mut p = Player::new(cfg(mode), t0);
        let r = get(p.next(t0));
        let u = r.url.clone();
        assert_eq!(p.on_playlist(&r, &u, master, t0, t0), Ok(Kind::Master));
        let mut urls = Vec::new();
        for _ in 0..want.len() {
            let r = get(p.next(t0));
            urls.push(file_name(&r));
            p.on_playlist(&r, &r.url.clone(), &media(0, 10, false), t0, t0)
                .unwrap();
        }
        assert_eq!(urls, want, "{mode:?}");
    }
    // abr against a live window that moves one 2 s segment every 2 s:
    // fast downloads switch up one step at a time, slow ones down
    let (mut p, _) = loaded(cfg(VariantMode::Abr), master, t0);
    let mut now = t0;
    let play = |p: &mut Player, now: &mut Instant, segments: usize, bytes: u64, took: Duration| {
        let mut switches = Vec::new();
        let mut done = 0;
        while done < segments {
            match p.next(*now) {
                Next::Get(r) if r.kind == Kind::Playlist => {
                    let seq0 = (*now - t0).as_secs() / 2;
                    p.on_playlist(&r, &r.url.clone(), &media(seq0, 10, false), *now, *now)
                        .unwrap();
                }
                Next::Get(r) => {
                    p.on_segment_done(&r, bytes, *now, *now + took);
                    *now += took;
                    done += 1;
                }
                Next::WaitUntil(t) => *now = t,
                other => panic!("{other:?}"),
            }
            switches.extend(
                p.drain_events()
                    .filter(|e| matches!(e, Event::Switch { .. })),
            );
        }
        switches
    };
    // 500 kB in 0.5 s: 8 Mbit/s
    let up = play(&mut p, &mut now, 6, 500_000, Duration::from_millis(500));
    assert_eq!(
        up,
        vec![
            Event::Switch {
                up: true,
                bandwidth: 1_000_000
            },
            Event::Switch {
                up: true,
                bandwidth: 2_000_000
            },
        ]
    );
    assert_eq!(p.current_bandwidth(), Some(2_000_000));
    // throttled: 50 kB in 1.5 s (0.27 Mbit/s)
    let down = play(&mut p, &mut now, 8, 50_000, Duration::from_millis(1500));
    assert!(
        matches!(down.first(), Some(Event::Switch { up: false, .. })),
        "{down:?}"
    );
    assert_eq!(p.current_bandwidth(), Some(400_000));
}

#[test]
fn a_viewer_follows_at_most_max_tracks_and_says_how_many_it_left() {
    let t0 = Instant::now();
    let mut master = String::from("#EXTM3U\n");
    for i in 0..1000 {
        master += &format!("#EXT-X-STREAM-INF:BANDWIDTH={}\nv{i}.m3u8\n", 1000 + i);
    }
    let (mut p, _) = loaded(cfg(VariantMode::All), master.as_bytes(), t0);
    let ev: Vec<Event> = p.drain_events().collect();
    assert_eq!(
        ev,
        vec![Event::VariantsNotFollowed(1000 - MAX_TRACKS as u64)]
    );
    let mut asked = std::collections::BTreeSet::new();
    for _ in 0..MAX_TRACKS {
        let r = get(p.next(t0));
        assert_eq!(r.kind, Kind::Playlist);
        asked.insert(r.url.to_string());
        p.on_playlist(&r, &r.url.clone(), &media(0, 3, false), t0, t0)
            .unwrap();
    }
    assert_eq!(asked.len(), MAX_TRACKS);
    // every track loaded: what comes next is a segment, no other playlist
    assert_eq!(get(p.next(t0)).kind, Kind::Segment);
}

#[test]
fn a_long_vod_playlist_is_queued_in_turns() {
    let t0 = Instant::now();
    let n = 3 * MAX_PENDING as u64 + 10;
    let mut p = Player::new(cfg(VariantMode::All), t0);
    let r = get(p.next(t0));
    let u = r.url.clone();
    let body = media(0, n, true);
    p.on_playlist(&r, &u, &body, t0, t0).unwrap();
    assert_eq!(p.tracks[0].pending.len(), MAX_PENDING);
    // every segment once, in order, the playlist loaded again each time
    // the queue ran out
    let mut now = t0;
    let mut want = 0;
    let mut reloads = 0;
    while want < n {
        match p.next(now) {
            Next::Get(r) if r.kind == Kind::Playlist => {
                reloads += 1;
                p.on_playlist(&r, &u, &body, now, now).unwrap();
                assert!(p.tracks[0].pending.len() <= MAX_PENDING);
            }
            Next::Get(r) => {
                assert_eq!(r.seq, Some(want));
                want += 1;
                p.on_segment_done(&r, 1, now, now);
            }
            Next::WaitUntil(t) => now = t,
            other => panic!("{other:?} at segment {want}"),
        }
    }
    assert_eq!(reloads, 3);
    assert!(p.tracks[0].due().is_none(), "all queued: no more reloads");
}

#[test]
fn a_url_too_long_is_skipped_at_once_not_retried() {
    let t0 = Instant::now();
    let (mut p, u) = loaded(cfg(VariantMode::All), &media(0, 4, false), t0);
    let r = get(p.next(t0));
    assert_eq!(r.seq, Some(1));
    p.on_failure(&r, Failure::UrlTooLong, t0);
    let ev: Vec<Event> = p.drain_events().collect();
    assert!(ev.contains(&Event::SegmentFailed), "{ev:?}");
    assert_eq!(get(p.next(t0)).seq, Some(2));
    // a playlist whose URL cannot be sent: the viewer fails at once
    let r = Request {
        url: u.clone(),
        kind: Kind::Playlist,
        target: Target::Track(0),
        seq: None,
        part: None,
        duration: None,
    };
    p.on_failure(&r, Failure::UrlTooLong, t0);
    assert_eq!(p.next(t0), Next::Failed);
}

#[test]
fn deadlines_are_the_timeout_or_a_multiple_of_the_segment() {
    let r = |kind, duration| Request {
        url: url("http://o.test/a"),
        kind,
        target: Target::Root,
        seq: None,
        part: None,
        duration,
    };
    let timeout = Duration::from_secs(5);
    assert_eq!(r(Kind::Playlist, None).deadline(timeout), timeout);
    assert_eq!(r(Kind::Segment, Some(1.0)).deadline(timeout), timeout);
    assert_eq!(
        r(Kind::Segment, Some(6.0)).deadline(timeout),
        Duration::from_secs(24)
    );
}

/// PLAYER.md §1 "Live edge": `EXT-X-START:TIME-OFFSET` places the start,
/// from the end when negative, from the start when not.
#[test]
fn ext_x_start_places_the_first_segment() {
    let t0 = Instant::now();
    for (offset, want) in [("-4.0", 108), ("-5.0", 107), ("3.0", 101), ("0", 100)] {
        let mut body = String::from_utf8(media(100, 10, false)).unwrap();
        body = body.replacen(
            "#EXT-X-TARGETDURATION:2\n",
            &format!("#EXT-X-TARGETDURATION:2\n#EXT-X-START:TIME-OFFSET={offset}\n"),
            1,
        );
        let (mut p, _) = loaded(cfg(VariantMode::All), body.as_bytes(), t0);
        assert_eq!(get(p.next(t0)).seq, Some(want), "TIME-OFFSET={offset}");
    }
}

/// PLAYER.md §1 "Gaps": a discontinuity is followed, not an error: every
/// segment is loaded once, in order, and nothing is counted.
#[test]
fn a_discontinuity_is_followed_in_order_without_events() {
    let t0 = Instant::now();
    let body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXTINF:2.0,\na0.ts\n#EXTINF:2.0,\na1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.0,\nb2.ts\n\
#EXTINF:2.0,\nb3.ts\n#EXT-X-ENDLIST\n";
    let (mut p, _) = loaded(cfg(VariantMode::All), body.as_bytes(), t0);
    let mut names = Vec::new();
    for _ in 0..4 {
        let r = get(p.next(t0));
        names.push(file_name(&r));
        p.on_segment_done(&r, 1, t0, t0);
    }
    assert_eq!(names, ["a0.ts", "a1.ts", "b2.ts", "b3.ts"]);
    let ev: Vec<Event> = p
        .drain_events()
        .filter(|e| !matches!(e, Event::Buffer(_)))
        .collect();
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 8.0)));
}

/// PLAYER.md §1 "Start": with `variant = "all"` the renditions of a
/// master (`EXT-X-MEDIA` with a `URI`) are loaded as media playlists,
/// beside the variants; with one variant chosen they are not.
#[test]
fn renditions_are_followed_with_every_variant_only() {
    let master = b"#EXTM3U\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO=\"a\"\nv.m3u8\n";
    let t0 = Instant::now();
    for (mode, want) in [
        (VariantMode::All, vec!["v.m3u8", "en.m3u8"]),
        (VariantMode::First, vec!["v.m3u8"]),
    ] {
        let (mut p, _) = loaded(cfg(mode), master, t0);
        let mut asked = Vec::new();
        loop {
            let r = get(p.next(t0));
            if r.kind != Kind::Playlist {
                break;
            }
            asked.push(file_name(&r));
            p.on_playlist(&r, &r.url.clone(), &media(0, 5, false), t0, t0)
                .unwrap();
        }
        asked.sort();
        let mut want = want;
        want.sort();
        assert_eq!(asked, want, "{mode:?}");
    }
}

/// PLAYER.md §1 "Failures": a playlist that fails is retried with the
/// backoff (250 ms, then × 1.7), and the viewer fails only once it has
/// been unreachable for `timeout`.
#[test]
fn a_failing_playlist_is_retried_with_backoff_until_the_timeout() {
    let t0 = Instant::now();
    let mut p = Player::new(cfg(VariantMode::All), t0);
    let mut now = t0;
    let mut waits = Vec::new();
    let failed_at = loop {
        match p.next(now) {
            Next::Get(r) => p.on_failure(&r, Failure::Status(503), now),
            Next::WaitUntil(t) => {
                waits.push((t - now).as_millis());
                now = t;
            }
            Next::Failed => break now,
            Next::Done | Next::GetBeside(..) => panic!("a failing playlist is not done"),
        }
        assert!(now < at(t0, 60.0), "no failure after 60 s");
    };
    assert_eq!(&waits[..3], &[250, 425, 722], "{waits:?}");
    assert!(waits.iter().all(|w| *w <= 5000), "{waits:?}");
    // the first failure at t0; failed at the first try past 10 s
    let failed = (failed_at - t0).as_secs_f64();
    assert!((10.0..15.0).contains(&failed), "failed after {failed} s");
}

/// fMP4: the `EXT-X-MAP` of a variant is loaded (kind `init`) before its
/// first segment, once — and again when the map changes.
#[test]
fn an_init_section_is_loaded_once_per_map() {
    let t0 = Instant::now();
    let body = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\ns1.m4s\n#EXTINF:2.000,\ns2.m4s\n#EXTINF:2.000,\ns3.m4s\n\
#EXT-X-MAP:URI=\"init2.mp4\"\n#EXTINF:2.000,\ns4.m4s\n#EXT-X-ENDLIST\n";
    let (mut p, _) = loaded(cfg(VariantMode::All), body, t0);
    let mut order = Vec::new();
    let mut now = t0;
    while let Next::Get(r) = p.next(now) {
        order.push((r.kind, file_name(&r)));
        now += Duration::from_millis(10);
        p.on_segment_done(&r, 1000, now - Duration::from_millis(10), now);
        assert!(order.len() < 20, "{order:?}");
    }
    let want = [
        (Kind::Init, "init.mp4"),
        (Kind::Segment, "s1.m4s"),
        (Kind::Segment, "s2.m4s"),
        (Kind::Segment, "s3.m4s"),
        (Kind::Init, "init2.mp4"),
        (Kind::Segment, "s4.m4s"),
    ];
    let want: Vec<(Kind, String)> = want.iter().map(|(k, f)| (*k, f.to_string())).collect();
    assert_eq!(order, want);
}

/// CMCD values come from the player's state (PLAYER.md §8): `su` until
/// playback starts, then the buffer length (and deadline) in hundreds of
/// ms; `bs` on the first media request after the buffer ran dry, once.
#[test]
fn cmcd_values_follow_the_buffer() {
    let t0 = Instant::now();
    let (mut p, _) = loaded(cfg(VariantMode::All), &media(0, 5, false), t0);
    let r = get(p.next(t0));
    let c = p.cmcd(&r, t0);
    assert_eq!((c.ot, c.su, c.bl, c.d), ("av", true, None, Some(2000)));
    p.on_segment_done(&r, 100_000, t0, at(t0, 0.1));
    let r = get(p.next(at(t0, 0.1)));
    let c = p.cmcd(&r, at(t0, 0.1));
    assert_eq!(
        (c.su, c.bl, c.dl, c.bs),
        (false, Some(2000), Some(2000), false)
    );
    assert_eq!(c.mtp, Some(8000), "100 kB in 0.1 s");
    // the buffer runs dry: the next media request says so, once
    p.tick(at(t0, 3.0));
    let c = p.cmcd(&r, at(t0, 3.0));
    assert!(c.bs && c.bl == Some(0), "{c:?}");
    assert!(!p.cmcd(&r, at(t0, 3.0)).bs);
    let playlist = Request {
        kind: Kind::Playlist,
        ..r
    };
    assert_eq!(p.cmcd(&playlist, at(t0, 3.0)).ot, "m");
}

#[test]
fn the_hlsjs_pipeline_handles_each_response_before_the_next_request() {
    let t0 = Instant::now();
    let mut c = cfg(VariantMode::All);
    c.pipeline = PlayerProfile::Hlsjs.pipeline();
    let pipe = c.pipeline;
    let (mut p, _) = loaded(c, &media(100, 10, false), t0);
    // the first media playlist: the media source is attached first
    assert_eq!(p.next(t0), Next::WaitUntil(t0 + pipe.setup));
    let r = get(p.next(t0 + pipe.setup));
    assert_eq!(r.seq, Some(107));
    let done = at(t0, 0.5);
    p.on_segment_done(&r, 1000, t0 + pipe.setup, done);
    // each response is handled before the next request
    assert_eq!(p.next(done), Next::WaitUntil(done + pipe.per_response));
    assert_eq!(get(p.next(done + pipe.per_response)).seq, Some(108));
    // playback began the pipeline's first-media time after the first segment
    let startup = p.qoe(at(t0, 1.0)).startup.unwrap();
    assert_eq!(startup, done + pipe.first_media - t0);
    // the classic profile adds nothing
    let mut c = cfg(VariantMode::All);
    c.pipeline = PlayerProfile::Classic.pipeline();
    let (mut p, _) = loaded(c, &media(100, 10, false), t0);
    assert_eq!(get(p.next(t0)).seq, Some(107));
}
