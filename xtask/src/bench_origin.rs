//! `cargo xtask bench --only origin`: the generated nginx config against a
//! minimal stock config, side by side in one run, serving the same files
//! with wrk as the load: requests/s and p99 latency for a 100 KB segment and
//! a playlist (hot in the page cache), with one worker and with `auto`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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
    fn start(conf: &Path, run: &Path, port: u16) -> Result<Nginx> {
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
        let url = format!("http://127.0.0.1:{port}/seg.ts");
        let t = Instant::now();
        // the segment is not text: ask for its status only
        while common::probe::http_status(&url, Duration::from_millis(500)) != Ok(200) {
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

fn wrk(url: &str, secs: u32) -> Result<(f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t1", "-c50", &format!("-d{secs}s"), "--latency", url])
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// Both configs, both worker settings, both files.
pub fn bench(root: &Path) -> Result<Vec<Figure>> {
    let bin = crate::lab::build(root, true)?;
    let tmp = tempfile::tempdir()?;
    let hls = tmp.path().join("hls");
    std::fs::create_dir_all(&hls)?;
    // 100 KB of stable bytes, and a playlist of ten of them
    let mut rng = fastrand::Rng::with_seed(1);
    let segment: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
    std::fs::write(hls.join("seg.ts"), segment)?;
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n",
    );
    for i in 1..=10 {
        playlist.push_str(&format!("#EXTINF:2.000000,\nseg{i}.ts\n"));
    }
    std::fs::write(hls.join("stream.m3u8"), playlist)?;
    let secs = 10;
    let mut rows = Vec::new();
    for workers in ["1", "auto"] {
        // (config, file) → (req/s, p99 ms)
        let mut results = std::collections::BTreeMap::new();
        for kind in ["generated", "stock"] {
            let run = tmp.path().join(format!("run-{kind}-{workers}"));
            std::fs::create_dir_all(&run)?;
            let port = testkit::free_port();
            let text = match kind {
                "generated" => generated_config(&bin, workers, port, &hls, &run)?,
                _ => stock_config(workers, port, &hls, &run),
            };
            let conf = run.join("nginx.conf");
            std::fs::write(&conf, text)?;
            let nginx = Nginx::start(&conf, &run, port)?;
            for file in ["seg.ts", "stream.m3u8"] {
                let url = format!("http://127.0.0.1:{port}/{file}");
                eprintln!("   {kind} config, {workers} worker(s): {file} for {secs} s");
                results.insert((kind, file), wrk(&url, secs)?);
            }
            drop(nginx);
        }
        for (file, what) in [("seg.ts", "segment (100 KB)"), ("stream.m3u8", "playlist")] {
            let (g, s) = (results[&("generated", file)], results[&("stock", file)]);
            rows.push((
                "origin nginx (wrk, 1 thread, 50 connections, hot files)".to_owned(),
                format!("{what}, worker_processes {workers}: generated / stock req/s (p99 ms)"),
                format!(
                    "{:.0} ({:.2}) / {:.0} ({:.2}) = {:.2}×",
                    g.0,
                    g.1,
                    s.0,
                    s.1,
                    g.0 / s.0.max(1e-9)
                ),
            ));
        }
    }
    Ok(rows)
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
