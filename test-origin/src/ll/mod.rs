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
    /// Address and port to listen on (loopback: nginx serves viewers)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:17081")]
    pub listen: std::net::SocketAddr,
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
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let shared = server::Shared::new(settings, args.dir.clone());
        tokio::spawn(watch::watch_files(shared.clone()));
        eprintln!(
            "ll-server: serving {} on {}",
            args.dir.display(),
            args.listen
        );
        server::serve(shared, listener).await
    })
}
