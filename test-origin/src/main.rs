use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use common::cli::{report, CommonCommand, ProfileArgs, UsageError};
use common::render::{resolve_all, Template};
use common::types::AbsPath;
use test_origin::nginx::{nginx_config, Flavour, LocalSite};
use test_origin::{ffmpeg, sysctl, TestOrigin};

/// A live HLS test origin: FFmpeg encodes a synthetic stream, nginx serves it
/// with cache headers tuned to the segment duration.
#[derive(Parser)]
#[command(name = "test-origin", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),

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
        /// logs in --run-dir, listens on --listen)
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
    Run {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Port to serve on (default: `server.port` of the profile)
        #[arg(long, env = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// Directory for the stream (default: a fresh temp dir, removed on exit)
        #[arg(long, env = "HLS_DIR", value_name = "DIR")]
        hls_dir: Option<PathBuf>,
        /// Address to listen on; 0.0.0.0 exposes the origin to the network
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
        listen: std::net::IpAddr,
        /// Once ready, read the stream with ffprobe and print codec and size
        #[arg(long)]
        verify: bool,
        /// Seconds to wait for the playlist and /health
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        ready_timeout: u64,
    },

    /// Write the standalone runner script DIR/bin/test-hls-origin
    ///
    /// The script needs only bash, coreutils, ffmpeg and nginx, and does what
    /// `run` does: PORT, HLS_DIR and LISTEN_ADDR from the environment, a banner,
    /// a wait for the stream, restarts, and cleanup on exit.
    Runner {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory (the script goes to DIR/bin/)
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },

    /// Build the OCI image of the origin (no daemon needed)
    ///
    /// FFmpeg, ffprobe, nginx, bash and the few coreutils the runner script
    /// uses come from this host with their shared-library closure; the
    /// entrypoint is the runner script; the image runs as user nginx (uid 1000).
    /// Load it with `podman load -i FILE` and run it with `-p 17080:17080`.
    Container {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        container: common::cli::ContainerArgs,
    },

    /// Write systemd units, slices, sysusers.d, tmpfiles.d and sysctl.d files
    ///
    /// For hosts that are not NixOS: copy DIR/systemd/* to /etc/systemd/system,
    /// DIR/sysusers.d, DIR/tmpfiles.d and DIR/sysctl.d to /etc, and
    /// DIR/hls-swarm/test-origin/nginx.conf to /etc/hls-swarm/test-origin/.
    Systemd {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// FFmpeg in the units (default: found on PATH)
        #[arg(long, value_name = "PATH")]
        ffmpeg: Option<PathBuf>,
        /// nginx in the units (default: found on PATH)
        #[arg(long, value_name = "PATH")]
        nginx: Option<PathBuf>,
    },

    /// Write a microVM: DIR/vmlinuz, DIR/initramfs.cpio, DIR/bin/microvm-run and microvm-stop
    ///
    /// The guest holds the same files as the container image plus the virtio
    /// modules it needs, and its init starts the runner script as uid 1000.
    /// HTTP_PORT (default 17080) and the other forwards bind to 127.0.0.1.
    Microvm {
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Kernel (default: the newest /boot/vmlinuz-*)
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
        /// Its modules (default: /lib/modules/<version of the kernel>)
        #[arg(long, value_name = "DIR")]
        modules_dir: Option<PathBuf>,
        #[arg(long = "binary", value_name = "NAME=PATH")]
        binaries: Vec<String>,
    },

    /// Write the NixOS module DIR/test-origin.nix
    ///
    /// `services.hls-swarm.test-origin.enable = true;` runs the encoder and
    /// nginx as hardened systemd services with a tmpfs for the stream, the
    /// slices, the sysctls and exporters on 127.0.0.1. It grants no access:
    /// no passwords, no SSH keys, no root login; `openFirewall` opens the port.
    NixosModule {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },

    /// Print (or write, or apply) the origin's kernel settings as a sysctl.d file
    Sysctl {
        #[command(flatten)]
        args: common::cli::SysctlArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FlavourArg {
    Full,
    Local,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    report(run(cli.command))
}

fn run(command: Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Common(c) => c.run::<TestOrigin>(&mut out),
        Command::FfmpegArgs { profile, json } => {
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
        Command::NginxConfig {
            mut profile,
            flavour,
            port,
            root,
            run_dir,
            listen,
        } => {
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
            let text = nginx_config(&l.config, &l.derived, &flavour).resolve(&|_| None)?;
            write!(out, "{text}")?;
            Ok(())
        }
        Command::Run {
            profile,
            port,
            hls_dir,
            listen,
            verify,
            ready_timeout,
        } => test_origin::run::run(test_origin::run::RunOptions {
            profile,
            port,
            hls_dir,
            listen,
            verify,
            ready_timeout: std::time::Duration::from_secs(ready_timeout),
            grace: std::time::Duration::from_secs(3),
        }),
        Command::Runner { profile, out: dir } => {
            let l = profile.load::<TestOrigin>()?;
            let script = test_origin::targets::runner_script(&l.profile, &l.config, &l.derived);
            let path = common::target::runner::write(&dir, &script)?;
            writeln!(out, "{}", path.display())?;
            Ok(())
        }
        Command::Container { profile, container } => {
            let l = profile.load::<TestOrigin>()?;
            let binaries = container.binaries(test_origin::targets::IMAGE_PROGRAMS)?;
            let spec = test_origin::targets::container_image(
                &l.profile, &l.config, &l.derived, &binaries,
            )?;
            container.build(&spec, &mut out)?;
            Ok(())
        }
        Command::Systemd {
            profile,
            out: dir,
            ffmpeg,
            nginx,
        } => {
            let l = profile.load::<TestOrigin>()?;
            let path = |p: Option<PathBuf>, name: &str, pkg: &str| -> Result<String> {
                let p = match p {
                    Some(p) => p,
                    None => common::host::find_program(name, pkg)?,
                };
                let s = p
                    .to_str()
                    .ok_or_else(|| UsageError(format!("{} is not UTF-8", p.display())))?
                    .to_owned();
                AbsPath::parse(&s).map_err(|e| UsageError(format!("--{name}: {e}")))?;
                Ok(s)
            };
            let (ff, ng) = (
                path(ffmpeg, "ffmpeg", "ffmpeg")?,
                path(nginx, "nginx", "nginx-light")?,
            );
            let files =
                test_origin::targets::systemd_files(&l.profile, &l.config, &l.derived, &ff, &ng);
            common::artifact::write_files(&dir, &files, &mut out)
        }
        Command::Microvm {
            profile,
            out: dir,
            kernel,
            modules_dir,
            binaries,
        } => {
            let l = profile.load::<TestOrigin>()?;
            let (host_kernel, host_modules) = match (&kernel, &modules_dir) {
                (Some(k), Some(m)) => (k.clone(), m.clone()),
                _ => common::target::microvm::host_kernel()?,
            };
            let args = common::cli::ContainerArgs {
                out: None,
                format: common::cli::ImageFormat::OciDir,
                push: None,
                binaries,
                cache_dir: None,
            };
            let bins = args.binaries(test_origin::targets::IMAGE_PROGRAMS)?;
            let spec = test_origin::targets::microvm_spec(
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
            let l = profile.load::<TestOrigin>()?;
            let path = dir.join("test-origin.nix");
            common::artifact::write_atomic(
                &path,
                test_origin::targets::nixos_module(&l.profile, &l.config, &l.derived).as_bytes(),
            )?;
            writeln!(out, "{}", path.display())?;
            let guest = dir.join("test-origin-microvm.nix");
            common::artifact::write_atomic(
                &guest,
                test_origin::targets::microvm_nix_guest(&l.profile, &l.config).as_bytes(),
            )?;
            writeln!(out, "{}", guest.display())?;
            Ok(())
        }
        Command::Sysctl { args } => {
            args.run("test-origin kernel settings", &sysctl::sysctls(), &mut out)
        }
    }
}
