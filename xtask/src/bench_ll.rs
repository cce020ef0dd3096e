//! `cargo xtask bench --only ll`: the LL-HLS origin (release build, the
//! `ll-hls` profile's 720p30 encoder on the same box) under 2 000 viewers
//! held in blocking reloads — requests per CPU-second of the LL server,
//! each response's overshoot past the moment its part was whole in the
//! encoder's file, memory per held request; the same load through nginx
//! with its collapsing cache and without it; complete parts served by the
//! LL server against nginx serving the same bytes as a file; and TLS with
//! HTTP/2 against plain HTTP/1.1 on the same file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
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

/// The LL origin running, its ports and the LL server's process.
struct Origin {
    proc: testkit::Captured,
    port: u16,
    ll: u16,
    server: u32,
    hls: PathBuf,
}

impl Origin {
    fn start(bin: &Path, extra: &[&str]) -> Result<Origin> {
        let (port, ll) = (testkit::free_port(), testkit::free_port());
        let mut cmd = Command::new(bin.join("test-origin"));
        cmd.args(["run", "-p", "ll-hls", "--port", &port.to_string()])
            .args(["--set", &format!("lowLatency.serverPort={ll}")])
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

/// One HTTP/1.1 GET on a kept-alive connection: status and body.
fn get(conn: &mut BufReader<TcpStream>, path: &str) -> Result<(u16, Vec<u8>)> {
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: o\r\n\r\n")?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("a status line: {line:?}"))?;
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body)?;
    Ok((status, body))
}

/// The last part (MSN, index) a media playlist lists.
fn last_part(playlist: &str) -> Option<(u64, u64)> {
    let uri = playlist
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("#EXT-X-PART:"))?
        .split("URI=\"")
        .nth(1)?;
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

/// `VIEWERS` viewers, each a thread on one kept-alive connection to
/// `port`, asking for the part after the last it was given, for `SECS`.
fn held_viewers(o: &Origin, port: u16) -> Result<Held> {
    let status: serde_json::Value = {
        let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", o.ll))?);
        serde_json::from_slice(&get(&mut c, "/ll-status")?.1)?
    };
    let base = status["msnBase"].as_u64().context("msnBase")?;
    let stop = Arc::new(AtomicBool::new(false));
    let parts = watch_parts(o.hls.clone(), base, stop.clone());
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rss_idle_kb = kb(o.server, "status", "VmRSS:");
    let deadline = Instant::now() + Duration::from_secs(SECS + 5);
    let measure_from = Instant::now() + Duration::from_secs(5);
    let mut threads = Vec::new();
    for _ in 0..VIEWERS {
        let (errors, stop) = (errors.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    // each viewer's own: no lock between viewers
                    let mut results: Vec<(u64, u64, Instant, Instant)> = Vec::new();
                    let Ok(sock) = TcpStream::connect(("127.0.0.1", port)) else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return results;
                    };
                    let _ = sock.set_read_timeout(Some(Duration::from_secs(20)));
                    let mut c = BufReader::new(sock);
                    let Ok((_, body)) = get(&mut c, "/video/stream.m3u8") else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return results;
                    };
                    let mut next =
                        last_part(&String::from_utf8_lossy(&body)).map(|(m, p)| (m, p + 1));
                    while let Some((m, p)) = next {
                        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                            return results;
                        }
                        let sent = Instant::now();
                        match get(
                            &mut c,
                            &format!("/video/stream.m3u8?_HLS_msn={m}&_HLS_part={p}"),
                        ) {
                            Ok((200, body)) => {
                                let got = Instant::now();
                                if got > measure_from {
                                    results.push((m, p, sent, got));
                                }
                                next = last_part(&String::from_utf8_lossy(&body))
                                    .map(|(m, p)| (m, p + 1));
                            }
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                return results;
                            }
                        }
                    }
                    results
                })?,
        );
    }
    std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let (cpu0, me0) = (cpu_ns(o.server), cpu_ns(std::process::id()));
    std::thread::sleep(Duration::from_secs(SECS / 2));
    let rss_loaded_kb = kb(o.server, "status", "VmRSS:");
    std::thread::sleep(Duration::from_secs(SECS / 2));
    let (cpu1, me1) = (cpu_ns(o.server), cpu_ns(std::process::id()));
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for t in threads {
        results.extend(t.join().unwrap_or_default());
    }
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
        errors: errors.load(Ordering::Relaxed),
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
        ("LL server", o.ll),
        (
            "nginx as generated (blocking reloads past the cache)",
            o.port,
        ),
        (
            "nginx collapsing blocking reloads (proxy_cache_lock)",
            locked_port,
        ),
        ("nginx without a cache", uncached_port),
    ];
    for (name, port) in targets {
        eprintln!("   {VIEWERS} viewers held in blocking reloads on the {name} for {SECS} s");
        let h = held_viewers(&o, port)?;
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
    rows.extend(static_parts(&o)?);
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

/// A complete part from the LL server, and nginx serving the same bytes as
/// a file: requests/s of each (wrk), their ratio.
fn static_parts(o: &Origin) -> Result<Vec<Figure>> {
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", o.ll))?);
    let (_, pl) = get(&mut c, "/video/stream.m3u8")?;
    let pl = String::from_utf8_lossy(&pl).into_owned();
    // a part of the last complete segment
    let seg: u64 = pl
        .lines()
        .rfind(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .and_then(|l| l.trim_end_matches(".m4s").parse().ok())
        .context("a complete segment")?;
    let part = format!("/video/{seg}.0.m4s");
    let (status, bytes) = get(&mut c, &part)?;
    if status != 200 {
        bail!("{part}: {status}");
    }
    let tmp = tempfile::tempdir()?;
    std::fs::write(tmp.path().join("part.m4s"), &bytes)?;
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run)?;
    let port = testkit::free_port();
    let conf = format!(
        "worker_processes 1;\npid {run}/nginx.pid;\nerror_log stderr warn;\nevents {{ worker_connections 1024; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {run}/cb; proxy_temp_path {run}/p;\n\
         fastcgi_temp_path {run}/f; uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;\n\
         server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        run = run.display(),
        root = tmp.path().display()
    );
    std::fs::write(run.join("nginx.conf"), conf)?;
    let mut nginx = Command::new("nginx")
        .args(["-p"])
        .arg(&run)
        .arg("-c")
        .arg(run.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .spawn()
        .context("nginx")?;
    std::thread::sleep(Duration::from_millis(500));
    let ll = wrk(&format!("http://127.0.0.1:{}{part}", o.ll))?;
    let file = wrk(&format!("http://127.0.0.1:{port}/part.m4s"));
    stop_nginx(&mut nginx);
    let file = file?;
    Ok(vec![(
        "origin LL-HLS".to_owned(),
        format!(
            "a complete part ({} KB): LL server / nginx serving it as a file, requests/s (wrk, 1 thread, 50 connections, 5 s)",
            bytes.len() / 1024
        ),
        format!("{ll:.0} / {file:.0} = {:.2}×", ll / file),
    )])
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
