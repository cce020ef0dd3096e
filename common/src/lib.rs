//! hls-swarm's generic component framework.
//!
//! `common` knows nothing about FFmpeg or nginx. It gives every component a
//! profile system (base + profiles + overrides, deep-merged, validated against
//! the config's JSON Schema), a CLI, value types that are safe to render, and the
//! deployment targets.

pub mod artifact;
pub mod cli;
pub mod closure;
pub mod component;
pub mod deploy;
pub mod describe;
pub mod error;
pub mod host;
pub mod http_check;
pub mod local_run;
pub mod profile;
pub mod render;
pub mod schema;
pub mod suggest;
pub mod supervise;
pub mod types;

pub use component::{load, profile_names, schema, Component, Loaded};
pub use deploy::{TargetKind, Targets};
pub use error::{ConfigError, Problem};
pub use profile::Request;
