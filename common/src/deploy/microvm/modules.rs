//! The host's kernel and the modules the guest loads, with their
//! dependencies in load order (from `modules.dep`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The host's newest kernel and its modules.
pub fn host_kernel() -> Result<(PathBuf, PathBuf)> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
                })
                .collect()
        })
        .unwrap_or_default();
    kernels.sort();
    let kernel = kernels.pop().context("no /boot/vmlinuz-*: install a kernel (`sudo apt-get install linux-image-amd64`) or pass --kernel")?;
    let version = kernel
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_owned();
    Ok((kernel, PathBuf::from("/lib/modules").join(version)))
}

/// The modules (paths relative to `modules_dir`) needed for `wanted`, each
/// after its dependencies. Built-in modules are skipped.
pub fn module_closure(modules_dir: &Path, wanted: &[String]) -> Result<Vec<String>> {
    let dep = std::fs::read_to_string(modules_dir.join("modules.dep"))
        .with_context(|| format!("cannot read {}/modules.dep", modules_dir.display()))?;
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    let norm = |s: &str| s.replace('-', "_");
    let name_of = |path: &str| {
        norm(
            Path::new(path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .split(".ko")
                .next()
                .unwrap_or(""),
        )
    };
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in dep.lines() {
        if let Some((path, rest)) = line.split_once(':') {
            deps.insert(
                name_of(path),
                (
                    path.to_owned(),
                    rest.split_whitespace().map(String::from).collect(),
                ),
            );
        }
    }
    let builtins: BTreeSet<String> = builtin.lines().map(name_of).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        name: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> bool {
        let Some((path, ds)) = deps.get(name) else {
            return false;
        };
        if !seen.insert(name.to_owned()) {
            return true;
        }
        for d in ds {
            let dn = Path::new(d)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .split(".ko")
                .next()
                .unwrap_or("")
                .replace('-', "_");
            visit(&dn, deps, seen, order);
        }
        order.push(path.clone());
        true
    }
    for w in wanted {
        let n = norm(w);
        if builtins.contains(&n) {
            continue;
        }
        if !visit(&n, &deps, &mut seen, &mut order) {
            bail!(
                "kernel module {w} is neither built in nor in {}",
                modules_dir.display()
            );
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_after_their_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/a/virtio_net.ko: kernel/b/failover.ko kernel/c/virtio.ko\nkernel/b/failover.ko: kernel/c/virtio.ko\nkernel/c/virtio.ko:\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("modules.builtin"), "kernel/x/ext4.ko\n").unwrap();
        let order = module_closure(dir.path(), &["virtio-net".into(), "ext4".into()]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/c/virtio.ko",
                "kernel/b/failover.ko",
                "kernel/a/virtio_net.ko"
            ]
        );
        assert!(module_closure(dir.path(), &["nosuch".into()]).is_err());
    }
}
