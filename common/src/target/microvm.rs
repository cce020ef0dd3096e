//! The microvm target: the host kernel, an initramfs with the same files as
//! the container image plus the virtio modules the guest needs and a small
//! init, and scripts that start and stop `qemu-system-x86_64 -M microvm`.
//!
//! Nothing listens beyond 127.0.0.1 on the host (forwards and the serial
//! console), the guest has no login at all, and its services run as uid 1000.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::render::shell::quote;
use crate::target::container::{Content, Entry};

/// How the guest is networked.
#[derive(Clone, Debug)]
pub enum Net {
    /// QEMU user networking; `(env var, default host port, guest port)` forwards,
    /// each bound to 127.0.0.1 on the host.
    User { forwards: Vec<(String, u16, u16)> },
    /// A host tap device in a bridge, and a static address; `bin/microvm-net`
    /// sets both up (the bridge holds the gateway's address).
    Tap {
        device: String,
        bridge: String,
        mac: String,
        ip: String,
        prefix: u8,
        gateway: String,
    },
}

/// A service the guest's init starts.
#[derive(Clone, Debug)]
pub struct GuestService {
    pub name: String,
    /// Environment assignments (`PORT=17080`).
    pub env: Vec<(String, String)>,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The (non-root) user it runs as; must be in the guest's /etc/passwd.
    pub user: String,
}

/// Everything about a microVM.
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Short name (`test-origin`), used for the pid file and messages.
    pub name: String,
    /// The guest's files (the container image's entries).
    pub entries: Vec<Entry>,
    pub kernel: PathBuf,
    /// `/lib/modules/<version>` of that kernel.
    pub modules_dir: PathBuf,
    /// Modules to load, by name; their dependencies come along.
    pub modules: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub services: Vec<GuestService>,
    /// vCPUs, memory, network, log volume: what a microvm.nix guest of the
    /// component also takes.
    pub shape: VmShape,
    /// Host TCP port of the serial console (127.0.0.1).
    pub serial_port: u16,
    /// Environment variables that `microvm-run` passes from the host to the
    /// services (through the kernel command line, so values may not hold spaces).
    pub guest_env: Vec<String>,
}

/// The machine a microVM is: the part of a [`VmSpec`] that a microvm.nix
/// guest ([`nix_guest`]) is made from too.
#[derive(Clone, Debug)]
pub struct VmShape {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub net: Net,
    /// A persistent ext4 volume (mount point, size in MB, owner uid), kept in
    /// DIR/run/ across runs.
    pub log_volume: Option<(String, u64, u32)>,
}

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

/// The guest's /init (busybox sh).
fn init_script(spec: &VmSpec, module_paths: &[String], version: &str) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# hls-swarm microVM init (generated; do not edit)\n\
         export PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\n\
         mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n\
         mkdir -p /dev/pts /dev/shm /run\nmount -t devpts devpts /dev/pts\n\
         mount -t tmpfs -o mode=1777 tmpfs /tmp\nmount -t tmpfs -o mode=0755 tmpfs /run\n\
         echo 'init: loading modules'\n",
    );
    for m in module_paths {
        let path = format!("/lib/modules/{version}/{m}");
        if m.ends_with("virtio_mmio.ko") {
            // the kernel leaves module parameters on its command line to modprobe
            s.push_str("args=\"\"\nfor p in $(cat /proc/cmdline); do case \"$p\" in virtio_mmio.device=*) args=\"$args device=${p#virtio_mmio.device=}\" ;; esac; done\n");
            s.push_str(&format!(
                "# shellcheck disable=SC2086\ninsmod {} $args\n",
                quote(&path)
            ));
        } else {
            s.push_str(&format!("insmod {}\n", quote(&path)));
        }
    }
    s.push_str("echo 'init: kernel settings'\n");
    for (k, v) in &spec.sysctls {
        let file = format!("/proc/sys/{}", k.replace('.', "/"));
        s.push_str(&format!(
            "if [ ! -e {f} ]; then echo {msg}; elif ! echo {v} 2>/dev/null > {f}; then echo {fail}; fi\n",
            fail = quote(&format!("init: cannot set {k} (the kernel refused {v})")),
            f = quote(&file),
            v = quote(v),
            msg = quote(&format!("init: skipping {k}: not in this kernel"))
        ));
    }
    s.push_str("echo 'init: network'\nip link set lo up\nip link set eth0 up\n");
    match &spec.shape.net {
        Net::User { .. } => {
            s.push_str("ip addr add 10.0.2.15/24 dev eth0\nip route add default via 10.0.2.2\n")
        }
        Net::Tap {
            ip,
            prefix,
            gateway,
            ..
        } => {
            s.push_str(&format!(
                "ip addr add {}/{prefix} dev eth0\nip route add default via {}\n",
                quote(ip),
                quote(gateway)
            ));
        }
    }
    if let Some((mp, _, uid)) = &spec.shape.log_volume {
        s.push_str(&format!(
            "echo 'init: log volume'\nmkdir -p {mp}\nfor _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -b /dev/vda ] && break; sleep 0.2; done\nif [ ! -b /dev/vda ] && [ -e /sys/block/vda/dev ]; then IFS=: read -r maj min < /sys/block/vda/dev; mknod /dev/vda b \"$maj\" \"$min\"; fi\nif mount -t ext4 /dev/vda {mp}; then chown {uid}:{uid} {mp}; else echo 'init: no log volume; block devices:'; cat /proc/partitions; grep -o 'virtio_mmio.device=[^ ]*' /proc/cmdline; fi\n",
            mp = quote(mp)
        ));
    }
    s.push_str("guest_env=\"\"\nfor p in $(cat /proc/cmdline); do case \"$p\" in hlsenv.*=*) guest_env=\"$guest_env ${p#hlsenv.}\" ;; esac; done\n");
    s.push_str("pids=\"\"\n");
    for svc in &spec.services {
        let env: Vec<String> = svc
            .env
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect();
        let argv: Vec<String> = svc.argv.iter().map(|a| quote(a)).collect();
        let command = format!(
            "exec env -i PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin HOME=/tmp {} \"$@\" {}",
            env.join(" "),
            argv.join(" ")
        );
        s.push_str(&format!(
            "echo {msg}\n# host settings (guest_env) come last and win\n# shellcheck disable=SC2086\nsu -s /bin/sh {user} -c {cmd} sh $guest_env </dev/null &\npids=\"$pids $!\"\n",
            msg = quote(&format!("init: starting {} as {}", svc.name, svc.user)),
            cmd = quote(&command),
            user = quote(&svc.user),
        ));
    }
    s.push_str(
        "stop() { echo 'init: stopping'; for p in $pids; do kill -TERM \"$p\" 2>/dev/null; done; sleep 3; sync; umount -a -r 2>/dev/null; poweroff -f; }\n\
         trap stop TERM INT\n\
         # microvm-stop writes this line on the console for a clean shutdown; the\n\
         # services read nothing from it (their stdin is /dev/null)\n\
         (while read -r line; do case \"$line\" in *hls-swarm:poweroff*) stop ;; esac; done) </dev/console &\n\
         # when a service ends the machine powers off\n\
         for p in $pids; do wait \"$p\"; done\n\
         echo 'init: services ended'\nsync\npoweroff -f\n",
    );
    s
}

/// An initramfs entry: (mode with file type, uid, gid, contents, symlink target).
type CpioFile = (u32, u32, u32, Option<Vec<u8>>, Option<String>);

fn cpio_entry(
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
        "echo",
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

/// `bin/microvm-net` of a tap-networked VM: `up` (as root) creates the
/// bridge with the gateway's address and the tap device in it, `down`
/// removes them, `check` says what is missing. Doing any of them twice
/// changes nothing.
fn net_script(spec: &VmSpec) -> Option<String> {
    let Net::Tap {
        device,
        bridge,
        ip,
        prefix,
        gateway,
        ..
    } = &spec.shape.net
    else {
        return None;
    };
    let q = crate::render::shell::quote;
    Some(format!(
        "#!/usr/bin/env bash\n# Sets up, removes or checks the network of the {name} microVM (generated by hls-swarm; do not edit).\nset -euo pipefail\nBRIDGE={bridge}\nTAP={tap}\nADDRESS={address}\nGUEST={guest}\n{body}",
        name = spec.name,
        bridge = q(bridge),
        tap = q(device),
        address = q(&format!("{gateway}/{prefix}")),
        guest = q(ip),
        body = include_str!("microvm_net.sh"),
    ))
}

fn run_script(spec: &VmSpec) -> String {
    let mut env_doc = String::new();
    let mut netdev = String::from("user,id=n0");
    let mut checks = String::new();
    let mut device = "virtio-net-device,netdev=n0".to_owned();
    let mut guest = String::new();
    let mut drive = String::new();
    if let Some((mp, size, _)) = &spec.shape.log_volume {
        guest.push_str(&format!(
            "logimg=\"$here/run/logs.img\"  # persistent {mp} volume\nif [[ ! -f $logimg ]]; then\n  command -v mke2fs >/dev/null 2>&1 || die \"mke2fs is not installed; install it with: sudo apt-get install e2fsprogs\"\n  mkdir -p \"$here/run\"\n  truncate -s {size}M \"$logimg\"\n  mke2fs -q -t ext4 -F \"$logimg\"\nfi\n"
        ));
        drive = " \\\n  -drive \"file=$logimg,if=none,id=logs,format=raw\" -device virtio-blk-device,drive=logs".into();
    }
    for v in &spec.guest_env {
        env_doc.push_str(&format!(
            "#   {v:<14} passed to the guest's services when set (no spaces)\n"
        ));
        guest.push_str(&format!(
            "if [[ -n ${{{v}:-}} ]]; then\n  if ! [[ ${v} =~ ^[A-Za-z0-9:/._?=\\&%+,@-]+$ ]]; then die \"{v} may hold no spaces or shell characters\"; fi\n  append=\"$append hlsenv.{v}=${v}\"\nfi\n"
        ));
    }
    match &spec.shape.net {
        Net::User { forwards } => {
            for (var, default, guest) in forwards {
                env_doc.push_str(&format!("#   {var:<14} host port (127.0.0.1) for guest port {guest} (default {default})\n"));
                checks.push_str(&format!(
                    "{var}=\"${{{var}:-{default}}}\"\nif ! [[ ${var} =~ ^[0-9]{{1,5}}$ ]] || (({var} < 1 || {var} > 65535)); then die \"{var} must be a port number\"; fi\n"
                ));
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:${{{var}}}-:{guest}"));
            }
        }
        Net::Tap {
            device: dev, mac, ..
        } => {
            // what is missing goes to stderr, and the run stops
            checks.push_str("\"$here/bin/microvm-net\" check >/dev/null\n");
            netdev = format!("tap,id=n0,ifname={dev},script=no,downscript=no");
            device = format!("virtio-net-device,netdev=n0,mac={mac}");
        }
    }
    format!(
        r#"#!/usr/bin/env bash
# Starts the {name} microVM (generated by hls-swarm; do not edit).
# Environment:
{env_doc}#   SERIAL_PORT    serial console on 127.0.0.1 (default {serial})
#   ACCEL          kvm, tcg or auto (default: kvm when /dev/kvm works, else tcg)
set -euo pipefail
die() {{ printf 'microvm-run: error: %s\n' "$*" >&2; exit 1; }}
here=$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu is not installed; install it with: sudo apt-get install qemu-system-x86"
{checks}# the kernel's messages stay on: run/console.log then shows how far a boot got
append="console=ttyS0 rdinit=/init panic=-1"
{guest}SERIAL_PORT="${{SERIAL_PORT:-{serial}}}"
if ! [[ $SERIAL_PORT =~ ^[0-9]{{1,5}}$ ]]; then die "SERIAL_PORT must be a port number"; fi
pidfile="$here/run/microvm.pid"
mkdir -p "$here/run"
if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then die "already running (pid $(cat "$pidfile")); stop it with bin/microvm-stop"; fi
ACCEL="${{ACCEL:-auto}}"
if [[ $ACCEL == auto ]]; then
  ACCEL=tcg
  # KVM only when it really runs a guest: on some hosts /dev/kvm exists but hangs
  if [[ -r /dev/kvm && -w /dev/kvm ]] && timeout 10 qemu-system-x86_64 -M microvm -accel kvm -display none -nodefaults \
      -no-reboot -kernel "$here/vmlinuz" -append "panic=-1 rdinit=/nonexistent" >/dev/null 2>&1; then
    ACCEL=kvm
  fi
fi
case $ACCEL in kvm) cpu=host ;; tcg) cpu=max ;; *) die "ACCEL must be kvm, tcg or auto" ;; esac
if [[ $ACCEL == tcg ]]; then
  # Under TCG the guest's TSC runs at the host's rate, and the kernel's quick
  # calibration against the PIT fails on a busy host, after which boot hangs:
  # give it the host's frequency instead.
  khz=$(awk '/^cpu MHz/ {{ printf "%d", $4 * 1000; exit }}' /proc/cpuinfo 2>/dev/null || true)
  if [[ $khz =~ ^[1-9][0-9]{{5,7}}$ ]]; then append="$append tsc_early_khz=$khz"; fi
fi
qemu-system-x86_64 -M microvm -accel "$ACCEL" -cpu "$cpu" -smp {vcpus} -m {mem} \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$here/vmlinuz" -initrd "$here/initramfs.cpio" \
  -append "$append" \
  -chardev "socket,id=con0,host=127.0.0.1,port=$SERIAL_PORT,server=on,wait=off,logfile=$here/run/console.log" \
  -serial chardev:con0 \
  -netdev "{netdev}" -device {device}{drive} \
  -pidfile "$pidfile" -daemonize
echo "$SERIAL_PORT" > "$here/run/serial.port"
echo "microvm-run: {name} started with $ACCEL (pid $(cat "$pidfile")); console: 127.0.0.1:$SERIAL_PORT, log: $here/run/console.log"
"#,
        name = spec.name,
        serial = spec.serial_port,
        guest = guest,
        drive = drive,
        vcpus = spec.shape.vcpus,
        mem = spec.shape.memory_mb,
    )
}

fn stop_script(spec: &VmSpec) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Stops the {name} microVM (generated by hls-swarm; do not edit).
set -euo pipefail
here=$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)
pidfile="$here/run/microvm.pid"
if [[ ! -f $pidfile ]]; then echo "microvm-stop: not running"; exit 0; fi
pid=$(cat "$pidfile")
# a clean shutdown first: the guest's init powers off on this console line
# (sent again while the guest has not answered: a line can be lost while the
# console connection is set up)
if [[ -f "$here/run/serial.port" ]]; then
  port=$(cat "$here/run/serial.port")
  for _ in 1 2 3 4 5; do
    kill -0 "$pid" 2>/dev/null || break
    # each try is bounded: a console whose queue is full would leave the
    # connect waiting for minutes
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 6 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      sleep 0.5
      printf "\nhls-swarm:poweroff\n" >&3
      for _ in $(seq 40); do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.1; done' _ "$port" "$pid" || true
  done 2>/dev/null
fi
if kill -TERM "$pid" 2>/dev/null; then
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
echo "microvm-stop: stopped"
"#,
        name = spec.name
    )
}

/// What a microvm.nix guest adds to a [`VmSpec`]: the NixOS module it runs
/// and the names microvm.nix wants.
#[derive(Clone, Debug)]
pub struct NixGuest {
    /// What it runs, for the header (`the hls-swarm test origin (profile default)`).
    pub title: String,
    /// The module file beside it (`test-origin.nix`) and its option path
    /// (`services.hls-swarm.test-origin`).
    pub module: String,
    pub option_path: String,
    pub host_name: String,
    /// The MAC of the user-networking interface.
    pub mac: String,
    /// Kernel settings of the VM itself (the module sets the component's).
    pub sysctls: Vec<(String, String)>,
}

/// The microvm.nix guest configuration of a VM `shape`: its vCPUs, memory,
/// forwards (on 127.0.0.1) or tap device with the static address, and log
/// volume, from the same spec the microVM target boots — running the
/// component's NixOS module. It adds no users, passwords or SSH keys.
pub fn nix_guest(shape: &VmShape, g: &NixGuest) -> String {
    use crate::render::nix::string;
    let mut o = String::new();
    let mut out = |l: &str| {
        o.push_str(l);
        o.push('\n');
    };
    out("# Generated by hls-swarm; do not edit.");
    out(&format!("# microvm.nix guest running {}.", g.title));
    out("# Import it in a nixosSystem together with microvm.nixosModules.microvm.");
    out("{ lib, ... }:");
    out("{");
    out(&format!("  imports = [ ./{} ];", g.module));
    out(&format!("  {}.enable = true;", g.option_path));
    out(&format!("  {}.openFirewall = true;", g.option_path));
    out(&format!(
        "  networking.hostName = {};",
        string(&g.host_name)
    ));
    out("  # access is opt-in: add users or SSH keys in your own configuration");
    out("  users.mutableUsers = false;");
    out("  services.openssh.enable = lib.mkDefault false;");
    if !g.sysctls.is_empty() {
        let settings: Vec<String> = g
            .sysctls
            .iter()
            .map(|(k, v)| {
                let value = if v.parse::<i64>().is_ok() {
                    v.clone()
                } else {
                    string(v)
                };
                format!("{} = {value};", string(k))
            })
            .collect();
        out(&format!(
            "  boot.kernel.sysctl = {{ {} }};",
            settings.join(" ")
        ));
    }
    out("  microvm = {");
    out("    hypervisor = \"qemu\";");
    out(&format!("    vcpu = {};", shape.vcpus));
    out(&format!("    mem = {};", shape.memory_mb));
    match &shape.net {
        Net::User { forwards } => {
            out(&format!(
                "    interfaces = [ {{ type = \"user\"; id = \"usernet\"; mac = {}; }} ];",
                string(&g.mac)
            ));
            out("    forwardPorts = [");
            for (_, host, guest) in forwards {
                out(&format!("      {{ from = \"host\"; host.address = \"127.0.0.1\"; host.port = {host}; guest.port = {guest}; }}"));
            }
            out("    ];");
        }
        Net::Tap { device, mac, .. } => {
            out(&format!(
                "    interfaces = [ {{ type = \"tap\"; id = {}; mac = {}; }} ];",
                string(device),
                string(mac)
            ));
        }
    }
    if let Some((mount, mb, _)) = &shape.log_volume {
        out(&format!(
            "    volumes = [ {{ image = \"hls-logs.img\"; mountPoint = {}; size = {mb}; }} ];",
            string(mount)
        ));
    }
    out("  };");
    if let Net::Tap {
        ip,
        prefix,
        gateway,
        ..
    } = &shape.net
    {
        out(&format!(
            "  networking.interfaces.eth0.ipv4.addresses = [ {{ address = {}; prefixLength = {prefix}; }} ];",
            string(ip)
        ));
        out(&format!(
            "  networking.defaultGateway = {};",
            string(gateway)
        ));
    }
    out("}");
    o
}

/// The text parts of a microVM, for review: its shape, the guest's /init and
/// the host's run and stop scripts (the guest's files are the image's).
pub fn describe(spec: &VmSpec) -> Vec<(String, String)> {
    let mut head = format!(
        "name: {}\nvcpus: {}\nmemory: {} MB\nserial port: 127.0.0.1:{}\nmodules: {}\nguest env: {}\n",
        spec.name,
        spec.shape.vcpus,
        spec.shape.memory_mb,
        spec.serial_port,
        spec.modules.join(", "),
        spec.guest_env.join(", ")
    );
    match &spec.shape.net {
        Net::User { forwards } => {
            head.push_str("net: user\n");
            for (var, host, guest) in forwards {
                head.push_str(&format!("  forward {var} 127.0.0.1:{host} -> {guest}\n"));
            }
        }
        Net::Tap {
            device,
            bridge,
            mac,
            ip,
            prefix,
            gateway,
        } => head.push_str(&format!(
            "net: tap {device} in bridge {bridge}, mac {mac} address {ip}/{prefix} gateway {gateway}\n"
        )),
    }
    if let Some((mount, mb, uid)) = &spec.shape.log_volume {
        head.push_str(&format!("log volume: {mount}, {mb} MB, uid {uid}\n"));
    }
    head.push_str("sysctls:\n");
    for (k, v) in &spec.sysctls {
        head.push_str(&format!("  {k} = {v}\n"));
    }
    for s in &spec.services {
        head.push_str(&format!(
            "service {} as {}: {} {}\n",
            s.name,
            s.user,
            s.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            s.argv.join(" ")
        ));
    }
    let modules: Vec<String> = spec.modules.iter().map(|m| format!("{m}.ko")).collect();
    let mut out = vec![
        ("microvm".into(), head),
        (
            "microvm/init".into(),
            init_script(spec, &modules, "VERSION"),
        ),
        ("microvm/bin/microvm-run".into(), run_script(spec)),
        ("microvm/bin/microvm-stop".into(), stop_script(spec)),
    ];
    out.extend(net_script(spec).map(|t| ("microvm/bin/microvm-net".into(), t)));
    out
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
