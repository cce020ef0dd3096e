use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use common::cli::{report, Command as Cmd, ProfileArgs};
use common::error::UsageError;
use common::render::{resolve_all, Template};
use common::types::AbsPath;
use test_origin::nginx::{nginx_config, required_dirs, Flavour, LocalSite};
use test_origin::{ffmpeg, TestOrigin};

type Cli = common::cli::Cli<Own>;

/// The subcommands of this component of its own.
#[derive(Subcommand)]
enum Own {
    /// Print the FFmpeg arguments that encode the stream (one per line)
    ///
    /// The same builder feeds the local run, the runner script, the container,
    /// the microVM, the NixOS module and the systemd unit. The stream is written
    /// to `server.hlsDir` (change it with `--set server.hlsDir=/path`).
    FfmpegArgs {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Print a JSON array instead of one argument per line
        #[arg(long)]
        json: bool,
    },

    /// Print the nginx config that serves the stream
    NginxConfig {
        #[command(flatten)]
        profile: ProfileArgs,
        /// `full`: the production config (user nginx, system paths, all
        /// addresses); `local`: for a run on this machine (no user, pid, temp and
        /// logs in --run-dir, which is created if missing, listens on --listen)
        #[arg(long, value_enum, default_value_t = FlavourArg::Full)]
        flavour: FlavourArg,
        /// Port to listen on (default: `server.port` of the config)
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// HLS directory to serve (default: `server.hlsDir` of the config)
        #[arg(long, value_name = "DIR")]
        root: Option<String>,
        /// local flavour: directory for the pid file, temp files and logs
        #[arg(long, value_name = "DIR", default_value = "/tmp/test-origin-run")]
        run_dir: String,
        /// local flavour: address to listen on
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
        listen: std::net::IpAddr,
    },

    /// Run the origin here: FFmpeg encodes, nginx serves, both supervised
    ///
    /// Prints a banner with the URLs, waits until the playlist exists and
    /// nginx answers /health, restarts a child that dies (three quick failures
    /// in a row end the run), and on Ctrl-C or SIGTERM stops both and removes
    /// its temporary files. Try it with a light stream:
    /// `test-origin run --set video.width=640 --set video.height=360`.
    Run(test_origin::run::RunArgs),

    /// Serve Low-Latency HLS from the encoder's CMAF chunks (a service of
    /// the LL profiles' runs)
    ///
    /// Lists each chunk as a part, holds blocking playlist reloads
    /// (`_HLS_msn`, `_HLS_part`) until the part exists (503 after three target
    /// durations), answers delta updates (`_HLS_skip`), and streams the hinted
    /// part as it is written. HTTP/1.1 on loopback: nginx serves viewers.
    LlServer(test_origin::ll::ServerArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum FlavourArg {
    Full,
    Local,
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse::<Cli, TestOrigin>();
    report(run(cli.command))
}

fn run(command: Cmd<Own>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Cmd::Common(c) => c.run::<Cli, TestOrigin>(&mut out),
        Cmd::Targets(t) => t.run::<TestOrigin>(&mut out),
        Cmd::Own(Own::FfmpegArgs { profile, json }) => {
            let l = profile.load::<TestOrigin>()?;
            let dir = Template::text(l.config.server.hls_dir.as_str());
            let args = resolve_all(&ffmpeg::ffmpeg_args(&l.config, &l.derived, &dir), &|_| None)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&args)?)?;
            } else {
                for a in args {
                    writeln!(out, "{a}")?;
                }
            }
            Ok(())
        }
        Cmd::Own(Own::NginxConfig {
            mut profile,
            flavour,
            port,
            root,
            run_dir,
            listen,
        }) => {
            // --port/--root are the config's server.port/server.hlsDir: same checks.
            if let Some(p) = port {
                profile.set.push(format!("server.port={p}"));
            }
            if let Some(r) = root {
                profile.set.push(format!(
                    "server.hlsDir=\"{}\"",
                    r.replace('\\', "\\\\").replace('"', "\\\"")
                ));
            }
            let l = profile.load::<TestOrigin>()?;
            let flavour = match flavour {
                FlavourArg::Full => Flavour::Full,
                FlavourArg::Local => {
                    let run_dir = AbsPath::parse(&run_dir)
                        .map_err(|e| UsageError(format!("--run-dir: {e}")))?;
                    let listen = match listen {
                        std::net::IpAddr::V6(a) => format!("[{a}]"),
                        a => a.to_string(),
                    };
                    Flavour::Local(LocalSite::fixed(
                        &listen,
                        l.config.server.port as u16,
                        l.config.server.hls_dir.as_str(),
                        run_dir.as_str(),
                    ))
                }
            };
            if let Flavour::Local(site) = &flavour {
                // nginx -t opens the pid and log files: make the config usable as printed
                let mut dirs = vec![site.run_dir.clone()];
                dirs.extend(required_dirs(&l.config, &flavour));
                for dir in resolve_all(&dirs, &|_| None)? {
                    if !std::path::Path::new(&dir).is_dir() {
                        std::fs::create_dir_all(&dir).map_err(|e| {
                            UsageError(format!(
                                "--run-dir: cannot create {dir} ({e}); pass --run-dir DIR with a directory you can write"
                            ))
                        })?;
                        eprintln!("created {dir}");
                    }
                }
            }
            let text = nginx_config(&l.config, &l.derived, &flavour).resolve(&|_| None)?;
            write!(out, "{text}")?;
            Ok(())
        }
        Cmd::Own(Own::Run(args)) => test_origin::run::run(args, std::time::Duration::from_secs(3)),
        Cmd::Own(Own::LlServer(args)) => test_origin::ll::run(&args),
    }
}
