//! Writing artifacts: atomically (temp file in the same directory, then rename),
//! so a failed build never leaves a half-written file behind.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` (mode 0644) via a temp file in the same directory
/// and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the given file mode (e.g. 0755 for a script).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(path, mode, |w| w.write_all(bytes))
}

/// Writes what `write` produces to `path` atomically, streamed through a
/// buffer (a large file never sits in memory whole): a temp file in the
/// same directory, synced, then renamed over `path`.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes `(relative path, text)` files under `dir`, each atomically, and
/// lists what was written on `out`.
pub fn write_files(dir: &Path, files: &[(String, String)], out: &mut dyn Write) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        write_atomic(&path, text.as_bytes())?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}
