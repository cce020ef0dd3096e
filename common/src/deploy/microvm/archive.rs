//! The guest's files as an ordered set of entries, written as a newc cpio
//! archive (an initramfs, the config) or as a squashfs image (the base's
//! read-only root, see `squashfs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// What an archive entry holds.
#[derive(Clone, Debug)]
pub(super) enum Data {
    Dir,
    Bytes(Vec<u8>),
    Host(PathBuf),
    Link(String),
}

/// An archive entry: mode (permission bits), uid, gid, contents.
pub(super) type CpioFile = (u32, u32, u32, Data);

/// Paths to archive entries; parents are added as root-owned 0755 dirs.
#[derive(Default)]
pub(super) struct Archive(pub(super) BTreeMap<String, CpioFile>);

impl Archive {
    pub(super) fn add(&mut self, path: &str, file: CpioFile) {
        let mut d = Path::new(path).parent();
        while let Some(x) = d {
            let s = x.to_string_lossy().to_string();
            if s == "/" || s.is_empty() {
                break;
            }
            self.0.entry(s).or_insert((0o755, 0, 0, Data::Dir));
            d = x.parent();
        }
        self.0.insert(path.to_owned(), file);
    }

    /// A key of the archive's inputs: paths, modes, owners, and host files
    /// by identity (path, size, mtime, inode), not by their bytes.
    pub(super) fn key(&self, h: &mut Sha256) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        for (path, (mode, uid, gid, data)) in &self.0 {
            h.update(format!("{path}\0{mode:o}\0{uid}\0{gid}\0"));
            match data {
                Data::Dir => h.update("dir\n"),
                Data::Bytes(b) => h.update(format!("bytes {:x}\n", Sha256::digest(b))),
                Data::Link(t) => h.update(format!("link {t}\n")),
                Data::Host(p) => {
                    let m = std::fs::metadata(p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    h.update(format!(
                        "host {}\0{}\0{}.{}\0{}\n",
                        p.display(),
                        m.len(),
                        m.mtime(),
                        m.mtime_nsec(),
                        m.ino()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the archive to `out` (sorted, so directories come before
    /// their contents; inode numbers in order; mtime 0), mode 0644, through
    /// a synced temp file renamed into place.
    pub(super) fn write_cpio(&self, out: &Path) -> Result<()> {
        crate::artifact::write_atomic_with(out, 0o644, |w| self.cpio_to(w))
    }

    fn cpio_to(&self, mut w: &mut dyn Write) -> std::io::Result<()> {
        for (ino, (path, (mode, uid, gid, data))) in self.0.iter().enumerate() {
            let kind = match data {
                Data::Dir => 0o040000,
                Data::Link(_) => 0o120000,
                _ => 0o100000,
            };
            let owned;
            let bytes: &[u8] = match data {
                Data::Dir => &[],
                Data::Bytes(b) => b,
                Data::Link(t) => t.as_bytes(),
                Data::Host(p) => {
                    owned = std::fs::read(p).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display()))
                    })?;
                    &owned
                }
            };
            let size = u32::try_from(bytes.len()).map_err(|_| {
                std::io::Error::other(format!("{path} is too big for an initramfs"))
            })?;
            let b = cpio::newc::Builder::new(path.trim_start_matches('/'))
                .ino(ino as u32 + 1)
                .mode(kind | mode)
                .uid(*uid)
                .gid(*gid)
                .nlink(1)
                .mtime(0);
            let mut e = b.write(&mut w, size);
            e.write_all(bytes)?;
            e.finish()?;
        }
        cpio::newc::trailer(&mut w)?;
        Ok(())
    }
}
