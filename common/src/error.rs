//! Errors of the profile system. All of them are the user's input being wrong:
//! a binary maps them to exit status 2.

use std::fmt;
use std::path::PathBuf;

use crate::profile::provenance::Source;

/// One thing wrong with a merged config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the value (`hls.segmentDuration`); empty for the root.
    pub path: String,
    /// What is wrong and what was expected; includes the given value.
    pub message: String,
    /// Which layer set the value, when known.
    pub source: Option<Source>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        write!(f, "`{path}`: {}", self.message)?;
        if let Some(s) = &self.source {
            write!(f, " (set by {s})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown profile `{name}`{}; available profiles: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        available.join(", "))]
    UnknownProfile {
        name: String,
        available: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("profile `{profile}` extends itself through {}; remove one of the `extends` entries", chain.join(" -> "))]
    ProfileCycle { profile: String, chain: Vec<String> },
    #[error("bad --set `{arg}`: {reason}; write it as PATH=VALUE, e.g. --set section.key=4")]
    BadSet { arg: String, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("bad profile definitions in {origin}: {reason}")]
    ProfileFile { origin: String, reason: String },
    #[error("invalid config:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    /// Exit status for this error: always 2 (bad input).
    pub const EXIT_STATUS: u8 = 2;
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
