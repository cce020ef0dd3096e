//! Helpers shared by the integration tests that start real processes.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

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

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that start encoders, containers or registries run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
