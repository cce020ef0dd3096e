//! The local run: FFmpeg and nginx from the one builder of each, supervised.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::cli::{ProfileArgs, UsageError};
use common::host::{ensure_port_free, ensure_writable_dir, find_program};
use common::render::{resolve_all, Template};
use common::supervise::{shutdown_flag, Event, Spec, Supervisor};

use crate::banner::banner;
use crate::ffmpeg::{entry_playlist, ffmpeg_args};
use crate::nginx::{nginx_args, nginx_config, required_dirs, Flavour, LocalSite};
use crate::TestOrigin;

/// What `test-origin run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub profile: ProfileArgs,
    pub port: Option<u16>,
    pub hls_dir: Option<PathBuf>,
    pub listen: IpAddr,
    /// Where access logs go (kept); `None`: the temp dir.
    pub log_dir: Option<PathBuf>,
    pub verify: bool,
    /// How long the stream may take to appear.
    pub ready_timeout: Duration,
    /// How long children get between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Where a run keeps its files. The state dir is removed at the end.
struct Dirs {
    state: tempfile::TempDir,
    hls: PathBuf,
    run: PathBuf,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn prepare_dirs(hls_dir: Option<&Path>) -> Result<Dirs> {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::Builder::new()
        .prefix("test-origin-")
        .tempdir()
        .context("cannot create a temp dir")?;
    // nginx workers (user `nobody` when started by root) must reach the stream
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755))?;
    let hls = match hls_dir {
        Some(d) => {
            let d = absolute(d)?;
            ensure_writable_dir(&d, "--hls-dir or HLS_DIR")?;
            d
        }
        None => {
            let d = state.path().join("hls");
            std::fs::create_dir(&d)?;
            d
        }
    };
    let run = state.path().join("run");
    std::fs::create_dir(&run)?;
    Ok(Dirs { state, hls, run })
}

fn str_path(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// Runs the origin until Ctrl-C/SIGTERM (Ok) or until a child keeps failing (Err).
pub fn run(opts: RunOptions) -> Result<()> {
    let ffmpeg = find_program("ffmpeg", "ffmpeg")?;
    let nginx = find_program("nginx", "nginx-light")?;
    let ffprobe = if opts.verify {
        Some(find_program("ffprobe", "ffmpeg")?)
    } else {
        None
    };

    let dirs = prepare_dirs(opts.hls_dir.as_deref())?;
    // The run's port and HLS dir are the config's server.port/server.hlsDir,
    // so they go through the same validation.
    let mut profile = opts.profile.clone();
    if let Some(p) = opts.port {
        profile.set.push(format!("server.port={p}"));
    }
    let hls = str_path(&dirs.hls)?;
    profile
        .set
        .push(format!("server.hlsDir={}", toml_string(hls)));
    let loaded = profile.load::<TestOrigin>()?;
    let (c, d) = (&loaded.config, &loaded.derived);
    let port = u16::try_from(c.server.port).map_err(|_| UsageError("port out of range".into()))?;
    ensure_port_free(opts.listen, port, "--port or PORT")?;

    let listen = match opts.listen {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let url_host = if opts.listen.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.clone()
    };
    let base_url = format!("http://{url_host}:{port}");
    let run_dir = str_path(&dirs.run)?;
    let mut site = LocalSite::fixed(&listen, port, hls, run_dir);
    let log_dir = match &opts.log_dir {
        Some(d) => {
            let d = absolute(d)?;
            ensure_writable_dir(&d, "--log-dir")?;
            let s = str_path(&d)?.to_owned();
            if s.chars()
                .any(|ch| ch.is_whitespace() || "\"';{}$\\".contains(ch))
            {
                return Err(UsageError(format!(
                    "--log-dir {s}: expected a path without spaces, quotes, `;`, braces or `$`"
                ))
                .into());
            }
            site.log_dir = Template::text(&s);
            Some(s)
        }
        None => None,
    };
    let flavour = Flavour::Local(site);
    let conf_path = dirs.run.join("nginx.conf");
    let fixed = |_: &str| None;
    std::fs::write(&conf_path, nginx_config(c, d, &flavour).resolve(&fixed)?)?;
    for dir in required_dirs(c, &flavour) {
        std::fs::create_dir_all(dir.resolve(&fixed)?)?;
    }

    let vars = |v: &str| match v {
        "BASE_URL" => Some(base_url.clone()),
        "HLS_DIR" => Some(hls.to_owned()),
        _ => None,
    };
    print!("{}", banner(&loaded.profile, c, d).resolve(&vars)?);
    if opts.hls_dir.is_none() {
        println!("  (the HLS dir is temporary and removed on exit)");
    }
    if c.logging.enabled {
        match &log_dir {
            Some(d) => println!("  access logs: {d}"),
            None => println!(
                "  access logs: {run_dir}/logs (removed on exit; --log-dir DIR keeps them)"
            ),
        }
    }

    let shutdown = shutdown_flag()?;
    let mut sup = Supervisor::new()?;
    let ff = sup.start(Spec {
        name: "ffmpeg".into(),
        program: ffmpeg,
        args: resolve_all(&ffmpeg_args(c, d, &Template::text(hls)), &fixed)?,
        env: Vec::new(),
        echo: true,
    })?;
    let ng = sup.start(Spec {
        name: "nginx".into(),
        program: nginx,
        args: resolve_all(
            &nginx_args(
                &Template::text(run_dir),
                &Template::text(conf_path.to_str().unwrap_or_default()),
            ),
            &fixed,
        )?,
        env: Vec::new(),
        echo: true,
    })?;

    // Wait for the playlist and /health.
    let started = Instant::now();
    let playlist = dirs.hls.join(entry_playlist(c));
    let health = format!("{base_url}/health");
    loop {
        if shutdown.load(Ordering::Relaxed) {
            sup.stop_all(opts.grace);
            return Ok(());
        }
        for e in sup.poll() {
            if let Event::GaveUp { .. } = e {
                return Err(gave_up(&mut sup, &e, opts.grace));
            }
            eprintln!("test-origin: {e}");
        }
        if playlist.exists() && common::probe::is_ok(&health, Duration::from_secs(1)) {
            break;
        }
        if started.elapsed() > opts.ready_timeout {
            let mut msg = format!(
                "the stream was not ready within {} s ({} {}, /health {})",
                opts.ready_timeout.as_secs(),
                playlist.display(),
                if playlist.exists() {
                    "exists"
                } else {
                    "missing"
                },
                if common::probe::is_ok(&health, Duration::from_secs(1)) {
                    "answers"
                } else {
                    "does not answer"
                },
            );
            for (name, idx) in [("ffmpeg", ff), ("nginx", ng)] {
                msg.push_str(&format!("\nlast lines of {name}:"));
                for l in sup.last_output(idx).iter().rev().take(10).rev() {
                    msg.push_str(&format!("\n  {l}"));
                }
            }
            sup.stop_all(opts.grace);
            bail!(msg);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "ready after {:.1} s — Ctrl-C stops",
        started.elapsed().as_secs_f64()
    );

    if let Some(ffprobe) = ffprobe {
        let url = format!("{base_url}/{}", entry_playlist(c));
        let out = std::process::Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,codec_name,width,height",
                "-of",
                "compact=p=0:nk=0",
            ])
            .arg(&url)
            .output()?;
        if out.status.success() {
            println!("verified {url}:");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut seen = std::collections::BTreeSet::new();
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                // HLS programs repeat their streams: print each once
                if seen.insert(l) {
                    println!("  {l}");
                }
            }
        } else {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            sup.stop_all(opts.grace);
            bail!("ffprobe could not read {url}: {err}");
        }
    }

    loop {
        if shutdown.load(Ordering::Relaxed) {
            eprintln!("test-origin: stopping");
            sup.stop_all(opts.grace);
            drop(sup);
            dirs.state.close().context("cannot remove the temp dir")?;
            eprintln!("test-origin: stopped");
            return Ok(());
        }
        for e in sup.poll() {
            if let Event::GaveUp { .. } = e {
                return Err(gave_up(&mut sup, &e, opts.grace));
            }
            eprintln!("test-origin: {e}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gave_up(sup: &mut Supervisor, e: &Event, grace: Duration) -> anyhow::Error {
    sup.stop_all(grace);
    let mut msg = e.to_string();
    if let Event::GaveUp { last_output, .. } = e {
        msg.push_str("\nits last lines:");
        for l in last_output.iter().rev().take(15).rev() {
            msg.push_str(&format!("\n  {l}"));
        }
    }
    anyhow::anyhow!(msg)
}

/// A TOML basic string literal of `s`.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
