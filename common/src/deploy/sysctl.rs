//! The sysctl target: a sorted `sysctl.d` file, and applying it to a running
//! kernel, skipping (with a warning each) the keys that kernel does not have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// TCP tuning for hosts that serve or pull many HLS streams; components start
/// from it and change what differs.
/// The sysctl.d file of a component's kernel settings (what the sysctl
/// target prints and the systemd target installs).
pub fn file_text(component: &str, settings: &BTreeMap<&str, &str>) -> String {
    crate::render::sysctl::sysctl_conf(&format!("{component} kernel settings"), settings)
}

pub fn tcp_tuning() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("fs.file-max", "2097152"),
        ("net.core.default_qdisc", "cake"),
        ("net.core.netdev_max_backlog", "65535"),
        ("net.core.rmem_default", "26214400"),
        ("net.core.rmem_max", "26214400"),
        ("net.core.wmem_default", "26214400"),
        ("net.core.wmem_max", "26214400"),
        ("net.ipv4.ip_local_port_range", "1026 65535"),
        ("net.ipv4.tcp_congestion_control", "cubic"),
        ("net.ipv4.tcp_ecn", "1"),
        ("net.ipv4.tcp_fack", "1"),
        ("net.ipv4.tcp_keepalive_intvl", "30"),
        ("net.ipv4.tcp_keepalive_probes", "4"),
        ("net.ipv4.tcp_keepalive_time", "120"),
        ("net.ipv4.tcp_max_syn_backlog", "65535"),
        ("net.ipv4.tcp_no_ssthresh_metrics_save", "0"),
        ("net.ipv4.tcp_notsent_lowat", "131072"),
        ("net.ipv4.tcp_reflect_tos", "1"),
        // IPv6 TCP sockets use these too: Linux has no net.ipv6.tcp_{r,w}mem
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

/// What happened to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Set {
        key: String,
        value: String,
    },
    /// This kernel has no such key.
    Missing {
        key: String,
    },
    Failed {
        key: String,
        error: String,
    },
}

/// The file under `proc_root` (normally `/proc`) for a key.
pub fn key_path(proc_root: &Path, key: &str) -> PathBuf {
    let mut p = proc_root.join("sys");
    for part in key.split('.') {
        p.push(part);
    }
    p
}

/// Writes each setting under `proc_root/sys`; a key the kernel lacks is
/// skipped, not an error.
pub fn apply(settings: &BTreeMap<&str, &str>, proc_root: &Path) -> Vec<Applied> {
    settings
        .iter()
        .map(|(k, v)| {
            let path = key_path(proc_root, k);
            if !path.exists() {
                return Applied::Missing {
                    key: (*k).to_owned(),
                };
            }
            match std::fs::write(&path, format!("{v}\n")) {
                Ok(()) => Applied::Set {
                    key: (*k).to_owned(),
                    value: (*v).to_owned(),
                },
                Err(e) => Applied::Failed {
                    key: (*k).to_owned(),
                    error: e.to_string(),
                },
            }
        })
        .collect()
}

/// Applies and reports on stderr; Err when a key that exists could not be set.
pub fn apply_and_report(settings: &BTreeMap<&str, &str>, proc_root: &Path) -> anyhow::Result<()> {
    let results = apply(settings, proc_root);
    let mut failed = 0;
    for r in &results {
        match r {
            Applied::Set { key, value } => eprintln!("set {key} = {value}"),
            Applied::Missing { key } => {
                eprintln!("warning: skipped {key}: this kernel does not have it")
            }
            Applied::Failed { key, error } => {
                failed += 1;
                eprintln!("error: cannot set {key}: {error}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} setting(s) could not be applied (run as root, outside a container that hides /proc/sys)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_skipped_and_present_ones_written() {
        let root = tempfile::tempdir().unwrap();
        let have = key_path(root.path(), "net.ipv4.tcp_sack");
        std::fs::create_dir_all(have.parent().unwrap()).unwrap();
        std::fs::write(&have, "0\n").unwrap();
        let ro = key_path(root.path(), "net.core.somaxconn");
        std::fs::create_dir_all(ro.parent().unwrap()).unwrap();
        std::fs::create_dir(&ro).unwrap(); // a directory cannot be written as a file
        let settings = BTreeMap::from([
            ("net.ipv4.tcp_sack", "1"),
            ("net.ipv4.tcp_fack", "1"),
            ("net.core.somaxconn", "65535"),
        ]);
        let r = apply(&settings, root.path());
        assert!(matches!(&r[0], Applied::Failed { key, .. } if key == "net.core.somaxconn"));
        assert_eq!(
            r[1],
            Applied::Missing {
                key: "net.ipv4.tcp_fack".into()
            }
        );
        assert_eq!(
            r[2],
            Applied::Set {
                key: "net.ipv4.tcp_sack".into(),
                value: "1".into()
            }
        );
        assert_eq!(std::fs::read_to_string(&have).unwrap(), "1\n");
        assert!(apply_and_report(&settings, root.path()).is_err());
        let ok = BTreeMap::from([("net.ipv4.tcp_sack", "1"), ("net.ipv4.tcp_fack", "1")]);
        assert!(
            apply_and_report(&ok, root.path()).is_ok(),
            "missing keys are not errors"
        );
    }
}
