//! One connection of a viewer: TCP, TLS (rustls) with the HTTP version
//! chosen by ALPN, and hyper's HTTP/1.1 or HTTP/2 client on top — the
//! socket metered for the bytes on the wire, and for the moment the first
//! byte of a response arrived.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ClientConfig, Link, READ_BUFFER};
use crate::native::failure::Failure;

/// The HTTP versions a viewer may speak (`http` in the config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HttpVersion {
    /// HTTP/1.1 only.
    #[serde(rename = "1.1")]
    Http11,
    /// HTTP/2 only: an `https` origin that does not choose it by ALPN is a
    /// failed request.
    #[serde(rename = "2")]
    Http2,
    /// What a browser does: over TLS, HTTP/2 when the server chooses it by
    /// ALPN, else HTTP/1.1; plain HTTP is HTTP/1.1.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

impl HttpVersion {
    /// The ALPN protocols offered in the TLS handshake, in order of preference.
    pub fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            HttpVersion::Http11 => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2 => vec![b"h2".to_vec()],
            HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Auto => "auto",
        }
    }
}

/// The protocol of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

    /// Its ALPN name, as connections are counted by it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        }
    }
}

/// HTTP/2 flow control: the most a stream (and the connection) may have
/// in flight unread — the bound of what a viewer buffers. A paced link
/// uses its socket receive buffer instead, so that the server is held
/// back as the link would.
const H2_STREAM_WINDOW: u32 = 256 * 1024;

/// When the first byte of a response arrived: the first read after the
/// last write (HTTP/1.1), or the first read bringing a `HEADERS` frame
/// after the last write (HTTP/2, whose connection also reads settings,
/// acknowledgements and window updates), noted above TLS so that a TLS
/// session ticket is not taken for it.
#[derive(Debug)]
pub(super) struct Mark {
    base: Instant,
    /// Nanoseconds since `base` of the first read after the last write.
    first_read_ns: AtomicU64,
    awaiting_read: AtomicBool,
    /// HTTP/2: when the `HEADERS` of the last few streams came, by stream
    /// id (requests in flight at once are told apart by it).
    heads: Mutex<[(u32, u64); HEADS_KEPT]>,
}

/// Streams whose `HEADERS` time an HTTP/2 connection keeps: more than a
/// viewer has in flight at once.
const HEADS_KEPT: usize = 8;

impl Mark {
    fn new() -> Self {
        Mark {
            base: Instant::now(),
            first_read_ns: AtomicU64::new(0),
            awaiting_read: AtomicBool::new(false),
            heads: Mutex::new([(0, 0); HEADS_KEPT]),
        }
    }

    /// HTTP/1.1: the first read after the last write.
    pub(super) fn first_read(&self) -> Option<Instant> {
        if self.awaiting_read.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.base + Duration::from_nanos(self.first_read_ns.load(Ordering::Relaxed)))
    }

    /// HTTP/2: when the first `HEADERS` frame of `stream` was read.
    pub(super) fn head_of(&self, stream: u32) -> Option<Instant> {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        heads
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, ns)| self.base + Duration::from_nanos(*ns))
    }

    fn head(&self, stream: u32) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if heads.iter().any(|(s, _)| *s == stream) {
            // trailers, or a second HEADERS of the same stream
            return;
        }
        let ns = self.base.elapsed().as_nanos() as u64;
        // the oldest stream's slot (ids grow)
        let slot = heads
            .iter_mut()
            .min_by_key(|(s, _)| *s)
            .expect("HEADS_KEPT > 0");
        *slot = (stream, ns);
    }

    fn read(&self) {
        if self.awaiting_read.swap(false, Ordering::Relaxed) {
            self.first_read_ns
                .store(self.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

/// Finds the HTTP/2 frames in the bytes a connection reads (RFC 9113
/// §4.1: a 9-byte header — length 24 bits, type, flags, stream id —
/// then the payload), to tell a response's `HEADERS` from the rest.
#[derive(Debug, Default)]
struct FrameScan {
    head: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: usize,
}

impl FrameScan {
    /// Calls `found` with the stream id of each `HEADERS` frame whose
    /// 9-byte header `bytes` complete.
    fn headers_in(&mut self, mut bytes: &[u8], mut found: impl FnMut(u32)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                let h = &self.head;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                if h[3] == 0x1 && stream != 0 {
                    found(stream);
                }
                self.have = 0;
            }
        }
    }
}

/// An IO wrapper that counts the bytes read into `read`, and/or notes the
/// first read after a write in `mark`. Under TLS it is used twice: counting
/// on the socket, marking on the decrypted side.
struct Metered<S> {
    inner: S,
    read: Option<Arc<AtomicU64>>,
    mark: Option<Arc<Mark>>,
    /// HTTP/2: the mark waits for a `HEADERS` frame.
    frames: Option<FrameScan>,
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
            let this = &mut *self;
            if let Some(m) = &this.mark {
                match &mut this.frames {
                    Some(scan) => scan.headers_in(&buf.filled()[before..], |s| m.head(s)),
                    None => m.read(),
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
/// certificates from a PEM file), the HTTP versions of `http` by ALPN.
pub fn tls_config(
    extra: Option<&std::path::Path>,
    http: HttpVersion,
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
    cfg.alpn_protocols = http.alpn();
    Ok(Arc::new(cfg))
}

/// Where a connection goes: scheme, host, port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// hyper's side of a connection, by protocol.
pub(super) enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    pub async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Sender::H1(s) => s.ready().await,
            Sender::H2(s) => s.ready().await,
        }
    }

    pub async fn send(
        &mut self,
        req: http::Request<Empty<Bytes>>,
    ) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
    }
}

pub(super) struct Conn {
    pub origin: Origin,
    pub protocol: Protocol,
    pub sender: Sender,
    pub mark: Arc<Mark>,
    /// HTTP/2: the id of the next stream opened (odd, growing; requests
    /// take them in the order they are handed to hyper).
    pub next_stream: Arc<AtomicU32>,
}

impl Conn {
    /// The same HTTP/2 connection, for another request at once; `None`
    /// for HTTP/1.1 (one request at a time) or a closed connection.
    pub fn share(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H2(s) if !s.is_closed() => Some(Conn {
                origin: self.origin.clone(),
                protocol: self.protocol,
                sender: Sender::H2(s.clone()),
                mark: Arc::clone(&self.mark),
                next_stream: Arc::clone(&self.next_stream),
            }),
            _ => None,
        }
    }
}

/// Opens a connection to `origin`: TCP (on `link`'s receive buffer, after
/// its round trip), TLS for `https`, HTTP/2 when ALPN chose it. Bytes read
/// are added to `wire`.
pub(super) async fn connect(
    cfg: &ClientConfig,
    link: &Link,
    wire: &Arc<AtomicU64>,
    origin: &Origin,
) -> Result<Conn, Failure> {
    if !origin.tls && cfg.http == HttpVersion::Http2 {
        // HTTP/2 is chosen by TLS; cleartext HTTP/2 (h2c) is not spoken
        return Err(Failure::NoHttp2);
    }
    let ip = match (&cfg.resolve, &cfg.resolve_host) {
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
    if !link.rtt.is_zero() {
        tokio::time::sleep(link.rtt).await;
    }
    for addr in addrs {
        let connect = async {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            if let Some(size) = link.receive_buffer() {
                socket.set_recv_buffer_size(size)?;
            }
            socket.connect(addr).await
        };
        match tokio::time::timeout(cfg.timeout, connect).await {
            Ok(Ok(tcp)) => return over(cfg, link, wire, origin, tcp).await,
            Ok(Err(e)) => last = io_failure(&e),
            Err(_) => last = Failure::Timeout,
        }
    }
    Err(last)
}

/// TLS and HTTP over a connected socket.
async fn over(
    cfg: &ClientConfig,
    link: &Link,
    wire: &Arc<AtomicU64>,
    origin: &Origin,
    tcp: TcpStream,
) -> Result<Conn, Failure> {
    let _ = tcp.set_nodelay(true);
    let metered = Metered {
        inner: tcp,
        read: Some(Arc::clone(wire)),
        mark: None,
        frames: None,
    };
    let (stream, protocol) = if origin.tls {
        let tls_cfg = cfg.tls.clone().ok_or(Failure::Unsupported)?;
        let name =
            rustls_pki_types::ServerName::try_from(origin.host.trim_matches(['[', ']']).to_owned())
                .map_err(|_| Failure::Tls)?;
        let tls = tokio_rustls::TlsConnector::from(tls_cfg);
        let s = match tokio::time::timeout(cfg.timeout, tls.connect(name, metered)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => return Err(Failure::Tls),
            Err(_) => return Err(Failure::Timeout),
        };
        let protocol = match s.get_ref().1.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ if cfg.http == HttpVersion::Http2 => return Err(Failure::NoHttp2),
            _ => Protocol::Http1,
        };
        (Stream::Tls(Box::new(s)), protocol)
    } else {
        (Stream::Plain(metered), Protocol::Http1)
    };
    let mark = Arc::new(Mark::new());
    let io = TokioIo::new(Metered {
        inner: stream,
        read: None,
        mark: Some(Arc::clone(&mark)),
        frames: (protocol == Protocol::Http2).then(FrameScan::default),
    });
    let sender = match protocol {
        Protocol::Http1 => {
            let (sender, conn) = http1::Builder::new()
                .read_buf_exact_size(Some(READ_BUFFER))
                .handshake::<_, Empty<Bytes>>(io)
                .await
                .map_err(|_| Failure::Broken)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(sender)
        }
        Protocol::Http2 => {
            let window = link.receive_buffer().unwrap_or(H2_STREAM_WINDOW);
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(window)
                .initial_connection_window_size(window * 2)
                .max_header_list_size(READ_BUFFER as u32)
                .max_send_buf_size(64 * 1024)
                .handshake::<_, Empty<Bytes>>(io)
                .await
                .map_err(|_| Failure::Broken)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H2(sender)
        }
    };
    Ok(Conn {
        origin: origin.clone(),
        protocol,
        sender,
        mark,
        next_stream: Arc::new(AtomicU32::new(1)),
    })
}

pub(super) fn io_failure(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut => Failure::Timeout,
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable => Failure::Connect,
        _ => Failure::Broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frame_scan_finds_a_streams_headers_across_reads_and_nothing_else() {
        let mut bytes = frame(0x4, 0, &[0; 12]); // SETTINGS
        bytes.extend(frame(0x4, 0, &[])); // its ACK
        bytes.extend(frame(0x8, 0, &[0, 0, 1, 0])); // WINDOW_UPDATE
                                                    // a payload that looks like a HEADERS frame header is skipped
        bytes.extend(frame(0x0, 1, &frame(0x1, 3, &[])));
        let quiet = bytes.len();
        bytes.extend(frame(0x1, 3, &[0x88]));
        for cut in 1..bytes.len() {
            let mut s = FrameScan::default();
            let mut seen = Vec::new();
            for (i, chunk) in [&bytes[..cut], &bytes[cut..]].iter().enumerate() {
                s.headers_in(chunk, |stream| seen.push((i, stream)));
            }
            // found in the read that brings the HEADERS frame's last header byte
            let want = usize::from(cut < quiet + 9);
            assert_eq!(seen, vec![(want, 3)], "cut at {cut}");
        }
        let mut s = FrameScan::default();
        let mut seen = 0;
        s.headers_in(&bytes[..quiet], |_| seen += 1);
        assert_eq!(seen, 0);
    }

    #[test]
    fn the_heads_of_the_last_streams_are_kept_by_id() {
        let m = Mark::new();
        for stream in (1..40).step_by(2) {
            m.head(stream);
        }
        assert!(m.head_of(39).is_some() && m.head_of(25).is_some());
        assert_eq!(m.head_of(23), None, "older than the last {HEADS_KEPT}");
        let first = m.head_of(39).unwrap();
        m.head(39);
        assert_eq!(m.head_of(39), Some(first), "trailers do not move it");
    }

    #[test]
    fn alpn_offers_what_http_allows() {
        assert_eq!(
            HttpVersion::Auto.alpn(),
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(HttpVersion::Http2.alpn(), [b"h2".to_vec()]);
        assert_eq!(HttpVersion::Http11.alpn(), [b"http/1.1".to_vec()]);
        let v: HttpVersion = serde_json::from_str("\"1.1\"").unwrap();
        assert_eq!(v, HttpVersion::Http11);
        assert!(serde_json::from_str::<HttpVersion>("\"3\"").is_err());
    }
}
