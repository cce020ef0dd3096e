//! The async driver of one native viewer: it asks the [`Player`] what to do,
//! does the HTTP, feeds the answers back and records every figure. A viewer
//! whose playlist stays unreachable starts over with the swarm's backoff.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::watch;
use url::Url;

use super::metrics::{DirectionLabel, NetworkLabel, ProtocolLabel, ReasonLabel, StatusLabel};
use super::native_fetch::{abandoned, fetch, record, reload_and_hint, Progress};
use super::native_shared::{Shared, Slot, ViewerSpec};
use super::VIEWER_BACKOFF;
use crate::native::buffer::{BufferEvent, Qoe};
use crate::native::cmcd::CmcdMode;
use crate::native::failure::Failure;
use crate::native::http::{Client, Protocol, Response};
use crate::native::player::{Event, Next, Player, ReloadMarks, Request, MAX_TRACKS};
use crate::native::playlist::PlaylistError;
use crate::results::{Kind, Latency, NativeFigures, ViewerFigures};

enum End {
    Stopped,
    Done,
    Failed,
}

/// The figures a viewer keeps while it runs.
struct Figures {
    f: ViewerFigures,
    n: NativeFigures,
    latency: Option<Histogram<u32>>,
    /// The last checkpoint this viewer left a copy for.
    checkpoint: u64,
}

impl Figures {
    fn error(&mut self, shared: &Shared, f: &Failure) {
        let m = &shared.metrics;
        shared.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = &self.f.network {
            m.network_failed_requests
                .get_or_create(&NetworkLabel {
                    network: name.clone(),
                })
                .inc();
        }
        m.tally(match f {
            Failure::Status(code) => format!("HTTP {code}"),
            Failure::Timeout => "timeout".into(),
            Failure::Connect => "connection".into(),
            other => other.message(),
        });
        match f {
            Failure::Status(code) => {
                *self.f.counts.http_errors.entry(*code).or_default() += 1;
                m.http_errors
                    .get_or_create(&StatusLabel {
                        status: code.to_string(),
                    })
                    .inc();
            }
            Failure::Timeout => {
                self.f.counts.timeouts += 1;
                m.timeouts.inc();
            }
            Failure::Connect => {
                self.f.counts.connect_errors += 1;
                m.connect_errors.inc();
            }
            other => {
                let msg = other.message();
                m.errors
                    .get_or_create(&ReasonLabel {
                        reason: msg.clone(),
                    })
                    .inc();
                *self.n.counts.errors.entry(msg).or_default() += 1;
            }
        }
    }
}

/// What ends a playback: the swarm's stop, or the viewer's own time to
/// leave (the end of its span of a load shape).
struct Stop<'a> {
    swarm: &'a mut watch::Receiver<bool>,
    leave: Option<Instant>,
}

impl Stop<'_> {
    /// Resolves when the swarm stops or it is time to leave.
    async fn wait(&mut self) {
        match self.leave {
            None => {
                let _ = self.swarm.wait_for(|s| *s).await;
            }
            Some(at) => {
                // boxed: a viewer that never leaves carries no timer
                let leave = Box::pin(tokio::time::sleep_until(at.into()));
                tokio::select! {
                    _ = self.swarm.wait_for(|s| *s) => {}
                    _ = leave => {}
                }
            }
        }
    }

    /// Whether the swarm has stopped (not just this viewer's span).
    fn swarm_stopped(&self) -> bool {
        *self.swarm.borrow()
    }
}

/// Runs viewer `spec` over its spans until `swarm` (the swarm's stop)
/// turns true; returns its figures.
pub async fn run(
    spec: ViewerSpec,
    shared: Arc<Shared>,
    mut swarm: watch::Receiver<bool>,
) -> ViewerFigures {
    let mut fig = Figures {
        f: ViewerFigures {
            id: spec.id,
            network: spec.network.as_ref().map(|(name, _)| name.to_string()),
            sid: (shared.cmcd != CmcdMode::Off).then(|| spec.sid.clone()),
            ..Default::default()
        },
        n: NativeFigures::default(),
        latency: None,
        checkpoint: 0,
    };
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut restarts = common::supervise::Restarts::default();
    let slot = &shared.slots[spec.slot];
    'spans: for span in (0..).map_while(|i| spec.plays.get(i)) {
        let mut stop = Stop {
            swarm: &mut swarm,
            leave: span.stop.map(|d| shared.epoch + d),
        };
        tokio::select! {
            _ = tokio::time::sleep_until((shared.epoch + span.start).into()) => {}
            _ = stop.wait() => {
                if stop.swarm_stopped() {
                    break 'spans;
                }
                continue 'spans;
            }
        }
        loop {
            fig.f.counts.starts += 1;
            shared.metrics.starts.inc();
            restarts.started(Instant::now());
            slot.active.store(true, Ordering::Relaxed);
            let end = play(&spec, &shared, &mut fig, &mut stop).await;
            slot.active.store(false, Ordering::Relaxed);
            slot.dry_at.store(u64::MAX, Ordering::Relaxed);
            slot.keep(summed(&fig, None));
            match end {
                End::Stopped => break,
                End::Done => {
                    shared.finished.fetch_add(1, Ordering::Relaxed);
                    break 'spans;
                }
                End::Failed => {
                    fig.n.counts.viewer_failures += 1;
                    shared.metrics.viewer_failures.inc();
                    let (_, delay) = restarts.ended(&VIEWER_BACKOFF, Instant::now(), rng.f64());
                    if shared.check {
                        println!(
                            "{:>8.3}s  viewer failed: the playlist was unreachable for the timeout; starting over in {:.2} s",
                            shared.epoch.elapsed().as_secs_f64(),
                            delay.as_secs_f64()
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait() => break,
                    }
                    fig.f.counts.restarts += 1;
                    shared.metrics.restarts.inc();
                }
            }
        }
        if stop.swarm_stopped() {
            break;
        }
        // the shape's target fell below it: it left
        fig.f.counts.departures += 1;
        shared.metrics.departures.inc();
        slot.keep(summed(&fig, None));
    }
    finish(fig)
}

fn finish(fig: Figures) -> ViewerFigures {
    summed(&fig, None)
}

/// The viewer's figures as a result: those of its ended playbacks, plus
/// the one under way (`playing`, as of `now`).
fn summed(fig: &Figures, playing: Option<(&Player, Instant)>) -> ViewerFigures {
    let mut f = fig.f.clone();
    let mut n = fig.n.clone();
    if let Some((player, now)) = playing {
        add_qoe(&mut n, &player.qoe(now));
    }
    if let Some(h) = &fig.latency {
        let ms = |q: f64| h.value_at_quantile(q) as f64;
        if let Some(l) = n.live_latency_ms.as_mut() {
            l.p50 = ms(0.5);
            l.p95 = ms(0.95);
        }
    }
    n.rebuffer_ratio = n.counts.rebuffer_ratio();
    n.counts.never_played = u64::from(f.counts.starts > 0 && n.startup_ms.is_none());
    // a native viewer's stalls are its rebuffers
    f.counts.stalls = n.counts.rebuffers;
    f.native = Some(n);
    f
}

/// Adds one playback's QoE to a viewer's figures.
fn add_qoe(n: &mut NativeFigures, q: &Qoe) {
    if n.startup_ms.is_none() {
        n.startup_ms = q.startup.map(|d| d.as_secs_f64() * 1000.0);
    }
    n.counts.play_sec += q.play_time.as_secs_f64();
    n.counts.rebuffer_sec += q.rebuffer_time.as_secs_f64();
    n.counts.rebuffers += q.rebuffer_count;
    n.counts.micro_gaps += q.micro_gaps;
}

/// One playback, from the first request to the end, a failure or the stop.
async fn play(spec: &ViewerSpec, shared: &Shared, fig: &mut Figures, stop: &mut Stop<'_>) -> End {
    let mut client = Client::new(Arc::clone(&shared.client), &spec.user_agent);
    if let Some((_, link)) = &spec.network {
        // its own stream of cut decisions, apart from the player's
        client = client.with_link(link.clone(), spec.seed ^ 0x9e37_79b9_7f4a_7c15);
    }
    let network = spec.network.as_ref().map(|(name, _)| &**name);
    let began = Instant::now();
    let mut player = Player::new(spec.player.clone(), began);
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    player.set_wall_clock(began, unix_ms);
    let slot = &shared.slots[spec.slot];
    // bytes off the wire, counted from the client's sockets (failed and
    // cut-short responses included)
    let mut wire_seen = 0u64;
    // (a side client, for hints, shares the count)
    let mut side: Option<Client> = None;
    let mut count_wire = |client: &mut Client, side: Option<&mut Client>, fig: &mut Figures| {
        let w = client.wire_bytes();
        fig.f.counts.bytes += w - wire_seen;
        shared.metrics.bytes.inc_by(w - wire_seen);
        wire_seen = w;
        let mut opened = client.take_opened();
        if let Some(s) = side {
            let theirs = s.take_opened();
            opened = [0, 1].map(|i| opened[i] + theirs[i]);
        }
        for (p, n) in Protocol::ALL.into_iter().zip(opened) {
            if n > 0 {
                *fig.n
                    .counts
                    .connections
                    .entry(p.as_str().to_owned())
                    .or_default() += n;
                let protocol = p.as_str();
                shared
                    .metrics
                    .connections
                    .get_or_create(&ProtocolLabel { protocol })
                    .inc_by(n);
            }
        }
    };
    let end = loop {
        let next = player.next(Instant::now());
        absorb(&mut player, shared, fig, network);
        publish(&player, shared, slot, began);
        let asked = shared.checkpoint.load(Ordering::Relaxed);
        if asked != fig.checkpoint {
            fig.checkpoint = asked;
            slot.keep(summed(fig, Some((&player, Instant::now()))));
        }
        match next {
            Next::Done => break End::Done,
            Next::Failed => break End::Failed,
            Next::WaitUntil(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = stop.wait() => break End::Stopped,
                }
            }
            Next::Get(req) => {
                let query = cmcd(&mut client, &mut player, &req, spec, shared);
                let got = Progress::default();
                let started = Instant::now();
                // boxed: a request's state (a few kB) is kept only while it
                // is in flight, not in every waiting viewer's task
                let fetching = Box::pin(fetch(&mut client, &req, query.as_deref(), shared, &got));
                let done = if player.watches(&req) {
                    // hls.js's abandon rule judges the load; boxed, so a
                    // viewer it does not watch carries none of its state
                    let judged = Box::pin(async {
                        tokio::select! {
                            r = fetching => Some(Ok(r)),
                            v = abandoned(&player, &req, started, &got) => Some(Err(v)),
                            _ = stop.wait() => None,
                        }
                    });
                    judged.await
                } else {
                    tokio::select! {
                        r = fetching => Some(Ok(r)),
                        _ = stop.wait() => None,
                    }
                };
                fig.n.counts.body_bytes += got.bytes();
                count_wire(&mut client, None, fig);
                match done {
                    None => break End::Stopped,
                    Some(Ok(done)) => settle(&mut player, &req, done, shared, fig, network),
                    Some(Err(to)) => {
                        // given up mid-body: an HTTP/1.1 connection cannot
                        // be used again (an HTTP/2 stream is reset)
                        client.close_if_busy();
                        let now = Instant::now();
                        player.on_abandoned(&req, started, got.first(), got.bytes(), to, now);
                        absorb(&mut player, shared, fig, network);
                    }
                }
            }
            Next::GetBeside(first, hint) => {
                // the hint beside the blocking reload: on the same HTTP/2
                // connection, or a second HTTP/1.1 one
                let side = side.get_or_insert_with(|| client.sibling());
                side.share_connection_of(&client);
                let q1 = cmcd(&mut client, &mut player, &first, spec, shared);
                let q2 = cmcd(side, &mut player, &hint, spec, shared);
                let (body, hint_body) = (Progress::default(), Progress::default());
                // boxed: two requests' state would otherwise be kept in
                // every viewer's task, hints or not
                let both = Box::pin(reload_and_hint(
                    (&mut client, &first, q1.as_deref()),
                    (side, &hint, q2.as_deref()),
                    shared,
                    (&body, &hint_body),
                ));
                let done = tokio::select! {
                    r = both => Some(r),
                    _ = stop.wait() => None,
                };
                fig.n.counts.body_bytes += body.bytes() + hint_body.bytes();
                count_wire(&mut client, Some(side), fig);
                let Some((a, b)) = done else {
                    break End::Stopped;
                };
                settle(&mut player, &first, a, shared, fig, network);
                match b {
                    Some(b) => settle(&mut player, &hint, b, shared, fig, network),
                    None => {
                        // given up mid-request: its connection (HTTP/1.1)
                        // cannot be used again
                        side.close();
                        player.on_hint_missed();
                        absorb(&mut player, shared, fig, network);
                    }
                }
            }
        }
    };
    add_qoe(&mut fig.n, &player.qoe(Instant::now()));
    end
}

/// Hands the outcome of `req` to the player and the figures.
fn settle(
    player: &mut Player,
    req: &Request,
    (result, started): (Result<(Response, Url), Failure>, Instant),
    shared: &Shared,
    fig: &mut Figures,
    network: Option<&str>,
) {
    let now = Instant::now();
    match result {
        Ok((resp, final_url)) => deliver(
            player,
            req,
            resp,
            &final_url,
            (started, now),
            shared,
            fig,
            network,
        ),
        Err(f) => {
            // a server may answer 404 for a hinted part it finds will not
            // be made (draft-pantos-hls-rfc8216bis §6.2.6): counted apart
            // (hintsGone), not a failed request
            if !(req.kind == Kind::Hint && f == Failure::Status(404)) {
                fig.error(shared, &f);
            }
            if shared.check {
                println!(
                    "{:>8.3}s  {:<8} FAILED {}  {}",
                    shared.epoch.elapsed().as_secs_f64(),
                    req.kind.as_str(),
                    f.detail(),
                    req.url
                );
            }
            player.on_failure(req, f, now);
        }
    }
    absorb(player, shared, fig, network);
}

/// Publishes when this viewer's buffer runs dry, for the swarm's stall
/// count. A playback that has not started `timeout` after it began counts
/// as stalled from then on: a viewer waiting for its first segment that
/// long sees nothing, as one whose buffer ran dry does.
fn publish(player: &Player, shared: &Shared, slot: &Slot, began: Instant) {
    let dry = player
        .stall_at()
        .or_else(|| (!player.started()).then(|| began + shared.client.timeout));
    let ns = dry.map_or(u64::MAX, |t| {
        t.saturating_duration_since(shared.epoch).as_nanos() as u64
    });
    slot.dry_at.store(ns, Ordering::Relaxed);
}

/// Sets the CMCD of `req` (PLAYER.md §8) on `client` as headers, or
/// returns it as the `CMCD` query argument's value.
fn cmcd(
    client: &mut Client,
    player: &mut Player,
    req: &Request,
    spec: &ViewerSpec,
    shared: &Shared,
) -> Option<String> {
    if shared.cmcd == CmcdMode::Off {
        return None;
    }
    let mut c = player.cmcd(req, Instant::now());
    c.sid.clone_from(&spec.sid);
    c.cid.clone_from(&shared.content_id);
    if shared.cmcd == CmcdMode::Query {
        return Some(c.query_value());
    }
    client.set_extra_headers(&c.headers());
    None
}

/// The Low-Latency figures of a media playlist response (PLAYER.md §7):
/// a blocking reload's hold time (its TTFB) and overshoot (its response
/// head after the end of the part it asked for: 0 when before it, the
/// clocks disagreeing), and the advance lag (the newest part's end → the
/// playlist in).
fn record_low_latency(
    shared: &Shared,
    marks: &ReloadMarks,
    r: &Response,
    started: Instant,
    now: Instant,
) {
    let head = started + r.connect.unwrap_or_default() + r.ttfb;
    let overshoot = marks
        .asked_end
        .filter(|_| marks.blocking)
        .map(|end| head.saturating_duration_since(end));
    let lag = marks
        .newest_end
        .map(|end| now.saturating_duration_since(end));
    let m = &shared.metrics;
    let mut rec = shared.recorder.lock().unwrap_or_else(|e| e.into_inner());
    if marks.blocking {
        rec.blocking_reload(r.ttfb, overshoot);
        m.reload_hold_seconds.observe(r.ttfb.as_secs_f64());
        if let Some(o) = overshoot {
            m.reload_overshoot_seconds.observe(o.as_secs_f64());
        }
    }
    if let Some(l) = lag {
        rec.advance_lag(l);
        m.advance_lag_seconds.observe(l.as_secs_f64());
    }
}

/// Hands a successful response to the player.
#[allow(clippy::too_many_arguments)]
fn deliver(
    player: &mut Player,
    req: &Request,
    resp: Response,
    final_url: &Url,
    (started, now): (Instant, Instant),
    shared: &Shared,
    fig: &mut Figures,
    network: Option<&str>,
) {
    if req.kind == Kind::Init {
        record(shared, Kind::Init, &resp, None, final_url);
        player.on_segment_done(req, resp.body_bytes, started, now);
        return;
    }
    if req.kind == Kind::Hint {
        // its media counts when a playlist lists it (HintUsed)
        record(shared, Kind::Hint, &resp, None, final_url);
        player.on_hint_done(req, resp.body_bytes, started);
        return;
    }
    if req.kind == Kind::Part {
        record(shared, Kind::Part, &resp, req.duration, final_url);
        if let Some(d) = req.duration {
            fig.f.media_seconds += d;
        }
        player.on_segment_done(req, resp.body_bytes, started, now);
        return;
    }
    if req.kind == Kind::Segment {
        let extinf = req.duration;
        record(shared, Kind::Segment, &resp, extinf, final_url);
        if let Some(name) = network {
            shared
                .recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .network_ttfb(name, resp.ttfb);
            shared
                .metrics
                .network_segment_ttfb_seconds
                .get_or_create(&NetworkLabel {
                    network: name.to_owned(),
                })
                .observe(resp.ttfb.as_secs_f64());
        }
        if let Some(d) = extinf {
            fig.f.counts.segments += 1;
            fig.f.media_seconds += d;
            shared.metrics.segments.inc();
        }
        player.on_segment_done(req, resp.body_bytes, started, now);
        return;
    }
    if resp.truncated {
        let f = Failure::Playlist(PlaylistError::TooLarge);
        record(shared, req.kind, &resp, None, final_url);
        fig.error(shared, &f);
        player.on_failure(req, f, now);
        return;
    }
    match player.on_playlist_aged(req, final_url, &resp.body, resp.age, started, now) {
        Ok(kind) => {
            record(shared, kind, &resp, None, final_url);
            if let Some(marks) = player.take_reload_marks() {
                record_low_latency(shared, &marks, &resp, started, now);
            }
            fig.f.counts.playlists += 1;
            shared.metrics.playlists.inc();
        }
        Err(e) => {
            record(shared, req.kind, &resp, None, final_url);
            fig.error(shared, &Failure::Playlist(e));
            if shared.check {
                println!(
                    "{:>8.3}s  {:<8} {}  {}",
                    shared.epoch.elapsed().as_secs_f64(),
                    req.kind.as_str(),
                    e,
                    final_url
                );
            }
        }
    }
}

/// Takes the player's events into the figures, the recorder and the metrics.
fn absorb(player: &mut Player, shared: &Shared, fig: &mut Figures, network: Option<&str>) {
    let m = &shared.metrics;
    let events: Vec<Event> = player.drain_events().collect();
    if events.is_empty() {
        return;
    }
    let mut rec = shared.recorder.lock().unwrap_or_else(|e| e.into_inner());
    for e in events {
        match e {
            Event::Buffer(BufferEvent::Startup(d)) => {
                rec.startup(d);
                if let Some(name) = network {
                    rec.network_startup(name, d);
                }
                m.startup_seconds.observe(d.as_secs_f64());
            }
            Event::Buffer(BufferEvent::Stall) => {
                m.rebuffers.inc();
                if let Some(name) = network {
                    m.network_rebuffers
                        .get_or_create(&NetworkLabel {
                            network: name.to_owned(),
                        })
                        .inc();
                }
            }
            Event::Buffer(BufferEvent::Rebuffer(d)) => {
                rec.rebuffer(d);
                m.rebuffer_seconds.inc_by(d.as_secs_f64());
            }
            Event::Buffer(BufferEvent::Latency(d)) => {
                rec.latency(d, player.latency_target());
                m.live_latency_seconds.observe(d.as_secs_f64());
                let ms = (d.as_millis() as u64).clamp(1, 3_600_000);
                fig.latency
                    .get_or_insert_with(|| {
                        Histogram::new_with_bounds(1, 3_600_000, 2).expect("valid bounds")
                    })
                    .saturating_record(ms);
                let l = fig.n.live_latency_ms.get_or_insert_with(Latency::default);
                l.last = ms as f64;
            }
            Event::SegmentGone => {
                fig.n.counts.segments_gone += 1;
                m.segments_gone.inc();
            }
            Event::SegmentFailed => {
                fig.n.counts.segments_failed += 1;
                m.segments_failed.inc();
            }
            Event::Abandoned => {
                fig.n.counts.segments_abandoned += 1;
                m.segments_abandoned.inc();
            }
            Event::SegmentsSkipped(n) => {
                fig.n.counts.segments_skipped += n;
                m.segments_skipped.inc_by(n);
            }
            Event::SequenceReset => fig.n.counts.sequence_resets += 1,
            Event::SegmentByParts => {
                fig.f.counts.segments += 1;
                m.segments.inc();
            }
            Event::HintUsed(d) => fig.f.media_seconds += d,
            Event::HintGone => {
                fig.n.counts.hints_gone += 1;
                m.hints_gone.inc();
            }
            Event::DeltaUpdate => {
                fig.n.counts.delta_updates += 1;
                m.delta_updates.inc();
            }
            Event::DeltaRefetch => {
                fig.n.counts.delta_refetches += 1;
                m.delta_refetches.inc();
            }
            Event::BlockedReloadRefused(status) => {
                if status == 503 {
                    fig.n.counts.blocked_reloads_503 += 1;
                } else {
                    fig.n.counts.blocked_reloads_400 += 1;
                }
                m.blocked_reloads_refused
                    .get_or_create(&StatusLabel {
                        status: status.to_string(),
                    })
                    .inc();
            }
            Event::VariantsNotFollowed(n) => {
                fig.n.counts.variants_not_followed += n;
                if !shared.told_variants.swap(true, Ordering::Relaxed) {
                    crate::log::warning(
                        "variants",
                        &format!(
                            "the master playlist lists {} playlists; a viewer follows the first {} \
                             (variantsNotFollowed counts the rest)",
                            n + MAX_TRACKS as u64,
                            MAX_TRACKS
                        ),
                    );
                }
            }
            Event::Switch { up, .. } => {
                if up {
                    fig.n.counts.switches_up += 1;
                } else {
                    fig.n.counts.switches_down += 1;
                }
                m.abr_switches
                    .get_or_create(&DirectionLabel {
                        direction: if up { "up" } else { "down" },
                    })
                    .inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn returns, without calling it.
    fn future_size<A, B, C, F: std::future::Future>(_: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every viewer's task holds this future for the whole run, so each
    /// byte costs 10 000 at 10 000 viewers (PLAYER.md §5: 64 KiB a viewer
    /// in all). A request's state (about 3 kB) is boxed while it is in
    /// flight; inline, it made the future 7.3 kB.
    #[test]
    fn a_viewer_task_is_small() {
        let size = future_size(run);
        assert!(size <= 5 * 1024, "a viewer's future is {size} bytes");
    }
}
