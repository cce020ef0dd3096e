//! The build of a microVM directory: the guest's files in three pieces.
//!
//! - The **base** (`base/`, with the kernel beside it in `kernel/`): the
//!   root (`root.img`, a read-only squashfs: every file copied from the host
//!   — programs and their libraries —, a static busybox and the base's
//!   `/init`), and a small initramfs (`initramfs.cpio`: busybox, the
//!   modules and the init that mounts the root from its disk). It is the
//!   same for every profile of a component, so profiles can share one:
//!   `--base-dir` keeps it in a directory of bases named by a key of their
//!   inputs, and `DIR/base` is a link to it.
//! - The **config** (`config.cpio`, a few kilobytes): the profile's
//!   generated files, directories and its init, handed to the guest at each
//!   start through QEMU's firmware config and unpacked over the base.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::deploy::container::{Content, Entry};

use super::archive::{Archive, Data};
use super::scripts::{base_init, boot_init, init_script, net_script, run_script, stop_script};
use super::*;

/// What [`build`] wrote.
#[derive(Clone, Debug)]
pub struct BuiltVm {
    /// The base directory (its root image and initramfs; the kernel is
    /// beside it).
    pub base: PathBuf,
    /// Its key (a hash of its inputs).
    pub key: String,
    /// Whether the base was written now (else an equal one was there).
    pub base_built: bool,
    /// Sizes of the base (root image and initramfs) and of the config
    /// archive.
    pub base_bytes: u64,
    pub config_bytes: u64,
}

/// The applets of busybox the inits use.
const APPLETS: &[&str] = &[
    "sh",
    "mount",
    "mkdir",
    "insmod",
    "ip",
    "sleep",
    "poweroff",
    "cat",
    "su",
    "kill",
    "sync",
    "echo",
    "chown",
    "cpio",
    "env",
    "mknod",
    "switch_root",
];

/// Writes the microVM into `dir`: `bin/` scripts, `config.cpio`, and `base`
/// — its own directory, or with `shared` a link to the base of the same
/// key in that directory (written there when it is not yet).
pub fn build(spec: &VmSpec, dir: &Path, shared: Option<&Path>) -> Result<BuiltVm> {
    let version = spec
        .modules_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let modules = module_closure(&spec.modules_dir, &guest_modules(spec))?;
    let busybox = crate::host::find_program("busybox", "busybox-static")?;
    if crate::closure::elf_deps(&std::fs::read(&busybox)?)?
        .interpreter
        .is_some()
    {
        bail!("{} is dynamically linked; the guest needs the static one: `sudo apt-get install busybox-static`", busybox.display());
    }

    let (boot, root, config) = split(spec, &modules, &version, &busybox);
    let mut h = Sha256::new();
    h.update("hls-swarm microvm base v3\n");
    boot.key(&mut h)?;
    h.update("root\n");
    root.key(&mut h)?;
    let key = format!("{:x}", h.finalize());
    let kernel_key = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&spec.kernel)
            .with_context(|| format!("cannot read {}", spec.kernel.display()))?;
        let id = format!(
            "hls-swarm microvm kernel v1\n{}\0{}\0{}.{}\0{}\n",
            spec.kernel.display(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino()
        );
        format!("{:x}", Sha256::digest(id))
    };

    std::fs::create_dir_all(dir.join("bin"))?;
    let (base_dir, base_built) = shared_piece(dir, shared, "base", &key[..16], &key, |d| {
        boot.write_cpio(&d.join("initramfs.cpio"))?;
        super::squashfs::write(&root, &d.join("root.img"))
    })?;
    let kernel_name = format!("kernel-{}", &kernel_key[..16]);
    let (_, kernel_built) = shared_piece(dir, shared, "kernel", &kernel_name, &kernel_key, |d| {
        let bz = std::fs::read(&spec.kernel)
            .with_context(|| format!("cannot read {}", spec.kernel.display()))?;
        // `vmlinuz` either way: QEMU boots an ELF kernel and a bzImage alike
        let kernel = super::modules::unpacked_kernel(&bz)?.unwrap_or(bz);
        std::fs::write(d.join("vmlinuz"), kernel)?;
        Ok(())
    })?;
    config.write_cpio(&dir.join("config.cpio"))?;
    // what earlier versions wrote beside it
    for old in ["initramfs.cpio", "vmlinuz"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    crate::artifact::write_atomic_mode(
        &dir.join("bin/microvm-run"),
        run_script(spec).as_bytes(),
        0o755,
    )?;
    crate::artifact::write_atomic_mode(
        &dir.join("bin/microvm-stop"),
        stop_script(spec).as_bytes(),
        0o755,
    )?;
    let net = dir.join("bin/microvm-net");
    match net_script(spec) {
        Some(text) => crate::artifact::write_atomic_mode(&net, text.as_bytes(), 0o755)?,
        None => {
            let _ = std::fs::remove_file(&net);
        }
    }
    Ok(BuiltVm {
        base_bytes: std::fs::metadata(base_dir.join("initramfs.cpio"))?.len()
            + std::fs::metadata(base_dir.join("root.img"))?.len(),
        config_bytes: std::fs::metadata(dir.join("config.cpio"))?.len(),
        base: base_dir,
        key,
        base_built: base_built || kernel_built,
    })
}

/// A piece shared between microVMs (the base archive, the kernel): with
/// `shared`, `shared/NAME`, written by `write` into a temp dir unless it
/// holds `key` already, and `dir/LINK` a relative link to it; without,
/// `dir/LINK` itself. Returns its directory and whether it was written.
fn shared_piece(
    dir: &Path,
    shared: Option<&Path>,
    link: &str,
    name: &str,
    key: &str,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, bool)> {
    let at = match shared {
        Some(s) => s.join(name),
        None => dir.join(link),
    };
    let parent = at.parent().context("a piece has a parent")?;
    std::fs::create_dir_all(parent)?;
    // builds sharing the directory take turns: none removes a piece another
    // has just written
    let _lock = ::nix::fcntl::Flock::lock(
        std::fs::File::open(parent)?,
        ::nix::fcntl::FlockArg::LockExclusive,
    )
    .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", parent.display()))?;
    let have = std::fs::read_to_string(at.join("key")).is_ok_and(|k| k.trim() == key);
    if !have {
        let stage = tempfile::Builder::new()
            .prefix(".microvm-piece-")
            .tempdir_in(parent)?;
        write(stage.path())?;
        // on the disk before the key: a piece with a key is whole
        for f in std::fs::read_dir(stage.path())? {
            std::fs::File::open(f?.path())?.sync_all()?;
        }
        std::fs::write(stage.path().join("key"), format!("{key}\n"))?;
        remove_any(&at)?;
        std::fs::rename(stage.keep(), &at)?;
    }
    if shared.is_some() {
        let target = relative(&std::fs::canonicalize(dir)?, &std::fs::canonicalize(&at)?);
        let tmp = dir.join(format!(".{link}.link"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        if std::fs::symlink_metadata(dir.join(link)).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(dir.join(link))?;
        }
        std::fs::rename(&tmp, dir.join(link))?;
    }
    Ok((at, !have))
}

/// The initramfs (busybox, the modules, the init that mounts the root),
/// the root (host files, busybox, the base's init) and the config (the
/// rest of the spec's entries and the profile's init).
fn split(
    spec: &VmSpec,
    modules: &[String],
    version: &str,
    busybox: &Path,
) -> (Archive, Archive, Archive) {
    let (mut boot, mut root, mut config) =
        (Archive::default(), Archive::default(), Archive::default());
    for e in &spec.entries {
        let Entry {
            path,
            mode,
            uid,
            gid,
            ..
        } = e;
        match &e.content {
            Content::HostFile(p) => root.add(path, (*mode, *uid, *gid, Data::Host(p.clone()))),
            Content::Bytes(b) => config.add(path, (*mode, *uid, *gid, Data::Bytes(b.clone()))),
            Content::Dir => config.add(path, (*mode, *uid, *gid, Data::Dir)),
            Content::Symlink(t) => config.add(path, (0o777, *uid, *gid, Data::Link(t.clone()))),
        }
    }
    for m in modules {
        boot.add(
            &format!("/lib/modules/{version}/{m}"),
            (0o644, 0, 0, Data::Host(spec.modules_dir.join(m))),
        );
    }
    for a in [&mut boot, &mut root] {
        a.add(
            "/bin/busybox",
            (0o755, 0, 0, Data::Host(busybox.to_owned())),
        );
        for applet in APPLETS {
            let path = format!("/bin/{applet}");
            // a program of the image wins over the applet
            if !a.0.contains_key(&path) {
                a.add(&path, (0o777, 0, 0, Data::Link("busybox".into())));
            }
        }
        for d in [
            "/bin", "/proc", "/sys", "/dev", "/run", "/lib", "/tmp", "/etc",
        ] {
            a.0.entry(d.into()).or_insert((0o755, 0, 0, Data::Dir));
        }
    }
    boot.add(
        "/init",
        (
            0o755,
            0,
            0,
            Data::Bytes(boot_init(modules, version).into_bytes()),
        ),
    );
    root.add(
        "/init",
        (0o755, 0, 0, Data::Bytes(base_init().into_bytes())),
    );
    config.add(
        PROFILE_INIT,
        (0o755, 0, 0, Data::Bytes(init_script(spec).into_bytes())),
    );
    (boot, root, config)
}

fn remove_any(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p)?,
        Ok(_) => std::fs::remove_file(p)?,
        Err(_) => {}
    }
    Ok(())
}

/// `to` as seen from directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (f, t): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(
                Path::new("/o/c/p/microvm"),
                Path::new("/o/c/microvm-base/k")
            ),
            PathBuf::from("../../microvm-base/k")
        );
        assert_eq!(
            relative(Path::new("/a"), Path::new("/a/b")),
            PathBuf::from("b")
        );
    }
}
