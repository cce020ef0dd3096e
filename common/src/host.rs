//! Facts about the host a component runs on, checked before anything starts.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A program on `PATH`, or an error naming the Debian package that has it.
pub fn find_program(name: &str, debian_package: &str) -> Result<PathBuf> {
    which::which(name).map_err(|_| {
        if debian_package.is_empty() {
            anyhow::anyhow!("`{name}` is not installed (not found in PATH); put it on PATH")
        } else {
            anyhow::anyhow!(
                "`{name}` is not installed (not found in PATH); install it with `sudo apt-get install {debian_package}`"
            )
        }
    })
}

/// Fails when `addr:port` cannot be bound (usually: something listens there).
pub fn ensure_port_free(addr: IpAddr, port: u16, flag_hint: &str) -> Result<()> {
    match TcpListener::bind(SocketAddr::new(addr, port)) {
        Ok(l) => {
            drop(l);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("port {port} on {addr} is already in use; pick another with {flag_hint}")
        }
        Err(e) => bail!("cannot listen on {addr}:{port}: {e}"),
    }
}

/// Creates `dir` if needed and checks that files can be written in it.
pub fn ensure_writable_dir(dir: &Path, flag_hint: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {}; choose another with {flag_hint}",
            dir.display()
        )
    })?;
    tempfile::tempfile_in(dir).with_context(|| {
        format!(
            "{} is not writable; choose another with {flag_hint}",
            dir.display()
        )
    })?;
    Ok(())
}

/// Bytes free (for an unprivileged user) and in all on the filesystem of `dir`.
pub fn disk_space(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let v = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let block = v.fragment_size() as u64;
    Ok((
        v.blocks_available() as u64 * block,
        v.blocks() as u64 * block,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_programs_name_the_package() {
        let e = find_program("surely-not-a-program-xyz", "xyz-tools")
            .unwrap_err()
            .to_string();
        assert!(e.contains("apt-get install xyz-tools"), "{e}");
        assert!(find_program("sh", "dash").is_ok());
    }

    #[test]
    fn busy_ports_are_reported() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = ensure_port_free("127.0.0.1".parse().unwrap(), port, "--port").unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        drop(l);
        ensure_port_free("127.0.0.1".parse().unwrap(), port, "--port").unwrap();
    }

    #[test]
    fn unwritable_dirs_are_reported() {
        let d = tempfile::tempdir().unwrap();
        ensure_writable_dir(&d.path().join("a/b"), "--dir").unwrap();
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(ensure_writable_dir(&f.join("sub"), "--dir").is_err());
    }
}
