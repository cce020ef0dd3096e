//! Kernel settings for the origin host (SPEC §3 "sysctl").

use std::collections::BTreeMap;

/// The origin's sysctls, sorted by key. Linux has no `net.ipv6.tcp_{r,w}mem`:
/// IPv6 TCP sockets use the `net.ipv4.tcp_{r,w}mem` values, so those cover both.
pub fn sysctls() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("fs.file-max", "2097152"),
        ("net.core.default_qdisc", "cake"),
        ("net.core.netdev_max_backlog", "65535"),
        ("net.core.rmem_default", "26214400"),
        ("net.core.rmem_max", "26214400"),
        ("net.core.somaxconn", "65535"),
        ("net.core.wmem_default", "26214400"),
        ("net.core.wmem_max", "26214400"),
        ("net.ipv4.ip_local_port_range", "1026 65535"),
        ("net.ipv4.tcp_congestion_control", "cubic"),
        ("net.ipv4.tcp_ecn", "1"),
        ("net.ipv4.tcp_fack", "1"),
        ("net.ipv4.tcp_fastopen", "3"),
        ("net.ipv4.tcp_fin_timeout", "30"),
        ("net.ipv4.tcp_keepalive_intvl", "30"),
        ("net.ipv4.tcp_keepalive_probes", "4"),
        ("net.ipv4.tcp_keepalive_time", "120"),
        ("net.ipv4.tcp_max_syn_backlog", "65535"),
        ("net.ipv4.tcp_no_ssthresh_metrics_save", "0"),
        ("net.ipv4.tcp_notsent_lowat", "131072"),
        ("net.ipv4.tcp_reflect_tos", "1"),
        ("net.ipv4.tcp_rmem", "4096 1000000 16000000"),
        ("net.ipv4.tcp_rto_min_us", "50000"),
        ("net.ipv4.tcp_sack", "1"),
        ("net.ipv4.tcp_slow_start_after_idle", "0"),
        ("net.ipv4.tcp_timestamps", "1"),
        ("net.ipv4.tcp_tw_reuse", "1"),
        ("net.ipv4.tcp_window_scaling", "1"),
        ("net.ipv4.tcp_wmem", "4096 1000000 16000000"),
    ])
}
