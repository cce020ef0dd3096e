//! `cargo xtask check`: formatting, lints and tests, then the real tools on
//! the generated files — `nginx -t` on every generated nginx config,
//! shellcheck on every generated script, `nix-instantiate --parse` on every
//! .nix file (generated and in nix/), `systemd-analyze verify` on the units.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::build_all;

/// One row of the table: what was checked, how many files, the failures.
struct Row {
    name: &'static str,
    files: usize,
    failures: Vec<String>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// For a config that a generated unit runs: the `RuntimeDirectory=` values of
/// the units beside it (systemd creates them under /run before the start).
fn runtime_directories(conf: &Path) -> Option<Vec<String>> {
    let target = conf
        .ancestors()
        .skip(1)
        .find(|a| a.join("systemd").is_dir())?;
    let mut dirs = Vec::new();
    let mut units = Vec::new();
    walk(&target.join("systemd"), &mut units);
    for u in units
        .iter()
        .filter(|u| u.extension().is_some_and(|e| e == "service"))
    {
        let text = std::fs::read_to_string(u).unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("RuntimeDirectory=") {
                dirs.extend(v.split_whitespace().map(str::to_owned));
            }
        }
    }
    Some(dirs)
}

/// `nginx -t` as the unit would run it: in a private mount namespace whose
/// /run holds the unit's runtime directories.
fn nginx_t_as_a_service(conf: &Path, prefix: &str, dirs: &[String]) -> Option<String> {
    let script = r#"mount -t tmpfs tmpfs /run && conf=$1 prefix=$2 && shift 2 && for d in "$@"; do mkdir -p "/run/$d"; done && exec nginx -t -p "$prefix" -c "$conf""#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(conf)
        .arg(prefix)
        .args(dirs)
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "{}: {}",
            conf.display(),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Some(format!("cannot run unshare ({e}); it needs root")),
    }
}

/// Checks the generated files under `out` and the Nix files of `root`.
fn check_files(root: &Path, out: &Path) -> Vec<Row> {
    let mut files = Vec::new();
    walk(out, &mut files);
    files.retain(|f| {
        !f.components()
            .any(|c| c.as_os_str() == ".state" || c.as_os_str() == ".cache")
    });
    let named = |pred: &dyn Fn(&Path) -> bool| -> Vec<PathBuf> {
        files.iter().filter(|f| pred(f)).cloned().collect()
    };

    let nginx = named(&|f| f.file_name().is_some_and(|n| n == "nginx.conf"));
    let prefix = tempfile::tempdir().expect("a temp dir");
    let p = prefix.path().to_string_lossy().into_owned();
    let nginx_failures = nginx
        .iter()
        .filter_map(|f| match runtime_directories(f) {
            None => testkit::tools::nginx_t_file(f, prefix.path()).err(),
            Some(dirs) => nginx_t_as_a_service(f, &p, &dirs),
        })
        .collect();

    let scripts = named(&|f| f.parent().is_some_and(|p| p.ends_with("bin")));
    let script_failures = scripts
        .iter()
        .filter_map(|f| testkit::tools::shellcheck(f).err())
        .collect();

    let mut nix = named(&|f| f.extension().is_some_and(|e| e == "nix"));
    walk(&root.join("nix"), &mut nix);
    nix.retain(|f| f.extension().is_some_and(|e| e == "nix"));
    nix.push(root.join("flake.nix"));
    let nix_failures = nix
        .iter()
        .filter_map(|f| testkit::tools::nix_parse(f).err())
        .collect();

    let units = named(&|f| {
        f.extension()
            .is_some_and(|e| e == "service" || e == "slice")
    });
    let mut unit_failures = Vec::new();
    let mut dirs: Vec<&Path> = units.iter().filter_map(|u| u.parent()).collect();
    dirs.dedup();
    for dir in dirs {
        let batch: Vec<&PathBuf> = units.iter().filter(|u| u.parent() == Some(dir)).collect();
        if let Err(e) = testkit::tools::systemd_verify(&batch) {
            unit_failures.push(format!("{}: {e}", dir.display()));
        }
    }
    let mut rows = vec![
        Row {
            name: "nginx -t",
            files: nginx.len(),
            failures: nginx_failures,
        },
        Row {
            name: "shellcheck",
            files: scripts.len(),
            failures: script_failures,
        },
        Row {
            name: "nix-instantiate --parse",
            files: nix.len(),
            failures: nix_failures,
        },
        Row {
            name: "systemd-analyze verify",
            files: units.len(),
            failures: unit_failures,
        },
    ];
    // a check that found nothing to check has not passed
    for r in &mut rows {
        if r.files == 0 {
            r.failures
                .push("no files to check: the generated files are not where expected".into());
        }
    }
    rows
}

/// Runs every check; `Ok(false)` when one failed.
pub fn run(root: &Path, artifacts_only: bool) -> Result<bool> {
    let mut rows = Vec::new();
    if !artifacts_only {
        let steps: [(&'static str, &[&str]); 3] = [
            ("rustfmt", &["fmt", "--all", "--", "--check"]),
            (
                "clippy",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            ("tests", &["test", "--workspace"]),
        ];
        for (name, args) in steps {
            let ok = crate::run("cargo", args)?;
            rows.push(Row {
                name,
                files: 0,
                failures: if ok {
                    vec![]
                } else {
                    vec![format!("cargo {} failed", args.join(" "))]
                },
            });
        }
    }
    // the cheap targets of every component and profile, from debug builds
    let out = tempfile::tempdir()?;
    let options = build_all::Options {
        out: out.path().to_path_buf(),
        component: None,
        profile: None,
        targets: ["configs", "runner", "nixos-module", "systemd", "sysctl"]
            .map(String::from)
            .to_vec(),
        debug: true,
    };
    let built = build_all::run(root, &options)?;
    rows.push(Row {
        name: "build-all (generated files)",
        files: 0,
        failures: if built {
            vec![]
        } else {
            vec!["a generated artifact failed to build".into()]
        },
    });
    rows.extend(check_files(root, out.path()));

    println!("\n{:<28} {:>6}  result", "check", "files");
    for r in &rows {
        let files = if r.files > 0 {
            r.files.to_string()
        } else {
            "-".into()
        };
        println!(
            "{:<28} {files:>6}  {}",
            r.name,
            if r.failures.is_empty() {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        eprintln!("\n{} failures:", r.name);
        for f in &r.failures {
            eprintln!("  {f}");
        }
    }
    Ok(rows.iter().all(|r| r.failures.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn each_tool_catches_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        put(
            d,
            "c/p/configs/nginx.conf",
            "events {}\nhttp { server { listen nonsense-port; } }\n",
        );
        put(d, "c/p/runner/bin/run-c", "#!/usr/bin/env bash\necho $1\n");
        put(d, "c/p/nixos-module/c.nix", "{ a = 1; ");
        put(
            d,
            "c/p/systemd/systemd/c.service",
            "[Service]\nExecStart=relative/path\n",
        );
        let rows = check_files(&crate::workspace_root(), d);
        for r in &rows {
            assert!(!r.failures.is_empty(), "{} passed a broken file", r.name);
        }
        // the workspace's own .nix files are fine: only the broken one fails
        let nix = rows.iter().find(|r| r.name.starts_with("nix")).unwrap();
        assert_eq!(nix.failures.len(), 1, "{:?}", nix.failures);
    }

    #[test]
    fn a_service_config_is_tested_with_its_runtime_directory() {
        let conf = "pid /run/hls-check-x/nginx.pid;\nerror_log stderr;\nevents {}\nhttp { access_log off; client_body_temp_path /run/hls-check-x/body; }\n";
        for (runtime, ok) in [("RuntimeDirectory=hls-check-x\n", true), ("", false)] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            put(d, "c/p/systemd/etc/nginx.conf", conf);
            put(
                d,
                "c/p/systemd/systemd/c.service",
                &format!("[Service]\n{runtime}ExecStart=/bin/true\n"),
            );
            let f = d.join("c/p/systemd/etc/nginx.conf");
            let dirs = runtime_directories(&f).unwrap();
            let result = nginx_t_as_a_service(&f, d.to_str().unwrap(), &dirs);
            assert_eq!(result.is_none(), ok, "{runtime:?}: {result:?}");
        }
        assert!(!Path::new("/run/hls-check-x").exists());
    }
}
