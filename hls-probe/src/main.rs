use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::{Command as Process, ExitCode};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Subcommand;
use common::cli::{report, Command as Cmd, ProfileArgs};
use hls_probe::HlsProbe;

type Cli = common::cli::Cli<Own>;

/// The subcommands of this component of its own.
#[derive(Subcommand)]
enum Own {
    /// Probe the stream every `interval` s; serve /health (200 while the recent
    /// probes pass, else 503) and /metrics (Prometheus text) until stopped
    Run {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The stream (default: `url` of the config)
        #[arg(long)]
        url: Option<String>,
        /// Port of /health and /metrics (default: `port` of the config)
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on; 0.0.0.0 exposes it to the network
        #[arg(long, default_value = "127.0.0.1")]
        listen: IpAddr,
    },
}

#[derive(Default)]
struct State {
    checks: u64,
    failures: u64,
    in_a_row: u32,
    last_pass: Option<Instant>,
    last: String,
    seconds: f64,
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse::<Cli, HlsProbe>();
    let mut out = std::io::stdout().lock();
    report(match cli.command {
        Cmd::Common(c) => c.run::<Cli, HlsProbe>(&mut out),
        Cmd::Targets(t) => t.run::<HlsProbe>(&mut out),
        Cmd::Own(Own::Run {
            mut profile,
            url,
            port,
            listen,
        }) => {
            // the flags are config values: the same validation applies
            profile
                .set
                .extend(url.map(|u| format!("url=\"{}\"", u.replace(['\\', '"'], ""))));
            profile.set.extend(port.map(|p| format!("port={p}")));
            profile
                .load::<HlsProbe>()
                .map_err(Into::into)
                .and_then(|l| run(l, listen))
        }
    })
}

fn run(l: common::Loaded<HlsProbe>, listen: IpAddr) -> anyhow::Result<()> {
    let (c, d) = (&l.config, &l.derived);
    let ffprobe = common::host::find_program("ffprobe", "ffmpeg")?;
    let addr = SocketAddr::new(listen, c.port as u16);
    let server = TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}; pick another with --port"))?;
    eprintln!(
        "hls-probe: probing {} every {} s; health on http://{addr}/health",
        c.url, c.interval
    );
    let state = Arc::new(Mutex::new(State::default()));
    let (shared, stale, limit) = (
        state.clone(),
        Duration::from_secs(d.stale_after_secs.into()),
        c.unhealthy_after,
    );
    std::thread::spawn(move || {
        for mut conn in server.incoming().flatten() {
            // read the whole request head: closing with unread data resets the connection
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let (mut line, mut reader) = (String::new(), BufReader::new(&conn));
            let _ = reader.read_line(&mut line);
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let s = shared.lock().unwrap();
            let healthy = s.in_a_row < limit && s.last_pass.is_some_and(|t| t.elapsed() < stale);
            let (status, body) = match line.split(' ').nth(1).unwrap_or("") {
                "/health" if healthy => ("200 OK", format!("ok: {}\n", s.last)),
                "/health" => ("503 Service Unavailable", format!("unhealthy: {}\n", s.last)),
                "/metrics" => ("200 OK", format!("# TYPE hls_probe_up gauge\nhls_probe_up {}\n# TYPE hls_probe_checks counter\nhls_probe_checks_total {}\n# TYPE hls_probe_failures counter\nhls_probe_failures_total {}\n# TYPE hls_probe_duration_seconds gauge\nhls_probe_duration_seconds {:.3}\n", u8::from(healthy), s.checks, s.failures, s.seconds)),
                _ => ("404 Not Found", "try /health or /metrics\n".into()),
            };
            let _ = write!(
                conn,
                "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let stop = common::supervise::shutdown_flag()?;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut cmd = Process::new(&ffprobe);
        cmd.args([
            "-v",
            "error",
            "-rw_timeout",
            &(u64::from(c.timeout) * 1_000_000).to_string(),
        ])
        .args([
            "-show_entries",
            "stream=index,codec_name",
            "-of",
            "csv=p=0",
            c.url.as_str(),
        ]);
        // `timeout` bounds the whole probe, not only each read
        let out = common::supervise::output_within(
            &mut cmd,
            Duration::from_secs(c.timeout.into()),
            "timeout",
        );
        if stop.load(Ordering::Relaxed) {
            // Ctrl-C reached ffprobe too: a stop, not a failed probe
            break;
        }
        let (ok, text, err) = match &out {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (false, Default::default(), e.to_string()),
        };
        // ffprobe lists a stream once per program it is in: one entry per index
        let streams: std::collections::BTreeMap<u32, &str> = text
            .lines()
            .filter_map(|l| l.split_once(','))
            .filter_map(|(i, codec)| Some((i.parse().ok()?, codec)))
            .collect();
        let codecs: Vec<&str> = streams.into_values().collect();
        let mut s = state.lock().unwrap();
        s.checks += 1;
        s.seconds = started.elapsed().as_secs_f64();
        if ok && !codecs.is_empty() {
            (s.in_a_row, s.last_pass, s.last) = (
                0,
                Some(Instant::now()),
                format!("streams {}", codecs.join(",")),
            );
        } else {
            (s.failures, s.in_a_row) = (s.failures + 1, s.in_a_row + 1);
            s.last = err.lines().last().unwrap_or("no streams found").to_owned();
            eprintln!(
                "hls-probe: probe failed ({} in a row): {}",
                s.in_a_row, s.last
            );
        }
        drop(s);
        // until the next probe, or a stop
        let next = started + Duration::from_secs(c.interval.into());
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!("hls-probe: stopped");
    Ok(())
}
