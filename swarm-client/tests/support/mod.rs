//! Test support shared by the swarm-client test binaries.
pub mod hls_server;
