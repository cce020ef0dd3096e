//! The Low-Latency HLS rules of a native viewer (PLAYER.md §6), each
//! against the scriptable server's LL stream (`support/hls_server.rs`,
//! `/ll/…`: 1 s segments of four 0.25 s parts) made to break it: refused
//! blocking reloads, a short delta update, a playlist served from a cache,
//! an ABR switch. Each run is the real `swarm-client run` binary.

mod support;

use support::hls_server::{Entry, HlsServer, Shape, LL_PARTS, LL_PARTS_AT_START, LL_PART_SEC};
use support::{native, Results};

/// One viewer of `url` for `secs`, `extra` arguments after.
fn one_viewer(url: &str, secs: &str, extra: &[&str]) -> (Results, String) {
    let args = [
        &[
            "--seed",
            "7",
            "--set",
            "clients=1",
            "--set",
            "timeout=3",
            "--duration",
            secs,
        ][..],
        extra,
    ]
    .concat();
    support::run_to_end(url, &args, 0)
}

/// The viewer's playlist requests (the preflight GET has another agent).
fn playlist_requests(s: &HlsServer) -> Vec<Entry> {
    s.log()
        .into_iter()
        .filter(|e| e.user_agent.contains("/client-") && e.path.ends_with(".m3u8"))
        .collect()
}

/// `_HLS_msn` and `_HLS_part` of a query, as a part count (parts before it).
fn asked_part(query: &str) -> Option<u64> {
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse::<u64>().ok())
    };
    Some(get("_HLS_msn")? * LL_PARTS + get("_HLS_part").unwrap_or(LL_PARTS - 1))
}

/// Blocking reloads answered 503, 503 and 400: each counted (and among
/// the HTTP errors); the first 503 asked again after a part target, the
/// second after the backoff; the 400 followed at once by a plain reload;
/// the viewer plays on without a failure.
#[test]
fn refused_blocking_reloads_are_counted_and_followed_by_the_rules() {
    let s = HlsServer::start(Shape::default());
    s.set(|k| k.ll_refuse = vec![503, 503, 400]);
    let (v, out) = one_viewer(&s.url("/ll/stream.m3u8"), "4s", &[]);
    let n = native(&v);
    assert_eq!(
        (n.counts.blocked_reloads_503, n.counts.blocked_reloads_400),
        (2, 1),
        "{out}"
    );
    assert_eq!(
        v.totals.counts.http_errors.get(&503).copied(),
        Some(2),
        "{out}"
    );
    assert_eq!(v.totals.counts.http_errors.get(&400).copied(), Some(1));
    assert_eq!(n.counts.viewer_failures, 0);
    assert!(n.requests["part"].ttfb_ms.count >= 8, "{n:#?}");
    let log = playlist_requests(&s);
    let refused: Vec<usize> = (0..log.len()).filter(|i| log[*i].status >= 400).collect();
    assert_eq!(refused.len(), 3, "{log:#?}");
    let (a, b, c) = (&log[refused[0]], &log[refused[1]], &log[refused[2]]);
    assert_eq!(a.query, b.query, "the 503 is asked again as it was");
    assert!(b.at - a.at >= LL_PART_SEC - 0.01, "{a:?} {b:?}");
    assert_eq!(c.status, 400);
    // at once: well before the 250 ms the backoff would wait, with room
    // for a busy machine
    let after = &log[refused[2] + 1];
    assert!(
        !after.query.contains("_HLS_msn") && after.at - c.at < 0.2,
        "a plain reload at once after the 400: {after:?}"
    );
}

/// Delta updates that skip more than the window holds are not used: each
/// is followed at once by a whole playlist (no `_HLS_skip`), counted as
/// refetched, and no segment is counted as missed.
#[test]
fn a_short_delta_update_is_refetched_whole() {
    let s = HlsServer::start(Shape::default());
    s.set(|k| k.ll_short_delta = true);
    let (v, out) = one_viewer(&s.url("/ll/stream.m3u8"), "3s", &[]);
    let n = native(&v);
    assert!(n.counts.delta_refetches >= 3, "{out}\n{n:#?}");
    assert_eq!(n.counts.delta_updates, 0);
    assert_eq!(n.counts.segments_skipped, 0);
    assert!(n.requests["part"].ttfb_ms.count >= 6, "{n:#?}");
    let log = playlist_requests(&s);
    for w in log.windows(2) {
        if w[0].query.contains("_HLS_skip") {
            assert!(!w[1].query.contains("_HLS_skip"), "{w:#?}");
        }
    }
}

/// A first playlist a cache held for 2 s (an `Age` header) is not played
/// from: the first blocking reload asks for the part current at that
/// moment, not for the one after the stale playlist's last (8 parts
/// earlier), and the viewer then plays without a stall.
#[test]
fn an_aged_first_playlist_is_tuned_in() {
    let s = HlsServer::start(Shape::default());
    s.set(|k| k.ll_age = Some(2));
    let (v, out) = one_viewer(&s.url("/ll/stream.m3u8"), "3s", &[]);
    let log = playlist_requests(&s);
    let first = log
        .iter()
        .find(|e| e.query.contains("_HLS_msn"))
        .unwrap_or_else(|| panic!("{log:#?}"));
    // parts out when it was answered
    let done = (first.at / LL_PART_SEC) as u64 + LL_PARTS_AT_START;
    let asked = asked_part(&first.query).unwrap();
    assert!(
        asked + 2 >= done,
        "asked for part {asked} when {done} were out: {first:?}"
    );
    let n = native(&v);
    assert_eq!(n.counts.rebuffers, 0, "{out}");
    assert!(n.requests["part"].ttfb_ms.count > 0);
}

/// An `abr` viewer switching up (its first parts come in far faster than
/// the lowest variant's rate) blocks on the new variant at the last
/// segment and part the old playlist's rendition report gave.
#[test]
fn an_abr_switch_blocks_where_the_rendition_report_says() {
    let s = HlsServer::start(Shape::default());
    let (v, out) = one_viewer(&s.url("/ll/master.m3u8"), "3s", &["--set", "variant=abr"]);
    let n = native(&v);
    assert!(n.counts.switches_up >= 1, "{out}");
    let log = playlist_requests(&s);
    let first_up = log
        .iter()
        .find(|e| e.path.starts_with("/ll/v/") && !e.path.contains("/lo/"))
        .unwrap_or_else(|| panic!("{log:#?}"));
    // the report's part exists: asked for and answered at once
    let asked =
        asked_part(&first_up.query).unwrap_or_else(|| panic!("no directives: {first_up:?}"));
    let done = (first_up.at / LL_PART_SEC) as u64 + LL_PARTS_AT_START;
    assert!(asked < done, "{first_up:?}");
    assert_eq!(first_up.status, 200);
}

/// An `avplayer` viewer asks for the hinted part beside each blocking
/// reload, and takes the part from it when the next playlist lists it (no
/// request of its own). When the server answers the hints 404, each is
/// counted (`hintsGone`) but is no failed request, and the parts are
/// loaded once listed.
#[test]
fn hinted_parts_are_taken_and_a_404_is_counted_apart() {
    let s = HlsServer::start(Shape::default());
    let url = s.url("/ll/stream.m3u8");
    let avplayer = ["--set", "player=avplayer"];
    let (v, out) = one_viewer(&url, "3s", &avplayer);
    let n = native(&v);
    let count = |n: &swarm_client::results::NativeTotals, k: &str| {
        n.requests.get(k).map_or(0, |s| s.ttfb_ms.count)
    };
    assert_eq!(v.totals.counts.failed_requests(), 0, "{out}");
    assert_eq!(n.counts.hints_gone, 0, "{out}");
    let (hints, parts) = (count(n, "hint"), count(n, "part"));
    // a part every 0.25 s: about 10 in 3 s after the start's few by request
    assert!(hints >= 6, "{n:#?}");
    let by_request: Vec<Entry> = s
        .log()
        .into_iter()
        .filter(|e| e.user_agent.contains("/client-") && e.path.ends_with(".m4s"))
        .collect();
    // every hinted part was asked for once: by its hint, not again
    let mut paths: Vec<&str> = by_request.iter().map(|e| e.path.as_str()).collect();
    let asked = paths.len();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(
        paths.len(),
        asked,
        "a part asked for twice: {by_request:#?}"
    );
    // each one counted, but for the hint held when the run ended: the
    // server answers it (and logs it) after the viewer has gone
    let counted = hints + parts;
    assert!(
        asked as u64 == counted || asked as u64 == counted + 1,
        "{asked} asked, {counted} counted: {by_request:#?}"
    );
    assert_eq!(n.counts.rebuffers, 0, "{out}");

    s.set(|k| k.ll_hint_404 = true);
    let (v, out) = one_viewer(&url, "3s", &avplayer);
    let n = native(&v);
    assert!(n.counts.hints_gone >= 6, "{n:#?}");
    assert_eq!(v.totals.counts.failed_requests(), 0, "{out}");
    // each 404'd hint's part came by its own request once listed
    assert!(count(n, "part") >= n.counts.hints_gone, "{n:#?}");
    assert_eq!(n.counts.rebuffers, 0, "{out}");
    assert!(out.contains("hinted parts 404: 0, 0; "), "{out}");
}
