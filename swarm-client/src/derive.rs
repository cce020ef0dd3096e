//! Values computed from a config (SPEC §4, integer arithmetic).

use serde::Serialize;

use crate::config::Config;

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

pub fn derive(c: &Config) -> Derived {
    let clients = u64::from(c.clients);
    let estimated_memory_mb = clients * 19 + 64;
    Derived {
        ramp_duration: clients.div_ceil(u64::from(c.ramp_rate)),
        estimated_memory_mb,
        recommended_fd_limit: clients * 15 + 1000,
        recommended_ports: clients * 5,
        container_memory_mb: ceil_ratio(estimated_memory_mb, 12, 10),
        vm_memory_mb: ceil_ratio(estimated_memory_mb, 13, 10) + 256,
    }
}
