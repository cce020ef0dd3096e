//! The target subcommands every component gets (`configs`, `runner`,
//! `container`, `microvm`, `nixos-module`, `systemd`, `sysctl`, `kubernetes`): each loads the
//! selected profile, asks the component's [`Targets`] for the artifact and
//! writes it. Subcommands of targets a component lacks are hidden and refused.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use super::{ContainerArgs, ProfileArgs, SysctlArgs};
use crate::artifact::write_files;
use crate::deploy::container::config_document;
use crate::deploy::resolve_programs;
use crate::deploy::{TargetKind, Targets};
use crate::error::UsageError;

/// Subcommands that build a component's deployment artifacts. `K` is the
/// component's own flags of the kubernetes target ([`Targets::KubernetesRun`]).
#[derive(Subcommand, Clone, Debug)]
pub enum TargetCommand<K: clap::Args = NoRunFlags> {
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
        /// Keep the guest's kernel and base archive (its programs, the same
        /// for every profile) in BASES/kernel-<key> and BASES/<key>, shared
        /// with the microVMs built with the same BASES, and link DIR/kernel and
        /// DIR/base to them (default: DIR/kernel and DIR/base hold them)
        #[arg(long, value_name = "BASES")]
        base_dir: Option<PathBuf>,
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
        #[command(flatten)]
        run: K,
        /// Output directory
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
}

/// The options of the kubernetes target every component takes.
#[derive(clap::Args, Clone, Debug)]
pub struct KubernetesArgs {
    /// The image the pods run, pushed where the cluster pulls from, e.g.
    /// registry.example.com/hls-swarm-NAME:PROFILE (the container target
    /// builds it; `skopeo copy` pushes it)
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// The objects' namespace (default: the one kubectl uses)
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
}

/// The kubernetes target's flags of a component that runs as one
/// long-lived pod: none.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NoRunFlags {}

impl KubernetesArgs {
    /// The options, checked: exit status 2 naming a bad value.
    pub fn options(&self) -> Result<crate::deploy::kubernetes::Options, UsageError> {
        use crate::deploy::kubernetes::{check_image, check_namespace};
        check_image(&self.image)?;
        if let Some(ns) = &self.namespace {
            check_namespace(ns)?;
        }
        Ok(crate::deploy::kubernetes::Options {
            image: self.image.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

impl<K: clap::Args> TargetCommand<K> {
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
    pub fn run<C: Targets<KubernetesRun = K>>(self, out: &mut dyn Write) -> Result<()> {
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
                base_dir,
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
                let built = crate::deploy::microvm::build(&spec, &dir, base_dir.as_deref())?;
                writeln!(out, "{}", dir.join("bin/microvm-run").display())?;
                writeln!(
                    out,
                    "  base {} ({} bytes, {}), config {} bytes",
                    built.base.display(),
                    built.base_bytes,
                    if built.base_built {
                        "written"
                    } else {
                        "already there"
                    },
                    built.config_bytes
                )?;
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
                // with the runner's tools: a oneshot unit may run them
                // (mkdir, rm)
                let programs = resolve_programs::<C>(&binaries, true)?;
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
                run,
                out: dir,
            } => {
                let opts = kubernetes.options()?;
                let l = profile.load::<C>()?;
                let w = C::kubernetes(&l, &opts, &run)?;
                write_files(&dir, &crate::deploy::kubernetes::files(&w)?, out)
            }
        }
    }
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
    let mut cmd = P::command()
        .name(C::NAME)
        .bin_name(C::NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .about(C::ABOUT);
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
