//! `cargo xtask bench --only origin`: the generated nginx config against a
//! minimal stock config, side by side, serving the same files: wrk on a hot
//! 100 KB segment and a playlist (1 worker and `auto`); every tuning
//! directive tried the other way; the live stream (FFmpeg rewriting the
//! playlist) under wrk and under 1000 native viewers for 2 minutes; and
//! segments read cold from disk where the page cache can be dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testkit::procs::{children_named, tree_cpu_ns};

/// One results row: (area, figure, value).
type Figure = (String, String, String);

/// The stock config: what Debian's nginx.conf sets for static files
/// (sendfile, tcp_nopush), nginx's defaults for the rest; no access log, as
/// the generated config of the default profile.
fn stock_config(workers: &str, port: u16, root: &Path, run: &Path) -> String {
    format!(
        "worker_processes {workers};\npid {run}/nginx.pid;\nerror_log stderr warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}\n\
         \x20 default_type application/octet-stream;\n  sendfile on;\n  tcp_nopush on;\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {run}/client_body_temp;\n  proxy_temp_path {run}/proxy_temp;\n\
         \x20 fastcgi_temp_path {run}/fastcgi_temp;\n  uwsgi_temp_path {run}/uwsgi_temp;\n\
         \x20 scgi_temp_path {run}/scgi_temp;\n\
         \x20 server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
        run = run.display(),
        root = root.display()
    )
}

/// The generated local config (from `test-origin nginx-config`), with
/// `worker_processes` set to `workers`.
fn generated_config(
    bin: &Path,
    workers: &str,
    port: u16,
    root: &Path,
    run: &Path,
) -> Result<String> {
    let out = Command::new(bin.join("test-origin"))
        .args([
            "nginx-config",
            "--flavour",
            "local",
            "--port",
            &port.to_string(),
        ])
        .arg("--root")
        .arg(root)
        .arg("--run-dir")
        .arg(run)
        .output()
        .context("cannot run test-origin")?;
    if !out.status.success() {
        bail!(
            "test-origin nginx-config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    if !text.contains("worker_processes auto;") {
        bail!("the generated config no longer says `worker_processes auto;`");
    }
    Ok(text.replace(
        "worker_processes auto;",
        &format!("worker_processes {workers};"),
    ))
}

/// nginx serving `conf` until dropped.
struct Nginx(Child);

impl Nginx {
    /// Starts nginx with `conf` and waits until `probe` (a path) answers 200.
    fn start(conf: &Path, run: &Path, port: u16, probe: &str) -> Result<Nginx> {
        let child = Command::new("nginx")
            .arg("-p")
            .arg(run)
            .arg("-c")
            .arg(conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx")?;
        let mut n = Nginx(child);
        let url = format!("http://127.0.0.1:{port}{probe}");
        let t = Instant::now();
        // the segment is not text: ask for its status only
        while common::http_check::http_status(&url, Duration::from_millis(500)) != Ok(200) {
            if let Some(s) = n.0.try_wait()? {
                bail!("nginx exited ({s}) with {}", conf.display());
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not answer within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(n)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// wrk's requests/s and p99 latency (ms) from its `--latency` report.
pub fn parse_wrk(text: &str) -> Option<(f64, f64)> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let ms = if let Some(v) = p99.strip_suffix("us") {
        v.parse::<f64>().ok()? / 1000.0
    } else if let Some(v) = p99.strip_suffix("ms") {
        v.parse().ok()?
    } else if let Some(v) = p99.strip_suffix('s') {
        v.parse::<f64>().ok()? * 1000.0
    } else {
        return None;
    };
    Some((rps, ms))
}

/// wrk with 1 thread and 50 connections for `secs` on `url` (and a Lua
/// `script` choosing the requests, when given): (req/s, p99 ms).
fn wrk(url: &str, secs: u32, script: Option<&Path>) -> Result<(f64, f64)> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c50", &format!("-d{secs}s"), "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// Starts nginx on a free port with the config `make(port, run_dir)` gives,
/// in a run directory of its own under `tmp`, once `probe` answers 200.
fn serve(
    tmp: &Path,
    name: &str,
    probe: &str,
    make: impl FnOnce(u16, &Path) -> Result<String>,
) -> Result<(Nginx, u16)> {
    let run = tmp.join(format!("run-{name}"));
    std::fs::create_dir_all(&run)?;
    let port = testkit::free_port();
    let conf = run.join("nginx.conf");
    std::fs::write(&conf, make(port, &run)?)?;
    Ok((Nginx::start(&conf, &run, port, probe)?, port))
}

/// The generated config without the lines that start with `directive`.
fn without(text: &str, directive: &str) -> Result<String> {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with(directive))
        .collect();
    if kept.len() == text.lines().count() {
        bail!("the generated config has no `{directive}` any more");
    }
    Ok(kept.join("\n") + "\n")
}

/// The generated config with `line` added after the first line that is `after`.
fn with_line(text: &str, after: &str, line: &str) -> Result<String> {
    let mut out = String::new();
    let mut done = false;
    for l in text.lines() {
        out.push_str(l);
        out.push('\n');
        if !done && l.trim() == after {
            let indent = &l[..l.len() - l.trim_start().len()];
            out.push_str(&format!("{indent}{line}\n"));
            done = true;
        }
    }
    if !done {
        bail!("the generated config has no `{after}` line any more");
    }
    Ok(out)
}

/// A change to the generated config: a directive it keeps taken out, or one
/// it dropped put back.
struct Edit {
    what: &'static str,
    kept: bool,
    apply: fn(&str) -> Result<String>,
}

/// Every tuning directive the generated config keeps or dropped, each tried
/// the other way.
const EDITS: &[Edit] = &[
    Edit {
        what: "open_file_cache (all its lines)",
        kept: true,
        apply: |t| without(t, "open_file_cache"),
    },
    Edit {
        what: "tcp_nopush on",
        kept: true,
        apply: |t| without(t, "tcp_nopush"),
    },
    Edit {
        what: "multi_accept on",
        kept: true,
        apply: |t| without(t, "multi_accept"),
    },
    Edit {
        what: "listen … reuseport",
        kept: true,
        apply: |t| Ok(t.replace(" reuseport;", ";")),
    },
    Edit {
        what: "keepalive_requests 10000 (nginx's default: 1000)",
        kept: true,
        apply: |t| Ok(t.replace("keepalive_requests 10000;", "keepalive_requests 1000;")),
    },
    Edit {
        what: "aio threads (and its thread_pool of 32)",
        kept: false,
        apply: |t| {
            let t = with_line(
                t,
                "error_log stderr warn;",
                "thread_pool hls threads=32 max_queue=65536;",
            )?;
            with_line(&t, "sendfile on;", "aio threads=hls;")
        },
    },
    Edit {
        what: "directio 4m",
        kept: false,
        apply: |t| with_line(t, "sendfile on;", "directio 4m;"),
    },
    Edit {
        what: "sendfile_max_chunk 512k (nginx's default: 2m)",
        kept: false,
        apply: |t| with_line(t, "sendfile on;", "sendfile_max_chunk 512k;"),
    },
    Edit {
        what: "output_buffers 2 256k",
        kept: false,
        apply: |t| with_line(t, "sendfile on;", "output_buffers 2 256k;"),
    },
];

/// The hot files: a 100 KB segment, a 6 MB one (a 2-second segment of the
/// 4K profile) and a playlist, with what the tables call them.
const HOT_FILES: &[(&str, &str)] = &[
    ("seg.ts", "segment 100 KB"),
    ("big.ts", "segment 6 MB"),
    ("stream.m3u8", "playlist"),
];

/// The hot files, of stable bytes.
fn write_hot_files(hls: &Path) -> Result<()> {
    std::fs::create_dir_all(hls)?;
    let mut rng = fastrand::Rng::with_seed(1);
    for (name, size) in [("seg.ts", 100_000), ("big.ts", 6_000_000)] {
        let data: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
        std::fs::write(hls.join(name), data)?;
    }
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n",
    );
    for i in 1..=10 {
        playlist.push_str(&format!("#EXTINF:2.000000,\nseg{i}.ts\n"));
    }
    std::fs::write(hls.join("stream.m3u8"), playlist)?;
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(1e-9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median (req/s, p99 ms) of each (config, file), by index.
type Medians = std::collections::BTreeMap<(usize, usize), (f64, f64)>;

/// wrk on every hot file of every config (running nginx, port), `reps`
/// rounds of `secs` each, the configs taking turns within a round so that
/// the machine's drift touches them alike; the medians.
fn take_turns(configs: &[(String, u16)], reps: usize, secs: u32) -> Result<Medians> {
    let mut all: std::collections::BTreeMap<(usize, usize), Vec<(f64, f64)>> = Default::default();
    for rep in 0..reps {
        eprintln!("   round {}/{reps}", rep + 1);
        for (f, (file, _)) in HOT_FILES.iter().enumerate() {
            for (c, (_, port)) in configs.iter().enumerate() {
                let m = wrk(&format!("http://127.0.0.1:{port}/{file}"), secs, None)?;
                all.entry((c, f)).or_default().push(m);
            }
        }
    }
    Ok(all
        .into_iter()
        .map(|(k, v)| {
            let rps = median(v.iter().map(|m| m.0).collect());
            let p99 = median(v.iter().map(|m| m.1).collect());
            (k, (rps, p99))
        })
        .collect())
}

/// The whole origin benchmark: hot files, each directive, the live stream
/// (wrk and the native swarm), cold files.
pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let mut rows = Vec::new();
    let show = |part: &[Figure]| {
        // as each part ends, so that a later failure loses nothing
        for (area, figure, value) in part {
            eprintln!("   | {area} | {figure} | {value} |");
        }
    };
    type Part = fn(&Path) -> Result<Vec<Figure>>;
    let parts: [Part; 3] = [hot, directives, live];
    for part in parts {
        let figures = part(&bin)?;
        show(&figures);
        rows.extend(figures);
    }
    let cold = cold(&bin, root).unwrap_or_else(|e| {
        vec![(
            "origin cold segments (wrk, 1 worker, page cache dropped)".to_owned(),
            "not measured".to_owned(),
            format!("{e:#}"),
        )]
    });
    show(&cold);
    rows.extend(cold);
    Ok(rows)
}

/// Rounds of the hot and directive runs, and seconds of wrk in each.
const REPS: usize = 5;
const SECS: u32 = 4;

/// Generated against stock on hot files, with 1 worker and with `auto`.
fn hot(bin: &Path) -> Result<Vec<Figure>> {
    let tmp = tempfile::tempdir()?;
    let hls = tmp.path().join("hls");
    write_hot_files(&hls)?;
    let mut rows = Vec::new();
    for workers in ["1", "auto"] {
        eprintln!("   worker_processes {workers}: generated and stock configs");
        let (g_nginx, g_port) = serve(tmp.path(), &format!("gen-{workers}"), "/seg.ts", |p, r| {
            generated_config(bin, workers, p, &hls, r)
        })?;
        let (s_nginx, s_port) = serve(
            tmp.path(),
            &format!("stock-{workers}"),
            "/seg.ts",
            |p, r| Ok(stock_config(workers, p, &hls, r)),
        )?;
        let m = take_turns(
            &[("generated".into(), g_port), ("stock".into(), s_port)],
            REPS,
            SECS,
        )?;
        drop((g_nginx, s_nginx));
        for (f, (_, what)) in HOT_FILES.iter().enumerate() {
            let (g, s) = (m[&(0, f)], m[&(1, f)]);
            rows.push((
                format!("origin nginx (wrk, 1 thread, 50 connections, hot files, median of {REPS} × {SECS} s)"),
                format!("{what}, worker_processes {workers}: generated / stock req/s (p99 ms)"),
                format!(
                    "{:.0} ({:.2}) / {:.0} ({:.2}) = {:.2}×",
                    g.0,
                    g.1,
                    s.0,
                    s.1,
                    ratio(g.0, s.0)
                ),
            ));
        }
    }
    Ok(rows)
}

/// Each tuning directive the other way round, against the generated config
/// as it is, all taking turns.
fn directives(bin: &Path) -> Result<Vec<Figure>> {
    let tmp = tempfile::tempdir()?;
    let hls = tmp.path().join("hls");
    write_hot_files(&hls)?;
    let mut running = Vec::new();
    let mut configs = Vec::new();
    for (i, edit) in std::iter::once(None)
        .chain(EDITS.iter().map(Some))
        .enumerate()
    {
        let (nginx, port) = serve(tmp.path(), &format!("edit-{i}"), "/seg.ts", |p, r| {
            let text = generated_config(bin, "1", p, &hls, r)?;
            match edit {
                Some(e) => (e.apply)(&text),
                None => Ok(text),
            }
        })?;
        running.push(nginx);
        configs.push((String::new(), port));
    }
    eprintln!(
        "   the generated config and {} variants, {} files, {REPS} rounds of {SECS} s",
        EDITS.len(),
        HOT_FILES.len()
    );
    let m = take_turns(&configs, REPS, SECS)?;
    drop(running);
    let area =
        || format!("origin directives (wrk, 1 worker, median of {REPS} × {SECS} s, hot files)");
    let show = |c: usize| {
        HOT_FILES
            .iter()
            .enumerate()
            .map(|(f, (_, what))| {
                if c == 0 {
                    format!(
                        "{what} {:.0} req/s (p99 {:.2} ms)",
                        m[&(0, f)].0,
                        m[&(0, f)].1
                    )
                } else {
                    format!(
                        "{what} {:.2}× (p99 {:.2} ms)",
                        ratio(m[&(c, f)].0, m[&(0, f)].0),
                        m[&(c, f)].1
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = vec![(area(), "the generated config as it is".to_owned(), show(0))];
    for (i, e) in EDITS.iter().enumerate() {
        rows.push((
            area(),
            format!(
                "{} {} ({}), against the generated config",
                if e.kept { "without" } else { "with" },
                e.what,
                if e.kept { "kept" } else { "dropped" }
            ),
            show(i + 1),
        ));
    }
    Ok(rows)
}

/// The figures of one swarm run against one nginx.
struct SwarmLoad {
    summary: serde_json::Value,
    nginx_cores: f64,
}

/// The native swarm (`viewers`, `secs`) on `url`; the CPU of the nginx whose
/// master is `nginx_pid`, over the whole run.
fn swarm_load(bin: &Path, url: &str, viewers: u32, secs: u64, nginx_pid: u32) -> Result<SwarmLoad> {
    let tmp = tempfile::tempdir()?;
    let json = tmp.path().join("summary.json");
    let c0 = tree_cpu_ns(nginx_pid);
    let t0 = Instant::now();
    let status = Command::new(bin.join("swarm-client"))
        .args(["run", url, "--engine", "native", "--plain", "--seed", "1"])
        .args(["--set", &format!("clients={viewers}")])
        .args(["--set", "rampRate=200"])
        .args(["--duration", &format!("{secs}s")])
        .args(["--metrics-addr", "127.0.0.1:0", "--summary-json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run swarm-client")?;
    let nginx_cores =
        tree_cpu_ns(nginx_pid).saturating_sub(c0) as f64 / 1e9 / t0.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the swarm failed ({status}) on {url}");
    }
    let summary = serde_json::from_str(
        &std::fs::read_to_string(&json).context("the swarm wrote no summary")?,
    )?;
    Ok(SwarmLoad {
        summary,
        nginx_cores,
    })
}

/// The live stream (FFmpeg rewriting the playlist as it goes) served by the
/// origin's own generated config and by the stock config from the same
/// directory: wrk on the playlist, then the native swarm for 2 minutes each.
fn live(bin: &Path) -> Result<Vec<Figure>> {
    let origin = crate::lab::origin(bin, &[], true)?;
    let opid = origin.pid().context("the origin is not running")?;
    let gen_nginx = *children_named(opid, "nginx")
        .first()
        .context("the origin has no nginx")?;
    let tmp = tempfile::tempdir()?;
    let hls = origin.hls_dir().to_owned();
    let (stock, stock_port) = serve(tmp.path(), "stock-live", "/stream.m3u8", |p, r| {
        Ok(stock_config("auto", p, &hls, r))
    })?;
    let configs = [
        ("generated", origin.port, gen_nginx),
        ("stock", stock_port, stock.0.id()),
    ];
    let area = || "origin live stream (FFmpeg writing; worker_processes auto)".to_owned();
    let mut rows = Vec::new();
    let mut playlist = Vec::new();
    for (name, port, _) in configs {
        eprintln!("   {name} config: the live playlist for 10 s (wrk)");
        playlist.push(wrk(
            &format!("http://127.0.0.1:{port}/stream.m3u8"),
            10,
            None,
        )?);
    }
    rows.push((
        area(),
        "playlist being rewritten, wrk: generated / stock req/s (p99 ms)".to_owned(),
        format!(
            "{:.0} ({:.2}) / {:.0} ({:.2}) = {:.2}×",
            playlist[0].0,
            playlist[0].1,
            playlist[1].0,
            playlist[1].1,
            ratio(playlist[0].0, playlist[1].0)
        ),
    ));
    let (viewers, secs) = (1000, 120);
    for (name, port, pid) in configs {
        eprintln!("   {name} config: {viewers} native viewers for {secs} s");
        let url = format!("http://127.0.0.1:{port}/stream.m3u8");
        let l = swarm_load(bin, &url, viewers, secs, pid)?;
        let t = &l.summary["totals"];
        let n = &t["native"];
        let req = &n["requests"];
        let requests =
            t["segments"].as_f64().unwrap_or(0.0) + t["playlists"].as_f64().unwrap_or(0.0);
        let http_errors: u64 = t["httpErrors"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        rows.push((
            area(),
            format!("{name} config, {viewers} native viewers for {secs} s: viewers started, listed segments that answered 404, HTTP errors, rebuffers"),
            format!(
                "{}, {}, {}, {}",
                t["viewersStarted"], n["segmentsGone"], http_errors, n["rebuffers"]
            ),
        ));
        rows.push((
            area(),
            format!("{name} config, {viewers} native viewers: segment TTFB p50 / p99, playlist TTFB p99 (ms)"),
            format!(
                "{} / {}, {}",
                req["segment"]["ttfbMs"]["p50"],
                req["segment"]["ttfbMs"]["p99"],
                req["playlist"]["ttfbMs"]["p99"]
            ),
        ));
        rows.push((
            area(),
            format!("{name} config, {viewers} native viewers: nginx CPU, requests per CPU-second"),
            format!(
                "{:.3} cores, {:.0}",
                l.nginx_cores,
                requests / (l.nginx_cores * secs as f64).max(1e-9)
            ),
        ));
    }
    drop(stock);
    drop(origin);
    Ok(rows)
}

/// Segments read from disk with an empty page cache (where this machine
/// lets the bench drop it): generated, generated with `aio threads` and
/// stock, one worker each, for 1 s, each request a file not read before.
fn cold(bin: &Path, root: &Path) -> Result<Vec<Figure>> {
    let area = || "origin cold segments (wrk, 1 worker, page cache dropped)".to_owned();
    let drop_caches = Path::new("/proc/sys/vm/drop_caches");
    if std::fs::OpenOptions::new()
        .write(true)
        .open(drop_caches)
        .is_err()
    {
        return Ok(vec![(
            area(),
            "skipped".into(),
            "the page cache cannot be dropped here (needs root)".into(),
        )]);
    }
    // on the target directory's disk: a tmpfs is never cold
    let tmp = tempfile::tempdir_in(crate::lab::target_dir(root))?;
    let fs = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(tmp.path())
        .output()?;
    if String::from_utf8_lossy(&fs.stdout).trim() == "tmpfs" {
        return Ok(vec![(
            area(),
            "skipped".into(),
            "the target directory is in memory (tmpfs)".into(),
        )]);
    }
    let files = 10_000;
    let hls = tmp.path().join("hls");
    std::fs::create_dir_all(hls.join("c"))?;
    eprintln!("   writing {files} segments of 100 KB");
    let mut rng = fastrand::Rng::with_seed(2);
    for i in 0..files {
        let data: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
        std::fs::write(hls.join(format!("c/{i}.ts")), data)?;
    }
    write_hot_files(&hls)?;
    // each file in turn; a run short enough not to come round again, so
    // that every request is a cold read (checked below)
    let script = tmp.path().join("cold.lua");
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = i + 1\n  \
             return wrk.format(\"GET\", \"/c/\" .. (i % {files}) .. \".ts\")\nend\n"
        ),
    )?;
    let aio = EDITS
        .iter()
        .find(|e| e.what.starts_with("aio"))
        .context("no aio edit")?;
    let mut results = Vec::new();
    for name in ["generated", "generated with aio threads", "stock"] {
        let (nginx, port) = serve(
            tmp.path(),
            &name.replace(' ', "-"),
            "/seg.ts",
            |p, r| match name {
                "stock" => Ok(stock_config("1", p, &hls, r)),
                "generated" => generated_config(bin, "1", p, &hls, r),
                _ => (aio.apply)(&generated_config(bin, "1", p, &hls, r)?),
            },
        )?;
        let _ = Command::new("sync").status();
        std::fs::write(drop_caches, "3\n").context("cannot drop the page cache")?;
        eprintln!("   {name} config: cold segments for 1 s");
        let (rps, p99) = wrk(&format!("http://127.0.0.1:{port}/"), 1, Some(&script))?;
        if rps > files as f64 {
            bail!(
                "{name}: {rps:.0} req/s read all {files} files within the second; this \
                 machine's disk is faster than the measure (its host caches it)"
            );
        }
        results.push((name, (rps, p99)));
        drop(nginx);
    }
    let stock = results[2].1 .0;
    Ok(results
        .into_iter()
        .map(|(name, (rps, p99))| {
            (
                area(),
                format!("{name} config: req/s (p99 ms), against stock"),
                format!("{rps:.0} ({p99:.2}), {:.2}×", ratio(rps, stock)),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let report = "Running 10s test @ http://127.0.0.1:1/seg.ts\n  1 threads and 50 connections\n\
            \x20 Latency Distribution\n     50%    1.21ms\n     75%    1.50ms\n     90%    2.01ms\n     99%  850.00us\n\
            \x20 123456 requests in 10.00s, 11.50GB read\nRequests/sec:  12345.60\nTransfer/sec:      1.15GB\n";
        assert_eq!(parse_wrk(report), Some((12345.6, 0.85)));
        assert_eq!(
            parse_wrk(&report.replace("850.00us", "1.20s")),
            Some((12345.6, 1200.0))
        );
        assert_eq!(parse_wrk("nothing"), None);
    }
}
