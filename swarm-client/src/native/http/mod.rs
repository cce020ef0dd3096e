//! The native viewer's HTTP: one keep-alive connection per viewer
//! (hyper's client connection API) — HTTP/1.1, or HTTP/2 over TLS when ALPN
//! chooses it (`http`) — reopened when the server closes it, with every
//! request timed (connect including the TLS handshake, TTFB, download) and
//! its bytes counted as they arrive.

mod conn;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, HOST, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use url::Url;

use super::failure::{Failure, MAX_REQUEST_TARGET};
pub use conn::{tls_config, HttpVersion, Protocol};
use conn::{Conn, Origin};

/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// The connection's read buffer: response heads must fit in it.
pub const READ_BUFFER: usize = 16 * 1024;

/// How viewers talk to the origin (the same for every viewer of a swarm).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Connect to this address for the stream URL's host (the `Host` header
    /// keeps the URL's host).
    pub resolve: Option<IpAddr>,
    /// The host `resolve` applies to.
    pub resolve_host: Option<String>,
    /// Headers sent with every request (after `Host` and `User-Agent`).
    pub headers: HeaderMap,
    /// Connect, response-head and between-reads timeout.
    pub timeout: Duration,
    /// TLS settings for `https` URLs (`None`: plain HTTP only); their
    /// ALPN offers the versions of `http`.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// The HTTP versions spoken.
    pub http: HttpVersion,
}

/// A response: status, timing and (for playlists) the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    /// The `Age` header: how long a cache held the response.
    pub age: Option<Duration>,
    /// When a new connection was opened for this request: how long it took.
    pub connect: Option<Duration>,
    /// When the request was issued (before any connect).
    pub started: Instant,
    pub ttfb: Duration,
    pub download: Duration,
    pub body_bytes: u64,
    /// Bytes read from the socket for this response, head included.
    pub wire_bytes: u64,
    /// The body, when asked to keep it (up to the limit).
    pub body: Vec<u8>,
    /// The body was longer than the limit (reading stopped there).
    pub truncated: bool,
}

/// A viewer's simulated network link (its network class): reads paced to
/// a rate, with a small socket receive buffer so that the kernel's window
/// pushes back on the server as a slow link would; a round-trip time before
/// each new connection and each request; a share of responses cut.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub bytes_per_sec: Option<u64>,
    pub rtt: Duration,
    pub drop: f64,
}

impl Link {
    /// The socket receive buffer of a paced link: about 100 ms of the rate,
    /// 4–256 KiB (the kernel doubles what it is given).
    fn receive_buffer(&self) -> Option<u32> {
        self.bytes_per_sec
            .map(|b| (b / 10).clamp(4 * 1024, 256 * 1024) as u32)
    }
}

/// One viewer's HTTP client: at most one connection at a time.
pub struct Client {
    cfg: Arc<ClientConfig>,
    user_agent: HeaderValue,
    /// The `Host` header of the last request: the URL's host and port as
    /// written, and its value.
    host: Option<(String, HeaderValue)>,
    conn: Option<Conn>,
    /// Bytes read from every socket this client opened (TLS records included).
    wire: Arc<AtomicU64>,
    link: Link,
    /// Picks the responses `link.drop` cuts.
    rng: fastrand::Rng,
    /// Headers of the next requests only (CMCD), after the swarm's.
    extra: Vec<(&'static str, HeaderValue)>,
    /// Connections opened and not yet taken by [`Client::take_opened`], by
    /// protocol (as [`Protocol::ALL`]).
    opened: [u64; 2],
}

/// Called with the byte count of each body chunk as it arrives.
pub trait OnBytes: FnMut(u64) {}
impl<F: FnMut(u64)> OnBytes for F {}

impl Client {
    pub fn new(cfg: Arc<ClientConfig>, user_agent: &str) -> Client {
        Client {
            cfg,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("hls-swarm")),
            host: None,
            conn: None,
            wire: Arc::new(AtomicU64::new(0)),
            link: Link::default(),
            rng: fastrand::Rng::with_seed(0),
            extra: Vec::new(),
            opened: [0; 2],
        }
    }

    /// The connections opened since the last call, by protocol (as
    /// [`Protocol::ALL`]).
    pub fn take_opened(&mut self) -> [u64; 2] {
        std::mem::take(&mut self.opened)
    }

    /// Headers for the next requests (until set again), e.g. CMCD's; a
    /// value that cannot be a header is left out.
    pub fn set_extra_headers(&mut self, headers: &[(&'static str, String)]) {
        self.extra.clear();
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                self.extra.push((k, v));
            }
        }
    }

    /// The same client on a simulated `link`; `seed` picks the cut responses.
    pub fn with_link(mut self, link: Link, seed: u64) -> Client {
        self.link = link;
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// Bytes read off the wire so far, over all connections (heads, bodies,
    /// TLS records), including responses that failed or were cut short.
    pub fn wire_bytes(&self) -> u64 {
        self.wire.load(Ordering::Relaxed)
    }

    /// Another client of the same viewer, for a request beside this
    /// one's: the same settings, link and byte count, no connection yet.
    pub fn sibling(&mut self) -> Client {
        Client {
            cfg: Arc::clone(&self.cfg),
            user_agent: self.user_agent.clone(),
            host: None,
            conn: None,
            wire: Arc::clone(&self.wire),
            link: self.link.clone(),
            rng: fastrand::Rng::with_seed(self.rng.u64(..)),
            extra: self.extra.clone(),
            opened: [0; 2],
        }
    }

    /// Sends this client's next requests on `other`'s HTTP/2 connection
    /// (streams beside its own, as a browser does) when it has one open;
    /// else this client keeps its own connection (over HTTP/1.1, a second
    /// one: one request at a time on each).
    pub fn share_connection_of(&mut self, other: &Client) {
        if let Some(c) = other.conn.as_ref().and_then(Conn::share) {
            self.conn = Some(c);
        }
    }

    /// Closes the connection (the next request opens a new one).
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// A response was given up before its end: an HTTP/1.1 connection
    /// cannot carry another request, so it is closed; on HTTP/2 dropping the
    /// response reset its stream, and the connection goes on.
    pub fn close_if_busy(&mut self) {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.protocol == Protocol::Http1)
        {
            self.conn = None;
        }
    }

    /// The GET request for `url` with the swarm's headers: over HTTP/1.1
    /// its path and a `Host` header, over HTTP/2 the whole URL (hyper sends
    /// its scheme and authority as `:scheme` and `:authority`).
    fn request(
        &mut self,
        url: &Url,
        protocol: Protocol,
    ) -> Result<http::Request<Empty<Bytes>>, Failure> {
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let absolute;
        let uri = match protocol {
            Protocol::Http1 => target,
            Protocol::Http2 => {
                absolute = format!("{}://{host}{target}", url.scheme());
                &absolute
            }
        };
        if uri.len() >= MAX_REQUEST_TARGET {
            return Err(Failure::UrlTooLong);
        }
        let mut req = http::Request::get(uri)
            .body(Empty::<Bytes>::new())
            .map_err(|_| Failure::Broken)?;
        let h = req.headers_mut();
        h.reserve(2 + self.cfg.headers.len() + self.extra.len());
        if protocol == Protocol::Http1 {
            if self.host.as_ref().is_none_or(|(h, _)| h != host) {
                let value = HeaderValue::from_str(host).map_err(|_| Failure::Broken)?;
                self.host = Some((host.to_owned(), value));
            }
            h.insert(HOST, self.host.as_ref().expect("set above").1.clone());
        }
        h.insert(USER_AGENT, self.user_agent.clone());
        for (k, v) in &self.cfg.headers {
            h.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.extra {
            h.insert(*k, v.clone());
        }
        Ok(req)
    }

    /// GETs `url`. Keeps up to `keep` bytes of the body; counts every chunk
    /// with `on_bytes` as it arrives. The whole request — connect, head
    /// and body — ends within `deadline`, however the server sends it (a
    /// body dripped a byte at a time never lets the idle timeout fire):
    /// past it, a [`Failure::Timeout`].
    pub async fn get(
        &mut self,
        url: &Url,
        keep: usize,
        deadline: Duration,
        on_bytes: &mut impl OnBytes,
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(deadline, self.get_within(url, keep, on_bytes)).await {
            Ok(r) => r,
            Err(_) => {
                // whatever was under way on the connection is abandoned
                self.conn = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn get_within(
        &mut self,
        url: &Url,
        keep: usize,
        on_bytes: &mut impl OnBytes,
    ) -> Result<Response, Failure> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(Failure::Unsupported),
        };
        let host = url.host_str().ok_or(Failure::Broken)?.to_owned();
        let origin = Origin {
            tls,
            port: url.port_or_known_default().unwrap_or(80),
            host,
        };
        let started = Instant::now();
        let read_before = self.wire_bytes();
        let mut connect = None;
        let mut reused = self
            .conn
            .as_ref()
            .is_some_and(|c| c.origin == origin && !c.sender.is_closed());
        let timeout = self.cfg.timeout;
        let (resp, sent, head) = loop {
            if !reused {
                self.conn = None;
                let t = Instant::now();
                let c = conn::connect(&self.cfg, &self.link, &self.wire, &origin).await?;
                self.opened[c.protocol as usize] += 1;
                self.conn = Some(c);
                connect = Some(t.elapsed());
            }
            let protocol = self.conn.as_ref().expect("connected").protocol;
            let req = self.request(url, protocol)?;
            let conn = self.conn.as_mut().expect("connected");
            let sent = Instant::now();
            // the request's round trip on a simulated link, in its TTFB
            if !self.link.rtt.is_zero() {
                tokio::time::sleep(self.link.rtt).await;
            }
            let mut stream = 0;
            let result = match tokio::time::timeout(timeout, conn.sender.ready()).await {
                Ok(Ok(())) => {
                    // handed to hyper at once: the connection's next stream
                    stream = conn.next_stream.fetch_add(2, Ordering::Relaxed);
                    tokio::time::timeout(timeout, conn.sender.send(req))
                        .await
                        .map(|r| r.map_err(|_| ()))
                }
                Ok(Err(_)) => Ok(Err(())),
                Err(e) => Err(e),
            };
            match result {
                Ok(Ok(r)) => {
                    let head = match protocol {
                        Protocol::Http1 => conn.mark.first_read(),
                        Protocol::Http2 => conn.mark.head_of(stream),
                    };
                    break (r, sent, head);
                }
                // a kept-alive connection the server closed meanwhile: open
                // a new one and send again, once, as a player does
                Ok(Err(())) if reused && self.wire_bytes() == read_before => {
                    reused = false;
                }
                Ok(Err(())) => {
                    self.conn = None;
                    return Err(Failure::Broken);
                }
                Err(_) => {
                    self.conn = None;
                    return Err(Failure::Timeout);
                }
            }
        };
        let first_byte = head.unwrap_or_else(Instant::now).max(sent);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let age = resp
            .headers()
            .get(http::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = resp.into_body();
        let mut kept = Vec::new();
        let mut body_bytes = 0u64;
        let mut truncated = false;
        // a simulated link cuts this response after its first chunk
        let cut = self.link.drop > 0.0 && self.rng.f64() < self.link.drop;
        let paced_from = Instant::now();
        // one timer for the whole body, moved on only when it fires (a timer
        // per chunk costs more than the chunk)
        let mut last_chunk = Instant::now();
        let idle = tokio::time::sleep(timeout);
        tokio::pin!(idle);
        loop {
            let next = tokio::select! {
                biased;
                f = body.frame() => Ok(f),
                () = &mut idle => Err(()),
            };
            let next = match next {
                Err(()) if last_chunk.elapsed() < timeout => {
                    idle.as_mut().reset((last_chunk + timeout).into());
                    continue;
                }
                Ok(f) => {
                    last_chunk = Instant::now();
                    Ok(f)
                }
                Err(()) => Err(()),
            };
            match next {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        body_bytes += data.len() as u64;
                        on_bytes(data.len() as u64);
                        if cut {
                            self.conn = None;
                            return Err(Failure::Broken);
                        }
                        if let Some(rate) = self.link.bytes_per_sec {
                            // read no faster than the link: the next read
                            // waits until these bytes would have arrived
                            let due = paced_from
                                + Duration::from_secs_f64(body_bytes as f64 / rate as f64);
                            if due > Instant::now() {
                                tokio::time::sleep_until(due.into()).await;
                            }
                            last_chunk = Instant::now();
                        }
                        if kept.len() < keep {
                            let room = keep - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                            if data.len() > room {
                                truncated = true;
                                break;
                            }
                        } else if keep > 0 {
                            truncated = true;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    self.conn = None;
                    return Err(Failure::Broken);
                }
                Err(_) => {
                    self.conn = None;
                    return Err(Failure::Timeout);
                }
            }
        }
        let end = Instant::now();
        let wire_bytes = self.wire_bytes() - read_before;
        if truncated {
            // the rest of the body is unread: this connection cannot be reused
            self.conn = None;
        }
        Ok(Response {
            status,
            location,
            age,
            connect,
            started,
            ttfb: first_byte - sent,
            download: end.saturating_duration_since(first_byte),
            body_bytes,
            wire_bytes,
            body: kept,
            truncated,
        })
    }
}

/// Builds the headers every request of a swarm carries.
pub fn headers(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header name `{k}`"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
        h.append(name, value);
    }
    Ok(h)
}
