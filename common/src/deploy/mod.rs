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
pub mod description;
pub mod kubernetes;
pub mod microvm;
pub mod nixos;
pub mod runner;
pub mod sysctl;
pub mod systemd;
pub mod tls;
pub mod unit;

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
        Kubernetes = "kubernetes",
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
        TargetKind::Kubernetes,
    ];

    /// The kind named `s` (its subcommand name).
    pub fn parse(s: &str) -> Option<TargetKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether its artifact is the same for every profile.
    pub fn per_profile(self) -> bool {
        self != TargetKind::Sysctl
    }

    /// The host programs building this target takes, as (name, Debian
    /// package), for a component whose artifacts use `programs` and whose
    /// own binary is `own`: text targets take none; systemd units name the
    /// programs' paths; the image copies them and the runner tools; the
    /// microVM also takes busybox.
    pub fn host_programs(
        self,
        programs: &[(&'static str, &'static str)],
        own: &str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = match self {
            TargetKind::Container | TargetKind::Microvm | TargetKind::Systemd => programs.to_vec(),
            _ => Vec::new(),
        };
        if matches!(self, TargetKind::Container | TargetKind::Microvm) {
            out.extend(RUNNER_TOOLS);
        }
        if self == TargetKind::Microvm {
            out.push(("busybox", "busybox-static"));
        }
        out.retain(|(p, _)| *p != own);
        out.sort();
        out.dedup();
        out
    }

    /// What this host lacks of `needed` (the target's [`host_programs`]):
    /// each missing program with the command that installs it, and for a
    /// microVM a missing kernel.
    ///
    /// [`host_programs`]: TargetKind::host_programs
    pub fn missing_on_host(self, needed: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut m: Vec<String> = needed
            .iter()
            .filter(|(p, _)| crate::host::find_program(p, "").is_err())
            .map(|(p, package)| format!("{p} (apt-get install {package})"))
            .collect();
        if self == TargetKind::Microvm && microvm::host_kernel().is_err() {
            m.push("a kernel in /boot (apt-get install linux-image-amd64)".into());
        }
        m
    }
}

/// Host programs by name (`ffmpeg` → `/usr/bin/ffmpeg`).
pub type Programs = BTreeMap<String, PathBuf>;

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

/// Host paths of `programs` (name, Debian package): `NAME=PATH` flags first,
/// the rest looked up on PATH (a missing one says which package has it).
pub fn programs_from_flags(flags: &[String], programs: &[(&str, &str)]) -> Result<Programs> {
    let mut out = std::collections::BTreeMap::new();
    for b in flags {
        let (name, path) = b.split_once('=').ok_or_else(|| {
            crate::error::UsageError(format!("--binary `{b}`: expected NAME=PATH"))
        })?;
        if !programs.iter().any(|(n, _)| *n == name) {
            let names: Vec<&str> = programs.iter().map(|(n, _)| *n).collect();
            return Err(crate::error::UsageError(format!(
                "--binary `{b}`: no program `{name}` here; the programs are {}",
                names.join(", ")
            ))
            .into());
        }
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(crate::error::UsageError(format!(
                "--binary `{b}`: {} is not a file",
                path.display()
            ))
            .into());
        }
        out.insert(name.to_owned(), path);
    }
    for (name, package) in programs {
        if !out.contains_key(*name) {
            out.insert(
                (*name).to_owned(),
                crate::host::find_program(name, package)?,
            );
        }
    }
    Ok(out)
}

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
    ("timeout", "coreutils"),
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

    /// The component's own flags of the kubernetes target (those of a run
    /// split over pods, say); [`crate::cli::NoRunFlags`] for none.
    type KubernetesRun: clap::Args + Clone + std::fmt::Debug + Default;

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
    fn runner(l: &Loaded<Self>) -> Result<description::Script> {
        Ok(deployment::runner::<Self>(&need::<Self>(l, "runner")?))
    }

    /// The OCI image.
    fn image(l: &Loaded<Self>, programs: &Programs) -> Result<container::ImageSpec> {
        deployment::simple_image::<Self>(l, &need::<Self>(l, "container")?, programs)
    }

    /// The systemd target's files (relative path, content).
    fn systemd(l: &Loaded<Self>, programs: &Programs) -> Result<Vec<(String, String)>> {
        deployment::systemd::<Self>(&need::<Self>(l, "systemd")?, programs)
    }

    /// The NixOS module's files (relative path, content).
    fn nixos_module(_l: &Loaded<Self>) -> Result<Vec<(String, String)>> {
        bail!("{} has no nixos-module target", Self::NAME)
    }

    /// The kubernetes target's workload: by default the deployment's one
    /// command as a hardened Deployment of the component's image.
    fn kubernetes(
        l: &Loaded<Self>,
        k: &kubernetes::Options,
        _run: &Self::KubernetesRun,
    ) -> Result<kubernetes::Workload> {
        deployment::kubernetes::<Self>(l, &need::<Self>(l, "kubernetes")?, k)
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

/// Every text a component generates for one profile, as (name, content): the
/// config files, the runner script, the systemd and NixOS files, the sysctl
/// file, and the text parts of the image and of the microVM (their spec and
/// the files written into them; files copied from the host are named by
/// layer only). Snapshot tests keep all of it under review, so a change to
/// any artifact shows as a diff. `programs` are the host programs' paths (as
/// `resolve_programs` gives them, runner tools included).
pub fn generated_texts<C: Targets>(
    l: &Loaded<C>,
    programs: &Programs,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for kind in C::TARGETS {
        let k = kind.as_str();
        match kind {
            TargetKind::Configs => {
                out.push((
                    format!("configs/{}.json", C::NAME),
                    container::config_document(&l.profile, &l.config, &l.derived)?,
                ));
                for (p, t) in C::config_files(l) {
                    out.push((format!("configs/{p}"), t));
                }
            }
            TargetKind::Runner => {
                let s = C::runner(l)?;
                out.push((format!("runner/bin/{}", s.name), runner::render(&s)));
            }
            TargetKind::Container => {
                let spec = C::image(l, programs)?;
                out.extend(container::describe(&spec));
            }
            TargetKind::Microvm => {
                let spec = C::microvm(
                    l,
                    programs,
                    PathBuf::from("/boot/vmlinuz-VERSION"),
                    PathBuf::from("/lib/modules/VERSION"),
                )?;
                out.extend(microvm::describe(&spec));
            }
            TargetKind::NixosModule => {
                for (p, t) in C::nixos_module(l)? {
                    out.push((format!("{k}/{p}"), t));
                }
            }
            TargetKind::Systemd => {
                for (p, t) in C::systemd(l, programs)? {
                    out.push((format!("{k}/{p}"), t));
                }
            }
            TargetKind::Sysctl => {
                out.push((
                    format!("{k}/{}", systemd::sysctl_file_name(C::NAME)),
                    sysctl::file_text(C::NAME, &C::sysctls()),
                ));
            }
            TargetKind::Kubernetes => {
                // the image the container target builds, nothing else
                let opts = kubernetes::Options {
                    image: format!("{}:{}", deployment::image_name::<C>(), l.profile),
                    namespace: None,
                };
                for (p, t) in kubernetes::files(&C::kubernetes(l, &opts, &Default::default())?)? {
                    out.push((format!("{k}/{p}"), t));
                }
            }
        }
    }
    Ok(out)
}

/// [`generated_texts`] as one document: each text under a `=== name ===`
/// line, a text met before only named.
pub fn generated_document<C: Targets>(l: &Loaded<C>, programs: &Programs) -> Result<String> {
    let mut doc = String::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, text) in generated_texts(l, programs)? {
        if let Some(first) = seen.get(&text) {
            doc.push_str(&format!("=== {name} === the same as {first}\n"));
            continue;
        }
        seen.insert(text.clone(), name.clone());
        doc.push_str(&format!("=== {name} ===\n{text}"));
        if !text.ends_with('\n') {
            doc.push('\n');
        }
    }
    Ok(doc)
}

/// [`generated_document`] of every profile of `C`, with the programs found
/// on this host and `own` as the component's own binary (its path written as
/// `/usr/local/bin/<name>`, so the documents do not depend on where it was
/// built): what the components' snapshot tests hold under review.
pub fn profile_documents<C: Targets>(own: &str) -> Result<Vec<(String, String)>> {
    let flags: Vec<String> = C::PROGRAMS
        .iter()
        .filter(|(n, _)| *n == C::NAME)
        .map(|_| format!("{}={own}", C::NAME))
        .collect();
    let programs = resolve_programs::<C>(&flags, true)?;
    let mut out = Vec::new();
    for profile in crate::component::profile_names::<C>()? {
        let l = crate::component::load::<C>(&crate::Request {
            profile: profile.clone(),
            ..Default::default()
        })?;
        let doc =
            generated_document(&l, &programs)?.replace(own, &format!("/usr/local/bin/{}", C::NAME));
        out.push((profile, doc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_names_the_host_programs_it_takes() {
        let programs = [("me", "hls-swarm"), ("ffmpeg", "ffmpeg")];
        for text in [
            TargetKind::Configs,
            TargetKind::Runner,
            TargetKind::NixosModule,
            TargetKind::Sysctl,
        ] {
            assert!(text.host_programs(&programs, "me").is_empty(), "{text:?}");
        }
        assert_eq!(
            TargetKind::Systemd.host_programs(&programs, "me"),
            [("ffmpeg", "ffmpeg")]
        );
        let image = TargetKind::Container.host_programs(&programs, "me");
        assert!(image.contains(&("ffmpeg", "ffmpeg")) && image.contains(&("bash", "bash")));
        assert!(!image.iter().any(|(p, _)| *p == "me" || *p == "busybox"));
        let vm = TargetKind::Microvm.host_programs(&programs, "me");
        assert!(vm.contains(&("busybox", "busybox-static")));
        let missing = TargetKind::Systemd.missing_on_host(&[("surely-not-here-xyz", "xyz-tools")]);
        assert_eq!(missing, ["surely-not-here-xyz (apt-get install xyz-tools)"]);
    }
}
