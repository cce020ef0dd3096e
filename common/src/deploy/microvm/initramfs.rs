//! The guest's files as a newc cpio archive (the image's entries, the
//! modules, a static busybox and the init), and the build of a microVM
//! directory: kernel, initramfs and scripts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::deploy::container::Content;

use super::scripts::{init_script, net_script, run_script, stop_script};
use super::*;

/// An initramfs entry: (mode with file type, uid, gid, contents, symlink target).
type CpioFile = (u32, u32, u32, Option<Vec<u8>>, Option<String>);

pub(super) fn cpio_entry(
    out: &mut impl Write,
    path: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    data: &[u8],
    ino: &mut u32,
) -> Result<()> {
    *ino += 1;
    let name = path.trim_start_matches('/');
    let b = cpio::newc::Builder::new(name)
        .ino(*ino)
        .mode(mode)
        .uid(uid)
        .gid(gid)
        .nlink(1)
        .mtime(0);
    let mut w = b.write(out, data.len() as u32);
    w.write_all(data)?;
    w.finish()?;
    Ok(())
}

/// Writes the kernel, the initramfs and the run/stop scripts into `dir`.
pub fn build(spec: &VmSpec, dir: &Path) -> Result<()> {
    let version = spec
        .modules_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let modules = module_closure(&spec.modules_dir, &spec.modules)?;
    let busybox = crate::host::find_program("busybox", "busybox-static")?;
    if crate::closure::elf_deps(&std::fs::read(&busybox)?)?
        .interpreter
        .is_some()
    {
        bail!("{} is dynamically linked; the guest needs the static one: `sudo apt-get install busybox-static`", busybox.display());
    }
    std::fs::create_dir_all(dir.join("bin"))?;
    let stage = tempfile::Builder::new()
        .prefix(".microvm-")
        .tempdir_in(dir)?;

    // every path once, sorted; directories before their contents
    let mut files: BTreeMap<String, CpioFile> = BTreeMap::new();
    let add_dirs = |files: &mut BTreeMap<String, CpioFile>, p: &str| {
        let mut d = Path::new(p).parent();
        while let Some(x) = d {
            let s = x.to_string_lossy().to_string();
            if s == "/" || s.is_empty() {
                break;
            }
            files.entry(s).or_insert((0o040755, 0, 0, None, None));
            d = x.parent();
        }
    };
    for e in &spec.entries {
        let v = match &e.content {
            Content::Dir => (0o040000 | e.mode, e.uid, e.gid, None, None),
            Content::Bytes(b) => (0o100000 | e.mode, e.uid, e.gid, Some(b.clone()), None),
            Content::HostFile(p) => (
                0o100000 | e.mode,
                e.uid,
                e.gid,
                Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
                None,
            ),
            Content::Symlink(t) => (0o120777, e.uid, e.gid, None, Some(t.clone())),
        };
        add_dirs(&mut files, &e.path);
        files.insert(e.path.clone(), v);
    }
    for m in &modules {
        let path = format!("/lib/modules/{version}/{m}");
        add_dirs(&mut files, &path);
        files.insert(
            path,
            (
                0o100644,
                0,
                0,
                Some(std::fs::read(spec.modules_dir.join(m))?),
                None,
            ),
        );
    }
    files.insert(
        "/bin/busybox".into(),
        (0o100755, 0, 0, Some(std::fs::read(&busybox)?), None),
    );
    for applet in [
        "sh", "mount", "mkdir", "insmod", "ip", "sleep", "poweroff", "cat", "su", "kill", "sync",
        "echo", "chown",
    ] {
        files.entry(format!("/bin/{applet}")).or_insert((
            0o120777,
            0,
            0,
            None,
            Some("busybox".into()),
        ));
    }
    // env(1) for `env -i` in init comes from the image if it has one
    files
        .entry("/bin/env".into())
        .or_insert((0o120777, 0, 0, None, Some("busybox".into())));
    for d in ["/bin", "/proc", "/sys", "/dev", "/run", "/lib"] {
        files
            .entry(d.into())
            .or_insert((0o040755, 0, 0, None, None));
    }
    files.insert(
        "/init".into(),
        (
            0o100755,
            0,
            0,
            Some(init_script(spec, &modules, &version).into_bytes()),
            None,
        ),
    );

    let initramfs = stage.path().join("initramfs.cpio");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&initramfs)?);
    let mut ino = 0;
    for (path, (mode, uid, gid, data, link)) in &files {
        let bytes = match (data, link) {
            (Some(d), _) => d.as_slice(),
            (None, Some(t)) => t.as_bytes(),
            _ => &[],
        };
        cpio_entry(&mut out, path, *mode, *uid, *gid, bytes, &mut ino)?;
    }
    cpio::newc::trailer(&mut out)?;
    out.flush()?;
    drop(out);
    std::fs::copy(&spec.kernel, stage.path().join("vmlinuz"))
        .with_context(|| format!("cannot read {}", spec.kernel.display()))?;
    std::fs::rename(&initramfs, dir.join("initramfs.cpio"))?;
    std::fs::rename(stage.path().join("vmlinuz"), dir.join("vmlinuz"))?;
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
    Ok(())
}
