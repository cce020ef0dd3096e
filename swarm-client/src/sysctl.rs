//! Kernel settings for a host that runs many viewers (SPEC §4).

use std::collections::BTreeMap;

/// The client's sysctls: the common TCP tuning with a 15 s FIN timeout (many
/// short-lived connections) and client-side TCP Fast Open; no accept queue.
pub fn sysctls() -> BTreeMap<&'static str, &'static str> {
    let mut m = common::deploy::sysctl::tcp_tuning();
    m.insert("net.ipv4.tcp_fin_timeout", "15");
    m.insert("net.ipv4.tcp_fastopen", "1");
    m
}
