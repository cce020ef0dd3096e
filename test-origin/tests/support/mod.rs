//! Helpers shared by the integration tests that start real processes.
#![allow(dead_code)]

/// Overrides that make the stream tiny, so that 2 cores keep up.
pub const TINY: &[&str] = &[
    "--set",
    "video.width=320",
    "--set",
    "video.height=180",
    "--set",
    "encoder.framerate=10",
    "--set",
    "encoder.preset=ultrafast",
];

#[allow(unused_imports)]
pub use testkit::{free_port, serial};
