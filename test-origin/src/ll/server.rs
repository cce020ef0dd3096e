//! The LL-HLS server's IO: the [`watch`](super::watch)er reads the
//! encoder's files as they grow into the [`state`](super::state), and an
//! HTTP/1.1 server (hyper, on a Unix socket, nginx in front) answers from it. A blocking reload
//! waits on a change of the state, at most three target durations (then
//! 503); a hinted part is streamed as the encoder writes it. Every wait has
//! a deadline, and the requests held at once are bounded.

use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{channel::Channel, combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use super::settings::{Kind, Settings};
use super::state::{Block, Directives, Rendition, Timing};

/// Requests held at once (blocking reloads and hinted parts); one more is
/// answered 503 at once. Each costs a task and its connection's buffers.
pub const MAX_HELD: usize = 20_000;
/// The most bytes read of a segment file at once.
const MAX_READ: u64 = 64 << 20;

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// What the server shares between the watcher and the requests.
pub struct Shared {
    pub(super) settings: Settings,
    pub(super) timing: Timing,
    pub(super) dir: PathBuf,
    pub(super) renditions: Mutex<Vec<Rendition>>,
    /// Each rendition's playlists as last rendered (full, delta; plain,
    /// gzipped), with the state version they were rendered at; taken
    /// while holding `renditions`.
    rendered: Mutex<Vec<Rendered>>,
    /// MSN = the encoder's segment number + this: from the clock at start,
    /// so that a restarted origin never reuses a number a cache holds, and
    /// moved on when the encoder starts again (its numbers start again).
    pub(super) base: std::sync::atomic::AtomicU64,
    /// Bumped when a part or segment is added: what held requests wait on.
    pub(super) changed: watch::Sender<u64>,
    /// Bumped when a rendition gains a part: what the requests held for
    /// that rendition wait on (an audio part wakes no video viewer).
    pub(super) woken: Vec<watch::Sender<u64>>,
    /// Bumped when a segment file grows: what streamed parts wait on.
    pub(super) grew: watch::Sender<u64>,
    held: AtomicUsize,
}

/// A rendition's playlists as last rendered: (state version, bytes) of the
/// full one and the delta update, plain and gzipped.
type Rendered = [Option<(u64, Bytes)>; 4];

/// One held request; counted while it lives.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    pub fn new(settings: Settings, dir: PathBuf) -> Arc<Shared> {
        let timing = Timing {
            target_duration: settings.segment_duration,
            part_target: settings.part_target,
            list_size: settings.list_size,
        };
        let renditions = settings
            .renditions
            .iter()
            .map(|r| Rendition::new(&r.name))
            .collect();
        let settings_duration = settings.segment_duration.max(1);
        let count = settings.renditions.len();
        Arc::new(Shared {
            settings,
            timing,
            dir,
            rendered: Mutex::new(vec![Default::default(); count]),
            renditions: Mutex::new(renditions),
            base: std::sync::atomic::AtomicU64::new(now_ms() / 1000 / u64::from(settings_duration)),
            changed: watch::channel(0).0,
            woken: (0..count).map(|_| watch::channel(0).0).collect(),
            grew: watch::channel(0).0,
            held: AtomicUsize::new(0),
        })
    }

    fn hold(&self) -> Option<Held<'_>> {
        if self.held.fetch_add(1, Ordering::Relaxed) >= MAX_HELD {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Held(&self.held))
    }

    /// Requests held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn hold_limit(&self) -> Duration {
        Duration::from_secs_f64(self.timing.hold_limit_secs())
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.settings.renditions.iter().position(|r| r.name == name)
    }

    /// The encoder's number of segment `m`: that of its file when the
    /// segment is known, else what the current base makes of it (the
    /// hinted part of a segment not begun).
    fn file_number(&self, i: usize, m: u64) -> Option<u64> {
        let st = self.renditions.lock().expect("state");
        match st[i].segment(m) {
            Some(s) => Some(s.file),
            None => m.checked_sub(self.base.load(Ordering::Relaxed)),
        }
    }

    pub(super) fn file(&self, stream: usize, n: u64, tmp: bool) -> PathBuf {
        let ext = if tmp { ".tmp" } else { "" };
        self.dir
            .join(format!("chunk-stream{stream}-{n:05}.m4s{ext}"))
    }
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `len` bytes (at most [`MAX_READ`]) of `path` from `offset`.
pub(super) fn read_range(path: &Path, offset: u64, len: Option<u64>) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    f.take(len.unwrap_or(MAX_READ).min(MAX_READ))
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A bound socket the server accepts connections on.
pub enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Binds `at`: a stale Unix socket left at its path by an earlier run is
    /// removed first (anything else there is an error), and the new one is
    /// made connectable by nginx's user (mode 0666, as a loopback port is).
    pub fn bind(at: &super::Listen) -> Result<Listener> {
        use anyhow::Context;
        match at {
            super::Listen::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr}"))?;
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(tokio::net::TcpListener::from_std(l)?))
            }
            super::Listen::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                if let Ok(m) = std::fs::symlink_metadata(path) {
                    if !m.file_type().is_socket() {
                        anyhow::bail!(
                            "cannot listen on {}: something that is not a socket is there; remove it or choose another path",
                            path.display()
                        );
                    }
                    std::fs::remove_file(path).with_context(|| {
                        format!("cannot remove the stale socket {}", path.display())
                    })?;
                }
                let l = tokio::net::UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                Ok(Listener::Unix(l))
            }
        }
    }
}

/// Serves HTTP/1.1 on `listener` until the process ends.
pub async fn serve(shared: Arc<Shared>, listener: Listener) -> Result<()> {
    loop {
        let accepted = match &listener {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(connection(shared.clone(), s));
            }),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                tokio::spawn(connection(shared.clone(), s));
            }),
        };
        if let Err(e) = accepted {
            // out of descriptors, say: wait, do not spin
            eprintln!("ll-server: accept: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One connection's requests, one after another, until it closes.
async fn connection<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(respond(&shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .header("cache-control", "no-store")
        .body(full(body.to_owned()))
        .expect("valid response")
}

fn bytes(kind: &str, cache: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .header("content-type", kind)
        .header("cache-control", cache)
        .body(full(body))
        .expect("valid response")
}

const IMMUTABLE: &str = "public, max-age=60, immutable, no-transform";
const MPEGURL: &str = "application/vnd.apple.mpegurl";

/// What a request asks for.
enum Asked {
    Master,
    Playlist(usize),
    Init(usize),
    Segment(usize, u64),
    Part(usize, u64, u64),
    Status,
    Unknown,
}

fn route(shared: &Shared, path: &str, master: &str) -> Asked {
    let path = path.trim_start_matches('/');
    if path == master {
        return Asked::Master;
    }
    if path == "ll-status" {
        return Asked::Status;
    }
    let Some((name, file)) = path.split_once('/') else {
        return Asked::Unknown;
    };
    let Some(i) = shared.index(name) else {
        return Asked::Unknown;
    };
    if file == "stream.m3u8" {
        return Asked::Playlist(i);
    }
    if file == "init.mp4" {
        return Asked::Init(i);
    }
    let Some(stem) = file.strip_suffix(".m4s") else {
        return Asked::Unknown;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 13 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match stem.split_once('.') {
        None => number(stem).map_or(Asked::Unknown, |m| Asked::Segment(i, m)),
        Some((m, p)) => match (number(m), number(p)) {
            (Some(m), Some(p)) => Asked::Part(i, m, p),
            _ => Asked::Unknown,
        },
    }
}

async fn respond(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n");
    }
    let gzip = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    match route(shared, &path, "master.m3u8") {
        Asked::Master => master(shared),
        Asked::Status => {
            let last: serde_json::Map<String, serde_json::Value> = shared
                .renditions
                .lock()
                .expect("state")
                .iter()
                .map(|r| (r.name.clone(), serde_json::json!(r.last_part())))
                .collect();
            // the encoder's file of segment MSN is number MSN - msnBase
            let body = serde_json::json!({
                "held": shared.held(),
                "lastParts": last,
                "msnBase": shared.base.load(Ordering::Relaxed),
            });
            bytes(
                "application/json",
                "no-store",
                format!("{body}\n").into_bytes(),
            )
        }
        Asked::Playlist(i) => playlist(shared, i, &query, gzip).await,
        Asked::Init(i) => {
            let stream = shared.settings.renditions[i].stream;
            match std::fs::read(shared.dir.join(format!("init-stream{stream}.m4s"))) {
                Ok(b) => bytes("video/mp4", IMMUTABLE, b),
                Err(_) => text(StatusCode::NOT_FOUND, "no init segment yet\n"),
            }
        }
        Asked::Segment(i, m) => segment(shared, i, m).await,
        Asked::Part(i, m, p) => part(shared, i, m, p).await,
        Asked::Unknown => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The multivariant playlist: each video rendition with the audio group;
/// 503 until every rendition has its init segment and a segment.
fn master(shared: &Shared) -> Response<Body> {
    let st = shared.renditions.lock().expect("state");
    if st
        .iter()
        .any(|r| r.track.is_none() || r.last_complete().is_none())
    {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the stream is starting\n");
    }
    let audio = shared
        .settings
        .renditions
        .iter()
        .zip(st.iter())
        .find(|(s, _)| s.kind == Kind::Audio);
    let audio_codec = audio
        .and_then(|(_, r)| r.track.as_ref())
        .map(|t| t.codec.clone());
    let mut o = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some((s, _)) = audio {
        o.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{}/stream.m3u8\"\n",
            s.name
        ));
    }
    for (s, r) in shared.settings.renditions.iter().zip(st.iter()) {
        if s.kind != Kind::Video {
            continue;
        }
        let t = r.track.as_ref().expect("checked above");
        let mut codecs = t.codec.clone();
        if let Some(a) = &audio_codec {
            codecs = format!("{codecs},{a}");
        }
        let (w, h) = t.size.unwrap_or((0, 0));
        o.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={w}x{h},FRAME-RATE={}.000,CODECS=\"{codecs}\"{}\n{}/stream.m3u8\n",
            s.bandwidth,
            s.average_bandwidth,
            s.frame_rate,
            if audio.is_some() { ",AUDIO=\"audio\"" } else { "" },
            s.name
        ));
    }
    let half = shared.settings.segment_duration / 2;
    bytes(
        MPEGURL,
        &format!("public, max-age={half}, no-transform"),
        o.into_bytes(),
    )
}

/// Waits until `ready` holds of rendition `i`'s state, or the hold limit
/// passes (`false`).
async fn wait_until(shared: &Shared, i: usize, ready: impl Fn(&Rendition) -> bool) -> bool {
    let mut rx = shared.woken[i].subscribe();
    let deadline = tokio::time::Instant::now() + shared.hold_limit();
    loop {
        if ready(&shared.renditions.lock().expect("state")[i]) {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return false,
        }
    }
}

async fn playlist(shared: &Shared, i: usize, query: &str, gzip: bool) -> Response<Body> {
    let d = match Directives::parse(query) {
        Ok(d) => d,
        Err(why) => return text(StatusCode::BAD_REQUEST, &format!("{why}\n")),
    };
    let t = &shared.timing;
    let block = shared.renditions.lock().expect("state")[i].block(&d, t);
    match block {
        Block::Bad(why) => return text(StatusCode::BAD_REQUEST, &format!("{why}\n")),
        Block::Wait => {
            let Some(_held) = shared.hold() else {
                return text(StatusCode::SERVICE_UNAVAILABLE, "too many held requests\n");
            };
            let ok = wait_until(shared, i, |r| r.block(&d, t) == Block::Ready).await;
            if !ok {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the part asked for did not come within three target durations\n",
                );
            }
        }
        Block::Ready => {}
    }
    let body = rendered(shared, i, d.skip, gzip);
    // a blocking response names its own update: it may be kept longer
    let cache = if d.msn.is_some() {
        format!("public, max-age={}, no-transform", 6 * t.target_duration)
    } else {
        format!("public, max-age={}, no-transform", t.target_duration / 2)
    };
    let mut b = Response::builder()
        .header("content-type", MPEGURL)
        .header("cache-control", cache)
        .header("vary", "Accept-Encoding");
    if gzip {
        b = b.header("content-encoding", "gzip");
    }
    b.body(full(body)).expect("valid response")
}

/// Rendition `i`'s playlist now (a delta update with `skip`, gzipped with
/// `gzip`), rendered once per state: every viewer held for the same update
/// gets the same bytes.
fn rendered(shared: &Shared, i: usize, skip: bool, gzip: bool) -> Bytes {
    let st = shared.renditions.lock().expect("state");
    let version = *shared.changed.borrow();
    let slot = usize::from(skip) + 2 * usize::from(gzip);
    let mut cache = shared.rendered.lock().expect("rendered");
    if let Some((v, b)) = &cache[i][slot] {
        if *v == version {
            return b.clone();
        }
    }
    let others: Vec<(String, Option<(u64, u64)>)> = st
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, r)| (r.name.clone(), r.last_part()))
        .collect();
    let text = st[i].playlist(&shared.timing, &others, skip);
    let body = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, text.as_bytes()).expect("to memory");
        Bytes::from(e.finish().expect("to memory"))
    } else {
        Bytes::from(text)
    };
    cache[i][slot] = Some((version, body.clone()));
    body
}

/// A whole segment: at once when complete, after a wait (at most the hold
/// limit) when it is the one being written; 404 otherwise.
async fn segment(shared: &Arc<Shared>, i: usize, m: u64) -> Response<Body> {
    let stream = shared.settings.renditions[i].stream;
    let kept = shared.renditions.lock().expect("state")[i]
        .segment(m)
        .and_then(|s| s.data.clone());
    if let Some(data) = kept {
        return segment_response(data);
    }
    let state = |st: &[Rendition]| st[i].segment(m).map(|s| s.complete);
    let now = state(&shared.renditions.lock().expect("state"));
    match now {
        Some(true) => {}
        Some(false) => {
            let Some(_held) = shared.hold() else {
                return text(StatusCode::SERVICE_UNAVAILABLE, "too many held requests\n");
            };
            if !wait_until(shared, i, |r| {
                r.segment(m).map(|s| s.complete) == Some(true)
            })
            .await
            {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the segment is not whole yet\n",
                );
            }
        }
        None => return text(StatusCode::NOT_FOUND, "no such segment\n"),
    }
    let Some(n) = shared.file_number(i, m) else {
        return text(StatusCode::NOT_FOUND, "no such segment\n");
    };
    for path in [shared.file(stream, n, false), shared.file(stream, n, true)] {
        if let Ok(b) = read_range(&path, 0, None) {
            return segment_response(b.into());
        }
    }
    text(StatusCode::NOT_FOUND, "the segment's file is gone\n")
}

/// A segment's or a part's bytes, immutable.
fn segment_response(data: Bytes) -> Response<Body> {
    Response::builder()
        .header("content-type", "video/iso.segment")
        .header("cache-control", IMMUTABLE)
        .body(full(data))
        .expect("valid response")
}

/// A part: its bytes when written; the hinted one (the next to come) held
/// until its first bytes and streamed as the encoder writes the rest.
async fn part(shared: &Arc<Shared>, i: usize, m: u64, p: u64) -> Response<Body> {
    let stream = shared.settings.renditions[i].stream;
    let Some(n) = shared.file_number(i, m) else {
        return text(StatusCode::NOT_FOUND, "no such part\n");
    };
    let (known, hinted) = {
        let st = shared.renditions.lock().expect("state");
        let r = &st[i];
        let known = r.segment(m).and_then(|s| s.parts.get(p as usize).cloned());
        (known, r.hinted(&shared.timing) == Some((m, p)))
    };
    if let Some(part) = known {
        if let Some(data) = part.data {
            return segment_response(data);
        }
        for path in [shared.file(stream, n, false), shared.file(stream, n, true)] {
            if let Ok(b) = read_range(&path, part.offset, Some(part.len)) {
                if b.len() as u64 == part.len {
                    return segment_response(b.into());
                }
            }
        }
        return text(StatusCode::NOT_FOUND, "the part's file is gone\n");
    }
    if !hinted {
        return text(
            StatusCode::NOT_FOUND,
            "no such part (only the hinted one may be asked for early)\n",
        );
    }
    if shared.held() >= MAX_HELD {
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many held requests\n");
    }
    stream_part(shared, i, m, p, n)
}

/// Streams part `p` of segment `m` (file number `n`) as it is written.
fn stream_part(shared: &Arc<Shared>, i: usize, m: u64, p: u64, n: u64) -> Response<Body> {
    let (mut tx, body) = Channel::<Bytes, std::io::Error>::new(4);
    let shared = Arc::clone(shared);
    let stream = shared.settings.renditions[i].stream;
    tokio::spawn(async move {
        shared.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&shared.held);
        let deadline = tokio::time::Instant::now() + shared.hold_limit();
        let mut grew = shared.grew.subscribe();
        // where the part starts: after the part before it, or after the
        // segment's leading boxes
        let mut start = None;
        let mut sent = 0u64;
        loop {
            let (prev_end, done) = {
                let st = shared.renditions.lock().expect("state");
                let seg = st[i].segment(m);
                let prev_end = match p {
                    0 => None,
                    _ => seg
                        .and_then(|s| s.parts.get(p as usize - 1))
                        .map(|q| q.offset + q.len),
                };
                (
                    prev_end,
                    seg.and_then(|s| s.parts.get(p as usize).map(|q| (q.offset, q.len))),
                )
            };
            if start.is_none() {
                start = match prev_end {
                    Some(e) => Some(e),
                    None if p == 0 => first_chunk_offset(&shared.file(stream, n, true))
                        .or_else(|| first_chunk_offset(&shared.file(stream, n, false))),
                    None => None,
                };
            }
            if let Some(s) = start {
                let end = done.map(|(offset, len)| offset + len);
                let want = end.map(|e| e.saturating_sub(s + sent));
                let mut got = Vec::new();
                for path in [shared.file(stream, n, true), shared.file(stream, n, false)] {
                    if let Ok(b) = read_range(&path, s + sent, want) {
                        got = b;
                        break;
                    }
                }
                if !got.is_empty() {
                    sent += got.len() as u64;
                    if tx.send(Frame::data(Bytes::from(got))).await.is_err() {
                        return; // the viewer went away
                    }
                }
                if end.is_some_and(|e| s + sent >= e) {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, grew.changed())
                .await
                .is_err()
            {
                // cut short: the response ends in an error, not as a
                // whole part
                tx.abort(std::io::Error::other("the part did not come in time"));
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "video/iso.segment")
        .header("cache-control", IMMUTABLE)
        // not buffered (nor cached) by nginx: each byte goes on as it comes
        .header("x-accel-buffering", "no")
        .body(body.boxed())
        .expect("valid response")
}

/// Where the first chunk of a segment file starts (after its `styp`), once
/// its first box's header is there.
fn first_chunk_offset(path: &Path) -> Option<u64> {
    let head = read_range(path, 0, Some(8)).ok()?;
    if head.len() < 8 {
        return None;
    }
    let size = u32::from_be_bytes(head[..4].try_into().ok()?) as u64;
    Some(if &head[4..8] == b"moof" { 0 } else { size })
}
