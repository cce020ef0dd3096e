//! The native viewer's HTTP: one HTTP/1.1 keep-alive connection per viewer
//! (hyper's client connection API), plain or TLS (rustls), reopened when the
//! server closes it, with every request timed (connect including the TLS
//! handshake, TTFB, download) and its bytes counted as they arrive.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, HOST, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use url::Url;

use super::failure::{Failure, MAX_REQUEST_TARGET};

/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// The connection's read buffer: response heads must fit in it.
pub const READ_BUFFER: usize = 16 * 1024;

/// When the first byte of a response arrived: the first read after the
/// last write, noted above TLS (so a TLS session ticket is not taken for it).
#[derive(Debug)]
struct Mark {
    base: Instant,
    /// Nanoseconds since `base` of the first read after the last write.
    first_read_ns: AtomicU64,
    awaiting_read: AtomicBool,
}

impl Mark {
    fn new() -> Self {
        Mark {
            base: Instant::now(),
            first_read_ns: AtomicU64::new(0),
            awaiting_read: AtomicBool::new(false),
        }
    }

    fn first_read(&self) -> Option<Instant> {
        if self.awaiting_read.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.base + Duration::from_nanos(self.first_read_ns.load(Ordering::Relaxed)))
    }
}

/// An IO wrapper that counts the bytes read into `read`, and/or notes the
/// first read after a write in `mark`. Under TLS it is used twice: counting
/// on the socket, marking on the decrypted side.
struct Metered<S> {
    inner: S,
    read: Option<Arc<AtomicU64>>,
    mark: Option<Arc<Mark>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            if let Some(read) = &self.read {
                read.fetch_add(n as u64, Ordering::Relaxed);
            }
            if let Some(m) = &self.mark {
                if m.awaiting_read.swap(false, Ordering::Relaxed) {
                    m.first_read_ns
                        .store(m.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Some(m) = &self.mark {
            if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                m.awaiting_read.store(true, Ordering::Relaxed);
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The socket under hyper: metered TCP, or TLS over metered TCP (so the
/// meter sees the bytes on the wire).
enum Stream {
    Plain(Metered<TcpStream>),
    Tls(Box<tokio_rustls::client::TlsStream<Metered<TcpStream>>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS settings of a swarm: the system's trust store (and `extra` CA
/// certificates from a PEM file), HTTP/1.1 by ALPN.
pub fn tls_config(
    extra: Option<&std::path::Path>,
) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Where a connection goes: scheme, host, port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    tls: bool,
    host: String,
    port: u16,
}

struct Conn {
    origin: Origin,
    sender: http1::SendRequest<Empty<Bytes>>,
    mark: Arc<Mark>,
}

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
    /// TLS settings for `https` URLs (`None`: plain HTTP only).
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
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
}

/// Called with the byte count of each body chunk as it arrives.
pub trait OnBytes: FnMut(u64) {}
impl<F: FnMut(u64)> OnBytes for F {}

fn io_failure(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut => Failure::Timeout,
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable => Failure::Connect,
        _ => Failure::Broken,
    }
}

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
        }
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

    /// Closes the connection (the next request opens a new one).
    pub fn close(&mut self) {
        self.conn = None;
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, Failure> {
        let ip = match (&self.cfg.resolve, &self.cfg.resolve_host) {
            (Some(ip), Some(h)) if *h == origin.host => Some(*ip),
            _ => origin.host.trim_matches(['[', ']']).parse::<IpAddr>().ok(),
        };
        let addrs: Vec<SocketAddr> = match ip {
            Some(ip) => vec![SocketAddr::new(ip, origin.port)],
            None => tokio::net::lookup_host((origin.host.as_str(), origin.port))
                .await
                .map_err(|_| Failure::Connect)?
                .collect(),
        };
        let mut last = Failure::Connect;
        // the handshake's round trip on a simulated link
        if !self.link.rtt.is_zero() {
            tokio::time::sleep(self.link.rtt).await;
        }
        for addr in addrs {
            let connect = async {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                if let Some(size) = self.link.receive_buffer() {
                    socket.set_recv_buffer_size(size)?;
                }
                socket.connect(addr).await
            };
            match tokio::time::timeout(self.cfg.timeout, connect).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    let mark = Arc::new(Mark::new());
                    let metered = Metered {
                        inner: tcp,
                        read: Some(Arc::clone(&self.wire)),
                        mark: None,
                    };
                    let stream = if origin.tls {
                        let cfg = self.cfg.tls.clone().ok_or(Failure::Unsupported)?;
                        let name = rustls_pki_types::ServerName::try_from(
                            origin.host.trim_matches(['[', ']']).to_owned(),
                        )
                        .map_err(|_| Failure::Tls)?;
                        let tls = tokio_rustls::TlsConnector::from(cfg);
                        match tokio::time::timeout(self.cfg.timeout, tls.connect(name, metered))
                            .await
                        {
                            Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                            Ok(Err(_)) => return Err(Failure::Tls),
                            Err(_) => return Err(Failure::Timeout),
                        }
                    } else {
                        Stream::Plain(metered)
                    };
                    let io = TokioIo::new(Metered {
                        inner: stream,
                        read: None,
                        mark: Some(Arc::clone(&mark)),
                    });
                    let (sender, conn) = http1::Builder::new()
                        .read_buf_exact_size(Some(READ_BUFFER))
                        .handshake::<_, Empty<Bytes>>(io)
                        .await
                        .map_err(|_| Failure::Broken)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    return Ok(Conn {
                        origin: origin.clone(),
                        sender,
                        mark,
                    });
                }
                Ok(Err(e)) => last = io_failure(&e),
                Err(_) => last = Failure::Timeout,
            }
        }
        Err(last)
    }

    /// The GET request for `url` with the swarm's headers.
    fn request(&mut self, url: &Url) -> Result<http::Request<Empty<Bytes>>, Failure> {
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        if target.len() >= MAX_REQUEST_TARGET {
            return Err(Failure::UrlTooLong);
        }
        let mut req = http::Request::get(target)
            .body(Empty::<Bytes>::new())
            .map_err(|_| Failure::Broken)?;
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        if self.host.as_ref().is_none_or(|(h, _)| h != host) {
            let value = HeaderValue::from_str(host).map_err(|_| Failure::Broken)?;
            self.host = Some((host.to_owned(), value));
        }
        let h = req.headers_mut();
        h.reserve(2 + self.cfg.headers.len());
        h.insert(HOST, self.host.as_ref().expect("set above").1.clone());
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
        let (resp, sent, mark) = loop {
            if !reused {
                self.conn = None;
                let t = Instant::now();
                self.conn = Some(self.connect(&origin).await?);
                connect = Some(t.elapsed());
            }
            let req = self.request(url)?;
            let conn = self.conn.as_mut().expect("connected");
            let sent = Instant::now();
            // the request's round trip on a simulated link, in its TTFB
            if !self.link.rtt.is_zero() {
                tokio::time::sleep(self.link.rtt).await;
            }
            let result = match tokio::time::timeout(timeout, conn.sender.ready()).await {
                Ok(Ok(())) => tokio::time::timeout(timeout, conn.sender.send_request(req))
                    .await
                    .map(|r| r.map_err(|_| ())),
                Ok(Err(_)) => Ok(Err(())),
                Err(e) => Err(e),
            };
            match result {
                Ok(Ok(r)) => break (r, sent, Arc::clone(&conn.mark)),
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
        let first_byte = mark.first_read().unwrap_or_else(Instant::now).max(sent);
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
