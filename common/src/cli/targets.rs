//! The target subcommands every component gets (`configs`, `runner`,
//! `container`, `microvm`, `nixos-module`, `systemd`, `sysctl`, `kubernetes`): each loads the
//! selected profile, asks the component's [`Targets`] for the artifact and
//! writes it. Subcommands of targets a component lacks are hidden and refused.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use super::{programs_from_flags, ContainerArgs, ProfileArgs, SysctlArgs, UsageError};
use crate::artifact::write_files;
use crate::deploy::container::config_document;
use crate::deploy::{Programs, TargetKind, Targets, RUNNER_TOOLS};

/// Subcommands that build a component's deployment artifacts.
#[derive(Subcommand, Clone, Debug)]
pub enum TargetCommand {
    /// Write the generated config files: DIR/<component>.json (merged config
    /// and derived values) and the component's own config files
    Configs {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write the standalone runner script to DIR/bin/
    Runner {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory (the script goes to DIR/bin/)
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Build the OCI image (no daemon needed)
    Container {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        container: ContainerArgs,
    },
    /// Write a microVM: DIR/vmlinuz, DIR/initramfs.cpio, DIR/bin/microvm-run and microvm-stop
    Microvm {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Kernel (default: the newest /boot/vmlinuz-*)
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
        /// Its modules (default: /lib/modules/<version of the kernel>)
        #[arg(long, value_name = "DIR")]
        modules_dir: Option<PathBuf>,
        /// Take a program from PATH instead of looking it up on PATH (repeatable)
        #[arg(long = "binary", value_name = "NAME=PATH")]
        binaries: Vec<String>,
    },
    /// Write the NixOS module to DIR
    NixosModule {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write systemd units (and the files they use) to DIR
    Systemd {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Put this program's path in the units instead of the one on PATH,
        /// e.g. --binary ffmpeg=/opt/ffmpeg/bin/ffmpeg (repeatable)
        #[arg(long = "binary", value_name = "NAME=PATH")]
        binaries: Vec<String>,
    },
    /// Print (or write, or apply) the kernel settings as a sysctl.d file
    ///
    /// The settings are the host's, the same for every profile; the profile
    /// (and any --set) is read and checked like the other subcommands do.
    Sysctl {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        args: SysctlArgs,
    },
    /// Write Kubernetes manifests to DIR: one YAML file per object, a
    /// kustomization (`kubectl apply -k DIR`) and a README
    Kubernetes {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        kubernetes: KubernetesArgs,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
}

/// The options of the kubernetes target.
#[derive(clap::Args, Clone, Debug)]
pub struct KubernetesArgs {
    /// The image the pods run, pushed where the cluster pulls from, e.g.
    /// registry.example.com/hls-swarm-test-origin:default (the container
    /// target builds it; `skopeo copy` pushes it)
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// The objects' namespace (default: the one kubectl uses)
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// The pods sharing the run, as an Indexed Job (default 1);
    /// pod i plays viewers [i·clients/N, (i+1)·clients/N)
    #[arg(long, value_name = "N")]
    pub pods: Option<u32>,
    /// How long each pod plays (default 10m)
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// The wall-clock time (RFC 3339, e.g.
    /// 2026-11-26T18:00:00Z) every pod waits for, so that the ramp is global
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<std::time::SystemTime>,
    /// The run's seed, the same in every pod (default 1)
    #[arg(long)]
    pub seed: Option<u64>,
    /// The stream the pods load (default: the test origin's
    /// Service in the same namespace)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// A PersistentVolumeClaim each pod also writes its
    /// results to, as shard-INDEX.json
    #[arg(long, value_name = "CLAIM")]
    pub results_claim: Option<String>,
}

impl KubernetesArgs {
    /// The options, checked: exit status 2 naming a bad value.
    pub fn options(&self) -> Result<crate::deploy::kubernetes::Options, UsageError> {
        use crate::deploy::kubernetes::{check_dns_name, check_image, check_namespace};
        check_image(&self.image)?;
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        if self.pods == Some(0) {
            return Err(UsageError("--pods 0: expected at least 1 pod".to_owned()));
        }
        if let Some(c) = &self.results_claim {
            check_dns_name("--results-claim", c)?;
        }
        Ok(crate::deploy::kubernetes::Options {
            image: self.image.clone(),
            namespace: self.namespace.clone(),
            pods: self.pods,
            duration: self.duration,
            start_at: self.start_at,
            seed: self.seed,
            url: self.url.clone(),
            results_claim: self.results_claim.clone(),
        })
    }
}

impl TargetCommand {
    /// The target this subcommand builds.
    pub fn kind(&self) -> TargetKind {
        match self {
            TargetCommand::Configs { .. } => TargetKind::Configs,
            TargetCommand::Runner { .. } => TargetKind::Runner,
            TargetCommand::Container { .. } => TargetKind::Container,
            TargetCommand::Microvm { .. } => TargetKind::Microvm,
            TargetCommand::NixosModule { .. } => TargetKind::NixosModule,
            TargetCommand::Systemd { .. } => TargetKind::Systemd,
            TargetCommand::Sysctl { .. } => TargetKind::Sysctl,
            TargetCommand::Kubernetes { .. } => TargetKind::Kubernetes,
        }
    }

    /// Builds the artifact of component `C` and prints what was written.
    pub fn run<C: Targets>(self, out: &mut dyn Write) -> Result<()> {
        let kind = self.kind();
        if !C::TARGETS.contains(&kind) {
            let have: Vec<&str> = C::TARGETS.iter().map(|k| k.as_str()).collect();
            return Err(UsageError(format!(
                "{} has no {} target; it has {}",
                C::NAME,
                kind.as_str(),
                have.join(", ")
            ))
            .into());
        }
        match self {
            TargetCommand::Configs { profile, out: dir } => {
                let l = profile.load::<C>()?;
                let mut files = vec![(
                    format!("{}.json", C::NAME),
                    config_document(&l.profile, &l.config, &l.derived)?,
                )];
                files.extend(C::config_files(&l));
                write_files(&dir, &files, out)
            }
            TargetCommand::Runner { profile, out: dir } => {
                let l = profile.load::<C>()?;
                let path = crate::deploy::runner::write(&dir, &C::runner(&l)?)?;
                writeln!(out, "{}", path.display())?;
                Ok(())
            }
            TargetCommand::Container { profile, container } => {
                let l = profile.load::<C>()?;
                let programs = resolve_programs::<C>(&container.binaries, true)?;
                container.build(&C::image(&l, &programs)?, out)?;
                Ok(())
            }
            TargetCommand::Microvm {
                profile,
                out: dir,
                kernel,
                modules_dir,
                binaries,
            } => {
                let l = profile.load::<C>()?;
                let (host_kernel, host_modules) = match (&kernel, &modules_dir) {
                    (Some(k), Some(m)) => (k.clone(), m.clone()),
                    _ => crate::deploy::microvm::host_kernel()?,
                };
                let programs = resolve_programs::<C>(&binaries, true)?;
                let spec = C::microvm(
                    &l,
                    &programs,
                    kernel.unwrap_or(host_kernel),
                    modules_dir.unwrap_or(host_modules),
                )?;
                crate::deploy::microvm::build(&spec, &dir)?;
                writeln!(out, "{}", dir.join("bin/microvm-run").display())?;
                Ok(())
            }
            TargetCommand::NixosModule { profile, out: dir } => {
                let l = profile.load::<C>()?;
                write_files(&dir, &C::nixos_module(&l)?, out)
            }
            TargetCommand::Systemd {
                profile,
                out: dir,
                binaries,
            } => {
                let l = profile.load::<C>()?;
                let programs = resolve_programs::<C>(&binaries, false)?;
                for (name, path) in &programs {
                    let s = path.to_str().ok_or_else(|| {
                        UsageError(format!("{name}: {} is not UTF-8", path.display()))
                    })?;
                    crate::types::AbsPath::parse(s)
                        .map_err(|e| UsageError(format!("--binary {name}: {e}")))?;
                }
                write_files(&dir, &C::systemd(&l, &programs)?, out)
            }
            TargetCommand::Sysctl { profile, args } => {
                profile.load::<C>()?;
                args.run(C::NAME, &C::sysctls(), out)
            }
            TargetCommand::Kubernetes {
                profile,
                kubernetes,
                out: dir,
            } => {
                let opts = kubernetes.options()?;
                let l = profile.load::<C>()?;
                let w = C::kubernetes(&l, &opts)?;
                write_files(&dir, &crate::deploy::kubernetes::files(&w)?, out)
            }
        }
    }
}

/// The host paths of a component's programs (and, for images, of the runner
/// script's tools): `--binary NAME=PATH` first, the component's own binary is
/// this executable, the rest from PATH.
pub fn resolve_programs<C: Targets>(flags: &[String], with_tools: bool) -> Result<Programs> {
    let mut list: Vec<(&str, &str)> = C::PROGRAMS.to_vec();
    if with_tools {
        list.extend(RUNNER_TOOLS.iter().filter(|t| !C::PROGRAMS.contains(t)));
    }
    let mut flags = flags.to_vec();
    let own = format!("{}=", C::NAME);
    if list.iter().any(|(n, _)| *n == C::NAME) && !flags.iter().any(|f| f.starts_with(&own)) {
        flags.push(format!("{own}{}", std::env::current_exe()?.display()));
    }
    programs_from_flags(&flags, &list)
}

/// Parses the command line of component `C`'s binary: subcommands of targets
/// it lacks are hidden, the others get the component's own help text. `P`'s
/// subcommand enum must flatten [`TargetCommand`].
pub fn parse<P: Parser, C: Targets>() -> P {
    let matches = command::<P, C>().get_matches();
    P::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line of component `C`'s binary as [`parse`] reads it (for
/// completions and man pages too).
pub fn command<P: clap::CommandFactory, C: Targets>() -> clap::Command {
    let mut cmd = P::command();
    for kind in TargetKind::ALL {
        let have = C::TARGETS.contains(kind);
        let about = C::about(*kind);
        cmd = cmd.mut_subcommand(kind.as_str(), |s| {
            let s = s.hide(!have);
            match about {
                Some(text) => s
                    .about(text.lines().next().unwrap_or_default().to_owned())
                    .long_about(text),
                None => s,
            }
        });
    }
    // the kubernetes flags of a run split over pods, where they apply
    cmd = cmd.mut_subcommand(TargetKind::Kubernetes.as_str(), |mut s| {
        for (id, flag) in KUBERNETES_RUN_FLAGS {
            let hide = !C::KUBERNETES_RUN_FLAGS.contains(flag);
            s = s.mut_arg(*id, |a| a.hide(hide));
        }
        s
    });
    // `--set` examples of this component's own keys, in every subcommand
    let [a, b] = C::SET_EXAMPLES;
    let help = format!(
        "Override one value, e.g. `--set {a}` or `--set {b}`. The value is a TOML \
         literal; a bare word is a string. Repeatable; applied after --overrides, and \
         wins over the profile"
    );
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| s.get_arguments().any(|a| a.get_id() == "set"))
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let help = help.clone();
        cmd = cmd.mut_subcommand(name, |s| {
            s.mut_arg("set", |a| a.help(help.clone()).long_help(help))
        });
    }
    cmd
}

/// The kubernetes target's flags of a run split over pods: (clap id, flag).
const KUBERNETES_RUN_FLAGS: &[(&str, &str)] = &[
    ("pods", "--pods"),
    ("duration", "--duration"),
    ("start_at", "--start-at"),
    ("seed", "--seed"),
    ("url", "--url"),
    ("results_claim", "--results-claim"),
];
