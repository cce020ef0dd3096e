use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use common::cli::{exit_status, CommonCommand, ProfileArgs};
use swarm_client::config::VariantMode;
use swarm_client::run::{check_url, parse_header, NeverReachable, RunArgs};
use swarm_client::viewer::{viewer_args, Capabilities, StreamMap, ViewerOptions, PROGRESS_FD};
use swarm_client::SwarmClient;

/// A swarm of simulated HLS viewers: many `ffmpeg` processes read a live stream,
/// started at a controlled ramp rate, supervised and measured.
#[derive(Parser)]
#[command(name = "swarm-client", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ViewerFlags {
    /// Connect to this IP address instead of the URL's host (the Host header
    /// keeps the URL's host), e.g. to load one CDN node
    #[arg(long, value_name = "IP")]
    resolve: Option<IpAddr>,
    /// Extra request header `Name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Send `Cache-Control: no-cache` and `Pragma: no-cache`
    #[arg(long)]
    no_cache: bool,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),

    /// Put a swarm of viewers on a stream
    ///
    /// Starts `clients` viewers at `rampRate` per second (each delayed by up to
    /// `rampJitter` ms), restarts a viewer that exits with backoff, prints a
    /// status line every second, serves Prometheus metrics, and at the end
    /// (--duration, Ctrl-C or SIGTERM) stops every viewer and prints a summary.
    /// Exit status: 0 done, 1 failure, 2 bad input, 3 stream never reachable.
    Run {
        /// The stream, e.g. http://127.0.0.1:17080/stream.m3u8
        url: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Stop after this long (`30s`, `5m`, `1h`); default: until Ctrl-C
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Also write the summary as JSON to FILE
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// Seed of the ramp jitter and backoff (printed at start; replays a run)
        #[arg(long)]
        seed: Option<u64>,
        /// Serve metrics here instead of 127.0.0.1:<metricsPort>; use
        /// 0.0.0.0:9090 to let another host scrape them
        #[arg(long, value_name = "ADDR:PORT")]
        metrics_addr: Option<SocketAddr>,
        /// Append each viewer's FFmpeg log to DIR/viewer-<id>.log
        #[arg(long, value_name = "DIR")]
        viewer_logs: Option<PathBuf>,
        #[command(flatten)]
        viewer: ViewerFlags,
    },

    /// Build the OCI image of the swarm client (no daemon needed)
    ///
    /// This binary, FFmpeg, ffprobe, ss and bash with their shared-library
    /// closure; runs as user swarm (uid 1000). Run it with
    /// `-e STREAM_URL=http://…/stream.m3u8`; CLIENTS, RAMP_RATE, RAMP_JITTER,
    /// METRICS_PORT, LOG_LEVEL, VARIANT and TIMEOUT override the profile.
    Container {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        container: common::cli::ContainerArgs,
    },

    /// Write the systemd unit (not enabled: it needs STREAM_URL) and sysctl.d file
    Systemd {
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// The swarm-client program in the unit (default: this binary)
        #[arg(long, value_name = "PATH")]
        program: Option<PathBuf>,
    },

    /// Write a microVM: DIR/vmlinuz, DIR/initramfs.cpio, DIR/bin/microvm-run and microvm-stop
    ///
    /// Start it with STREAM_URL (from the guest, the host is 10.0.2.2), and
    /// optionally CLIENTS and DURATION; the VM powers off when the swarm ends.
    Microvm {
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        modules_dir: Option<PathBuf>,
    },

    /// Write the NixOS module DIR/swarm-client.nix
    NixosModule {
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },

    /// Print (or write, or apply) the client's kernel settings as a sysctl.d file
    Sysctl {
        #[command(flatten)]
        args: common::cli::SysctlArgs,
    },

    /// Print the FFmpeg arguments of one viewer (one per line)
    ViewerArgs {
        /// The stream URL
        url: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Viewer number (for the user agent)
        #[arg(long, default_value_t = 0)]
        id: u32,
        /// For `highest`/`lowest`: the program to map (else the master playlist is probed)
        #[arg(long)]
        program: Option<u32>,
        #[command(flatten)]
        viewer: ViewerFlags,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<NeverReachable>() {
                ExitCode::from(3)
            } else {
                ExitCode::from(exit_status(&e))
            }
        }
    }
}

fn run(command: Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Common(c) => c.run::<SwarmClient>(&mut out),
        Command::Systemd {
            profile,
            out: dir,
            program,
        } => {
            let l = profile.load::<SwarmClient>()?;
            let p = match program {
                Some(p) => p,
                None => std::env::current_exe()?,
            };
            let p = p
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))?
                .to_owned();
            common::types::AbsPath::parse(&p)
                .map_err(|e| common::cli::UsageError(format!("--program: {e}")))?;
            let files = swarm_client::targets::systemd_files(&l.profile, &l.config, &l.derived, &p);
            common::artifact::write_files(&dir, &files, &mut out)
        }
        Command::Microvm {
            profile,
            out: dir,
            kernel,
            modules_dir,
        } => {
            let l = profile.load::<SwarmClient>()?;
            let (host_kernel, host_modules) = match (&kernel, &modules_dir) {
                (Some(k), Some(m)) => (k.clone(), m.clone()),
                _ => common::target::microvm::host_kernel()?,
            };
            let args = common::cli::ContainerArgs {
                out: None,
                format: common::cli::ImageFormat::OciDir,
                push: None,
                binaries: vec![format!(
                    "swarm-client={}",
                    std::env::current_exe()?.display()
                )],
                cache_dir: None,
            };
            let bins = args.binaries(swarm_client::targets::IMAGE_PROGRAMS)?;
            let spec = swarm_client::targets::microvm_spec(
                &l.profile,
                &l.config,
                &l.derived,
                &bins,
                kernel.unwrap_or(host_kernel),
                modules_dir.unwrap_or(host_modules),
            )?;
            common::target::microvm::build(&spec, &dir)?;
            writeln!(out, "{}", dir.join("bin/microvm-run").display())?;
            Ok(())
        }
        Command::NixosModule { profile, out: dir } => {
            let l = profile.load::<SwarmClient>()?;
            let path = dir.join("swarm-client.nix");
            common::artifact::write_atomic(
                &path,
                swarm_client::targets::nixos_module(&l.profile, &l.config, &l.derived).as_bytes(),
            )?;
            writeln!(out, "{}", path.display())?;
            Ok(())
        }
        Command::Sysctl { args } => args.run(
            "swarm-client kernel settings",
            &swarm_client::sysctl::sysctls(),
            &mut out,
        ),
        Command::Run {
            url,
            profile,
            duration,
            summary_json,
            seed,
            metrics_addr,
            viewer_logs,
            viewer,
        } => {
            drop(out);
            swarm_client::run::run(RunArgs {
                url,
                profile,
                duration,
                summary_json,
                seed,
                metrics_addr,
                resolve: viewer.resolve,
                headers: viewer.headers,
                no_cache: viewer.no_cache,
                viewer_logs,
            })
        }
        Command::Container {
            profile,
            mut container,
        } => {
            let l = profile.load::<SwarmClient>()?;
            let own = std::env::current_exe()?;
            if !container
                .binaries
                .iter()
                .any(|b| b.starts_with("swarm-client="))
            {
                container
                    .binaries
                    .push(format!("swarm-client={}", own.display()));
            }
            let binaries = container.binaries(swarm_client::targets::IMAGE_PROGRAMS)?;
            let spec = swarm_client::targets::container_image(
                &l.profile, &l.config, &l.derived, &binaries,
            )?;
            container.build(&spec, &mut out)?;
            Ok(())
        }
        Command::ViewerArgs {
            url,
            mut profile,
            id,
            program,
            viewer,
        } => {
            check_url(&url)?;
            if viewer.no_cache {
                profile.set.push("noCache=true".into());
            }
            let l = profile.load::<SwarmClient>()?;
            let map = match (l.config.variant, program) {
                (VariantMode::All, _) => StreamMap::All,
                (VariantMode::First, _) => StreamMap::First,
                (_, Some(p)) => StreamMap::Program(p),
                (mode, None) => {
                    let ffprobe = common::host::find_program("ffprobe", "ffmpeg")?;
                    let t = Duration::from_secs(u64::from(l.config.timeout));
                    StreamMap::Program(
                        swarm_client::run::probe_program(&ffprobe, &url, mode, t).map_err(|e| {
                            anyhow::anyhow!(
                                "cannot pick the {} variant: {e}; pass --program",
                                mode.as_str()
                            )
                        })?,
                    )
                }
            };
            let headers = viewer
                .headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<Vec<_>, _>>()?;
            let opts = ViewerOptions {
                map,
                progress_fd: Some(PROGRESS_FD),
                resolve: viewer.resolve,
                headers,
                caps: Capabilities::FULL,
            };
            for a in viewer_args(&l.config, &url, id, &opts) {
                writeln!(out, "{a}")?;
            }
            Ok(())
        }
    }
}
