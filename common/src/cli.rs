//! The CLI every component gets: `profiles`, `config`, `schema`, the profile
//! arguments shared by every subcommand that builds something, and the mapping
//! of errors to exit statuses (2 = bad input, 1 = anything else).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::component::{load, schema, Component, Loaded};
use crate::error::ConfigError;
use crate::profile::{ProfileSet, Request};

/// Selecting and overriding a profile.
#[derive(Args, Clone, Debug)]
pub struct ProfileArgs {
    /// Profile to start from (see the `profiles` subcommand)
    #[arg(long, short = 'p', value_name = "NAME", default_value = "default")]
    pub profile: String,

    /// Override one value, e.g. `--set hls.segmentDuration=4` or
    /// `--set video.bitrate=3000k`. The value is a TOML literal; a bare word is a
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
    Schema,
}

impl CommonCommand {
    /// Runs the subcommand for component `C`, writing to `out`.
    pub fn run<C: Component>(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match self {
            CommonCommand::Profiles { profiles } => {
                let mut set = ProfileSet::from_component_toml(C::NAME, C::PROFILES_TOML)?;
                for f in profiles {
                    set.add_user_file(f)?;
                }
                let width = set.names().iter().map(|n| n.len()).max().unwrap_or(0);
                for p in &set.profiles {
                    writeln!(out, "{:width$}  {}", p.name, p.description)?;
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
            CommonCommand::Schema => {
                writeln!(out, "{}", serde_json::to_string_pretty(&schema::<C>())?)?;
            }
        }
        Ok(())
    }
}

/// An error in what the user asked for that is not about the config
/// (a bad flag value, a missing file to read): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error: 2 for bad input, 1 otherwise.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    let bad_input = err
        .chain()
        .any(|e| e.is::<ConfigError>() || e.is::<UsageError>());
    if bad_input {
        2
    } else {
        1
    }
}

/// Prints an error the way every binary of the workspace does and returns its exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_status(&e))
        }
    }
}
