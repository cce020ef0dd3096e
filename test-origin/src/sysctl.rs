//! Kernel settings for the origin host (SPEC §3 "sysctl").

use std::collections::BTreeMap;

/// The origin's sysctls, sorted by key: the common TCP tuning with a deep
/// accept queue, 30 s FIN timeout and TCP Fast Open for clients and servers.
pub fn sysctls() -> BTreeMap<&'static str, &'static str> {
    let mut m = common::deploy::sysctl::tcp_tuning();
    m.insert("net.core.somaxconn", "65535");
    m.insert("net.ipv4.tcp_fin_timeout", "30");
    m.insert("net.ipv4.tcp_fastopen", "3");
    m
}
