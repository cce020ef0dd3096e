//! A scriptable HLS server for tests (hyper, in-process, on 127.0.0.1): a
//! sliding live window computed from a clock that starts when the server
//! does, and knobs that make it misbehave — stall the playlist, 404 a listed
//! segment, serve a segment slowly, throttle a variant, close every
//! connection. It logs every request (time, path, connection, status, body
//! bytes) so tests can check what a viewer did.
//!
//! Paths:
//! - `/live/stream.m3u8`, `/live/seg<N>.ts` — the live stream;
//! - `/master.m3u8`, `/v/<name>/stream.m3u8`, `/v/<name>/seg<N>.ts` — variants;
//! - `/vod/stream.m3u8` — three segments and `EXT-X-ENDLIST`;
//! - `/redirect/stream.m3u8` → 302 to `/live/stream.m3u8`; `/loop.m3u8` → 302 to itself;
//! - `/bad/<garbage|notd|negdur|huge|nonutf8>.m3u8` — malformed playlists;
//! - `/ll/stream.m3u8`, `/ll/master.m3u8`, `/ll/v/<name>/stream.m3u8` — a
//!   Low-Latency HLS stream (1 s segments of four 0.25 s parts, blocking
//!   reloads held until the part exists, delta updates, rendition reports),
//!   with knobs for its rules: refuse blocking reloads, give a short delta,
//!   serve the plain playlist as a cache would, with an `Age`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Channel, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Seconds since the server started.
    pub at: f64,
    pub path: String,
    /// The query string (empty when none).
    pub query: String,
    /// Connection number (1, 2, …).
    pub conn: u64,
    pub status: u16,
    /// Body bytes written.
    pub bytes: u64,
    pub user_agent: String,
    /// The `Host` header.
    pub host: String,
}

/// How the server misbehaves; change it while it runs with [`HlsServer::set`].
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// Serve the live playlist as it was when this was set (no new segments).
    pub stall_playlist: bool,
    /// The Nth live-segment request (1-based, counted over all clients) answers 404.
    pub gone_nth: Option<u64>,
    /// The Nth live-segment request sends its head at once and its body after this delay.
    pub slow_nth: Option<(u64, Duration)>,
    /// Variant name → body bytes per second.
    pub throttle: BTreeMap<String, u64>,
    /// Answer with `Connection: close`.
    pub close: bool,
    /// LL: the next blocking reloads are answered with these statuses.
    pub ll_refuse: Vec<u16>,
    /// LL: delta updates skip one segment more than the window holds (the
    /// viewer must load the whole playlist).
    pub ll_short_delta: bool,
    /// LL: plain playlist loads are answered as a cache would, this many
    /// seconds old, with an `Age` header.
    pub ll_age: Option<u64>,
    /// LL: a hinted part (the next to come) is answered 404 at once
    /// instead of being held until it is complete.
    pub ll_hint_404: bool,
}

/// The LL stream: parts of 0.25 s, four a segment, a window of 12
/// segments, delta updates past 6 s.
pub const LL_PART_SEC: f64 = 0.25;
pub const LL_PARTS: u64 = 4;
const LL_LIST: u64 = 12;
/// Parts out when the server starts: the stream ran 20 s before, so that
/// its window is full, and full as it was a few seconds ago.
pub const LL_PARTS_AT_START: u64 = (LL_LIST + 8) * LL_PARTS;

/// The stream's shape.
#[derive(Clone, Debug)]
pub struct Shape {
    /// `EXT-X-TARGETDURATION` and every `EXTINF`, seconds.
    pub segment_sec: u64,
    pub list_size: u64,
    /// Body size of a live segment.
    pub segment_bytes: u64,
    /// Variants: name and `BANDWIDTH` (their segments are bandwidth × duration / 8 bytes).
    pub variants: Vec<(String, u64)>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            segment_sec: 1,
            list_size: 6,
            segment_bytes: 20_000,
            variants: vec![
                ("lo".into(), 300_000),
                ("mid".into(), 1_000_000),
                ("hi".into(), 3_000_000),
            ],
        }
    }
}

struct State {
    knobs: Knobs,
    log: Vec<Entry>,
    segment_requests: u64,
    frozen: Option<String>,
}

struct Inner {
    shape: Shape,
    start: Instant,
    state: Mutex<State>,
    conns: AtomicU64,
}

/// A running server; stops when dropped.
pub struct HlsServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    _rt: tokio::runtime::Runtime,
}

impl HlsServer {
    pub fn start(shape: Shape) -> HlsServer {
        Self::start_on("127.0.0.1:0", shape)
    }

    /// The same on another address, e.g. `[::1]:0`.
    pub fn start_on(bind: &str, shape: Shape) -> HlsServer {
        Self::start_with(bind, shape, None)
    }

    /// The same over TLS with this certificate chain and key (DER).
    pub fn start_tls(shape: Shape, chain: Vec<Vec<u8>>, key: Vec<u8>) -> HlsServer {
        use tokio_rustls::rustls;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                chain
                    .into_iter()
                    .map(rustls_pki_types::CertificateDer::from)
                    .collect(),
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap();
        Self::start_with(
            "127.0.0.1:0",
            shape,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
        )
    }

    fn start_with(bind: &str, shape: Shape, tls: Option<tokio_rustls::TlsAcceptor>) -> HlsServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let inner = Arc::new(Inner {
            shape,
            start: Instant::now(),
            state: Mutex::new(State {
                knobs: Knobs::default(),
                log: Vec::new(),
                segment_requests: 0,
                frozen: None,
            }),
            conns: AtomicU64::new(0),
        });
        let listener = rt.block_on(tokio::net::TcpListener::bind(bind)).unwrap();
        let addr = listener.local_addr().unwrap();
        let i = Arc::clone(&inner);
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let conn = i.conns.fetch_add(1, Ordering::Relaxed) + 1;
                let i = Arc::clone(&i);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let i = Arc::clone(&i);
                        async move {
                            if let Some(d) = i.ll_hold(&req) {
                                tokio::time::sleep(d).await;
                            }
                            Ok::<_, Infallible>(i.answer(req, conn))
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
            }
        });
        HlsServer {
            addr,
            inner,
            _rt: rt,
        }
    }

    /// `http://ADDR:PORT/path` (IPv6 addresses in brackets).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:PORT/path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Changes the knobs.
    pub fn set(&self, f: impl FnOnce(&mut Knobs)) {
        let mut s = self.inner.state.lock().unwrap();
        f(&mut s.knobs);
        if !s.knobs.stall_playlist {
            s.frozen = None;
        }
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Entry> {
        self.inner.state.lock().unwrap().log.clone()
    }

    /// Seconds since the server started.
    pub fn now(&self) -> f64 {
        self.inner.start.elapsed().as_secs_f64()
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

impl Inner {
    /// The newest complete segment's number: segment N is complete at
    /// (N + 1 − list_size) × duration seconds, so the window is full at start.
    fn newest(&self) -> u64 {
        let t = self.start.elapsed().as_secs_f64() / self.shape.segment_sec as f64;
        t as u64 + self.shape.list_size - 1
    }

    fn media_playlist(&self, end_list: bool, first: u64, count: u64) -> String {
        let d = self.shape.segment_sec;
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{d}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
        );
        for n in first..first + count {
            s += &format!("#EXTINF:{d}.000000,\nseg{n}.ts\n");
        }
        if end_list {
            s += "#EXT-X-ENDLIST\n";
        }
        s
    }

    fn live_playlist(&self) -> String {
        let newest = self.newest();
        self.media_playlist(
            false,
            newest + 1 - self.shape.list_size,
            self.shape.list_size,
        )
    }

    fn answer(self: &Arc<Self>, req: Request<Incoming>, conn: u64) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (user_agent, host) = (header("user-agent"), header("host"));
        let knobs = self.state.lock().unwrap().knobs.clone();
        let (status, body, len, location, pacing): (
            u16,
            Option<String>,
            u64,
            Option<String>,
            Pacing,
        ) = match path.strip_prefix("/ll/") {
            Some(rest) => self.ll_route(rest, &query),
            None => self.route(&path, &knobs),
        };
        let aged = path.starts_with("/ll/") && !query.contains("_HLS_msn");
        let age = knobs.ll_age.filter(|_| aged && path.ends_with(".m3u8"));
        let at = self.start.elapsed().as_secs_f64();
        self.state.lock().unwrap().log.push(Entry {
            at,
            path: path.clone(),
            query,
            conn,
            status,
            bytes: len,
            user_agent,
            host,
        });
        let mut b = Response::builder().status(status);
        if let Some(l) = location {
            b = b.header("location", l);
        }
        if knobs.close {
            b = b.header("connection", "close");
        }
        if let Some(a) = age {
            b = b.header("age", a.to_string());
        }
        b = b.header("content-length", len.to_string());
        let body = match (body, pacing) {
            (Some(text), Pacing::None) => full(text),
            (Some(text), pacing) => paced(Bytes::from(text), pacing),
            (None, pacing) => paced(Bytes::from(vec![0x47u8; len as usize]), pacing),
        };
        b.body(body).unwrap()
    }

    fn route(&self, path: &str, k: &Knobs) -> (u16, Option<String>, u64, Option<String>, Pacing) {
        let text = |s: String| {
            let n = s.len() as u64;
            (200, Some(s), n, None, Pacing::None)
        };
        let not_found = || {
            (
                404u16,
                Some("not found\n".to_owned()),
                10,
                None,
                Pacing::None,
            )
        };
        match path {
            "/live/stream.m3u8" => {
                let mut s = self.state.lock().unwrap();
                let body = if k.stall_playlist {
                    s.frozen.get_or_insert_with(|| self.live_playlist()).clone()
                } else {
                    self.live_playlist()
                };
                drop(s);
                text(body)
            }
            "/vod/stream.m3u8" => text(self.media_playlist(true, 0, 3)),
            "/master.m3u8" => {
                let mut s = "#EXTM3U\n".to_owned();
                for (name, bw) in &self.shape.variants {
                    s += &format!("#EXT-X-STREAM-INF:BANDWIDTH={bw}\nv/{name}/stream.m3u8\n");
                }
                text(s)
            }
            "/redirect/stream.m3u8" => (
                302,
                Some(String::new()),
                0,
                Some("/live/stream.m3u8".into()),
                Pacing::None,
            ),
            "/loop.m3u8" => (
                302,
                Some(String::new()),
                0,
                Some("/loop.m3u8".into()),
                Pacing::None,
            ),
            "/bad/garbage.m3u8" => text("<html>\x01\x02 this is not a playlist</html>\n".into()),
            "/bad/notd.m3u8" => {
                text("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:1.0,\nseg1.ts\n".into())
            }
            "/bad/negdur.m3u8" => {
                text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:-4.0,\nseg1.ts\n".into())
            }
            "/bad/nonutf8.m3u8" => {
                // not valid UTF-8: sent as bytes
                (
                    200,
                    None,
                    64,
                    None,
                    Pacing::Bytes(b"#EXTM3U\n\xff\xfe\xfd".to_vec()),
                )
            }
            "/bad/huge.m3u8" => (200, None, 50 << 20, None, Pacing::Huge),
            _ => {
                if let Some(rest) = path.strip_prefix("/live/seg") {
                    let Some(n) = rest.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok())
                    else {
                        return not_found();
                    };
                    let nth = {
                        let mut s = self.state.lock().unwrap();
                        s.segment_requests += 1;
                        s.segment_requests
                    };
                    if n > self.newest() || k.gone_nth == Some(nth) {
                        return not_found();
                    }
                    let pacing = match k.slow_nth {
                        Some((want, d)) if want == nth => Pacing::Delay(d),
                        _ => Pacing::None,
                    };
                    return (200, None, self.shape.segment_bytes, None, pacing);
                }
                if let Some(rest) = path.strip_prefix("/vod/seg") {
                    return match rest.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok()) {
                        Some(n) if n < 3 => {
                            (200, None, self.shape.segment_bytes, None, Pacing::None)
                        }
                        _ => not_found(),
                    };
                }
                if let Some(rest) = path.strip_prefix("/v/") {
                    let Some((name, file)) = rest.split_once('/') else {
                        return not_found();
                    };
                    let Some((_, bw)) = self.shape.variants.iter().find(|v| v.0 == name) else {
                        return not_found();
                    };
                    if file == "stream.m3u8" {
                        return text(self.live_playlist());
                    }
                    let bytes = bw * self.shape.segment_sec / 8;
                    let pacing = match k.throttle.get(name) {
                        Some(rate) => Pacing::Rate(*rate),
                        None => Pacing::None,
                    };
                    return (200, None, bytes, None, pacing);
                }
                not_found()
            }
        }
    }
}

/// The delivery directives of a request: `_HLS_msn`, `_HLS_part`, and
/// whether it asks for a delta (`_HLS_skip`).
fn directives(query: &str) -> (Option<u64>, Option<u64>, bool) {
    let mut out = (None, None, false);
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match k {
            "_HLS_msn" => out.0 = v.parse().ok(),
            "_HLS_part" => out.1 = v.parse().ok(),
            "_HLS_skip" => out.2 = true,
            _ => {}
        }
    }
    out
}

/// The segment and part of an LL part's path (`…/seg{m}.{p}.m4s`).
fn hinted_part(path: &str) -> Option<(u64, u64)> {
    let name = path
        .rsplit('/')
        .next()?
        .strip_prefix("seg")?
        .strip_suffix(".m4s")?;
    let (m, p) = name.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

impl Inner {
    /// Parts complete `ago` seconds before now.
    fn ll_parts_done(&self, ago: f64) -> u64 {
        let t = self.start.elapsed().as_secs_f64() - ago;
        ((t / LL_PART_SEC).floor() as i64 + LL_PARTS_AT_START as i64).max(0) as u64
    }

    /// How long a blocking reload waits for its part (none past the
    /// server's limit: it is refused).
    fn ll_hold(&self, req: &Request<Incoming>) -> Option<Duration> {
        if !req.uri().path().starts_with("/ll/") {
            return None;
        }
        let done = self.ll_parts_done(0.0);
        let needed = if let Some((m, p)) = hinted_part(req.uri().path()) {
            // the hinted part, the next to come: held until it is complete
            if m * LL_PARTS + p != done || self.state.lock().unwrap().knobs.ll_hint_404 {
                return None;
            }
            done + 1
        } else {
            let (Some(msn), part, _) = directives(req.uri().query().unwrap_or("")) else {
                return None;
            };
            if !self.state.lock().unwrap().knobs.ll_refuse.is_empty() {
                return None;
            }
            let needed = msn * LL_PARTS + part.unwrap_or(LL_PARTS - 1) + 1;
            if msn > done / LL_PARTS + 2 || needed <= done {
                return None;
            }
            needed
        };
        let at = (needed - LL_PARTS_AT_START) as f64 * LL_PART_SEC;
        Some(Duration::from_secs_f64(
            (at - self.start.elapsed().as_secs_f64()).clamp(0.0, 3.0) + 0.002,
        ))
    }

    /// A media playlist of the LL stream as it was `ago` seconds before
    /// now; with `reports`, a rendition report of each of these playlists
    /// (relative URIs).
    fn ll_playlist(&self, ago: f64, skip: bool, short: bool, reports: &[String]) -> String {
        let done = self.ll_parts_done(ago);
        let (complete, in_parts) = (done / LL_PARTS, done % LL_PARTS);
        let first = complete - LL_LIST;
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750,CAN-SKIP-UNTIL=6.0\n\
             #EXT-X-PART-INF:PART-TARGET=0.250\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n"
        );
        // a delta leaves out what is older than 6 s; a short one a
        // segment more than the window holds
        let skipped = match (skip, short) {
            (true, true) => LL_LIST + 1,
            (true, false) => LL_LIST - 6,
            _ => 0,
        };
        if skipped > 0 {
            s += &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n");
        }
        let parts = |s: &mut String, msn: u64, n: u64| {
            for p in 0..n {
                let ind = if p == 0 { ",INDEPENDENT=YES" } else { "" };
                *s += &format!("#EXT-X-PART:DURATION=0.25000,URI=\"seg{msn}.{p}.m4s\"{ind}\n");
            }
        };
        for msn in (first + skipped).min(complete)..complete {
            if msn + 2 >= complete {
                parts(&mut s, msn, LL_PARTS);
            }
            s += &format!("#EXTINF:1.00000,\nseg{msn}.m4s\n");
        }
        parts(&mut s, complete, in_parts);
        s += &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg{complete}.{in_parts}.m4s\"\n");
        let last = done - 1;
        for uri in reports {
            s += &format!(
                "#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN={},LAST-PART={}\n",
                last / LL_PARTS,
                last % LL_PARTS
            );
        }
        s
    }

    /// The LL stream's answer to `rest` (the path after `/ll/`).
    fn ll_route(
        &self,
        rest: &str,
        query: &str,
    ) -> (u16, Option<String>, u64, Option<String>, Pacing) {
        let text = |status: u16, s: String| {
            let n = s.len() as u64;
            (status, Some(s), n, None, Pacing::None)
        };
        let (msn, _, skip) = directives(query);
        let k = {
            let mut st = self.state.lock().unwrap();
            if msn.is_some() && !st.knobs.ll_refuse.is_empty() {
                let status = st.knobs.ll_refuse.remove(0);
                return text(status, "refused\n".into());
            }
            st.knobs.clone()
        };
        let names: Vec<&str> = self.shape.variants.iter().map(|v| v.0.as_str()).collect();
        let (variant, file) = match rest.strip_prefix("v/").and_then(|r| r.split_once('/')) {
            Some((name, file)) if names.contains(&name) => (Some(name), file),
            Some(_) => return text(404, "not found\n".into()),
            None => (None, rest),
        };
        let bandwidth = variant
            .and_then(|n| self.shape.variants.iter().find(|v| v.0 == n))
            .map_or(400_000, |v| v.1);
        match file {
            "master.m3u8" if variant.is_none() => {
                let mut s = "#EXTM3U\n".to_owned();
                for (name, bw) in &self.shape.variants {
                    s += &format!("#EXT-X-STREAM-INF:BANDWIDTH={bw}\nv/{name}/stream.m3u8\n");
                }
                text(200, s)
            }
            "stream.m3u8" => {
                if msn.is_some_and(|m| m > self.ll_parts_done(0.0) / LL_PARTS + 2) {
                    return text(400, "too far ahead\n".into());
                }
                let ago = if msn.is_none() {
                    k.ll_age.unwrap_or(0) as f64
                } else {
                    0.0
                };
                let reports: Vec<String> = match variant {
                    Some(me) => names
                        .iter()
                        .filter(|n| **n != me)
                        .map(|n| format!("../{n}/stream.m3u8"))
                        .collect(),
                    None => Vec::new(),
                };
                text(200, self.ll_playlist(ago, skip, k.ll_short_delta, &reports))
            }
            "init.mp4" => (200, None, 800, None, Pacing::None),
            _ => {
                let name = file.strip_suffix(".m4s").unwrap_or("");
                let Some(name) = name.strip_prefix("seg") else {
                    return text(404, "not found\n".into());
                };
                let done = self.ll_parts_done(0.0);
                let (seq, part) = match name.split_once('.') {
                    Some((m, p)) => (m.parse::<u64>().ok(), p.parse::<u64>().ok()),
                    None => (name.parse::<u64>().ok(), Some(LL_PARTS - 1)),
                };
                let (Some(seq), Some(part)) = (seq, part) else {
                    return text(404, "not found\n".into());
                };
                if seq * LL_PARTS + part >= done {
                    return text(404, "not yet\n".into());
                }
                let is_part = name.contains('.');
                let secs = if is_part { LL_PART_SEC } else { 1.0 };
                let bytes = (bandwidth as f64 * secs / 8.0) as u64;
                (200, None, bytes, None, Pacing::None)
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Pacing {
    None,
    /// The whole body after a delay.
    Delay(Duration),
    /// At this many bytes per second, in 10 chunks a second.
    Rate(u64),
    /// These bytes, padded with spaces to the announced length.
    Bytes(Vec<u8>),
    /// 50 MB of playlist-looking lines.
    Huge,
}

fn paced(data: Bytes, pacing: Pacing) -> Body {
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
    tokio::spawn(async move {
        match pacing {
            Pacing::None => {
                let _ = tx.send(Frame::data(data)).await;
            }
            Pacing::Delay(d) => {
                tokio::time::sleep(d).await;
                let _ = tx.send(Frame::data(data)).await;
            }
            Pacing::Rate(rate) => {
                let chunk = (rate / 10).max(1) as usize;
                let mut rest = data;
                while !rest.is_empty() {
                    let n = chunk.min(rest.len());
                    let part = rest.split_to(n);
                    if tx.send(Frame::data(part)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Pacing::Bytes(b) => {
                let mut v = b;
                v.resize(64, b' ');
                let _ = tx.send(Frame::data(Bytes::from(v))).await;
            }
            Pacing::Huge => {
                let line = Bytes::from("#EXTINF:1.0,\nsegment-with-a-long-name.ts\n".repeat(1024));
                let mut sent = 0usize;
                if tx
                    .send(Frame::data(Bytes::from_static(
                        b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n",
                    )))
                    .await
                    .is_err()
                {
                    return;
                }
                sent += 32;
                while sent < (50 << 20) {
                    let n = line.len().min((50 << 20) - sent);
                    if tx.send(Frame::data(line.slice(..n))).await.is_err() {
                        return;
                    }
                    sent += n;
                }
            }
        }
    });
    body.boxed()
}
