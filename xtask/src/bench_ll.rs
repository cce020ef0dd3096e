//! `cargo xtask bench --only ll`: the LL-HLS origin (release build, the
//! `ll-hls` profile's 720p30 encoder on the same box) under 2 000 viewers
//! held in blocking reloads — requests per CPU-second of the LL server,
//! each response's overshoot past the moment its part was whole in the
//! encoder's file, memory per held request; the same load through nginx
//! with its collapsing cache and without it; complete parts and segments
//! served by the LL server, and by the origin's nginx caching it, against
//! nginx serving the same bytes as a file; and TLS with HTTP/2 against
//! plain HTTP/1.1 on the same file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use test_origin::ll::chunks::{read_chunks, read_init};
use testkit::procs::{children_named, cpu_ns, kb};

type Figure = (String, String, String);

const VIEWERS: usize = 2000;
const SECS: u64 = 30;
/// The viewers' event loops (threads).
const LOOPS: usize = 2;

/// The LL origin running, its ports and the LL server's process.
pub(crate) struct Origin {
    pub(crate) proc: testkit::Captured,
    pub(crate) port: u16,
    /// the LL server's socket
    ll: PathBuf,
    server: u32,
    hls: PathBuf,
}

impl Origin {
    pub(crate) fn start(bin: &Path, extra: &[&str]) -> Result<Origin> {
        let port = testkit::free_port();
        let mut cmd = Command::new(bin.join("test-origin"));
        cmd.args(["run", "-p", "ll-hls", "--port", &port.to_string()])
            .args(extra);
        let proc = testkit::Captured::spawn(&mut cmd);
        let t = Instant::now();
        while !proc.output().contains("ready after") {
            if t.elapsed() > Duration::from_secs(60) {
                bail!("the LL origin was not ready in 60 s:\n{}", proc.output());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let server = children_named(proc.child.id(), "test-origin")
            .first()
            .copied()
            .context("no LL server process")?;
        let out = proc.output();
        let hls = out
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("HLS dir"))
            .map(|l| PathBuf::from(l.trim()))
            .context("no HLS dir in the banner")?;
        let ll = out
            .lines()
            .find_map(|l| l.strip_prefix("  LL "))
            .and_then(|l| l.split_whitespace().next())
            .map(PathBuf::from)
            .context("no LL socket in the banner")?;
        Ok(Origin {
            proc,
            port,
            ll,
            server,
            hls,
        })
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.proc.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = testkit::procs::poll(Duration::from_secs(10), || {
            self.proc.child.try_wait().ok().flatten()
        });
    }
}

/// One HTTP/1.1 GET on a connection of its own to `port`: status and body.
fn tcp_get(port: u16, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    conn.take(64 << 20).read_to_end(&mut raw)?;
    Ok(testkit::unix_http::parse(&raw)?)
}

/// The last part (MSN, index) a media playlist lists: its last lines read
/// from the end.
fn last_part(playlist: &[u8]) -> Option<(u64, u64)> {
    let line = playlist
        .rsplit(|b| *b == b'\n')
        .find_map(|l| l.strip_prefix(b"#EXT-X-PART:"))?;
    let line = std::str::from_utf8(line).ok()?;
    let uri = line.split("URI=\"").nth(1)?;
    let stem = uri.split('"').next()?.trim_end_matches(".m4s");
    let (m, p) = stem.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// When each part of the video rendition was whole in the encoder's file,
/// read every millisecond until `stop`.
fn watch_parts(
    hls: PathBuf,
    base: u64,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<HashMap<(u64, u64), Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = seen.clone();
    std::thread::spawn(move || {
        let Ok(init) = std::fs::read(hls.join("init-stream0.m4s")) else {
            return;
        };
        let Ok(track) = read_init(&init) else { return };
        // per file: where the next read starts, the chunks so far, and
        // whether it is whole (then it is read no more)
        let mut files: HashMap<u64, (u64, usize, bool)> = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            for e in std::fs::read_dir(&hls).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(n) = name
                    .strip_prefix("chunk-stream0-")
                    .and_then(|r| r.split('.').next())
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                let whole = !name.ends_with(".tmp");
                let (offset, count, done) = files.entry(n).or_insert((0, 0, false));
                if *done {
                    continue;
                }
                let Ok(mut f) = std::fs::File::open(e.path()) else {
                    continue;
                };
                use std::io::Seek;
                let mut bytes = Vec::new();
                if f.seek(std::io::SeekFrom::Start(*offset)).is_err()
                    || f.read_to_end(&mut bytes).is_err()
                {
                    continue;
                }
                let Ok((chunks, next)) = read_chunks(&track, *offset, &bytes) else {
                    continue;
                };
                if !chunks.is_empty() {
                    let now = Instant::now();
                    let mut s = seen.lock().unwrap();
                    for p in *count..*count + chunks.len() {
                        s.entry((base + n, p as u64)).or_insert(now);
                    }
                    *count += chunks.len();
                }
                *offset = next;
                *done = whole;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    out
}

/// What the held viewers measured.
struct Held {
    responses: u64,
    errors: u64,
    /// ms past the part's appearance, of responses to requests sent before it
    overshoot: hdrhistogram::Histogram<u64>,
    server_cpu_s: f64,
    /// this process: the viewers' threads and the part watcher
    generator_cpu_s: f64,
    rss_idle_kb: u64,
    rss_loaded_kb: u64,
}

/// One viewer's measures: (MSN, part, sent, answered) of each blocking
/// reload answered in the window.
type Answers = Vec<(u64, u64, Instant, Instant)>;

/// Where the held viewers connect.
#[derive(Clone)]
enum Target {
    /// the LL server's own socket
    Unix(PathBuf),
    /// nginx's port
    Tcp(u16),
}

/// One HTTP/1.1 GET on a kept-alive connection, for the viewers' event
/// loop: status and body.
async fn get_async<S>(conn: &mut tokio::io::BufReader<S>, path: &str) -> Result<(u16, Vec<u8>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    conn.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: o\r\n\r\n").as_bytes())
        .await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("a status line: {line:?}"))?;
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        const LENGTH: &str = "content-length:";
        if line.len() > LENGTH.len() && line[..LENGTH.len()].eq_ignore_ascii_case(LENGTH) {
            len = line[LENGTH.len()..].trim().parse()?;
        }
    }
    if len > 1 << 20 {
        bail!("a playlist of {len} bytes");
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await?;
    Ok((status, body))
}

/// One viewer on one kept-alive connection to `target`: the playlist,
/// then the part after the last it was given, again and again, until
/// `until`.
async fn held_viewer(target: Target, measure_from: Instant, until: Instant) -> Result<Answers> {
    match target {
        Target::Unix(path) => {
            let sock = tokio::net::UnixStream::connect(path).await?;
            blocking_reloads(tokio::io::BufReader::new(sock), measure_from, until).await
        }
        Target::Tcp(port) => {
            let sock = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            sock.set_nodelay(true)?;
            blocking_reloads(tokio::io::BufReader::new(sock), measure_from, until).await
        }
    }
}

async fn blocking_reloads<S>(
    mut c: tokio::io::BufReader<S>,
    measure_from: Instant,
    until: Instant,
) -> Result<Answers>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut answers = Answers::new();
    // one deadline for the whole loop (not a timer per request): what was
    // answered before it is kept
    let reloads = async {
        let (_, body) = get_async(&mut c, "/video/stream.m3u8").await?;
        let mut next = last_part(&body).map(|(m, p)| (m, p + 1));
        while let Some((m, p)) = next {
            let sent = Instant::now();
            let path = format!("/video/stream.m3u8?_HLS_msn={m}&_HLS_part={p}");
            let (status, body) = get_async(&mut c, &path).await?;
            if status != 200 {
                bail!("{path}: {status}");
            }
            let got = Instant::now();
            if got > measure_from {
                answers.push((m, p, sent, got));
            }
            next = last_part(&body).map(|(m, p)| (m, p + 1));
        }
        Err::<(), _>(anyhow::anyhow!("a playlist without parts"))
    };
    match tokio::time::timeout_at(tokio::time::Instant::from_std(until), reloads).await {
        Ok(Err(e)) => Err(e),
        // the window ended (while one was held, most likely)
        _ => Ok(answers),
    }
}

/// `VIEWERS` viewers, each on one kept-alive connection to `port`, all in
/// one event loop on one thread of their own (as a real audience's
/// players are on machines of their own, none waits for a thread of its
/// own to be scheduled), asking for the part after the last they were
/// given, for 5 s of warm-up and `SECS` measured.
fn held_viewers(o: &Origin, target: Target) -> Result<Held> {
    let status: serde_json::Value =
        serde_json::from_slice(&testkit::unix_http::get(&o.ll, "/ll-status")?.1)?;
    let base = status["msnBase"].as_u64().context("msnBase")?;
    let stop = Arc::new(AtomicBool::new(false));
    let parts = watch_parts(o.hls.clone(), base, stop.clone());
    let rss_idle_kb = kb(o.server, "status", "VmRSS:");
    let measure_from = Instant::now() + Duration::from_secs(5);
    let until = measure_from + Duration::from_secs(SECS);
    // the viewers in event loops of their own, one per core
    let loops: Vec<_> = (0..LOOPS)
        .map(|l| {
            // each its share; the first ones one more when it does not divide
            let count = (VIEWERS + LOOPS - 1 - l) / LOOPS;
            let target = target.clone();
            std::thread::spawn(move || -> Result<(Answers, u64)> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..count {
                        set.spawn(held_viewer(target.clone(), measure_from, until));
                    }
                    let (mut answers, mut errors) = (Answers::new(), 0);
                    while let Some(done) = set.join_next().await {
                        match done {
                            Ok(Ok(a)) => answers.extend(a),
                            _ => errors += 1,
                        }
                    }
                    Ok((answers, errors))
                })
            })
        })
        .collect();
    std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let (cpu0, me0) = (cpu_ns(o.server), cpu_ns(std::process::id()));
    std::thread::sleep(Duration::from_secs(SECS / 2));
    let rss_loaded_kb = kb(o.server, "status", "VmRSS:");
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (cpu1, me1) = (cpu_ns(o.server), cpu_ns(std::process::id()));
    let (mut results, mut errors) = (Answers::new(), 0);
    for l in loops {
        let (a, e) = l
            .join()
            .map_err(|_| anyhow::anyhow!("a viewers' thread panicked"))??;
        results.extend(a);
        errors += e;
    }
    stop.store(true, Ordering::Relaxed);
    let parts = parts.lock().unwrap();
    let mut overshoot = hdrhistogram::Histogram::<u64>::new(3)?;
    for (m, p, sent, got) in results.iter() {
        // a part past a segment's last is part 0 of the next
        let appeared = parts.get(&(*m, *p)).or_else(|| parts.get(&(m + 1, 0)));
        if let Some(a) = appeared.filter(|a| **a > *sent) {
            overshoot.record(got.saturating_duration_since(*a).as_millis() as u64)?;
        }
    }
    Ok(Held {
        responses: results.len() as u64,
        errors,
        overshoot,
        server_cpu_s: (cpu1 - cpu0) as f64 / 1e9,
        generator_cpu_s: (me1 - me0) as f64 / 1e9,
        rss_idle_kb,
        rss_loaded_kb,
    })
}

pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let mut rows = Vec::new();
    let area = "origin LL-HLS";
    // plain HTTP in front, so that the load generator's threads speak it
    let o = Origin::start(&bin, &["--set", "tls.enable=false"])?;
    let window = SECS as f64;
    // the generated config, and the two others it was chosen over
    let (mut locked, locked_port) = nginx_variant(&o, "locked", |l| {
        if l.contains("proxy_cache_bypass") {
            Some("            proxy_cache_lock on; proxy_cache_lock_timeout 200s; proxy_cache_lock_age 200s;".into())
        } else if l.contains("proxy_no_cache") {
            Some(String::new())
        } else {
            None
        }
    })?;
    let (mut uncached, uncached_port) = nginx_variant(&o, "nocache", |l| {
        l.trim_start()
            .starts_with("proxy_cache")
            .then(String::new)
            .or_else(|| l.contains("proxy_no_cache").then(String::new))
    })?;
    let targets = [
        ("LL server", Target::Unix(o.ll.clone())),
        (
            "nginx as generated (blocking reloads past the cache)",
            Target::Tcp(o.port),
        ),
        (
            "nginx collapsing blocking reloads (proxy_cache_lock)",
            Target::Tcp(locked_port),
        ),
        ("nginx without a cache", Target::Tcp(uncached_port)),
    ];
    for (name, target) in targets {
        eprintln!("   {VIEWERS} viewers held in blocking reloads on the {name} for {SECS} s");
        let h = held_viewers(&o, target)?;
        let rps = h.responses as f64 / window;
        rows.push((
            area.to_owned(),
            format!("{VIEWERS} viewers in blocking reloads through the {name}: responses/s, LL server CPU-s per s, responses per LL-server CPU-second (the viewers' own CPU-s per s)"),
            format!(
                "{rps:.0}/s, {:.2}, {:.0} ({} errors; viewers {:.2})",
                h.server_cpu_s / window,
                h.responses as f64 / h.server_cpu_s.max(1e-9),
                h.errors,
                h.generator_cpu_s / window
            ),
        ));
        rows.push((
            area.to_owned(),
            format!("blocking-reload overshoot through the {name} (response − part whole in the file): p50 / p99 / max"),
            format!(
                "{} / {} / {} ms ({} responses)",
                h.overshoot.value_at_quantile(0.5),
                h.overshoot.value_at_quantile(0.99),
                h.overshoot.max(),
                h.overshoot.len()
            ),
        ));
        if name == "LL server" {
            rows.push((
                area.to_owned(),
                format!("LL server memory: idle, with {VIEWERS} held; per held request"),
                format!(
                    "{} MB, {} MB; {:.1} KB",
                    h.rss_idle_kb / 1024,
                    h.rss_loaded_kb / 1024,
                    h.rss_loaded_kb.saturating_sub(h.rss_idle_kb) as f64 / VIEWERS as f64
                ),
            ));
        }
        for (a, f, v) in rows.iter().rev().take(2) {
            eprintln!("   | {a} | {f} | {v} |");
        }
    }
    stop_nginx(&mut locked);
    stop_nginx(&mut uncached);
    rows.extend(static_parts(&o, &bin)?);
    drop(o);
    rows.extend(tls_cost(&bin)?);
    Ok(rows)
}

/// A second nginx of the run's config, on a port of its own, each line
/// replaced by what `edit` makes of it (`None`: kept).
fn nginx_variant(
    o: &Origin,
    name: &str,
    edit: impl Fn(&str) -> Option<String>,
) -> Result<(std::process::Child, u16)> {
    let run = o.hls.parent().context("the state dir")?.join("run");
    let conf = std::fs::read_to_string(run.join("nginx.conf"))?;
    let own = run.join(name);
    std::fs::create_dir_all(&own)?;
    let port = testkit::free_port();
    let text: String = conf
        .lines()
        .map(|l| {
            if let Some(new) = edit(l) {
                new
            } else if l.trim_start().starts_with("proxy_cache_path") {
                // the run's nginx's cache directory is its own
                format!("    proxy_cache_path \"{}/cache\" levels=1:2 keys_zone=ll:16m max_size=512m inactive=1m use_temp_path=off;", own.display())
            } else if l.trim_start().starts_with("listen ") {
                format!("        listen 127.0.0.1:{port};")
            } else if l.starts_with("pid ") {
                format!("pid \"{}/nginx.pid\";", own.display())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(own.join("nginx.conf"), text + "\n")?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&own)
        .arg("-c")
        .arg(own.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("nginx")?;
    std::thread::sleep(Duration::from_millis(500));
    Ok((child, port))
}

/// Stops an nginx started here: SIGTERM, which takes its workers with it
/// (a SIGKILL of the master would leave them running, loading the next
/// measure).
fn stop_nginx(nginx: &mut std::process::Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(nginx.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = nginx.wait();
}

/// wrk's requests/s on `url`: 1 thread, 50 connections, 5 s.
fn wrk(url: &str) -> Result<f64> {
    let out = Command::new("wrk")
        .args(["-t1", "-c50", "-d5s", "--latency", url])
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    crate::bench_origin::parse_wrk(&text)
        .map(|(rps, _)| rps)
        .with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// Rounds of each static measure, alternated: the encoder on the same
/// cores makes a single 5-s run of either side noisy.
const ROUNDS: usize = 3;

/// A complete part and a whole segment from the LL server, and nginx
/// serving the same bytes as files: requests/s of each (wrk, median of
/// [`ROUNDS`] alternated rounds), their ratio. wrk speaks TCP: a second LL
/// server, on a loopback port, reads the run's files beside the run's own.
fn static_parts(o: &Origin, bin: &Path) -> Result<Vec<Figure>> {
    let run = o.hls.parent().context("the state dir")?.join("run");
    let ll_port = testkit::free_port();
    let mut ll = Command::new(bin.join("test-origin"))
        .arg("ll-server")
        .arg("--settings")
        .arg(run.join("ll-server.json"))
        .arg("--dir")
        .arg(&o.hls)
        .arg("--listen")
        .arg(format!("127.0.0.1:{ll_port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("a second LL server")?;
    let files = tempfile::tempdir()?;
    let nginx_run = files.path().join("run");
    std::fs::create_dir_all(&nginx_run)?;
    let port = testkit::free_port();
    let conf = format!(
        "worker_processes 1;\npid {run}/nginx.pid;\nerror_log stderr warn;\nevents {{ worker_connections 1024; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {run}/cb; proxy_temp_path {run}/p;\n\
         fastcgi_temp_path {run}/f; uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;\n\
         server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        run = nginx_run.display(),
        root = files.path().display()
    );
    std::fs::write(nginx_run.join("nginx.conf"), conf)?;
    let mut nginx = Command::new("nginx")
        .args(["-p"])
        .arg(&nginx_run)
        .arg("-c")
        .arg(nginx_run.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .spawn()
        .context("nginx")?;
    let measured = (|| -> Result<Vec<Figure>> {
        // (what, requests/s per round of: the LL server, nginx serving a
        // file, the origin's nginx in front of the LL server; size)
        let mut kinds: Vec<(&str, [Vec<f64>; 3], usize)> = vec![
            ("a complete part", Default::default(), 0),
            ("a whole segment", Default::default(), 0),
        ];
        for _ in 0..ROUNDS {
            // the newest complete segment each LL server knows (they keep
            // a few: picked again each round); their MSNs differ, as they
            // started at different times
            let seg = newest_complete_segment(|p| tcp_get(ll_port, p))?;
            let origin_seg =
                newest_complete_segment(|p| testkit::unix_http::get(&o.ll, p).map_err(Into::into))?;
            for (i, (path, origin_path)) in [
                (
                    format!("/video/{seg}.0.m4s"),
                    format!("/video/{origin_seg}.0.m4s"),
                ),
                (
                    format!("/video/{seg}.m4s"),
                    format!("/video/{origin_seg}.m4s"),
                ),
            ]
            .iter()
            .enumerate()
            {
                let (status, bytes) = tcp_get(ll_port, path)?;
                if status != 200 {
                    bail!("{path}: {status}");
                }
                std::fs::write(files.path().join("file.m4s"), &bytes)?;
                let k = &mut kinds[i];
                k.1[0].push(wrk(&format!("http://127.0.0.1:{ll_port}{path}"))?);
                k.1[1].push(wrk(&format!("http://127.0.0.1:{port}/file.m4s"))?);
                k.1[2].push(wrk(&format!("http://127.0.0.1:{}{origin_path}", o.port))?);
                k.2 = bytes.len();
            }
        }
        Ok(kinds
            .into_iter()
            .map(|(what, [ll, file, origin], size)| {
                let (ll, file, origin) = (median(ll), median(file), median(origin));
                (
                    "origin LL-HLS".to_owned(),
                    format!(
                        "{what} (~{} KB), requests/s (wrk, 1 thread, 50 connections, median of {ROUNDS} × 5 s): the LL server / nginx serving the same bytes as a file; the origin as generated (nginx caching the LL server) / the same file",
                        size / 1024
                    ),
                    format!(
                        "{ll:.0} / {file:.0} = {:.2}×; {origin:.0} / {file:.0} = {:.2}×",
                        ll / file,
                        origin / file
                    ),
                )
            })
            .collect())
    })();
    stop_nginx(&mut nginx);
    let _ = ll.kill();
    let _ = ll.wait();
    measured
}

/// The middle value.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The MSN of the newest complete segment an LL server lists (`get` asks
/// it), once it lists one (it starts at the segment being written).
fn newest_complete_segment(get: impl Fn(&str) -> Result<(u16, Vec<u8>)>) -> Result<u64> {
    let t = Instant::now();
    loop {
        if let Ok((200, pl)) = get("/video/stream.m3u8") {
            let seg = String::from_utf8_lossy(&pl)
                .lines()
                .rfind(|l| l.ends_with(".m4s") && !l.starts_with('#'))
                .and_then(|l| l.trim_end_matches(".m4s").parse().ok());
            if let Some(seg) = seg {
                return Ok(seg);
            }
        }
        if t.elapsed() > Duration::from_secs(15) {
            bail!("the LL server listed no complete segment in 15 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// TLS with HTTP/2 against plain HTTP/1.1: the generated nginx config of
/// the default profile serving a hot 100 KB segment, h2load with 50
/// clients (HTTP/2: 10 streams each).
fn tls_cost(bin: &Path) -> Result<Vec<Figure>> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("hls");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("seg00001.ts"), vec![0x47u8; 100 * 1024])?;
    let mut out = Vec::new();
    for (name, tls) in [("plain HTTP/1.1", false), ("TLS + HTTP/2", true)] {
        let run = tmp.path().join(format!("run-{tls}"));
        std::fs::create_dir_all(&run)?;
        if tls {
            testkit::tools::self_signed(&run.join("tls"));
        }
        let port = testkit::free_port();
        let mut cmd = Command::new(bin.join("test-origin"));
        cmd.args([
            "nginx-config",
            "--flavour",
            "local",
            "--port",
            &port.to_string(),
            "--root",
        ])
        .arg(&root)
        .arg("--run-dir")
        .arg(&run)
        .args(["--set", &format!("tls.enable={tls}")]);
        let conf = cmd.output()?;
        if !conf.status.success() {
            bail!("nginx-config: {}", String::from_utf8_lossy(&conf.stderr));
        }
        let text = String::from_utf8_lossy(&conf.stdout)
            .replace("worker_processes auto;", "worker_processes 1;");
        std::fs::write(run.join("nginx.conf"), text)?;
        let mut nginx = Command::new("nginx")
            .arg("-p")
            .arg(&run)
            .arg("-c")
            .arg(run.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(500));
        let scheme = if tls { "https" } else { "http" };
        let mut h2 = Command::new("h2load");
        h2.args(["-D", "5", "-c", "50"]);
        if tls {
            h2.args(["-m", "10"]);
        } else {
            h2.arg("--h1");
        }
        let cpu0 = testkit::procs::tree_cpu_ns(nginx.id());
        let res = h2
            .arg(format!("{scheme}://127.0.0.1:{port}/seg00001.ts"))
            .output()
            .context("cannot run h2load (apt-get install nghttp2-client)");
        let cpu1 = testkit::procs::tree_cpu_ns(nginx.id());
        stop_nginx(&mut nginx);
        let text = String::from_utf8_lossy(&res?.stdout).into_owned();
        let rps: f64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("finished in"))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|l| l.split(' ').next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("h2load's report:\n{text}"))?;
        let cpu = (cpu1 - cpu0) as f64 / 1e9;
        out.push((name, rps, cpu));
    }
    let (plain, tls) = (out[0], out[1]);
    Ok(vec![(
        "origin LL-HLS".to_owned(),
        "a hot 100 KB segment through the generated nginx config, 1 worker, h2load 50 clients for 5 s: plain HTTP/1.1 / TLS + HTTP/2 (10 streams each), requests/s (nginx CPU-s)"
            .to_owned(),
        format!(
            "{:.0} ({:.1}) / {:.0} ({:.1}): TLS + HTTP/2 serves {:.2}× the requests at {:.2}× the CPU per request",
            plain.1,
            plain.2,
            tls.1,
            tls.2,
            tls.1 / plain.1,
            (tls.2 / tls.1) / (plain.2 / plain.1)
        ),
    )])
}
