//! The microvm target: the host kernel, an initramfs with the same files as
//! the container image plus the virtio modules the guest needs and a small
//! init, and scripts that start and stop `qemu-system-x86_64 -M microvm`.
//! The initramfs is a base shared by the profiles of a component and a
//! profile's small config archive (see `initramfs`).
//!
//! Nothing listens beyond 127.0.0.1 on the host (forwards and the serial
//! console), the guest has no login at all, and its services run as uid 1000.
//!
//! Its parts: `modules` (the host kernel and the modules the guest loads),
//! `initramfs` (the guest's files as a cpio archive, and the build),
//! `scripts` (the guest's init and the host's run, stop and network
//! scripts, kept as `.sh` files) and `nix` (the microvm.nix guest).

mod archive;
mod initramfs;
mod modules;
mod nix;
mod scripts;
mod squashfs;

pub use initramfs::{build, BuiltVm};
pub use modules::{host_kernel, module_closure};
pub use nix::{nix_guest, NixGuest};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::deploy::container::Entry;

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
    /// Short name (`my-origin`), used for the pid file and messages.
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
    /// The guest's health check (guest port, path): `microvm-run` waits
    /// until it answers 200 before it returns (over TLS with `tls`).
    pub health: Option<(u16, String)>,
    /// A TLS certificate handed to the guest at each start.
    pub tls: Option<VmTls>,
}

/// How a guest gets its TLS certificate: `microvm-run` makes one on the
/// host (in `DIR/run/tls`, with the CA viewers trust) unless the files are
/// given or already there, and hands certificate and key to the guest
/// through QEMU's firmware config; the guest's init writes them where the
/// guest's server reads them, for `owner`. Nothing of it is in the image.
#[derive(Clone, Debug)]
pub struct VmTls {
    /// Where the guest's server reads the certificate and the key.
    pub guest_cert: String,
    pub guest_key: String,
    pub owner: String,
    /// Certificate and key on the host, when the config names them.
    pub host_files: Option<(String, String)>,
    /// Names a made certificate holds besides localhost and loopback.
    pub names: Vec<String>,
}

/// The firmware config entries of [`VmTls`] (under `opt/`, as QEMU asks).
pub const FW_CFG_TLS: &str = "opt/hls-swarm";

/// Where the profile's init is in its config archive.
pub const PROFILE_INIT: &str = "/etc/hls-swarm/vm-init";

/// The firmware config entry of the profile's config archive.
pub const FW_CFG_CONFIG: &str = "opt/hls-swarm/config.cpio";

/// The modules the guest loads: the spec's, and what every guest needs —
/// the firmware config (the profile's config), the disk and the file
/// systems of its base (a squashfs under a writable overlay).
pub(crate) fn guest_modules(spec: &VmSpec) -> Vec<String> {
    let mut wanted = spec.modules.clone();
    for m in ["qemu_fw_cfg", "virtio_blk", "squashfs", "overlay"] {
        if !wanted.iter().any(|w| w == m) {
            wanted.push(m.into());
        }
    }
    wanted
}

/// The serial numbers of the guest's disks, by which its inits find them
/// (their names depend on the order the devices are found in).
pub const BASE_DISK_SERIAL: &str = "hls-base";
pub const LOG_DISK_SERIAL: &str = "hls-logs";

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
    let modules: Vec<String> = guest_modules(spec)
        .iter()
        .map(|m| format!("{m}.ko"))
        .collect();
    let mut out = vec![
        ("microvm".into(), head),
        (
            "microvm/initramfs/init".into(),
            scripts::boot_init(&modules, "VERSION"),
        ),
        ("microvm/init".into(), scripts::base_init()),
        (format!("microvm{PROFILE_INIT}"), scripts::init_script(spec)),
        ("microvm/bin/microvm-run".into(), scripts::run_script(spec)),
        (
            "microvm/bin/microvm-stop".into(),
            scripts::stop_script(spec),
        ),
    ];
    out.extend(scripts::net_script(spec).map(|t| ("microvm/bin/microvm-net".into(), t)));
    out
}
