//! What goes into an image: programs with their shared-library closure
//! (one layer for the libraries, one per program) and the accounts of a
//! non-root image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::*;

/// A program to put in an image, with data files it reads at run time.
#[derive(Clone, Debug)]
pub struct Program {
    /// Layer name (`ffmpeg`).
    pub name: String,
    /// Host executables of this layer; each keeps its host path in the image.
    pub executables: Vec<PathBuf>,
    /// Data files or directories copied as they are (image path = host path).
    pub data: Vec<PathBuf>,
}

pub(super) fn image_mode(host: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    // no setuid/setgid/sticky bits from the host
    Ok(std::fs::metadata(host)?.permissions().mode() & 0o777)
}

pub(super) fn add_tree(host: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let meta =
        std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
    let path = host.to_string_lossy().to_string();
    if meta.is_dir() {
        out.push(Entry::dir(path, 0o755, 0, 0));
        let mut kids: Vec<PathBuf> = std::fs::read_dir(host)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        kids.sort();
        for k in kids {
            add_tree(&k, out)?;
        }
    } else {
        out.push(Entry::host_file(
            path,
            std::fs::canonicalize(host)?,
            image_mode(host)?,
        ));
    }
    Ok(())
}

/// Layers for `programs`: first the shared libraries (and the ELF
/// interpreter), in a layer per program with those of its closure that no
/// earlier program brought, then one per program with its executables and
/// data files — a stable split, so that a program or a library change
/// touches only its own layer. The first program's libraries are a layer of
/// their own, so images that start with the same program (FFmpeg, whose
/// closure is most of an image) have the same first layer, compressed once
/// and stored once by a registry.
pub fn program_layers(programs: &[Program]) -> Result<Vec<Layer>> {
    let exes: Vec<PathBuf> = programs
        .iter()
        .flat_map(|p| p.executables.iter().cloned())
        .collect();
    let files = crate::closure::closure(&exes)?;
    let mut placed: std::collections::BTreeSet<PathBuf> = exes.iter().cloned().collect();
    let mut layers = Vec::new();
    for p in programs {
        let mut libs = Layer {
            name: format!("libraries of {}", p.name),
            entries: Vec::new(),
        };
        for (image, host) in crate::closure::closure(&p.executables)? {
            if placed.insert(image.clone()) {
                libs.entries.push(Entry::host_file(
                    image.to_string_lossy(),
                    &host,
                    image_mode(&host)?,
                ));
            }
        }
        if !libs.entries.is_empty() {
            layers.push(libs);
        }
    }
    for p in programs {
        let mut entries = Vec::new();
        for exe in &p.executables {
            let host = files.get(exe).cloned().unwrap_or_else(|| exe.clone());
            entries.push(Entry::host_file(exe.to_string_lossy(), host, 0o755));
        }
        for d in &p.data {
            add_tree(d, &mut entries)?;
        }
        layers.push(Layer {
            name: p.name.clone(),
            entries,
        });
    }
    Ok(layers)
}

/// [`program_layers`] plus a component's own binary (`name`, host path): its
/// libraries no program brought get a layer, and the binary itself goes, whatever
/// its host path, to /usr/local/bin/NAME in a last layer named NAME.
pub fn program_layers_with_own(programs: &[Program], name: &str, own: &Path) -> Result<Vec<Layer>> {
    let mut all = programs.to_vec();
    all.push(Program {
        name: name.into(),
        executables: vec![own.to_path_buf()],
        data: vec![],
    });
    let mut layers = program_layers(&all)?;
    let last = layers.last_mut().expect("one layer per program");
    last.entries = vec![Entry::host_file(
        format!("/usr/local/bin/{name}"),
        std::fs::canonicalize(own)?,
        0o755,
    )];
    Ok(layers)
}

/// The account files of a non-root image: `root` and one user/group `name`
/// with `uid`; every password locked (`!`).
pub fn account_entries(name: &str, uid: u32, home: &str) -> Vec<Entry> {
    let passwd = format!("root:x:0:0:root:/root:/usr/sbin/nologin\n{name}:x:{uid}:{uid}:{name}:{home}:/usr/sbin/nologin\n");
    let group = format!("root:x:0:\n{name}:x:{uid}:\n");
    let shadow = format!("root:!:1::::::\n{name}:!:1::::::\n");
    let nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";
    vec![
        Entry::bytes("/etc/passwd", passwd, 0o644),
        Entry::bytes("/etc/group", group, 0o644),
        Entry::bytes("/etc/shadow", shadow, 0o600),
        Entry::bytes("/etc/nsswitch.conf", nsswitch, 0o644),
        Entry::dir("/tmp", 0o1777, 0, 0),
    ]
}
