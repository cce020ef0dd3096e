//! The player on Low-Latency HLS playlists (PLAYER.md §6), with a virtual
//! clock.

use super::tests::{at, cfg, file_name, get, loaded, media};
use super::*;
use crate::native::buffer::BufferEvent;

/// A live LL playlist of `n` 2 s segments from `seq0`, with `parts` 0.5 s
/// parts of the segment after them, from a server that holds reloads.
fn ll_media(seq0: u64, n: u64, parts: u64) -> Vec<u8> {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq0}\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-PART-INF:PART-TARGET=0.5\n"
    );
    for q in seq0..seq0 + n {
        s += &format!("#EXTINF:2.000,\nseg{q}.m4s\n");
    }
    for p in 0..parts {
        s += &format!("#EXT-X-PART:DURATION=0.5,URI=\"seg{}.{p}.m4s\"\n", seq0 + n);
    }
    s.into_bytes()
}

/// A server that holds reloads is asked for the part after the last
/// listed (`_HLS_msn`, then `_HLS_part`) as soon as each answer is in —
/// no waiting; without parts, for the next segment; and one that answers
/// without getting past what was asked is polled at the classic pace.
#[test]
fn blocking_reloads_ask_for_the_next_part_at_once() {
    let t0 = Instant::now();
    let (mut p, u) = loaded(cfg(VariantMode::All), &ll_media(100, 6, 2), t0);
    let reload = |p: &mut Player, now: Instant| loop {
        let r = get(p.next(now));
        if r.kind == Kind::Playlist {
            return r;
        }
        p.on_segment_done(&r, 1000, now, now);
    };
    let r = reload(&mut p, at(t0, 0.01));
    assert_eq!(r.url.query(), Some("_HLS_msn=106&_HLS_part=2"));
    assert_eq!(r.url.path(), u.path());
    // answered when the part came: the next reload at once
    p.on_playlist(&r, &u, &ll_media(100, 6, 3), at(t0, 0.01), at(t0, 0.5))
        .unwrap();
    let r = reload(&mut p, at(t0, 0.5));
    assert_eq!(r.url.query(), Some("_HLS_msn=106&_HLS_part=3"));
    // an answer that did not get past it: half a target duration
    p.on_playlist(&r, &u, &ll_media(100, 6, 3), at(t0, 0.5), at(t0, 0.51))
        .unwrap();
    assert_eq!(p.next(at(t0, 0.51)), Next::WaitUntil(at(t0, 1.5)));
    // no parts listed: the next segment
    let r = reload(&mut p, at(t0, 1.5));
    p.on_playlist(&r, &u, &ll_media(101, 6, 0), at(t0, 1.5), at(t0, 1.6))
        .unwrap();
    let r = reload(&mut p, at(t0, 1.6));
    assert_eq!(r.url.query(), Some("_HLS_msn=107"));
    // a classic playlist: no directives
    let (mut c, _) = loaded(cfg(VariantMode::All), &media(100, 6, false), t0);
    let r = reload(&mut c, at(t0, 2.0));
    assert_eq!(r.url.query(), None);
}

/// A live LL playlist: `n` 2 s segments from `seq0`, the last `with_parts`
/// of them listed with their four 0.5 s parts too (the first independent),
/// and `parts` parts of the segment being written; program date-times from
/// `pdt0` ms for `seq0`.
fn ll_parts(seq0: u64, n: u64, with_parts: u64, parts: u64, pdt0: i64) -> Vec<u8> {
    ll_delta(seq0, 0, n, with_parts, parts, pdt0)
}

/// [`ll_parts`] as a delta update: the first `skipped` segments left out
/// (`EXT-X-SKIP`). The server gives delta updates (CAN-SKIP-UNTIL 12 s).
fn ll_delta(seq0: u64, skipped: u64, n: u64, with_parts: u64, parts: u64, pdt0: i64) -> Vec<u8> {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq0}\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12\n\
#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    if skipped > 0 {
        s += &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n");
    }
    let part = |s: &mut String, q: u64, p: u64| {
        let ind = if p == 0 { ",INDEPENDENT=YES" } else { "" };
        *s += &format!("#EXT-X-PART:DURATION=0.5,URI=\"seg{q}.{p}.m4s\"{ind}\n");
    };
    for q in seq0 + skipped..seq0 + n {
        let pdt = pdt0 + (q - seq0) as i64 * 2000;
        s += &format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            common::render::rfc3339(pdt as u64, true)
        );
        if q + with_parts >= seq0 + n {
            for p in 0..4 {
                part(&mut s, q, p);
            }
        }
        s += &format!("#EXTINF:2.000,\nseg{q}.m4s\n");
    }
    for p in 0..parts {
        part(&mut s, seq0 + n, p);
    }
    s.into_bytes()
}

/// The events since the last call, less the buffer's.
fn ll_events(p: &mut Player) -> Vec<Event> {
    p.drain_events()
        .filter(|e| !matches!(e, Event::Buffer(_)))
        .collect()
}

/// Loads what the player asks for at `now` (each at once) until it asks
/// for a playlist; returns the names loaded and the playlist request.
fn load_until_reload(p: &mut Player, now: Instant) -> (Vec<String>, Request) {
    let mut names = Vec::new();
    loop {
        let r = get(p.next(now));
        if r.kind == Kind::Playlist {
            return (names, r);
        }
        names.push(file_name(&r));
        p.on_segment_done(&r, 1000, now, now);
    }
}

/// An hls.js-like viewer starts PART-HOLD-BACK behind the end of the last
/// part, at the independent part before that point, loads parts (never
/// the whole segment they make up), starts playing when the media past the
/// start point is in, and blocks for the part after the last listed.
#[test]
fn a_low_latency_viewer_starts_part_hold_back_behind_and_loads_parts() {
    let t0 = Instant::now();
    // edge 8.5 s; 1.5 s behind is 7.0 s, part 2 of seg103: it starts at part 0
    let (mut p, u) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    let now = at(t0, 0.01);
    let r = get(p.next(now));
    assert_eq!((r.kind, file_name(&r).as_str()), (Kind::Init, "init.mp4"));
    p.on_segment_done(&r, 1000, now, now);
    let mut names = Vec::new();
    for expect_started in [false, false, true] {
        let r = get(p.next(now));
        assert_eq!(r.kind, Kind::Part);
        assert_eq!(r.duration, Some(0.5));
        names.push(file_name(&r));
        p.on_segment_done(&r, 1000, now, now);
        // 1 s loaded before the start point is not played
        assert_eq!(p.started(), expect_started, "after {names:?}");
    }
    let (more, r) = load_until_reload(&mut p, now);
    names.extend(more);
    assert_eq!(
        names,
        [
            "seg103.0.m4s",
            "seg103.1.m4s",
            "seg103.2.m4s",
            "seg103.3.m4s",
            "seg104.0.m4s"
        ]
    );
    assert_eq!(
        r.url.query(),
        Some("_HLS_msn=104&_HLS_part=1&_HLS_skip=YES")
    );
    // seg104 completes with its parts: only the parts not loaded, no segment
    p.on_playlist(&r, &u, &ll_parts(100, 5, 2, 1, 0), now, at(t0, 1.5))
        .unwrap();
    let (names, r) = load_until_reload(&mut p, at(t0, 1.5));
    assert_eq!(
        names,
        [
            "seg104.1.m4s",
            "seg104.2.m4s",
            "seg104.3.m4s",
            "seg105.0.m4s"
        ]
    );
    assert_eq!(
        r.url.query(),
        Some("_HLS_msn=105&_HLS_part=1&_HLS_skip=YES")
    );
    // playing since t0 + 0.01: 1.5 + 2.0 s in, 1.49 s played
    assert!((p.buffer_level(at(t0, 1.5)) - 2.01).abs() < 1e-6);
}

/// `player = "classic"` ignores every LL tag: whole segments from three
/// target durations back, polled reloads without delivery directives.
#[test]
fn the_classic_profile_ignores_low_latency_tags() {
    let t0 = Instant::now();
    let c = PlayerConfig {
        profile: PlayerProfile::Classic,
        ..cfg(VariantMode::First)
    };
    let (mut p, _) = loaded(c, &ll_parts(100, 4, 2, 1, 0), t0);
    let mut names = Vec::new();
    while let Next::Get(r) = p.next(t0) {
        names.push(file_name(&r));
        p.on_segment_done(&r, 1000, t0, t0);
    }
    assert_eq!(
        names,
        ["init.mp4", "seg101.m4s", "seg102.m4s", "seg103.m4s"]
    );
    assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 2.0)));
    let r = get(p.next(at(t0, 2.0)));
    assert_eq!((r.kind, r.url.query()), (Kind::Playlist, None));
}

/// A part that answers 404 is passed over (counted as gone) and the next
/// one loaded; a segment whose parts are no longer listed when it is
/// complete is loaded whole, for what its parts left.
#[test]
fn a_gone_part_is_passed_over_and_an_unlisted_rest_loaded_whole() {
    let t0 = Instant::now();
    let (mut p, u) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 2, 0), t0);
    let (names, r) = load_until_reload(&mut p, t0);
    assert_eq!(names.last().map(String::as_str), Some("seg104.1.m4s"));
    // 104.2 listed and gone
    p.on_playlist(&r, &u, &ll_parts(100, 4, 2, 3, 0), t0, t0)
        .unwrap();
    let r = get(p.next(t0));
    assert_eq!(file_name(&r), "seg104.2.m4s");
    p.on_failure(&r, Failure::Status(404), t0);
    assert!(p.drain_events().any(|e| e == Event::SegmentGone));
    // 104 complete, its parts no longer listed: loaded whole, the 1 s its
    // two loaded parts left of it new
    let level = p.buffer_level(t0);
    let r = get(p.next(t0));
    assert_eq!(r.kind, Kind::Playlist);
    p.on_playlist(&r, &u, &ll_parts(100, 5, 0, 0, 0), t0, t0)
        .unwrap();
    let r = get(p.next(t0));
    assert_eq!(
        (r.kind, file_name(&r).as_str()),
        (Kind::Segment, "seg104.m4s")
    );
    p.on_segment_done(&r, 1000, t0, t0);
    assert!((p.buffer_level(t0) - level - 1.0).abs() < 1e-6);
}

/// Program date-times of the playlists from here (ms since the epoch).
const PDT0: i64 = 1_800_000_000_000;

/// A viewer with a wall clock 0.1 s past the end of the last part (8.5 s
/// after `PDT0`) at `t0`, the playlist [`ll_parts`] loaded then.
fn with_program_dates(t0: Instant) -> (Player, Url) {
    let mut p = Player::new(cfg(VariantMode::First), t0);
    p.set_wall_clock(t0, PDT0 + 8_600);
    let r = get(p.next(t0));
    let u = r.url.clone();
    p.on_playlist(&r, &u, &ll_parts(100, 4, 2, 1, PDT0), t0, t0)
        .unwrap();
    (p, u)
}

/// With a wall clock, the live latency of a part is measured from its
/// program date-time: wall clock at the playout position minus the time
/// its media ended (PLAYER.md §7).
#[test]
fn part_latency_is_measured_from_the_program_date_time() {
    let t0 = Instant::now();
    let (mut p, _) = with_program_dates(t0);
    let (_, _) = load_until_reload(&mut p, t0);
    // playing from 7.0 s at t0; 103.2 ends at 7.5 s, reached at t0 + 0.5
    p.tick(at(t0, 0.6));
    let latencies: Vec<Duration> = p
        .drain_events()
        .filter_map(|e| match e {
            Event::Buffer(BufferEvent::Latency(d)) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(latencies.first(), Some(&Duration::from_millis(1600)));
}

/// Delta updates: asked for (`_HLS_skip=YES`, after the blocking
/// directives) while the playlist held is younger than half the skip
/// boundary, merged when they list all this viewer still needs, and
/// answered with a whole playlist load when they leave some out.
#[test]
fn delta_updates_are_asked_merged_and_refetched_when_short() {
    let t0 = Instant::now();
    let (mut p, u) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    let (_, r) = load_until_reload(&mut p, t0);
    assert_eq!(
        r.url.query(),
        Some("_HLS_msn=104&_HLS_part=1&_HLS_skip=YES")
    );
    // seg103, loaded by its parts
    assert_eq!(ll_events(&mut p), [Event::SegmentByParts]);
    // 100..=101 skipped: the viewer needs nothing before 104
    p.on_playlist(&r, &u, &ll_delta(100, 2, 4, 2, 2, 0), t0, at(t0, 0.5))
        .unwrap();
    assert_eq!(ll_events(&mut p), [Event::DeltaUpdate]);
    let (names, r) = load_until_reload(&mut p, at(t0, 0.5));
    assert_eq!(names, ["seg104.1.m4s"]);
    // a delta that skips past what the viewer still needs: reloaded whole
    // at once, without _HLS_skip
    p.on_playlist(
        &r,
        &u,
        &ll_delta(100, 5, 7, 2, 0, 0),
        at(t0, 0.5),
        at(t0, 1.0),
    )
    .unwrap();
    assert_eq!(ll_events(&mut p), [Event::DeltaRefetch]);
    let r = get(p.next(at(t0, 1.0)));
    assert_eq!(r.url.query(), Some("_HLS_msn=104&_HLS_part=2"));
    // nor when the playlist held is older than half the skip boundary
    let (mut p, _) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    let (_, r) = load_until_reload(&mut p, at(t0, 6.0));
    assert_eq!(r.url.query(), Some("_HLS_msn=104&_HLS_part=1"));
}

/// A blocking reload answered 503 is counted and tried again once after a
/// part target, then with the backoff; one answered 400 is counted and
/// followed by a plain reload at once (PLAYER.md §6).
#[test]
fn refused_blocking_reloads_are_counted_and_retried_by_the_rules() {
    let t0 = Instant::now();
    let (mut p, _) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    let (_, r) = load_until_reload(&mut p, t0);
    assert_eq!(ll_events(&mut p), [Event::SegmentByParts]);
    p.on_failure(&r, Failure::Status(503), t0);
    assert_eq!(ll_events(&mut p), [Event::BlockedReloadRefused(503)]);
    assert_eq!(p.next(t0), Next::WaitUntil(at(t0, 0.5)));
    let again = get(p.next(at(t0, 0.5)));
    assert_eq!(again.url, r.url);
    p.on_failure(&again, Failure::Status(503), at(t0, 0.5));
    assert_eq!(p.next(at(t0, 0.5)), Next::WaitUntil(at(t0, 0.75)));
    let again = get(p.next(at(t0, 0.75)));
    p.on_failure(&again, Failure::Status(400), at(t0, 0.75));
    assert_eq!(
        ll_events(&mut p),
        [
            Event::BlockedReloadRefused(503),
            Event::BlockedReloadRefused(400)
        ]
    );
    let plain = get(p.next(at(t0, 0.75)));
    assert_eq!(plain.url.query(), Some("_HLS_skip=YES"));
}

/// A blocking reload's answer says when the part it asked for ended and
/// when the newest part listed did, by the program date-time: the driver
/// times the overshoot and the advance lag from them.
#[test]
fn reload_marks_give_the_asked_and_newest_parts_ends() {
    let t0 = Instant::now();
    let (mut p, u) = with_program_dates(t0);
    let first = p.take_reload_marks().unwrap();
    assert!(!first.blocking);
    assert_eq!(first.newest_end, None, "a first load tells no lag");
    let (_, r) = load_until_reload(&mut p, t0);
    // asked for 104.1, which ends 9.0 s after PDT0: 0.4 s after t0
    p.on_playlist(&r, &u, &ll_parts(100, 4, 2, 2, PDT0), t0, at(t0, 0.45))
        .unwrap();
    let m = p.take_reload_marks().unwrap();
    assert!(m.blocking);
    assert_eq!(m.asked_end, Some(at(t0, 0.4)));
    assert_eq!(m.newest_end, Some(at(t0, 0.4)));
    assert_eq!(p.take_reload_marks(), None);
}

/// Tune-in (Appendix C): a first playlist a cache held for a second (two
/// part targets) is not played from; the viewer blocks at once for the
/// part current now — two parts past the next — and starts from that.
#[test]
fn an_aged_first_playlist_is_tuned_in_past_by_its_age() {
    let t0 = Instant::now();
    let mut p = Player::new(cfg(VariantMode::First), t0);
    let r = get(p.next(t0));
    let u = r.url.clone();
    let age = Some(Duration::from_secs(1));
    p.on_playlist_aged(&r, &u, &ll_parts(100, 4, 2, 1, 0), age, t0, t0)
        .unwrap();
    let r = get(p.next(t0));
    assert_eq!(r.kind, Kind::Playlist);
    assert_eq!(r.url.query(), Some("_HLS_msn=104&_HLS_part=3"));
    // the answer, held until 104.3 was out, is played from, and no second
    // tune-in follows
    p.on_playlist_aged(&r, &u, &ll_parts(100, 4, 2, 4, 0), age, t0, at(t0, 0.1))
        .unwrap();
    let (names, r) = load_until_reload(&mut p, at(t0, 0.1));
    assert_eq!(
        names,
        [
            "init.mp4",
            "seg104.0.m4s",
            "seg104.1.m4s",
            "seg104.2.m4s",
            "seg104.3.m4s"
        ]
    );
    assert_eq!(
        r.url.query(),
        Some("_HLS_msn=104&_HLS_part=4&_HLS_skip=YES")
    );
    // a fresh first playlist (no Age, or younger than a part) is played
    let (mut p, _) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    assert_eq!(get(p.next(t0)).kind, Kind::Init);
}

/// An ABR switch blocks on the new rendition at the last segment and part
/// its rendition report in the old one's playlist gave (PLAYER.md §6).
#[test]
fn an_abr_switch_blocks_where_the_rendition_report_says() {
    let t0 = Instant::now();
    let master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\nv/lo/stream.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=1000000\nv/hi/stream.m3u8\n";
    let (mut p, _) = loaded(cfg(VariantMode::Abr), master, t0);
    let r = get(p.next(t0));
    assert_eq!(r.url.path(), "/live/v/lo/stream.m3u8");
    let mut body = ll_parts(100, 4, 2, 1, 0);
    body.extend_from_slice(
        b"#EXT-X-RENDITION-REPORT:URI=\"../hi/stream.m3u8\",LAST-MSN=104,LAST-PART=0\n",
    );
    p.on_playlist(&r, &r.url.clone(), &body, t0, t0).unwrap();
    // fast parts: 200 kB in 10 ms each
    let mut now = t0;
    let switched = loop {
        let r = get(p.next(now));
        assert_ne!(r.kind, Kind::Playlist, "no switch before the reload");
        p.on_segment_done(&r, 200_000, now, now + Duration::from_millis(10));
        now += Duration::from_millis(10);
        if ll_events(&mut p)
            .iter()
            .any(|e| matches!(e, Event::Switch { up: true, .. }))
        {
            break get(p.next(now));
        }
    };
    assert_eq!(switched.url.path(), "/live/v/hi/stream.m3u8");
    assert_eq!(switched.url.query(), Some("_HLS_msn=104&_HLS_part=0"));
}

/// The latency a viewer aims at (PLAYER.md §7): PART-HOLD-BACK on a
/// Low-Latency stream, 1 s more after a stall for the hls.js profile; 3
/// target durations for a classic viewer, stalls or not.
#[test]
fn the_latency_target_is_part_hold_back_plus_a_second_a_stall() {
    let t0 = Instant::now();
    let (mut p, _) = loaded(cfg(VariantMode::First), &ll_parts(100, 4, 2, 1, 0), t0);
    assert_eq!(p.latency_target(), Some(Duration::from_millis(1500)));
    let _ = load_until_reload(&mut p, t0);
    // nothing more comes: the buffer runs dry, a stall
    p.tick(at(t0, 5.0));
    assert!(p.stalled(at(t0, 5.0)));
    assert_eq!(p.latency_target(), Some(Duration::from_millis(2500)));
    let c = PlayerConfig {
        profile: PlayerProfile::Classic,
        ..cfg(VariantMode::First)
    };
    let (mut p, _) = loaded(c, &ll_parts(100, 4, 2, 1, 0), t0);
    while let Next::Get(r) = p.next(t0) {
        p.on_segment_done(&r, 1000, t0, t0);
    }
    p.tick(at(t0, 20.0));
    assert!(p.stalled(at(t0, 20.0)));
    assert_eq!(p.latency_target(), Some(Duration::from_secs(6)));
}
