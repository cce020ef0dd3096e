//! Deployment targets: the code that turns a component's generated pieces into
//! artifacts. Components say what goes in; the targets know the formats.
//!
//! A component opts into targets by implementing [`Targets`]. A small
//! component only describes its one long-running command as a
//! [`Deployment`] and gets the runner script, the container image and the
//! systemd unit from [`deployment`]; a bigger one overrides the methods with
//! its own builders.

pub mod container;
pub mod deployment;
pub mod microvm;
pub mod nixos;
pub mod runner;
pub mod sysctl;
pub mod systemd;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

pub use deployment::Deployment;

use crate::component::{Component, Loaded};

crate::word_enum! {
    /// A kind of artifact a component can be built into.
    TargetKind {
        Configs = "configs",
        Runner = "runner",
        Container = "container",
        Microvm = "microvm",
        NixosModule = "nixos-module",
        Systemd = "systemd",
        Sysctl = "sysctl",
    }
}

impl TargetKind {
    /// Every kind, in the order they are built and listed.
    pub const ALL: &'static [TargetKind] = &[
        TargetKind::Configs,
        TargetKind::Runner,
        TargetKind::Container,
        TargetKind::Microvm,
        TargetKind::NixosModule,
        TargetKind::Systemd,
        TargetKind::Sysctl,
    ];

    /// The kind named `s` (its subcommand name).
    pub fn parse(s: &str) -> Option<TargetKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether its artifact is the same for every profile.
    pub fn per_profile(self) -> bool {
        self != TargetKind::Sysctl
    }
}

/// Host programs by name (`ffmpeg` → `/usr/bin/ffmpeg`).
pub type Programs = BTreeMap<String, PathBuf>;

/// Bash and the coreutils that a runner script calls: every image whose
/// entrypoint is a runner script carries them.
pub const RUNNER_TOOLS: &[(&str, &str)] = &[
    ("bash", "bash"),
    ("env", "coreutils"),
    ("mktemp", "coreutils"),
    ("chmod", "coreutils"),
    ("mkdir", "coreutils"),
    ("cat", "coreutils"),
    ("seq", "coreutils"),
    ("sleep", "coreutils"),
    ("tail", "coreutils"),
    ("rm", "coreutils"),
];

/// A component's deployment targets. Every method has a default: the runner,
/// container and systemd targets are built from [`Targets::deployment`]; the
/// others say that the component does not have them.
pub trait Targets: Component + Sized {
    /// The targets this component has; the CLI, `cargo xtask build-all` and
    /// the flake offer exactly these.
    const TARGETS: &'static [TargetKind];

    /// Programs its artifacts take from the host: (name, Debian package).
    /// A program named like the component is its own binary.
    const PROGRAMS: &'static [(&'static str, &'static str)];

    /// Component-specific help for a target's subcommand.
    fn about(_kind: TargetKind) -> Option<&'static str> {
        None
    }

    /// The one long-running command of a simple component.
    fn deployment(_l: &Loaded<Self>) -> Option<Deployment> {
        None
    }

    /// Generated config files besides `<name>.json` (relative path, content).
    fn config_files(_l: &Loaded<Self>) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Kernel settings (the sysctl target).
    fn sysctls() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::new()
    }

    /// The runner script.
    fn runner(l: &Loaded<Self>) -> Result<runner::Script> {
        Ok(deployment::runner::<Self>(&need::<Self>(l, "runner")?))
    }

    /// The OCI image.
    fn image(l: &Loaded<Self>, programs: &Programs) -> Result<container::ImageSpec> {
        deployment::image::<Self>(l, &need::<Self>(l, "container")?, programs)
    }

    /// The systemd target's files (relative path, content).
    fn systemd(l: &Loaded<Self>, programs: &Programs) -> Result<Vec<(String, String)>> {
        deployment::systemd::<Self>(&need::<Self>(l, "systemd")?, programs)
    }

    /// The NixOS module's files (relative path, content).
    fn nixos_module(_l: &Loaded<Self>) -> Result<Vec<(String, String)>> {
        bail!("{} has no nixos-module target", Self::NAME)
    }

    /// The microVM.
    fn microvm(
        _l: &Loaded<Self>,
        _programs: &Programs,
        _kernel: PathBuf,
        _modules_dir: PathBuf,
    ) -> Result<microvm::VmSpec> {
        bail!("{} has no microvm target", Self::NAME)
    }
}

fn need<C: Targets>(l: &Loaded<C>, target: &str) -> Result<Deployment> {
    match C::deployment(l) {
        Some(d) => Ok(d),
        None => bail!("{} has no {target} target", C::NAME),
    }
}
