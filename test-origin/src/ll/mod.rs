//! The LL-HLS server: FFmpeg's dash muxer writes each segment of each
//! rendition as CMAF chunks while it encodes (`chunk-stream<i>-<n>.m4s.tmp`,
//! renamed when whole); this server lists every chunk as a part of a Low-Latency
//! HLS media playlist, holds blocking playlist reloads until the part they ask
//! for exists, and streams a hinted part as it is written. nginx serves it
//! to viewers (TLS, HTTP/2, a collapsing cache).
//!
//! * [`chunks`] — the MP4 boxes of init segments and chunks (`mp4-atom`);
//! * [`state`] — segments and parts, playlists and the blocking rules, sans IO;
//! * [`settings`] — what the server is told, built from the origin's config;
//! * [`watch`] — the encoder's files read as they grow;
//! * [`server`] — the HTTP served.

pub mod chunks;
pub mod server;
pub mod settings;
pub mod state;
pub mod watch;

use std::path::PathBuf;

use anyhow::Result;

/// The `ll-server` subcommand's flags.
#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// The server's settings (JSON, written by the origin's run from its
    /// config: renditions, segment and part durations, list size)
    #[arg(long, value_name = "FILE")]
    pub settings: PathBuf,
    /// The directory the encoder writes its CMAF chunks to
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to listen: `unix:PATH` (a Unix socket, what nginx in front
    /// connects to in every target) or `ADDR:PORT` (TCP)
    #[arg(long, value_name = "unix:PATH|ADDR:PORT", value_parser = Listen::parse)]
    pub listen: Listen,
}

/// Where the LL server listens.
#[derive(Clone, Debug, PartialEq)]
pub enum Listen {
    /// A Unix socket at this path (made, and made again when stale).
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

impl Listen {
    /// `unix:PATH` or `ADDR:PORT`.
    pub fn parse(s: &str) -> Result<Listen, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            // sun_path holds 108 bytes with the ending NUL
            if !path.is_absolute() || path.as_os_str().len() > 107 {
                return Err(format!(
                    "unix:{}: the socket's path must be absolute and at most 107 bytes (it is {}); choose a shorter directory",
                    path.display(),
                    path.as_os_str().len()
                ));
            }
            return Ok(Listen::Unix(path));
        }
        s.parse().map(Listen::Tcp).map_err(|_| {
            format!(
                "{s:?}: expected unix:PATH or ADDR:PORT, e.g. unix:/run/ll.sock or 127.0.0.1:17081"
            )
        })
    }
}

/// The server's threads: one more than the cores, so that a worker the
/// encoder preempts does not hold back the answers to the requests held
/// for a part (measured: p99 overshoot 42–45 ms with 3 workers on 2 cores,
/// 48–52 ms with 2, 69–79 ms with 1; docs/BENCHMARKS.md).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
}

/// Runs the LL-HLS server until the process is stopped.
pub fn run(args: &ServerArgs) -> Result<()> {
    use anyhow::Context;
    let text = std::fs::read(&args.settings)
        .with_context(|| format!("cannot read --settings {}", args.settings.display()))?;
    if text.len() > 1 << 20 {
        anyhow::bail!("--settings {}: larger than 1 MiB", args.settings.display());
    }
    let settings: settings::Settings = serde_json::from_slice(&text).map_err(|e| {
        common::error::UsageError(format!("--settings {}: {e}", args.settings.display()))
    })?;
    if settings.renditions.is_empty() || settings.part_target <= 0.0 {
        return Err(common::error::UsageError(format!(
            "--settings {}: no renditions, or no part target",
            args.settings.display()
        ))
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = server::Listener::bind(&args.listen)?;
        let shared = server::Shared::new(settings, args.dir.clone());
        tokio::spawn(watch::watch_files(shared.clone()));
        eprintln!(
            "ll-server: serving {} on {:?}",
            args.dir.display(),
            args.listen
        );
        server::serve(shared, listener).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_a_unix_socket_or_a_tcp_address() {
        assert_eq!(
            Listen::parse("unix:/run/hls-ll-server/ll.sock"),
            Ok(Listen::Unix("/run/hls-ll-server/ll.sock".into()))
        );
        assert_eq!(
            Listen::parse("127.0.0.1:17081"),
            Ok(Listen::Tcp(([127, 0, 0, 1], 17081).into()))
        );
        // relative, too long for sun_path, neither
        let long = format!("unix:/{}", "d".repeat(107));
        for bad in ["unix:ll.sock", long.as_str(), "localhost", "17081", ""] {
            let e = Listen::parse(bad).unwrap_err();
            assert!(e.contains("unix:"), "{bad}: {e}");
        }
    }
}
