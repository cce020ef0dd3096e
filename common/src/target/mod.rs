//! Deployment targets: the code that turns a component's generated pieces into
//! artifacts. Components say what goes in; the targets know the formats.

pub mod container;
pub mod microvm;
pub mod nixos;
pub mod runner;
pub mod sysctl;
pub mod systemd;
