//! Values computed from a config (SPEC §4, integer arithmetic).

use serde::Serialize;

use crate::config::{Config, Engine};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Derived {
    /// Seconds until every viewer has been started (rounded up).
    pub ramp_duration: u64,
    #[serde(rename = "estimatedMemoryMB")]
    pub estimated_memory_mb: u64,
    pub recommended_fd_limit: u64,
    pub recommended_ports: u64,
    #[serde(rename = "containerMemoryMB")]
    pub container_memory_mb: u64,
    #[serde(rename = "vmMemoryMB")]
    pub vm_memory_mb: u64,
}

/// ceil(n × num / den) in integers.
fn ceil_ratio(n: u64, num: u64, den: u64) -> u64 {
    (n * num).div_ceil(den)
}

/// What one native viewer costs, at most (PLAYER.md §5: parser state, a
/// 16 KiB read buffer, counters; measured about 60 KB).
pub const NATIVE_VIEWER_KB: u64 = 64;

/// The sizing of the engine the config chooses. FFmpeg (SPEC §4): a
/// process a viewer, 19 MB and 15 descriptors each. Native: a task a
/// viewer, [`NATIVE_VIEWER_KB`] and 2 descriptors (its socket, and one
/// reconnecting) each, in one process of 64 MB. Every target sizes itself
/// from these.
pub fn derive(c: &Config) -> Derived {
    let clients = u64::from(c.viewers());
    let (estimated_memory_mb, recommended_fd_limit, recommended_ports) = match c.engine {
        Engine::Ffmpeg => (clients * 19 + 64, clients * 15 + 1000, clients * 5),
        Engine::Native => (
            ceil_ratio(clients, NATIVE_VIEWER_KB, 1024) + 64,
            clients * 2 + 1024,
            clients * 2,
        ),
    };
    Derived {
        ramp_duration: match c.shape() {
            // until the peak is first reached
            Some(shape) => shape
                .spans(shape.peak().saturating_sub(1))
                .first()
                .map_or(0, |s| s.start.as_secs_f64().ceil() as u64),
            None => clients.div_ceil(u64::from(c.ramp_rate)),
        },
        estimated_memory_mb,
        recommended_fd_limit,
        recommended_ports,
        container_memory_mb: ceil_ratio(estimated_memory_mb, 12, 10),
        vm_memory_mb: ceil_ratio(estimated_memory_mb, 13, 10) + 256,
    }
}
