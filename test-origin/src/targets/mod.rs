//! What the test origin puts into each deployment target. The formats are
//! `common::deploy`'s; the pieces come from this crate's generators.

use common::deploy::container::{Entry, ImageSpec};
use common::deploy::deployment::{self, ImageParts};
use common::deploy::description::Script;
use common::deploy::microvm::VmSpec;
use common::deploy::{systemd, unit};
use common::deploy::{Programs, TargetKind, Targets};
use common::Loaded;

use crate::config::Config;
use crate::derive::Derived;
use crate::nginx::{nginx_config, Flavour};

mod description;
mod machine;

pub use description::{runner_script, RUNNER_NAME};
pub use machine::{microvm_nix_guest, microvm_spec, vm_shape, VM_SYSCTLS};

/// Programs the origin's artifacts take from the host (name, Debian
/// package); images add bash and the coreutils of the runner script.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("nginx", "nginx-light"),
    // makes the TLS certificate at start and checks readiness over TLS
    ("openssl", "openssl"),
    // this binary: the LL-HLS server
    ("test-origin", ""),
];

/// The non-root user of the image.
pub const IMAGE_USER: (&str, u32) = ("nginx", 1000);

/// What the origin's image holds besides its programs: the runner script as
/// entrypoint, the production nginx config, the stream and log directories.
pub fn image_parts(profile: &str, c: &Config, d: &Derived) -> ImageParts {
    let (_, uid) = IMAGE_USER;
    let script = runner_script(profile, c, d);
    let full = nginx_config(c, d, &Flavour::Full)
        .as_plain()
        .expect("the full flavour has no variables");
    ImageParts {
        title: format!("hls-swarm test origin (FFmpeg + nginx), profile {profile}"),
        user: IMAGE_USER,
        home: "/var/cache/nginx",
        working_dir: "/",
        entrypoint: (script.name.clone(), common::deploy::runner::render(&script)),
        env: vec![
            ("HLS_DIR".into(), c.server.hls_dir.to_string()),
            ("PORT".into(), c.server.port.to_string()),
            // inside the container's own network namespace; reachable only
            // where the user publishes the port
            ("LISTEN_ADDR".into(), "0.0.0.0".into()),
        ],
        ports: vec![c.server.port as u16],
        volumes: vec![c.server.hls_dir.to_string()],
        dirs: vec![
            Entry::dir(c.server.hls_dir.as_str(), 0o775, 0, uid),
            Entry::dir(c.logging.directory.as_str(), 0o755, uid, uid),
            Entry::dir("/var/cache/nginx", 0o755, uid, uid),
        ],
        files: vec![("/etc/nginx/nginx.conf".into(), full)],
        program_data: vec![("nginx", "/etc/nginx/mime.types".into())],
        programs: Some(image_programs(c)),
        labels: vec![
            ("hls.profile".into(), profile.to_owned()),
            (
                "hls.segment-duration".into(),
                c.hls.segment_duration.to_string(),
            ),
            ("hls.list-size".into(), c.hls.list_size.to_string()),
        ],
    }
}

/// The programs an image of `c` carries: FFmpeg, ffprobe and nginx; openssl
/// for TLS; this binary for the LL-HLS server.
fn image_programs(c: &Config) -> Vec<&'static str> {
    let mut out = vec!["ffmpeg", "ffprobe", "nginx"];
    if c.tls.enable {
        out.push("openssl");
    }
    if c.low_latency.enable {
        out.push("test-origin");
    }
    out
}

/// Where nginx keeps its state when run by systemd: `/run/<this>`
/// (RuntimeDirectory).
const SERVICE_RUN: &str = "hls-nginx";

/// The origin's units (systemd target and NixOS module): the run
/// description's services as system services, programs at `program_path`.
pub fn units(
    profile: &str,
    c: &Config,
    d: &Derived,
    program_path: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<unit::Units> {
    systemd::units_of(&runner_script(profile, c, d), program_path)
}

/// The NixOS module of the origin: the systemd target's services (programs
/// from nixpkgs), a tmpfs for the stream, the slices, the sysctls, and the
/// nginx and node exporters on 127.0.0.1.
pub fn nixos_module(profile: &str, c: &Config, d: &Derived) -> anyhow::Result<String> {
    use common::deploy::nixos::{render, Module};
    use common::render::nix::string;
    // the same units as the systemd target; the program paths are replaced by
    // store paths below
    let units = units(profile, c, d, &|p| Ok(p.to_owned()))?;
    let hls = c.server.hls_dir.as_str();
    let module = Module {
        option_path: "services.hls-swarm.test-origin".into(),
        description: format!("the hls-swarm test origin (profile {profile})"),
        packages: vec![
            ("ffmpeg".into(), "ffmpeg".into()),
            ("nginx".into(), "nginx".into()),
            // this binary: the LL-HLS server
            ("package".into(), "hls-swarm".into()),
        ],
        programs: [
            ("hls-generator".to_owned(), "${cfg.ffmpeg}/bin/ffmpeg".to_owned()),
            ("hls-nginx".to_owned(), "${cfg.nginx}/bin/nginx".to_owned()),
            ("hls-ll-server".to_owned(), "${cfg.package}/bin/test-origin".to_owned()),
            // the commands of the TLS unit
            ("openssl".to_owned(), "${pkgs.openssl}/bin/openssl".to_owned()),
            ("mkdir".to_owned(), "${pkgs.coreutils}/bin/mkdir".to_owned()),
            ("rm".to_owned(), "${pkgs.coreutils}/bin/rm".to_owned()),
        ]
        .into(),
        users: units.users.iter().map(|(n, d, _)| (n.clone(), d.clone())).collect(),
        tmpfs: Some((hls.to_owned(), d.recommended_tmpfs_mb)),
        tmpfiles: units.dirs.iter().map(|(p, m, u, g)| format!("d {p} {m:04o} {u} {g} -")).collect(),
        sysctls: units.sysctls.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        slices: units.slices,
        etc: units.files,
        services: units.services,
        firewall_ports: vec![c.server.port as u16],
        extra_options: vec![
            "exporters.enable = lib.mkOption {".into(),
            "  type = lib.types.bool;".into(),
            "  default = true;".into(),
            "  description = \"Prometheus nginx (9113) and node (9100) exporters, listening on 127.0.0.1.\";".into(),
            "};".into(),
        ],
        extra_config: vec![
            "services.prometheus.exporters.nginx = lib.mkIf cfg.exporters.enable {".into(),
            "  enable = true;".into(),
            "  port = 9113;".into(),
            "  listenAddress = \"127.0.0.1\";".into(),
            format!("  scrapeUri = {};", string(&format!("http://127.0.0.1:{}/nginx_status", c.server.port))),
            "};".into(),
            "services.prometheus.exporters.node = lib.mkIf cfg.exporters.enable {".into(),
            "  enable = true;".into(),
            "  port = 9100;".into(),
            "  listenAddress = \"127.0.0.1\";".into(),
            "};".into(),
        ],
    };
    Ok(render(&module))
}

/// The TLS Secret of the origin on Kubernetes, and where it is mounted.
pub const KUBERNETES_TLS_SECRET: &str = "hls-swarm-test-origin-tls";
const KUBERNETES_TLS_DIR: &str = "/etc/hls-swarm/tls";

/// The origin on Kubernetes: its image (the runner script runs FFmpeg and
/// nginx) as one pod, the stream on a memory-backed volume of
/// `recommendedTmpfsMB`, the settings its image reads set for the pod.
pub fn kubernetes_workload(
    profile: &str,
    c: &Config,
    d: &Derived,
    k: &common::deploy::kubernetes::Options,
) -> anyhow::Result<common::deploy::kubernetes::Workload> {
    use common::deploy::kubernetes::{Kind, ScratchVolume, SecretMount, Value, Workload};
    let hls = c.server.hls_dir.to_string();
    let mut env = vec![
        ("HLS_DIR".to_owned(), Value::Text(hls.clone())),
        ("PORT".to_owned(), Value::Text(c.server.port.to_string())),
        // the pod's own network namespace, reached through the Service
        ("LISTEN_ADDR".to_owned(), Value::Text("0.0.0.0".into())),
    ];
    let mut volumes = vec![ScratchVolume {
        name: "hls".into(),
        mount: hls,
        size_mb: d.recommended_tmpfs_mb,
        memory: true,
    }];
    if c.logging.enabled {
        let logs = c.logging.directory.to_string();
        env.push(("LOG_DIR".to_owned(), Value::Text(logs.clone())));
        volumes.push(ScratchVolume {
            name: "logs".into(),
            mount: logs,
            size_mb: 1024,
            memory: false,
        });
    }
    // the certificate of a TLS origin: a Secret the user creates (made in a
    // pod, its CA would be of no use to anyone outside)
    let secret = c.tls.enable.then(|| {
        env.push(("TLS_DIR".to_owned(), Value::Text(KUBERNETES_TLS_DIR.into())));
        SecretMount {
            name: KUBERNETES_TLS_SECRET.into(),
            mount: KUBERNETES_TLS_DIR.into(),
            items: vec![
                ("tls.crt".into(), common::deploy::tls::CERT.into()),
                ("tls.key".into(), common::deploy::tls::KEY.into()),
            ],
        }
    });
    let scheme = if c.tls.enable { "https" } else { "http" };
    let mut notes = vec![format!(
        "Viewers in the cluster load `{scheme}://hls-swarm-test-origin:{}/stream.m3u8`. From \
         your machine: `kubectl port-forward deployment/hls-swarm-test-origin {}` and \
         {scheme}://127.0.0.1:{}/stream.m3u8. The CPU and memory requests are starting \
         points from the profile ({} variant(s), {} MiB of stream in memory).",
        c.server.port, c.server.port, c.server.port, d.variant_count, d.recommended_tmpfs_mb
    )];
    if c.tls.enable {
        notes.push(format!(
            "The origin serves HTTPS with the certificate of the TLS Secret \
             `{KUBERNETES_TLS_SECRET}`, which you create before applying: \
             `kubectl create secret tls {KUBERNETES_TLS_SECRET} --cert=cert.pem --key=key.pem` \
             (a certificate for `hls-swarm-test-origin` and the names viewers use; the pod \
             waits until the Secret exists). Viewers trust its CA with `--ca-file`."
        ));
    }
    let variants = d.variant_count;
    Ok(Workload {
        name: "hls-swarm-test-origin".into(),
        component: "test-origin".into(),
        profile: profile.to_owned(),
        image: k.image.clone(),
        namespace: k.namespace.clone(),
        kind: Kind::Service,
        uid: IMAGE_USER.1,
        command: Vec::new(),
        args: Vec::new(),
        env,
        ports: vec![("http".into(), c.server.port as u16)],
        probes: Some(("http".into(), "/health".into(), "/health".into())),
        // nginx's stub_status is not Prometheus text: no scrape annotations
        scrape: None,
        // an encoder per variant and nginx; the memory volume counts
        // against the pod's memory
        cpu_millis: 500 * variants + 250,
        memory_mb: d.recommended_tmpfs_mb + 256 * variants + 128,
        memory_volumes: volumes,
        claim: None,
        secret,
        https: c.tls.enable,
        sysctls: crate::sysctl::sysctls(),
        notes,
    })
}

impl Targets for crate::TestOrigin {
    type KubernetesRun = common::cli::NoRunFlags;
    const TARGETS: &'static [TargetKind] = TargetKind::ALL;
    const PROGRAMS: &'static [(&'static str, &'static str)] = PROGRAMS;

    fn about(kind: TargetKind) -> Option<&'static str> {
        Some(match kind {
            TargetKind::Configs => "Write DIR/test-origin.json (merged config and derived values) and DIR/nginx.conf (the production nginx config: user nginx, system paths, every address)",
            TargetKind::Runner => "Write the standalone runner script DIR/bin/test-hls-origin\n\nThe script needs only bash, coreutils, ffmpeg and nginx, and does what `run` does: PORT, HLS_DIR and LISTEN_ADDR from the environment, a banner, a wait for the stream, restarts, and cleanup on exit.",
            TargetKind::Container => "Build the OCI image of the origin (no daemon needed)\n\nFFmpeg, ffprobe, nginx, bash and the few coreutils the runner script uses come from this host with their shared-library closure; the entrypoint is the runner script; the image runs as user nginx (uid 1000). Load it with `podman load -i FILE` and run it with `-p 17080:17080`.",
            TargetKind::Microvm => "Write a microVM: DIR/kernel and DIR/base (the kernel and the guest's programs, the same for every profile), DIR/config.cpio (the profile's files), DIR/bin/microvm-run and microvm-stop\n\nThe guest holds the same files as the container image (with every program of the origin) plus the virtio modules it needs, and its init starts the runner script as uid 1000. With --base-dir BASES, profiles built with the same BASES share one base there. HTTP_PORT (default 17080) and the other forwards bind to 127.0.0.1.",
            TargetKind::NixosModule => "Write the NixOS module DIR/test-origin.nix and the microvm.nix guest DIR/test-origin-microvm.nix\n\n`services.hls-swarm.test-origin.enable = true;` runs the encoder and nginx as hardened systemd services with a tmpfs for the stream, the slices, the sysctls and exporters on 127.0.0.1. It grants no access: no passwords, no SSH keys, no root login; `openFirewall` opens the port.",
            TargetKind::Systemd => "Write systemd units, slices, sysusers.d, tmpfiles.d and sysctl.d files\n\nFor hosts that are not NixOS: copy DIR/systemd/* to /etc/systemd/system, DIR/sysusers.d, DIR/tmpfiles.d and DIR/sysctl.d to /etc, and DIR/hls-swarm/test-origin/nginx.conf to /etc/hls-swarm/test-origin/. The units run ffmpeg and nginx from PATH unless --binary says otherwise.",
            TargetKind::Sysctl => "Print (or write, or apply) the origin's kernel settings as a sysctl.d file",
            TargetKind::Kubernetes => "Write Kubernetes manifests to DIR: a Deployment and a Service of the origin's image, a kustomization and a README\n\nThe stream on a memory-backed emptyDir of recommendedTmpfsMB; probes on /health; non-root (uid 1000), read-only root filesystem, no capabilities, seccomp RuntimeDefault; the namespaced safe sysctls in the pod, the rest in the README as node settings. Viewers in the cluster reach it at http://hls-swarm-test-origin:17080/stream.m3u8.",
        })
    }

    fn config_files(l: &Loaded<Self>) -> Vec<(String, String)> {
        let full = nginx_config(&l.config, &l.derived, &Flavour::Full)
            .as_plain()
            .expect("the full flavour has no variables");
        vec![("nginx.conf".into(), full)]
    }

    fn sysctls() -> std::collections::BTreeMap<&'static str, &'static str> {
        crate::sysctl::sysctls()
    }

    fn runner(l: &Loaded<Self>) -> anyhow::Result<Script> {
        Ok(runner_script(&l.profile, &l.config, &l.derived))
    }

    fn image(l: &Loaded<Self>, programs: &Programs) -> anyhow::Result<ImageSpec> {
        deployment::image(l, &image_parts(&l.profile, &l.config, &l.derived), programs)
    }

    fn kubernetes(
        l: &Loaded<Self>,
        k: &common::deploy::kubernetes::Options,
        _run: &common::cli::NoRunFlags,
    ) -> anyhow::Result<common::deploy::kubernetes::Workload> {
        kubernetes_workload(&l.profile, &l.config, &l.derived, k)
    }

    fn systemd(l: &Loaded<Self>, programs: &Programs) -> anyhow::Result<Vec<(String, String)>> {
        let path = |n: &str| -> anyhow::Result<String> {
            let p = programs
                .get(n)
                .ok_or_else(|| anyhow::anyhow!("no path for `{n}`"))?;
            p.to_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
        };
        Ok(systemd::files(&units(
            &l.profile, &l.config, &l.derived, &path,
        )?))
    }

    fn nixos_module(l: &Loaded<Self>) -> anyhow::Result<Vec<(String, String)>> {
        Ok(vec![
            (
                "test-origin.nix".into(),
                nixos_module(&l.profile, &l.config, &l.derived)?,
            ),
            (
                "test-origin-microvm.nix".into(),
                microvm_nix_guest(&l.profile, &l.config),
            ),
        ])
    }

    fn microvm(
        l: &Loaded<Self>,
        programs: &Programs,
        kernel: std::path::PathBuf,
        modules_dir: std::path::PathBuf,
    ) -> anyhow::Result<VmSpec> {
        microvm_spec(l, programs, kernel, modules_dir)
    }
}
