//! The CLI every component gets: `profiles`, `config`, `schema`, the profile
//! arguments shared by every subcommand that builds something, and the mapping
//! of errors to exit statuses (2 = bad input, 1 = anything else).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

mod targets;

pub use targets::{command, parse, KubernetesArgs, NoRunFlags, TargetCommand};

use crate::component::{load, schema, Component, Loaded};
use crate::deploy::Targets;
use crate::error::{exit_status, ConfigError, UsageError};
use crate::profile::{ProfileSet, Request};

/// A component's whole command line: the subcommands every component has
/// and its own, `O`; `K` its own flags of the kubernetes target. The name,
/// version and about line come from the component ([`parse`]).
#[derive(clap::Parser)]
pub struct Cli<O: Subcommand, K: Args = NoRunFlags> {
    #[command(subcommand)]
    pub command: Command<O, K>,
}

/// The subcommands of a component's binary.
// parsed once per process: the size of a component's own flags does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command<O: Subcommand, K: Args = NoRunFlags> {
    #[command(flatten)]
    Common(CommonCommand),
    #[command(flatten)]
    Targets(TargetCommand<K>),
    #[command(flatten)]
    Own(O),
}

/// Selecting and overriding a profile.
#[derive(Args, Clone, Debug)]
pub struct ProfileArgs {
    /// Profile to start from (see the `profiles` subcommand)
    #[arg(long, short = 'p', value_name = "NAME", default_value = "default")]
    pub profile: String,

    /// Override one value (the component's examples are put in by
    /// `targets::command`). The value is a TOML literal; a bare word is a
    /// string. Repeatable; applied after --overrides, and wins over the profile.
    #[arg(long = "set", short = 's', value_name = "PATH=VALUE")]
    pub set: Vec<String>,

    /// Read overrides from a TOML or JSON file (`.json` is JSON) shaped like the
    /// config. Repeatable; applied after the profile, before --set.
    #[arg(long = "overrides", value_name = "FILE")]
    pub overrides: Vec<PathBuf>,

    /// Add or replace profiles from a TOML or JSON file with
    /// `[profiles.NAME]` tables (`description`, optional `extends`, `config`).
    #[arg(long = "profiles", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
}

impl Default for ProfileArgs {
    fn default() -> Self {
        Self {
            profile: "default".into(),
            set: Vec::new(),
            overrides: Vec::new(),
            profiles: Vec::new(),
        }
    }
}

impl ProfileArgs {
    pub fn request(&self) -> Request {
        Request {
            profile: self.profile.clone(),
            profile_files: self.profiles.clone(),
            override_files: self.overrides.clone(),
            sets: self.set.clone(),
        }
    }

    /// Merges and validates the selected config of component `C`.
    pub fn load<C: Component>(&self) -> Result<Loaded<C>, ConfigError> {
        load::<C>(&self.request())
    }
}

/// Subcommands that every component has.
#[derive(Subcommand, Clone, Debug)]
pub enum CommonCommand {
    /// List the profiles (name and a one-line description)
    Profiles {
        /// Also list the profiles of this TOML/JSON file (repeatable)
        #[arg(long = "profiles", value_name = "FILE")]
        profiles: Vec<PathBuf>,
    },
    /// Print the merged config of a profile with its derived values
    ///
    /// The config is deep-merged from the base config, the profile (and the
    /// profiles it extends), --overrides files and --set values, then validated.
    /// Derived values appear under `derived`.
    Config {
        #[command(flatten)]
        args: ProfileArgs,
        /// Print JSON
        #[arg(long, conflicts_with = "toml")]
        json: bool,
        /// Print TOML (the default)
        #[arg(long)]
        toml: bool,
    },
    /// Print the JSON Schema that every merged config is validated against
    Schema {
        /// Print the schema of the results a run writes instead (the
        /// components whose runs write results)
        #[arg(long)]
        results: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// e.g. `NAME completions bash > ~/.local/share/bash-completion/completions/NAME`
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages: DIR/<binary>.1 and one DIR/<binary>-<subcommand>.1 per subcommand
    Man {
        /// Output directory (e.g. ~/.local/share/man/man1)
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
}

impl CommonCommand {
    /// Runs the subcommand for component `C`, whose command line is `P`,
    /// writing to `out`.
    pub fn run<P: clap::CommandFactory, C: Targets>(
        &self,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        match self {
            CommonCommand::Completions { shell } => {
                let mut cmd = command::<P, C>();
                // into a buffer first: the generator panics on a closed pipe
                let mut text = Vec::new();
                clap_complete::generate(*shell, &mut cmd, C::NAME, &mut text);
                out.write_all(&text)?;
            }
            CommonCommand::Man { out: dir } => {
                let files = man_pages(&command::<P, C>())?;
                for (name, bytes) in files {
                    let path = dir.join(name);
                    crate::artifact::write_atomic(&path, &bytes)?;
                    writeln!(out, "{}", path.display())?;
                }
            }
            CommonCommand::Profiles { profiles } => {
                let mut set = ProfileSet::from_component_toml(C::NAME, C::PROFILES_TOML)?;
                for f in profiles {
                    set.add_user_file(f)?;
                }
                let width = set.names().iter().map(|n| n.len()).max().unwrap_or(0);
                for p in &set.profiles {
                    let aliases = if p.aliases.is_empty() {
                        String::new()
                    } else {
                        format!(" (also: {})", p.aliases.join(", "))
                    };
                    writeln!(out, "{:width$}  {}{aliases}", p.name, p.description)?;
                }
            }
            CommonCommand::Config { args, json, .. } => {
                let loaded = args.load::<C>()?;
                let value = loaded.to_value();
                if *json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    write!(out, "{}", toml::to_string(&value)?)?;
                }
            }
            CommonCommand::Schema { results: false } => {
                writeln!(out, "{}", serde_json::to_string_pretty(&schema::<C>())?)?;
            }
            CommonCommand::Schema { results: true } => {
                let s = C::results_schema().ok_or_else(|| {
                    UsageError(format!(
                        "{} writes no results; `{} schema` prints its config's schema",
                        C::NAME,
                        C::NAME
                    ))
                })?;
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
            }
        }
        Ok(())
    }
}

/// The man pages of a command: `<name>.1` and one `<name>-<sub>.1` for each
/// visible subcommand, as (file name, roff).
pub fn man_pages(cmd: &clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let name = cmd.get_name().to_owned();
    let mut cmd = cmd.clone().version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    let mut out = Vec::new();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .date("")
        .render(&mut page)?;
    out.push((format!("{name}.1"), page));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let full = format!("{name}-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(full.clone())
                .version(env!("CARGO_PKG_VERSION")),
        )
        .date("")
        .render(&mut page)?;
        out.push((format!("{full}.1"), page));
    }
    Ok(out)
}

/// Whether `err` is a write to a closed stdout (`… | head -1`): for a
/// command that prints, the reader having read enough is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints an error the way every binary of the workspace does and returns
/// its exit code (success when the error is only a closed stdout).
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_status(&e))
        }
    }
}

/// Where the image goes: `oci-archive` (a tar for `podman load`/skopeo) or `oci-dir`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    OciArchive,
    OciDir,
}

/// How image layers are compressed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
}

/// Flags of every component's `container` subcommand.
#[derive(Args, Clone, Debug)]
pub struct ContainerArgs {
    /// Output path (default: out/<image>-<profile>.oci.tar, or a directory for oci-dir)
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// oci-archive: one tar (`podman load -i`); oci-dir: an image layout
    /// directory, and into one already there the image is added under its
    /// tag (the profile), sharing the layers it has in common with the
    /// other profiles' images (`podman pull oci:DIR:PROFILE`)
    #[arg(long, value_enum, default_value_t = ImageFormat::OciArchive)]
    pub format: ImageFormat,
    /// How layers are compressed, on every core: gzip, which every runtime
    /// takes, or zstd (smaller, quicker; podman, containerd and most
    /// registries take it, older Docker engines do not)
    #[arg(long, value_enum, default_value_t = LayerCompression::Gzip)]
    pub compression: LayerCompression,
    /// Also push the image to a registry, e.g.
    /// registry.example.com/hls-swarm-NAME:PROFILE: over HTTPS (plain HTTP
    /// only to a registry on this machine that has no TLS), with the
    /// credentials `podman login` keeps (REGISTRY_AUTH_FILE, else the
    /// containers auth file); layers the registry has are not sent again
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// The registry's CA certificates (*.crt) for --push, instead of
    /// /etc/containers/certs.d/REGISTRY/ and ~/.config/containers/certs.d/REGISTRY/
    #[arg(long, value_name = "DIR", requires = "push")]
    pub cert_dir: Option<PathBuf>,
    /// Take a program from PATH instead of looking it up on PATH, e.g. --binary ffmpeg=/opt/ffmpeg/bin/ffmpeg (repeatable)
    #[arg(long = "binary", value_name = "NAME=PATH")]
    pub binaries: Vec<String>,
    /// Layer cache (default: ~/.cache/hls-swarm/layers)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl ContainerArgs {
    /// Host paths of `programs` (name, Debian package): --binary overrides, else PATH.
    pub fn binaries(
        &self,
        programs: &[(&str, &str)],
    ) -> anyhow::Result<std::collections::BTreeMap<String, PathBuf>> {
        crate::deploy::programs_from_flags(&self.binaries, programs)
    }

    /// Builds `spec` as asked and reports what was written.
    pub fn build(
        &self,
        spec: &crate::deploy::container::ImageSpec,
        out: &mut dyn Write,
    ) -> anyhow::Result<crate::deploy::container::Built> {
        use crate::deploy::container::{build, check_push_reference, default_cache_dir, Format};
        if let Some(r) = &self.push {
            check_push_reference(r)?;
        }
        let format = match self.format {
            ImageFormat::OciArchive => Format::OciArchive,
            ImageFormat::OciDir => Format::OciDir,
        };
        let path = self.out.clone().unwrap_or_else(|| match format {
            Format::OciArchive => PathBuf::from(format!("out/{}-{}.oci.tar", spec.name, spec.tag)),
            Format::OciDir => PathBuf::from(format!("out/{}-{}.oci", spec.name, spec.tag)),
        });
        let cache = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let push_options = crate::deploy::container::PushOptions {
            cert_dir: self.cert_dir.clone(),
        };
        let codec = match self.compression {
            LayerCompression::Gzip => crate::deploy::container::Compression::Gzip,
            LayerCompression::Zstd => crate::deploy::container::Compression::Zstd,
        };
        let built = build(
            spec,
            &path,
            format,
            &cache,
            codec,
            progress,
            self.push.as_deref().map(|r| (r, &push_options)),
        )?;
        writeln!(out, "{}:{} → {}", spec.name, spec.tag, path.display())?;
        writeln!(out, "  manifest {}", built.manifest_digest)?;
        for (name, digest, size) in &built.layers {
            writeln!(out, "  layer {digest} {:>10} bytes  {name}", size)?;
        }
        writeln!(
            out,
            "  {} of {} layers compressed, the rest from the cache",
            built.compressed,
            built.layers.len()
        )?;
        if let (Some(r), Some(p)) = (&self.push, &built.pushed) {
            writeln!(
                out,
                "  pushed to {r}: {} blobs uploaded ({:.1} MB), {} already there",
                p.uploaded,
                p.uploaded_bytes as f64 / 1e6,
                p.reused
            )?;
        }
        Ok(built)
    }
}

/// Flags of every component's `sysctl` subcommand.
#[derive(Args, Clone, Debug)]
pub struct SysctlArgs {
    /// Write to FILE instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Apply them to this kernel now (root); keys it lacks are skipped with a warning
    #[arg(long)]
    pub apply: bool,
    /// The proc file system to apply to
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: PathBuf,
}

impl SysctlArgs {
    /// Prints, writes and/or applies `settings` as asked.
    pub fn run(
        &self,
        component: &str,
        settings: &std::collections::BTreeMap<&str, &str>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let text = crate::deploy::sysctl::file_text(component, settings);
        match &self.output {
            Some(path) => crate::artifact::write_atomic(path, text.as_bytes())?,
            None if !self.apply => write!(out, "{text}")?,
            None => {}
        }
        if self.apply {
            crate::deploy::sysctl::apply_and_report(settings, &self.proc_root)?;
        }
        Ok(())
    }
}
