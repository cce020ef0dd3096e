//! `cargo xtask build-all`: every artifact of every component × profile ×
//! target, as the registry describes them, built by the components' own
//! binaries into `OUT/<component>/<profile>/<target>/` (profile-independent
//! targets into `OUT/<component>/<target>/`), with `OUT/index.json`.
//!
//! A target whose host programs are missing is skipped with a note. A job
//! whose inputs (the component binary, its arguments, the host programs it
//! packs) are unchanged since the last run is reused, not rebuilt. Each job
//! writes to a temp dir renamed into place, so an interrupted run leaves no
//! half-written artifact.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use common::deploy::TargetKind;
use common::describe::ComponentInfo;
use common::error::UsageError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What to build.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Only this component
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
    /// Only this profile (name or alias)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Only this target: configs, runner, container, microvm, nixos-module,
    /// systemd, sysctl or kubernetes (repeatable)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Use debug builds of the components (faster to compile, bigger images)
    #[arg(long)]
    pub debug: bool,
}

/// One artifact to build.
#[derive(Clone, Debug)]
struct Job {
    component: &'static str,
    profile: Option<String>,
    target: TargetKind,
    /// Host programs it needs, with their Debian packages.
    programs: Vec<(&'static str, &'static str)>,
    /// The profiles of a component-wide job: its container images, which
    /// share one image layout (and the layers they have in common).
    profiles: Vec<String>,
}

impl Job {
    fn dir(&self) -> PathBuf {
        let mut p = PathBuf::from(self.component);
        if let Some(profile) = &self.profile {
            p.push(profile);
        }
        p.push(self.target.as_str());
        p
    }
    fn label(&self) -> String {
        // a component-wide job of one profile reads as that profile's
        let profile = match (self.profiles.as_slice(), &self.profile) {
            ([one], _) => one.as_str(),
            ([], Some(p)) => p.as_str(),
            ([], None) => "-",
            _ => "*",
        };
        format!("{} {} {}", self.component, profile, self.target.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct FileEntry {
    path: String,
    sha256: String,
    size: u64,
}

#[derive(Serialize, Deserialize)]
struct State {
    key: String,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
struct Artifact {
    component: &'static str,
    profile: Option<String>,
    target: &'static str,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
struct Skipped {
    component: &'static str,
    profile: Option<String>,
    target: &'static str,
    reason: String,
}

fn pick<'a>(
    what: &str,
    given: &str,
    names: impl IntoIterator<Item = &'a str> + Clone,
) -> UsageError {
    let all: Vec<&str> = names.clone().into_iter().collect();
    let hint = common::suggest::closest(given, all.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    UsageError(format!(
        "--{what}: no {what} `{given}`; there are {}{hint}",
        all.join(", ")
    ))
}

/// The jobs of `components` that the filters select.
fn jobs(components: &[ComponentInfo], o: &Options) -> Result<Vec<Job>> {
    if let Some(c) = &o.component {
        if !components.iter().any(|x| x.name == c) {
            return Err(pick("component", c, components.iter().map(|x| x.name)).into());
        }
    }
    let targets = o
        .targets
        .iter()
        .map(|t| {
            TargetKind::parse(t)
                .ok_or_else(|| pick("target", t, TargetKind::ALL.iter().map(|k| k.as_str())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let mut profile_seen = o.profile.is_none();
    for c in components {
        if o.component.as_deref().is_some_and(|x| x != c.name) {
            continue;
        }
        let profiles: Vec<&str> = match &o.profile {
            None => c.profiles.iter().map(|p| p.name.as_str()).collect(),
            Some(want) => c
                .profiles
                .iter()
                .filter(|p| &p.name == want || p.aliases.contains(want))
                .map(|p| p.name.as_str())
                .collect(),
        };
        profile_seen |= !profiles.is_empty();
        for kind in TargetKind::ALL {
            if !c.targets.contains(&kind.as_str())
                || !(targets.is_empty() || targets.contains(kind))
            {
                continue;
            }
            let programs = kind.host_programs(&c.program_packages, c.name);
            let make = |profile: Option<String>| Job {
                component: c.name,
                profile,
                target: *kind,
                programs: programs.clone(),
                profiles: Vec::new(),
            };
            if *kind == TargetKind::Container && !profiles.is_empty() {
                out.push(Job {
                    profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
                    ..make(None)
                });
            } else if kind.per_profile() {
                out.extend(profiles.iter().map(|p| make(Some((*p).to_owned()))));
            } else if !profiles.is_empty() {
                out.push(make(None));
            }
        }
    }
    if !profile_seen {
        let all: Vec<&str> = components
            .iter()
            .filter(|c| o.component.as_deref().is_none_or(|x| x == c.name))
            .flat_map(|c| c.profiles.iter().map(|p| p.name.as_str()))
            .collect();
        return Err(pick("profile", o.profile.as_deref().unwrap_or_default(), all).into());
    }
    Ok(out)
}

/// Programs of a job that this host lacks, and for a microVM a missing kernel.
fn missing(job: &Job) -> Vec<String> {
    job.target.missing_on_host(&job.programs)
}

/// Writes the shell completions (bash, zsh, fish) and man pages of binary
/// `name` into OUT/docs/NAME/ (built beside, then moved in place).
fn docs(out: &Path, bin: &Path, name: &str) -> Result<(String, Vec<FileEntry>)> {
    let dir = out.join("docs").join(name);
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    let run = |args: &[&str]| -> Result<Vec<u8>> {
        let o = Command::new(bin)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !o.status.success() {
            anyhow::bail!(
                "{name} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(o.stdout)
    };
    for (shell, file) in [
        ("bash", format!("completions/bash/{name}")),
        ("zsh", format!("completions/zsh/_{name}")),
        ("fish", format!("completions/fish/{name}.fish")),
    ] {
        common::artifact::write_atomic(&tmp.join(file), &run(&["completions", shell])?)?;
    }
    let man = tmp.join("man/man1");
    run(&["man", "--out", &man.to_string_lossy()])?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    Ok((
        format!("{name} completions and man pages"),
        files_under(out, &dir)?,
    ))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

fn files_under(root: &Path, dir: &Path) -> Result<Vec<FileEntry>> {
    let mut stack = vec![dir.to_path_buf()];
    let mut out = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push(FileEntry {
                    path: p.strip_prefix(root)?.to_string_lossy().into_owned(),
                    sha256: sha256_file(&p)?,
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Builds the components' binaries; returns their directory.
pub(crate) fn build_binaries(
    root: &Path,
    components: &[ComponentInfo],
    debug: bool,
) -> Result<PathBuf> {
    let mut args = vec!["build", "-q"];
    for c in components {
        args.extend(["-p", c.name]);
    }
    if !debug {
        args.push("--release");
    }
    eprintln!(
        "building {} ({})",
        components
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", "),
        if debug { "debug" } else { "release" }
    );
    if !crate::run("cargo", &args)? {
        bail!("cargo build failed");
    }
    Ok(crate::lab::target_dir(root).join(if debug { "debug" } else { "release" }))
}

/// Where the microVMs' shared kernels and base archives are kept, under OUT.
const MICROVM_BASES: &str = "microvm-base";

/// The commands (arguments of the component's binary) of a job, writing
/// into `dir`; `shared` is OUT, with the layer cache and the microVM bases.
/// One per profile for a component's images, else one.
fn job_commands(
    job: &Job,
    dir: &Path,
    own: &Path,
    shared: &Path,
    has_own: bool,
) -> Vec<Vec<String>> {
    if job.profiles.is_empty() {
        return vec![job_args(job, None, dir, own, shared, has_own)];
    }
    job.profiles
        .iter()
        .map(|p| job_args(job, Some(p), dir, own, shared, has_own))
        .collect()
}

/// The arguments of one command of a job (of `profile` in a component-wide
/// job).
fn job_args(
    job: &Job,
    profile: Option<&String>,
    dir: &Path,
    own: &Path,
    shared: &Path,
    has_own: bool,
) -> Vec<String> {
    let cache = shared.join(".cache/layers");
    let mut a = vec![job.target.as_str().to_owned()];
    if let Some(p) = profile.or(job.profile.as_ref()) {
        a.extend(["--profile".into(), p.clone()]);
    }
    let d = dir.to_string_lossy().into_owned();
    match job.target {
        TargetKind::Container => {
            // every profile's image in one image layout, tagged by profile
            a.extend(["--format".into(), "oci-dir".into(), "--out".into(), d]);
            a.extend(["--cache-dir".into(), cache.to_string_lossy().into_owned()]);
        }
        TargetKind::Microvm => {
            a.extend(["--out".into(), d]);
            a.extend([
                "--base-dir".into(),
                shared.join(MICROVM_BASES).to_string_lossy().into_owned(),
            ]);
        }
        TargetKind::Sysctl => {
            a.extend([
                "--output".into(),
                dir.join(common::deploy::systemd::sysctl_file_name(job.component))
                    .to_string_lossy()
                    .into_owned(),
            ]);
        }
        TargetKind::Kubernetes => {
            // the image the container target builds, under its own name
            a.extend([
                "--image".into(),
                format!(
                    "hls-swarm-{}:{}",
                    job.component,
                    job.profile.as_deref().unwrap_or("default")
                ),
                "--out".into(),
                d,
            ]);
        }
        _ => a.extend(["--out".into(), d]),
    }
    if has_own
        && matches!(
            job.target,
            TargetKind::Container | TargetKind::Microvm | TargetKind::Systemd
        )
    {
        a.extend([
            "--binary".into(),
            format!("{}={}", job.component, own.display()),
        ]);
    }
    a
}

/// What a job's result depends on: its commands and the bytes or identity
/// of every program it packs.
fn job_key(job: &Job, own_hash: &str, commands: &[Vec<String>]) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update(own_hash);
    for a in commands.iter().flatten() {
        h.update(a.as_bytes());
        h.update([0]);
    }
    for (p, _) in &job.programs {
        if let Ok(path) = common::host::find_program(p, "") {
            h.update(path.to_string_lossy().as_bytes());
            if let Ok(m) = std::fs::metadata(&path) {
                h.update(m.len().to_le_bytes());
                if let Ok(t) = m.modified() {
                    h.update(format!("{t:?}"));
                }
            }
        }
    }
    if job.target == TargetKind::Microvm {
        if let Ok((k, _)) = common::deploy::microvm::host_kernel() {
            h.update(k.to_string_lossy().as_bytes());
        }
    }
    format!("{:x}", h.finalize())
}

/// `from`'s files hard-linked (copied where they cannot be) into `to`.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from)? {
        let p = e?.path();
        let dest = to.join(p.file_name().context("a file has a name")?);
        if p.is_dir() {
            std::fs::create_dir_all(&dest)?;
            link_tree(&p, &dest)?;
        } else if std::fs::hard_link(&p, &dest).is_err() {
            std::fs::copy(&p, &dest)?;
        }
    }
    Ok(())
}

/// Whether a microVM job's shared kernel and base are still there.
fn shared_pieces_there(job: &Job, dir: &Path) -> bool {
    job.target != TargetKind::Microvm
        || ["kernel/vmlinuz", "base/initramfs.cpio", "base/root.img"]
            .iter()
            .all(|f| dir.join(f).is_file())
}

/// Removes the shared microVM pieces under OUT that no microVM links to
/// (`OUT/*/*/microvm/{base,kernel}`); lists the rest, or `None` when there
/// are none.
fn microvm_bases(out: &Path) -> Result<Option<Vec<FileEntry>>> {
    let shared = out.join(MICROVM_BASES);
    if !shared.is_dir() {
        return Ok(None);
    }
    let mut used = std::collections::BTreeSet::new();
    for component in std::fs::read_dir(out)?.flatten() {
        let Ok(profiles) = std::fs::read_dir(component.path()) else {
            continue;
        };
        for profile in profiles.flatten() {
            for link in ["base", "kernel"] {
                if let Ok(p) = std::fs::canonicalize(profile.path().join("microvm").join(link)) {
                    used.insert(p);
                }
            }
        }
    }
    for piece in std::fs::read_dir(&shared)?.flatten() {
        let p = piece.path();
        // only real directories of its own; anything else is left, said
        if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            eprintln!(
                "build-all: {} is not a microVM piece; left as it is",
                p.display()
            );
            continue;
        }
        if !used.contains(&std::fs::canonicalize(&p)?) {
            std::fs::remove_dir_all(&p)
                .with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(Some(files_under(out, &shared)?))
}

/// A line above the progress bar (or on its own when stderr is not a terminal).
fn note(bar: &indicatif::ProgressBar, tty: bool, line: String) {
    if tty {
        bar.println(line);
    } else {
        eprintln!("{line}");
    }
}

/// Runs build-all; `Ok(false)` when a job failed.
pub fn run(root: &Path, o: &Options) -> Result<bool> {
    let components = crate::registry::components();
    let jobs = jobs(&components, o)?;
    let wanted: Vec<ComponentInfo> = components
        .iter()
        .filter(|c| jobs.iter().any(|j| j.component == c.name))
        .cloned()
        .collect();
    let bin_dir = build_binaries(root, &wanted, o.debug)?;
    let out = if o.out.is_absolute() {
        o.out.clone()
    } else {
        root.join(&o.out)
    };
    std::fs::create_dir_all(out.join(".state"))?;

    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    let tty = std::io::stderr().is_terminal();
    let mut own_hashes = std::collections::BTreeMap::new();
    let (mut artifacts, mut skipped, mut rows, mut ok) = (Vec::new(), Vec::new(), Vec::new(), true);
    for job in &jobs {
        bar.set_message(job.label());
        if !tty {
            eprintln!("[{}/{}] {}", bar.position() + 1, jobs.len(), job.label());
        }
        // images were once written per profile (OUT/<c>/<p>/container/);
        // they are one layout now, and those go
        for p in &job.profiles {
            let old = out.join(job.component).join(p).join("container");
            if old.is_dir() {
                std::fs::remove_dir_all(&old)?;
                // the profile's directory too, when nothing else is in it
                let _ = std::fs::remove_dir(out.join(job.component).join(p));
                let _ = std::fs::remove_file(
                    out.join(".state")
                        .join(format!("{}__{p}__container.json", job.component)),
                );
            }
        }
        let lacking = missing(job);
        if !lacking.is_empty() {
            let reason = format!("needs {} on this host", lacking.join(", "));
            note(&bar, tty, format!("skipped {}: {reason}", job.label()));
            rows.push((job.label(), "skipped".to_owned(), 0, 0));
            skipped.push(Skipped {
                component: job.component,
                profile: job.profile.clone(),
                target: job.target.as_str(),
                reason,
            });
            bar.inc(1);
            continue;
        }
        let own = bin_dir.join(job.component);
        let has_own = components
            .iter()
            .any(|c| c.name == job.component && c.programs.contains(&job.component));
        let own_hash = match own_hashes.get(job.component) {
            Some(h) => h,
            None => own_hashes.entry(job.component).or_insert(
                sha256_file(&own).with_context(|| format!("cannot read {}", own.display()))?,
            ),
        }
        .clone();
        let final_dir = out.join(job.dir());
        let state_file = out
            .join(".state")
            .join(job.dir().to_string_lossy().replace('/', "__") + ".json");
        let key = job_key(
            job,
            &own_hash,
            &job_commands(job, &final_dir, &own, &out, has_own),
        );
        let previous: Option<State> = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (status, files) = match previous {
            Some(s)
                if s.key == key
                    && s.files.iter().all(|f| {
                        std::fs::metadata(out.join(&f.path)).is_ok_and(|m| m.len() == f.size)
                    })
                    && shared_pieces_there(job, &final_dir) =>
            {
                ("reused", s.files)
            }
            _ => {
                let tmp = final_dir.with_extension("partial");
                let _ = std::fs::remove_dir_all(&tmp);
                std::fs::create_dir_all(&tmp)?;
                // a component's image layout built for some profiles only
                // keeps the other profiles' images: it starts from the one
                // there (its files linked, not copied)
                if o.profile.is_some() && final_dir.join("oci-layout").is_file() {
                    link_tree(&final_dir, &tmp)?;
                }
                let mut result = None;
                for args in job_commands(job, &tmp, &own, &out, has_own) {
                    let r = Command::new(&own)
                        .args(args)
                        .current_dir(root)
                        .output()
                        .with_context(|| format!("cannot run {}", own.display()))?;
                    let failed = !r.status.success();
                    result = Some(r);
                    if failed {
                        break;
                    }
                }
                let result = result.context("a job has a command")?;
                if !result.status.success() {
                    note(
                        &bar,
                        tty,
                        format!(
                            "FAILED {}:\n{}",
                            job.label(),
                            String::from_utf8_lossy(&result.stderr)
                        ),
                    );
                    let _ = std::fs::remove_dir_all(&tmp);
                    rows.push((job.label(), "FAILED".to_owned(), 0, 0));
                    ok = false;
                    bar.inc(1);
                    continue;
                }
                let _ = std::fs::remove_dir_all(&final_dir);
                std::fs::rename(&tmp, &final_dir)?;
                let files = files_under(&out, &final_dir)?;
                let state = State {
                    key,
                    files: files.clone(),
                };
                common::artifact::write_atomic(
                    &state_file,
                    serde_json::to_string(&state)?.as_bytes(),
                )?;
                ("built", files)
            }
        };
        rows.push((
            job.label(),
            status.to_owned(),
            files.len(),
            files.iter().map(|f| f.size).sum::<u64>(),
        ));
        artifacts.push(Artifact {
            component: job.component,
            profile: job.profile.clone(),
            target: job.target.as_str(),
            files,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();

    // the microVMs' shared kernels and bases: those no microVM links to go
    if let Some(files) = microvm_bases(&out)? {
        rows.push((
            "microVM kernels and bases (shared)".to_owned(),
            "kept".to_owned(),
            files.len(),
            files.iter().map(|f| f.size).sum(),
        ));
        artifacts.push(Artifact {
            component: "all",
            profile: None,
            target: MICROVM_BASES,
            files,
        });
    }

    // shell completions and man pages of each binary, unless only some
    // targets were asked for
    if o.targets.is_empty() {
        for c in &wanted {
            let (label, files) = docs(&out, &bin_dir.join(c.name), c.name)?;
            rows.push((
                label,
                "built".to_owned(),
                files.len(),
                files.iter().map(|f| f.size).sum(),
            ));
            artifacts.push(Artifact {
                component: c.name,
                profile: None,
                target: "docs",
                files,
            });
        }
    }

    let index = serde_json::json!({ "artifacts": artifacts, "skipped": skipped });
    let index_path = out.join("index.json");
    common::artifact::write_atomic(
        &index_path,
        (serde_json::to_string_pretty(&index)? + "\n").as_bytes(),
    )?;

    println!(
        "{:<40} {:<8} {:>5} {:>12}",
        "artifact", "status", "files", "bytes"
    );
    for (label, status, n, size) in &rows {
        println!("{label:<40} {status:<8} {n:>5} {size:>12}");
    }
    let count = |s: &str| rows.iter().filter(|r| r.1 == s).count();
    println!(
        "\n{} built, {} reused, {} skipped, {} failed; index: {}",
        count("built"),
        count("reused"),
        count("skipped"),
        count("FAILED"),
        index_path.display()
    );
    Ok(ok)
}
