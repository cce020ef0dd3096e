//! A hostile HTTP server for tests, written at the byte level so that it
//! can do what no well-behaved server library would: drip a body a byte at
//! a time, never end a body or its headers, lie about the length, redirect
//! in circles, serve huge or malformed playlists. Each path answers with a
//! scripted [`Reply`]; every request it reads is logged. It listens on
//! 127.0.0.1, a thread a connection, and every thread ends when the server
//! is dropped (or its client goes away).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest request head the server reads; a longer one is logged as
/// such and the connection closed.
pub const MAX_HEAD: usize = 256 * 1024;

/// How a path answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A whole response with a true `Content-Length`; the connection is
    /// kept alive.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A 200 head without a length (the body ends when the connection
    /// closes), then `body` a `chunk` of bytes every `every`.
    Drip {
        body: Vec<u8>,
        chunk: usize,
        every: Duration,
    },
    /// A 200 head without a length, then `chunk` every `every`, forever.
    Endless { chunk: Vec<u8>, every: Duration },
    /// A status line, then one more header line every `every`, forever:
    /// the head never ends.
    EndlessHead { every: Duration },
    /// A 200 head that claims `Content-Length: claimed`, `body` (shorter),
    /// then nothing, the connection held open.
    Lying { claimed: u64, body: Vec<u8> },
    /// A 200 head that claims `Content-Length: claimed`, `body` (shorter),
    /// then the connection closed: a response cut short.
    Cut { claimed: u64, body: Vec<u8> },
}

impl Reply {
    /// A 200 with a playlist body.
    pub fn playlist(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.apple.mpegurl".into(),
            )],
            body: body.into(),
        }
    }

    /// A 200 with `n` bytes of segment data.
    pub fn segment(n: usize) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), "video/mp2t".into())],
            body: vec![0x47; n],
        }
    }

    /// A redirect (302) to `location`.
    pub fn redirect(location: &str) -> Reply {
        Reply::Full {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// An empty response with `status`.
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// One request the server read.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Since the server started.
    pub at: Duration,
    /// The path, without the query.
    pub path: String,
    /// The `User-Agent` header.
    pub user_agent: String,
}

struct Inner {
    /// Exact paths, and prefixes (keys ending in `*`).
    routes: Mutex<BTreeMap<String, Reply>>,
    log: Mutex<Vec<Hit>>,
    /// Request heads longer than [`MAX_HEAD`] that were cut off.
    too_long: Mutex<u64>,
    stop: AtomicBool,
    start: Instant,
}

/// A running hostile server; stops (and its threads end) when dropped.
pub struct Hostile {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hostile {
    /// Starts an empty server (every path answers 404 until routed).
    pub fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("its address");
        let inner = Arc::new(Inner {
            routes: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            too_long: Mutex::new(0),
            stop: AtomicBool::new(false),
            start: Instant::now(),
        });
        let i = Arc::clone(&inner);
        std::thread::spawn(move || {
            while !i.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let i = Arc::clone(&i);
                        std::thread::spawn(move || serve(tcp, &i));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile { addr, inner }
    }

    /// Answers `path` (exact, or a prefix when it ends in `*`) with `reply`.
    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        lock(&self.inner.routes).insert(path.to_owned(), reply);
        self
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request read so far.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.inner.log).clone()
    }

    /// Requests read for `path`.
    pub fn hits_of(&self, path: &str) -> usize {
        lock(&self.inner.log)
            .iter()
            .filter(|h| h.path == path)
            .count()
    }

    /// Request heads cut off at [`MAX_HEAD`].
    pub fn heads_too_long(&self) -> u64 {
        *lock(&self.inner.too_long)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}

impl Inner {
    fn reply(&self, path: &str) -> Reply {
        let routes = lock(&self.routes);
        if let Some(r) = routes.get(path) {
            return r.clone();
        }
        routes
            .iter()
            .filter(|(k, _)| k.ends_with('*') && path.starts_with(k.trim_end_matches('*')))
            .max_by_key(|(k, _)| k.len())
            .map_or_else(|| Reply::status(404), |(_, r)| r.clone())
    }
}

/// Reads one request head; `None` when the client went away, the server
/// stops, or the head is too long.
fn read_head(tcp: &mut TcpStream, buf: &mut Vec<u8>, inner: &Inner) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf[..end].to_vec();
            buf.drain(..end + 4);
            return Some(head);
        }
        if buf.len() > MAX_HEAD {
            *lock(&inner.too_long) += 1;
            return None;
        }
        if inner.stop.load(Ordering::Relaxed) {
            return None;
        }
        match tcp.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if waits(&e) => {}
            Err(_) => return None,
        }
    }
}

/// Whether `e` only says that a read or write on a socket with a timeout
/// did not get through yet.
fn waits(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Writes all of `bytes`, giving up when the client is gone or the server
/// stops.
fn send(tcp: &mut TcpStream, bytes: &[u8], inner: &Inner) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        if inner.stop.load(Ordering::Relaxed) {
            return false;
        }
        match tcp.write(&bytes[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if waits(&e) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Sleeps `d` in small steps; false when the server stops meanwhile.
fn pause(d: Duration, inner: &Inner) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if inner.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    true
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn serve(mut tcp: TcpStream, inner: &Inner) {
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = tcp.set_write_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    while let Some(head) = read_head(&mut tcp, &mut buf, inner) {
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.split("\r\n");
        let target = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let user_agent = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let path = target.split('?').next().unwrap_or("/").to_owned();
        lock(&inner.log).push(Hit {
            at: inner.start.elapsed(),
            path: path.clone(),
            user_agent,
        });
        let keep_alive = match inner.reply(&path) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                for (k, v) in &headers {
                    out += &format!("{k}: {v}\r\n");
                }
                out += &format!("Content-Length: {}\r\n\r\n", body.len());
                send(&mut tcp, out.as_bytes(), inner) && send(&mut tcp, &body, inner)
            }
            Reply::Drip { body, chunk, every } => {
                if send(
                    &mut tcp,
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                    inner,
                ) {
                    for piece in body.chunks(chunk.max(1)) {
                        if !pause(every, inner) || !send(&mut tcp, piece, inner) {
                            break;
                        }
                    }
                }
                false
            }
            Reply::Endless { chunk, every } => {
                if send(
                    &mut tcp,
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                    inner,
                ) {
                    while pause(every, inner) && send(&mut tcp, &chunk, inner) {}
                }
                false
            }
            Reply::EndlessHead { every } => {
                if send(&mut tcp, b"HTTP/1.1 200 OK\r\n", inner) {
                    let mut n = 0u64;
                    while pause(every, inner)
                        && send(&mut tcp, format!("X-Pad-{n}: x\r\n").as_bytes(), inner)
                    {
                        n += 1;
                    }
                }
                false
            }
            Reply::Cut { claimed, body } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\n\r\n");
                let _ = send(&mut tcp, head.as_bytes(), inner) && send(&mut tcp, &body, inner);
                false
            }
            Reply::Lying { claimed, body } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\n\r\n");
                if send(&mut tcp, head.as_bytes(), inner) && send(&mut tcp, &body, inner) {
                    // hold the connection open, sending nothing more
                    while pause(Duration::from_millis(200), inner) {
                        let mut probe = [0u8; 1024];
                        if matches!(tcp.read(&mut probe), Ok(0)) {
                            break;
                        }
                    }
                }
                false
            }
        };
        if !keep_alive {
            break;
        }
    }
}
