//! The run-time closure of host programs: each ELF file, its interpreter and
//! its `DT_NEEDED` libraries, recursively, found the way the dynamic loader
//! finds them (`RPATH` unless there is a `RUNPATH`, then `RUNPATH`, then the
//! directories of `/etc/ld.so.conf` and the default ones), with `$ORIGIN`
//! expanded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use goblin::elf::Elf;

/// Files to copy: where they go in the image → where they are on the host.
pub type FileMap = BTreeMap<PathBuf, PathBuf>;

/// What one ELF file says about loading it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDeps {
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

pub fn elf_deps(bytes: &[u8]) -> Result<ElfDeps> {
    let elf = Elf::parse(bytes).context("not an ELF file")?;
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(ElfDeps {
        interpreter: elf.interpreter.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
    })
}

/// The loader's default and configured library directories, in search order.
pub fn system_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        let p = PathBuf::from(d);
        if !dirs.contains(&p) {
            dirs.push(p);
        }
    }
    dirs
}

fn read_ld_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: u32) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            if depth > 4 {
                continue;
            }
            // `include DIR/*.conf`: the one glob form in use
            let (dir, suffix) = match pattern.rsplit_once('/') {
                Some((d, f)) => (PathBuf::from(d), f.trim_start_matches('*').to_owned()),
                None => continue,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            files.retain(|f| f.to_string_lossy().ends_with(&suffix));
            files.sort();
            for f in files {
                read_ld_conf(&f, dirs, depth + 1);
            }
        } else {
            let p = PathBuf::from(line);
            if !dirs.contains(&p) {
                dirs.push(p);
            }
        }
    }
}

fn expand_origin(dir: &str, origin: &Path) -> PathBuf {
    let o = origin.to_string_lossy();
    PathBuf::from(dir.replace("$ORIGIN", &o).replace("${ORIGIN}", &o))
}

/// The closure of `programs` (host paths): every file they need at run time,
/// keyed by its path in the image (the path the loader will look for),
/// pointing at the host file (symlinks resolved).
pub fn closure(programs: &[PathBuf]) -> Result<FileMap> {
    let sys = system_dirs();
    let mut out = FileMap::new();
    let mut queue: VecDeque<(PathBuf, PathBuf)> = VecDeque::new();
    for p in programs {
        queue.push_back((p.clone(), p.clone()));
    }
    let mut seen_names: BTreeSet<String> = BTreeSet::new();
    while let Some((image_path, host_path)) = queue.pop_front() {
        if out.contains_key(&image_path) {
            continue;
        }
        let real = std::fs::canonicalize(&host_path)
            .with_context(|| format!("cannot resolve {}", host_path.display()))?;
        let bytes =
            std::fs::read(&real).with_context(|| format!("cannot read {}", real.display()))?;
        out.insert(image_path.clone(), real.clone());
        let deps = elf_deps(&bytes).with_context(|| {
            format!("{} is not a dynamic ELF program or library", real.display())
        })?;
        if let Some(interp) = &deps.interpreter {
            queue.push_back((PathBuf::from(interp), PathBuf::from(interp)));
        }
        let origin = real.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut search: Vec<PathBuf> = Vec::new();
        if deps.runpath.is_empty() {
            search.extend(deps.rpath.iter().map(|d| expand_origin(d, &origin)));
        }
        search.extend(deps.runpath.iter().map(|d| expand_origin(d, &origin)));
        search.extend(sys.iter().cloned());
        for name in &deps.needed {
            if name.contains('/') {
                queue.push_back((PathBuf::from(name), PathBuf::from(name)));
                continue;
            }
            if !seen_names.insert(name.clone()) {
                continue;
            }
            match search.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
                // put it where the loader in the image will look: a default dir
                Some(found) => queue.push_back((image_lib_path(&found, name, &sys), found)),
                None => bail!(
                    "{} needs {name}, which is not in {}",
                    real.display(),
                    search
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                ),
            }
        }
    }
    Ok(out)
}

/// A library found in `found` goes to the same directory in the image when
/// that is a system directory; one from elsewhere (an RPATH) keeps its path.
fn image_lib_path(found: &Path, name: &str, sys: &[PathBuf]) -> PathBuf {
    let dir = found.parent().unwrap_or(Path::new("/"));
    if sys.iter().any(|d| d == dir) {
        // merged-/usr hosts reach /lib through a symlink: use the /usr path
        let canonical_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        canonical_dir.join(name)
    } else {
        found.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_of_a_real_program_has_its_loader_and_libc() {
        let bash = which::which("bash").unwrap();
        let files = closure(std::slice::from_ref(&bash)).unwrap();
        assert!(files.contains_key(&bash));
        assert!(
            files
                .keys()
                .any(|p| p.to_string_lossy().contains("ld-linux")),
            "{files:?}"
        );
        assert!(
            files
                .keys()
                .any(|p| p.file_name().is_some_and(|n| n == "libc.so.6")),
            "{files:?}"
        );
        for host in files.values() {
            assert!(host.is_file() && !host.is_symlink(), "{}", host.display());
        }
    }

    #[test]
    fn elf_facts_and_errors() {
        let bytes = std::fs::read(which::which("bash").unwrap()).unwrap();
        let d = elf_deps(&bytes).unwrap();
        assert!(d.interpreter.unwrap().contains("ld-linux"));
        assert!(d.needed.iter().any(|n| n == "libc.so.6"));
        assert!(elf_deps(b"#!/bin/sh\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(closure(&[script]).is_err());
    }

    #[test]
    fn origin_is_expanded() {
        assert_eq!(
            expand_origin("$ORIGIN/../lib", Path::new("/opt/x/bin")),
            PathBuf::from("/opt/x/bin/../lib")
        );
    }
}
