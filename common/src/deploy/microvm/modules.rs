//! The host's kernel and the modules the guest loads, with their
//! dependencies in load order (from `modules.dep`); the kernel unpacked
//! from its bzImage for a direct (PVH) boot.

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

/// The kernel inside a bzImage, unpacked (an ELF `vmlinux`), when QEMU can
/// boot it directly: its payload is xz or gzip and it has a PVH entry point
/// (Xen's ELF note 18). Under TCG that saves the boot the unpacking of the
/// kernel by its own emulated code (about 5 s here). `None` when it cannot:
/// the bzImage is booted as it is.
pub fn unpacked_kernel(bz: &[u8]) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    // the boot protocol's header: "HdrS", setup sectors, payload offset
    // and length (from the protected-mode code)
    if bz.len() < 0x250 || &bz[0x202..0x206] != b"HdrS" {
        return Ok(None);
    }
    let word = |at: usize| u32::from_le_bytes(bz[at..at + 4].try_into().expect("4 bytes")) as usize;
    let setup = match bz[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup + 1) * 512 + word(0x248);
    let Some(payload) = bz.get(start..start + word(0x24c)) else {
        return Ok(None);
    };
    // at most what any kernel unpacks to, so a strange payload costs a
    // bound; one that does not unpack (or is bigger) is booted as it is
    const MAX: u64 = 512 << 20;
    let mut elf = Vec::new();
    let read = if payload.starts_with(b"\xfd7zXZ\0") {
        liblzma::read::XzDecoder::new(payload)
            .take(MAX + 1)
            .read_to_end(&mut elf)
    } else if payload.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(payload)
            .take(MAX + 1)
            .read_to_end(&mut elf)
    } else {
        return Ok(None);
    };
    if read.is_err() || elf.len() as u64 > MAX {
        return Ok(None);
    }
    let Ok(parsed) = goblin::elf::Elf::parse(&elf) else {
        return Ok(None);
    };
    let pvh = parsed
        .iter_note_headers(&elf)
        .into_iter()
        .flatten()
        .flatten()
        .any(|n| n.name == "Xen" && n.n_type == 18);
    Ok(pvh.then_some(elf))
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
