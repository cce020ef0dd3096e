//! What `cargo xtask demo` and `cargo xtask test` need from the host, and
//! getting it: each checks its list, installs the missing Debian packages
//! itself when it may (root, or sudo without a password), and otherwise
//! prints the one command to run and stops.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

/// Something the host must have, and the Debian package that brings it.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// What it is, as a user reads it (`ffmpeg`, `a kernel in /boot`).
    pub what: &'static str,
    pub package: &'static str,
    pub check: Check,
}

/// How to tell whether the host has it.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// A program on PATH (or in /usr/sbin, /sbin).
    Program(&'static str),
    /// A file.
    File(&'static str),
    /// A kernel image in /boot with its modules.
    Kernel,
    /// A statically linked busybox.
    StaticBusybox,
    /// A Python module, installed with pip (`package` is then pip's
    /// requirement, e.g. `kubernetes-validate==1.37.0`).
    PythonModule(&'static str),
    /// A file of an npm package installed into the workspace's
    /// `target/npm` (`package` is then npm's spec, e.g. `hls.js@1.7.4`).
    NpmFile(&'static str),
}

/// Where the tests' npm packages go: inside the workspace's target dir,
/// nothing outside it.
pub fn npm_prefix() -> std::path::PathBuf {
    crate::workspace_root().join("target").join("npm")
}

const fn program(name: &'static str, package: &'static str) -> Need {
    Need {
        what: name,
        package,
        check: Check::Program(name),
    }
}

/// What the demo runs: the test origin (FFmpeg, nginx).
pub const DEMO: &[Need] = &[program("ffmpeg", "ffmpeg"), program("nginx", "nginx-light")];

/// What the test suite runs: the origin, the real-tool validators, images
/// (podman, a local registry), microVMs (QEMU, a kernel, busybox), Nix's
/// parser and a browser.
pub const TESTS: &[Need] = &[
    program("ffmpeg", "ffmpeg"),
    program("ffprobe", "ffmpeg"),
    program("nginx", "nginx-light"),
    program("ss", "iproute2"),
    program("shellcheck", "shellcheck"),
    program("curl", "curl"),
    // the TLS origins make their certificates with it
    program("openssl", "openssl"),
    Need {
        what: "CA certificates",
        package: "ca-certificates",
        check: Check::File("/etc/ssl/certs/ca-certificates.crt"),
    },
    program("skopeo", "skopeo"),
    program("umoci", "umoci"),
    program("podman", "podman"),
    program("runc", "runc"),
    program("docker-registry", "docker-registry"),
    // the registry's htpasswd file (bcrypt) in the push test
    program("htpasswd", "apache2-utils"),
    program("newuidmap", "uidmap"),
    program("slirp4netns", "slirp4netns"),
    program("fuse-overlayfs", "fuse-overlayfs"),
    program("nix-instantiate", "nix-bin"),
    program("qemu-system-x86_64", "qemu-system-x86"),
    Need {
        what: "a kernel in /boot",
        package: "linux-image-amd64",
        check: Check::Kernel,
    },
    Need {
        what: "a static busybox",
        package: "busybox-static",
        check: Check::StaticBusybox,
    },
    program("mke2fs", "e2fsprogs"),
    // the swarm's HTML report, opened in a real browser; its live view, in
    // a real terminal
    program("chromium", "chromium"),
    program("tmux", "tmux"),
    // the origin beside the swarm: its machine's CPU
    program("prometheus-node-exporter", "prometheus-node-exporter"),
    // the swarm's metrics pushed to a real Prometheus and scraped by it,
    // beside the origin's nginx exporter; promtool checks the dashboard
    program("prometheus", "prometheus"),
    program("promtool", "prometheus"),
    program("prometheus-nginx-exporter", "prometheus-nginx-exporter"),
    // the official schemas of Kubernetes 1.33 and later, for the manifests
    Need {
        what: "kubernetes-validate (PyPI)",
        package: "kubernetes-validate==1.37.0",
        check: Check::PythonModule("kubernetes_validate"),
    },
    // the native viewer's stalls against a real player's, in Chromium
    program("npm", "npm"),
    Need {
        what: "hls.js (npm, in target/npm)",
        package: "hls.js@1.7.4",
        check: Check::NpmFile("node_modules/hls.js/dist/hls.min.js"),
    },
];

/// The account the production nginx config runs its workers as; the tests
/// run that config, so they need it.
pub const NGINX_USER: &str = "nginx";

fn on_path(name: &str) -> bool {
    which::which(name).is_ok()
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(name).is_file())
}

impl Need {
    pub fn present(&self) -> bool {
        match self.check {
            Check::Program(p) => on_path(p),
            Check::File(f) => Path::new(f).is_file(),
            Check::Kernel => common::deploy::microvm::host_kernel().is_ok(),
            Check::NpmFile(f) => npm_prefix().join(f).is_file(),
            Check::PythonModule(m) => Command::new("python3")
                .args(["-c", &format!("import {m}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            Check::StaticBusybox => which::which("busybox")
                .ok()
                .and_then(|b| std::fs::read(b).ok())
                .and_then(|bytes| common::closure::elf_deps(&bytes).ok())
                .is_some_and(|d| d.interpreter.is_none()),
        }
    }
}

fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

/// What is missing and the commands that fix it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// What is missing, as a user reads it.
    pub missing: Vec<String>,
    /// Debian packages to install, sorted, each once.
    pub packages: Vec<&'static str>,
    /// Python packages to install with pip.
    pub pip: Vec<&'static str>,
    /// npm packages to install into [`npm_prefix`].
    pub npm: Vec<&'static str>,
    /// The account to create, if any.
    pub user: Option<&'static str>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && self.pip.is_empty()
            && self.npm.is_empty()
            && self.user.is_none()
    }

    /// The commands that fix it, prefixed with `sudo ` where given. The
    /// install never removes a package (`--no-remove`) unless
    /// `allow_remove`.
    pub fn commands(&self, sudo: &str, allow_remove: bool) -> Vec<String> {
        let mut c = Vec::new();
        if !self.packages.is_empty() {
            c.push(format!("{sudo}apt-get update"));
            c.push(format!(
                "{sudo}apt-get install -y --no-install-recommends{} {}",
                if allow_remove { "" } else { " --no-remove" },
                self.packages.join(" ")
            ));
        }
        if let Some(u) = self.user {
            c.push(format!(
                "{sudo}useradd --system --no-create-home --shell /usr/sbin/nologin {u}"
            ));
        }
        if !self.pip.is_empty() {
            c.push(format!(
                "python3 -m pip install --quiet --disable-pip-version-check {}",
                self.pip.join(" ")
            ));
        }
        if !self.npm.is_empty() {
            c.push(format!(
                "npm install --prefix {} --no-save --no-audit --no-fund --silent {}",
                npm_prefix().display(),
                self.npm.join(" ")
            ));
        }
        c
    }
}

/// The plan for `needs` (and the nginx account when `user` says so), given
/// which of them are present.
pub fn plan(
    needs: &[Need],
    present: impl Fn(&Need) -> bool,
    user: Option<(&'static str, bool)>,
) -> Plan {
    let mut p = Plan::default();
    for n in needs.iter().filter(|n| !present(n)) {
        p.missing.push(format!("{} ({})", n.what, n.package));
        if matches!(n.check, Check::PythonModule(_)) {
            p.pip.push(n.package);
        } else if matches!(n.check, Check::NpmFile(_)) {
            p.npm.push(n.package);
        } else if !p.packages.contains(&n.package) {
            p.packages.push(n.package);
        }
    }
    p.packages.sort_unstable();
    if let Some((name, exists)) = user {
        if !exists {
            p.missing.push(format!("the `{name}` account"));
            p.user = Some(name);
        }
    }
    p
}

/// How this process may install packages: as root, with passwordless sudo,
/// or not at all.
fn privilege() -> Option<&'static str> {
    if nix::unistd::geteuid().is_root() {
        return Some("");
    }
    let sudo_ok = Command::new("sudo")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    sudo_ok.then_some("sudo ")
}

/// The installed packages apt would remove to install `packages`: the
/// `Remv NAME [VERSION]` lines of a simulated install.
fn removals(sudo: &str, packages: &[&str]) -> Result<Vec<String>> {
    let mut cmd = if sudo.is_empty() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    let out = cmd
        .args(["install", "-s", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()?;
    Ok(removed_by(&String::from_utf8_lossy(&out.stdout)))
}

/// The `Remv` lines of `apt-get install -s` output, as `NAME VERSION`.
fn removed_by(simulation: &str) -> Vec<String> {
    simulation
        .lines()
        .filter_map(|l| l.strip_prefix("Remv "))
        .map(|l| l.replace(['[', ']'], ""))
        .collect()
}

/// Makes sure the host has `needs` (and the nginx account when
/// `nginx_user`), installing what is missing when it may. `Ok(false)` when
/// it may not: the command to run has been printed. An install that would
/// remove an installed package is refused, saying which and why, unless
/// `allow_remove`.
pub fn ensure(purpose: &str, needs: &[Need], nginx_user: bool, allow_remove: bool) -> Result<bool> {
    let plan = plan(
        needs,
        Need::present,
        nginx_user.then(|| (NGINX_USER, user_exists(NGINX_USER))),
    );
    if plan.is_empty() {
        return Ok(true);
    }
    eprintln!("{purpose} needs: {}", plan.missing.join(", "));
    let Some(sudo) = privilege() else {
        eprintln!("install them with (then run this again):\n");
        eprintln!("  {}\n", plan.commands("sudo ", allow_remove).join(" && "));
        return Ok(false);
    };
    let commands = plan.commands(sudo, allow_remove);
    for cmd in commands {
        if cmd.contains("apt-get install") && !allow_remove {
            let gone = removals(sudo, &plan.packages)?;
            if !gone.is_empty() {
                bail!(
                    "installing {} would remove installed package(s) {}: they conflict with \
                     what Debian's archive offers. Nothing was changed. Resolve the conflict \
                     yourself, or let the set-up remove them: add --allow-remove",
                    plan.packages.join(" "),
                    gone.join(", ")
                );
            }
        }
        eprintln!("$ {cmd}");
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let status = Command::new(words[0])
            .args(&words[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !status.success() {
            bail!("`{cmd}` failed ({status})");
        }
    }
    let still = self::plan(needs, Need::present, None);
    if !still.missing.is_empty() {
        bail!(
            "still missing after the install: {}",
            still.missing.join(", ")
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_lists_each_package_once_and_the_account() {
        let p = plan(
            TESTS,
            |n| !matches!(n.package, "ffmpeg" | "uidmap"),
            Some(("nginx", false)),
        );
        assert_eq!(p.packages, ["ffmpeg", "uidmap"]);
        assert_eq!(p.user, Some("nginx"));
        assert_eq!(
            p.missing,
            [
                "ffmpeg (ffmpeg)",
                "ffprobe (ffmpeg)",
                "newuidmap (uidmap)",
                "the `nginx` account"
            ]
        );
        assert_eq!(
            p.commands("sudo ", false),
            [
                "sudo apt-get update",
                "sudo apt-get install -y --no-install-recommends --no-remove ffmpeg uidmap",
                "sudo useradd --system --no-create-home --shell /usr/sbin/nologin nginx"
            ]
        );
        assert_eq!(
            p.commands("", true)[1],
            "apt-get install -y --no-install-recommends ffmpeg uidmap"
        );
        let none = plan(DEMO, |_| true, Some(("nginx", true)));
        assert!(none.is_empty() && none.commands("", false).is_empty());
    }

    #[test]
    fn removals_are_read_from_a_simulated_install() {
        // what apt-get install -s printed here when QEMU from the archive met
        // a newer qemu-utils
        let sim = "NOTE: This is only a simulation!\n\
                   Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                   Inst qemu-system-common (1:7.2+dfsg-7+deb12u18+b3 Debian:12.11/stable [amd64])\n\
                   Conf qemu-system-common (1:7.2+dfsg-7+deb12u18+b3 Debian:12.11/stable [amd64])\n";
        assert_eq!(
            removed_by(sim),
            ["qemu-utils 1:10.0.2+ds-2+deb13u1~bpo12+1"]
        );
        assert!(removed_by("Inst a (1 x)\nConf a (1 x)\n").is_empty());
    }

    #[test]
    fn presence_is_read_from_the_host() {
        assert!(program("sh", "dash").present());
        assert!(!program("surely-not-a-program-xyz", "x").present());
        assert!(Need {
            what: "passwd",
            package: "base-files",
            check: Check::File("/etc/passwd"),
        }
        .present());
        assert!(user_exists("root"));
        assert!(!user_exists("surely-not-a-user-xyz"));
    }
}
