//! `test-origin run`: the origin's run description (the runner script's
//! [`runner_script`]) executed here by `common::local_run`, plus what only
//! an interactive run does: notes on where the stream and logs go, and
//! `--verify`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use common::cli::ProfileArgs;
use common::error::UsageError;
use common::local_run::{self, Options};

use crate::ffmpeg::entry_playlist;
use crate::targets::runner_script;
use crate::TestOrigin;

/// What `test-origin run` was asked to do: its flags, as clap reads them.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Port to serve on (default: `server.port` of the profile)
    #[arg(long, env = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Directory for the stream (default: a fresh temp dir, removed on exit)
    #[arg(long, env = "HLS_DIR", value_name = "DIR")]
    pub hls_dir: Option<PathBuf>,
    /// Address to listen on; 0.0.0.0 exposes the origin to the network
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// Where nginx's access logs go (profiles with logging on, e.g.
    /// `logged`, `debug`); default: the config's `logging.directory`. They
    /// are kept after the run.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Once ready, read the stream with ffprobe and print codec and size
    #[arg(long)]
    pub verify: bool,
    /// Seconds to wait for the playlist and /health
    #[arg(long, value_name = "SECONDS", default_value = "30",
          value_parser = |s: &str| s.parse::<u64>().map(Duration::from_secs))]
    pub ready_timeout: Duration,
}

fn absolute(p: &Path) -> Result<String> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// Runs the origin until Ctrl-C/SIGTERM (Ok) or until a child keeps failing (Err).
pub fn run(opts: RunArgs, grace: Duration) -> Result<()> {
    let ffprobe = if opts.verify {
        Some(common::host::find_program("ffprobe", "ffmpeg")?)
    } else {
        None
    };
    // the port is the config's server.port, so it goes through the same checks
    let mut profile = opts.profile.clone();
    if let Some(p) = opts.port {
        profile.set.push(format!("server.port={p}"));
    }
    let loaded = profile.load::<TestOrigin>()?;
    let (c, d) = (&loaded.config, &loaded.derived);
    let script = runner_script(&loaded.profile, c, d);
    let mut set = vec![("LISTEN_ADDR", opts.listen.to_string())];
    if let Some(dir) = &opts.hls_dir {
        set.push(("HLS_DIR", absolute(dir)?));
    }
    // Logs a user asked for are kept: in --log-dir, else in logging.directory.
    let log_dir = if c.logging.enabled {
        let (dir, from) = match &opts.log_dir {
            Some(dir) => (absolute(dir)?, "--log-dir"),
            None => (c.logging.directory.to_string(), "logging.directory"),
        };
        writable_dir(&dir, from)?;
        set.push(("LOG_DIR", dir.clone()));
        Some(dir)
    } else {
        None
    };
    // this binary is the LL-HLS server of the LL profiles
    let me = std::env::current_exe()?;
    let options = Options {
        set,
        grace,
        programs: vec![("test-origin", me)],
    };
    let mut running = local_run::start(&script, &options)?;
    if opts.hls_dir.is_none() {
        println!("  (the HLS dir is temporary and removed on exit)");
    }
    if let Some(dir) = &log_dir {
        println!("  access logs: {dir} (kept after the run)");
    }
    let Some(took) = running.wait_ready(opts.ready_timeout)? else {
        return running.stop();
    };
    println!("ready after {:.1} s — Ctrl-C stops", took.as_secs_f64());

    if let Some(ffprobe) = ffprobe {
        let url = format!(
            "{}/{}",
            running.var("BASE_URL").unwrap_or_default(),
            entry_playlist(c)
        );
        let mut cmd = std::process::Command::new(ffprobe);
        cmd.args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "compact=p=0:nk=0",
        ]);
        if let Some(ca) = running.var("TLS_DIR").filter(|_| c.tls.cert_file.is_none()) {
            // the certificate made at start, checked against its CA
            cmd.args(["-tls_verify", "1", "-ca_file"])
                .arg(format!("{ca}/{}", common::deploy::tls::CA));
        }
        cmd.arg(&url);
        let out = common::supervise::output_within(&mut cmd, opts.ready_timeout, "--ready-timeout");
        if running.stop_requested() {
            // Ctrl-C reached ffprobe too: a stop, not a failed check
            return running.run_until_stopped();
        }
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                running.stop()?;
                return Err(e);
            }
        };
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
            running.stop()?;
            bail!("ffprobe could not read {url}: {err}");
        }
    }
    let hls_dir = PathBuf::from(running.var("HLS_DIR").unwrap_or_default());
    // a media playlist (the last: the master playlist never changes); the
    // LL encoder writes no playlist, its newest chunk file tells instead
    let playlist = if c.low_latency.enable {
        hls_dir.join("chunk-stream0-")
    } else {
        hls_dir.join(crate::ffmpeg::playlist_paths(c).pop().unwrap_or_default())
    };
    let mut stall = StallCheck::new(
        playlist,
        Duration::from_secs(u64::from(c.hls.segment_duration) * 3).max(Duration::from_secs(6)),
    );
    let result = running.run_until_stopped_checking(|| stall.check());
    if let Some(dir) = &log_dir {
        println!("access logs kept in {dir}");
    }
    result
}

/// Watches the playlist FFmpeg rewrites every segment: when it has listed
/// no new segment for `limit`, FFmpeg is stuck (it does not exit when its disk is
/// full, for one), and the reason, with the filesystem's free space, is what
/// the run prints before it restarts FFmpeg.
struct StallCheck {
    playlist: PathBuf,
    limit: Duration,
    last: Option<String>,
    changed: std::time::Instant,
}

impl StallCheck {
    fn new(playlist: PathBuf, limit: Duration) -> Self {
        StallCheck {
            playlist,
            limit,
            last: None,
            changed: std::time::Instant::now(),
        }
    }

    /// The newest segment: the last the playlist lists (FFmpeg on a full
    /// disk goes on rewriting the playlist, empty), or, for a path that ends
    /// in `-` (the LL encoder's `chunk-stream0-`), the last written file of
    /// that name and its size.
    fn newest(&self) -> Option<String> {
        let name = self.playlist.file_name()?.to_str()?;
        if let Some(prefix) = name.strip_suffix('-').map(|p| format!("{p}-")) {
            let dir = self.playlist.parent()?;
            return std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| {
                    let e = e.ok()?;
                    let n = e.file_name().into_string().ok()?;
                    let m = e.metadata().ok()?;
                    // the last written (an earlier encoder's files may
                    // have larger numbers), and how far it has grown
                    n.starts_with(&prefix)
                        .then(|| (m.modified().ok(), format!("{n} {}", m.len())))
                })
                .max()
                .map(|(_, n)| n);
        }
        std::fs::read_to_string(&self.playlist).ok().and_then(|p| {
            p.lines()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
        })
    }

    fn check(&mut self) -> Option<(String, String)> {
        let newest = self.newest();
        if newest.is_some() && newest != self.last {
            self.last = newest;
            self.changed = std::time::Instant::now();
            return None;
        }
        let still = self.changed.elapsed();
        if still < self.limit {
            return None;
        }
        // give the restarted FFmpeg the same time
        self.changed = std::time::Instant::now();
        let dir = self.playlist.parent().unwrap_or(Path::new("/"));
        let space = match common::host::disk_space(dir) {
            Ok((free, total)) => {
                let mb = |b: u64| b as f64 / 1_048_576.0;
                if free < 1_048_576 {
                    format!(
                        "; the filesystem of {} is full (No space left on device: {:.1} of {:.1} MB free)",
                        dir.display(),
                        mb(free),
                        mb(total)
                    )
                } else {
                    format!("; {:.1} MB free in {}", mb(free), dir.display())
                }
            }
            Err(e) => format!("; cannot read the free space of {}: {e}", dir.display()),
        };
        Some((
            "ffmpeg".into(),
            format!(
                "the playlist {} has listed no new segment for {} s{space}",
                self.playlist.display(),
                still.as_secs()
            ),
        ))
    }
}

/// Makes sure `dir` exists and this user may write there, or says what to
/// do instead (exit 2) before anything starts.
fn writable_dir(dir: &str, from: &str) -> Result<()> {
    let hint =
        "pass --log-dir DIR (or --set logging.directory=/path) with a directory you can write";
    let fail = |e: std::io::Error| -> anyhow::Error {
        UsageError(format!(
            "{from} {dir}: cannot write access logs there ({e}); {hint}"
        ))
        .into()
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    tempfile::tempfile_in(dir).map_err(fail)?;
    Ok(())
}
