//! A native viewer's requests: one GET with its redirects under one
//! deadline, its bytes counted as they come ([`Progress`]); a blocking
//! reload with the hinted part beside it; and a segment load watched by
//! hls.js's abandon rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use url::Url;

use super::metrics::KindLabel;
use super::native_shared::Shared;
use crate::native::failure::Failure;
use crate::native::http::{Client, Response, MAX_REDIRECTS};
use crate::native::player::{Player, Request};
use crate::native::playlist::MAX_PLAYLIST_BYTES;
use crate::results::{Kind, RequestSample};

/// The body bytes of a load so far, and when the first came: read while
/// the load goes on.
#[derive(Debug, Default)]
pub(super) struct Progress {
    bytes: AtomicU64,
    first: OnceLock<Instant>,
}

impl Progress {
    fn add(&self, n: u64) {
        if n > 0 {
            self.first.get_or_init(Instant::now);
        }
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Body bytes in so far.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// When the first body byte came.
    pub(super) fn first(&self) -> Option<Instant> {
        self.first.get().copied()
    }
}

/// How often the abandon rule judges a load (hls.js's 100 ms).
const JUDGED_EVERY: Duration = Duration::from_millis(100);

/// Judges the load of `req`, begun at `started`, every 100 ms by hls.js's
/// abandon rule ([`Player::abandon_for`]); returns the variant to load it
/// from instead when the rule gives one. The caller races it against the
/// load, for the loads the player [`Player::watches`].
pub(super) async fn abandoned(
    player: &Player,
    req: &Request,
    started: Instant,
    got: &Progress,
) -> usize {
    loop {
        tokio::time::sleep(JUDGED_EVERY).await;
        let now = Instant::now();
        if let Some(v) = player.abandon_for(req, started, got.first(), got.bytes(), now) {
            return v;
        }
    }
}

/// What [`fetch`] gives: the last response and the URL it came from, or
/// the failure; when the request began.
pub(super) type Fetched = (Result<(Response, Url), Failure>, Instant);

/// A blocking reload and the hinted part beside it, at once. The hint is
/// waited for at most a part target after the reload came in (both wait
/// for the same part): a part the server hinted and then did not make —
/// past the end of a segment — would otherwise hold the reload's delivery
/// until the server gives up on it. Then it is given up (`None`).
pub(super) async fn reload_and_hint(
    (client, reload, q1): (&mut Client, &Request, Option<&str>),
    (side, hint, q2): (&mut Client, &Request, Option<&str>),
    shared: &Shared,
    (body, hint_body): (&Progress, &Progress),
) -> (Fetched, Option<Fetched>) {
    let grace = Duration::from_secs_f64(hint.duration.unwrap_or(1.0).clamp(0.05, 10.0));
    let reloaded = fetch(client, reload, q1, shared, body);
    let hinted = fetch(side, hint, q2, shared, hint_body);
    tokio::pin!(reloaded, hinted);
    tokio::select! {
        a = &mut reloaded => (a, tokio::time::timeout(grace, &mut hinted).await.ok()),
        b = &mut hinted => (reloaded.await, Some(b)),
    }
}

/// GETs `req` (following redirects); records each response's timing.
/// Returns the last response, the URL it came from, and when the request began.
pub(super) async fn fetch(
    client: &mut Client,
    req: &Request,
    cmcd_query: Option<&str>,
    shared: &Shared,
    body: &Progress,
) -> (Result<(Response, Url), Failure>, Instant) {
    let keep = if matches!(
        req.kind,
        Kind::Segment | Kind::Init | Kind::Part | Kind::Hint
    ) {
        0
    } else {
        MAX_PLAYLIST_BYTES + 1
    };
    let began = Instant::now();
    // one deadline for the request and the redirects it leads to
    let deadline = req.deadline(shared.client.timeout);
    let mut url = req.url.clone();
    if let Some(q) = cmcd_query {
        url.query_pairs_mut().append_pair("CMCD", q);
    }
    let m = &shared.metrics;
    for hop in 0..=MAX_REDIRECTS {
        let mut on_bytes = |n: u64| {
            body.add(n);
            m.body_bytes.inc_by(n);
        };
        let left = deadline.saturating_sub(began.elapsed());
        if left.is_zero() {
            return (Err(Failure::Timeout), began);
        }
        let resp = match client.get(&url, keep, left, &mut on_bytes).await {
            Ok(r) => r,
            Err(f) => return (Err(f), began),
        };
        let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
        if redirect || resp.status >= 400 {
            // successful responses are recorded on delivery, when the kind
            // of a playlist is known
            record(shared, req.kind, &resp, None, &url);
        }
        if redirect {
            let target = resp.location.as_deref().and_then(|l| url.join(l).ok());
            match target {
                Some(t) if hop < MAX_REDIRECTS => {
                    url = t;
                    continue;
                }
                Some(_) => return (Err(Failure::TooManyRedirects), began),
                None => return (Err(Failure::Status(resp.status)), began),
            }
        }
        if !(200..300).contains(&resp.status) {
            return (Err(Failure::Status(resp.status)), began);
        }
        return (Ok((resp, url)), began);
    }
    (Err(Failure::TooManyRedirects), began)
}

/// Records one response's timing (and prints it in check mode).
pub(super) fn record(shared: &Shared, kind: Kind, r: &Response, extinf: Option<f64>, url: &Url) {
    let ratio = extinf
        .filter(|d| *d > 0.0)
        .map(|d| r.download.as_secs_f64() / d);
    shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .request(&RequestSample {
            kind,
            connect: r.connect,
            ttfb: r.ttfb,
            download: r.download,
            download_ratio: ratio,
        });
    let m = &shared.metrics;
    let label = KindLabel {
        kind: kind.as_str(),
    };
    if let Some(c) = r.connect {
        m.connect_seconds
            .get_or_create(&label)
            .observe(c.as_secs_f64());
    }
    m.ttfb_seconds
        .get_or_create(&label)
        .observe(r.ttfb.as_secs_f64());
    m.download_seconds
        .get_or_create(&label)
        .observe(r.download.as_secs_f64());
    if let Some(x) = ratio.filter(|_| kind == Kind::Segment) {
        m.download_ratio.observe(x);
    }
    if shared.check {
        println!(
            "{:>8.3}s  {:<8} {}  ttfb {:>8.2} ms  {:>9} B in {:>8.2} ms{}  {}",
            shared.epoch.elapsed().as_secs_f64(),
            kind.as_str(),
            r.status,
            r.ttfb.as_secs_f64() * 1000.0,
            r.body_bytes,
            r.download.as_secs_f64() * 1000.0,
            r.connect
                .map(|c| format!(" (new connection {:.2} ms)", c.as_secs_f64() * 1000.0))
                .unwrap_or_default(),
            url
        );
    }
}
