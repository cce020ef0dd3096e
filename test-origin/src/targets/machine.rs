//! The origin's machine: the microVM (the image's files, the runner script
//! started by the guest's init, the TLS certificate handed over by the
//! host) and the microvm.nix guest of the same shape.

use common::deploy::microvm::{Net, VmShape};
use common::deploy::Programs;
use common::Loaded;

use crate::config::Config;

use super::{IMAGE_USER, RUNNER_NAME};

/// The origin's microVM: the image's files, the runner script started by the
/// guest's init as uid 1000, SPEC's 4 vCPUs / 4096 MB, forwards on 127.0.0.1.
pub fn microvm_spec(
    l: &Loaded<crate::TestOrigin>,
    binaries: &Programs,
    kernel: std::path::PathBuf,
    modules_dir: std::path::PathBuf,
) -> anyhow::Result<common::deploy::microvm::VmSpec> {
    use common::deploy::microvm::{GuestService, VmSpec};
    let c = &l.config;
    // every program of the origin, whichever this profile runs: the guest's
    // base archive is then the same for every profile, and they share it
    let parts = common::deploy::deployment::ImageParts {
        programs: None,
        ..super::image_parts(&l.profile, c, &l.derived)
    };
    let image = common::deploy::deployment::image(l, &parts, binaries)?;
    let mut entries: Vec<common::deploy::container::Entry> = Vec::new();
    for l in image.layers {
        entries.extend(l.entries);
    }
    // root needs a nobody-free passwd; the image's accounts are already there
    let mut sysctls: std::collections::BTreeMap<String, String> = crate::sysctl::sysctls()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (k, v) in VM_SYSCTLS {
        sysctls.insert((*k).into(), (*v).into());
    }
    Ok(VmSpec {
        name: "test-origin".into(),
        entries,
        kernel,
        modules_dir,
        // ext4 (with the crc32c driver its checksums need): the log volume;
        // sch_cake: the default_qdisc of the sysctls
        modules: [
            "virtio_mmio",
            "virtio_net",
            "virtio_blk",
            "crc32c_generic",
            "ext4",
            "sch_cake",
            // the profile's config and the TLS certificate come through
            // QEMU's firmware config
            "qemu_fw_cfg",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        sysctls,
        services: vec![GuestService {
            name: "test origin".into(),
            env: vec![
                ("PORT".into(), c.server.port.to_string()),
                ("HLS_DIR".into(), c.server.hls_dir.to_string()),
                ("LISTEN_ADDR".into(), "0.0.0.0".into()),
                ("LOG_DIR".into(), c.logging.directory.to_string()),
            ]
            .into_iter()
            // the certificate the host handed the guest
            .chain(c.tls.enable.then(|| ("TLS_DIR".into(), VM_TLS_DIR.into())))
            .collect(),
            argv: vec![format!("/usr/local/bin/{RUNNER_NAME}")],
            user: IMAGE_USER.0.into(),
        }],
        shape: vm_shape(c),
        serial_port: 17022,
        guest_env: vec![],
        health: Some((c.server.port as u16, "/health".into())),
        tls: c.tls.enable.then(|| common::deploy::microvm::VmTls {
            // where the guest's runner script has nginx read them: the
            // files the config names, or those in its TLS_DIR
            guest_cert: c.tls.cert_file.as_ref().map_or_else(
                || format!("{VM_TLS_DIR}/{}", common::deploy::tls::CERT),
                |f| f.to_string(),
            ),
            guest_key: c.tls.key_file.as_ref().map_or_else(
                || format!("{VM_TLS_DIR}/{}", common::deploy::tls::KEY),
                |f| f.to_string(),
            ),
            owner: IMAGE_USER.0.into(),
            host_files: c
                .tls
                .cert_file
                .as_ref()
                .zip(c.tls.key_file.as_ref())
                .map(|(cert, key)| (cert.to_string(), key.to_string())),
            names: c.tls.names.iter().map(|n| n.to_string()).collect(),
        }),
    })
}

/// Where the guest's origin finds the TLS certificate the host handed it.
const VM_TLS_DIR: &str = "/run/tls";

/// The origin's machine (SPEC's 4 vCPUs / 4096 MB): the microVM and the
/// microvm.nix guest are both made from it.
pub fn vm_shape(c: &Config) -> VmShape {
    let net = match c.networking.mode {
        crate::config::NetMode::User => Net::User {
            // the one port the guest serves (it runs no SSH and no exporters)
            forwards: vec![("HTTP_PORT".into(), 17080, c.server.port as u16)],
        },
        crate::config::NetMode::Tap => Net::Tap {
            device: c.networking.tap.device.to_string(),
            bridge: c.networking.tap.bridge.to_string(),
            mac: c.networking.tap.mac.to_string(),
            ip: c.networking.static_ip.to_string(),
            prefix: c
                .networking
                .subnet
                .as_str()
                .rsplit('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(24),
            gateway: c.networking.gateway.to_string(),
        },
    };
    VmShape {
        vcpus: 4,
        memory_mb: 4096,
        net,
        log_volume: c
            .logging
            .enabled
            .then(|| (c.logging.directory.to_string(), 256, IMAGE_USER.1)),
    }
}

/// Kernel settings of the origin's VM itself, besides the origin's own.
pub const VM_SYSCTLS: &[(&str, &str)] = &[
    ("vm.swappiness", "10"),
    ("vm.dirty_ratio", "40"),
    ("vm.dirty_background_ratio", "10"),
];

/// The microvm.nix guest that runs the origin module, on the microVM's machine.
pub fn microvm_nix_guest(profile: &str, c: &Config) -> String {
    common::deploy::microvm::nix_guest(
        &vm_shape(c),
        &common::deploy::microvm::NixGuest {
            title: format!("the hls-swarm test origin (profile {profile})"),
            module: "test-origin.nix".into(),
            option_path: "services.hls-swarm.test-origin".into(),
            host_name: "hls-origin".into(),
            mac: c.networking.tap.mac.to_string(),
            sysctls: VM_SYSCTLS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    )
}
