//! Helpers shared by the integration tests that start real processes.
#![allow(dead_code)]

/// Overrides that make the stream tiny, so that 2 cores keep up.
#[allow(unused_imports)]
pub use testkit::origin::TINY;

#[allow(unused_imports)]
pub use testkit::{free_port, serial};
