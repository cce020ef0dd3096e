//! What the test origin puts into each deployment target. The formats are
//! `common::deploy`'s; the pieces come from this crate's generators.

use common::deploy::container::{Entry, ImageSpec};
use common::deploy::deployment::{self, ImageParts};
use common::deploy::description::{EnvVar, Ready, Script, Service, System, VarKind};
use common::deploy::microvm::{Net, VmShape, VmSpec};
use common::deploy::{systemd, unit};
use common::deploy::{Programs, TargetKind, Targets};
use common::render::Template;
use common::Loaded;

use crate::banner::{banner, made_ca};
use crate::config::Config;
use crate::derive::Derived;
use crate::ffmpeg::{entry_playlist, ffmpeg_args};
use crate::nginx::{nginx_args, nginx_config, required_dirs, Flavour, LocalSite, SERVICE_TLS_DIR};

/// Name of the runner script (the old flake's `test-hls-origin`).
pub const RUNNER_NAME: &str = "test-hls-origin";

/// The standalone runner script: `PORT`, `HLS_DIR` and `LISTEN_ADDR` are read
/// from the environment at run time.
pub fn runner_script(profile: &str, c: &Config, d: &Derived) -> Script {
    let hls_dir = c.server.hls_dir.as_str();
    let hls = Template::var("HLS_DIR");
    let run = Template::var("RUN_DIR");
    let mut listen = Template::var("LISTEN_ADDR");
    listen.push_text(":");
    listen.push(&Template::var("PORT"));
    let flavour = Flavour::Local(LocalSite {
        listen: Template::var("LISTEN"),
        root: hls.clone(),
        run_dir: run.clone(),
        log_dir: Template::var("LOG_DIR"),
        tls_cert: Template::var("TLS_CERT"),
        tls_key: Template::var("TLS_KEY"),
        ll_upstream: Template::var("LL_UPSTREAM"),
    });
    let conf = Template::var("NGINX_CONF");
    let scheme = if c.tls.enable { "https" } else { "http" };
    let mut base_url = Template::text(format!("{scheme}://"));
    base_url.push(&Template::var("URL_HOST"));
    base_url.push_text(":");
    base_url.push(&Template::var("PORT"));
    let mut dirs = vec![hls.clone(), run.clone()];
    dirs.extend(required_dirs(c, &flavour));
    // a certificate made at start, unless the config names one
    let made_tls = made_ca(c).is_some();
    let mut env = vec![
        EnvVar {
            name: "PORT",
            default: Template::text(c.server.port.to_string()),
            kind: VarKind::Port,
            help: "port nginx serves on".into(),
        },
        EnvVar {
            name: "HLS_DIR",
            default: Template::var("STATE_DIR").join("/hls"),
            kind: VarKind::Path,
            help: "directory FFmpeg writes the stream to".into(),
        },
        EnvVar {
            name: "LOG_DIR",
            default: Template::var("STATE_DIR").join("/run/logs"),
            kind: VarKind::Path,
            help: "directory of the access logs when the profile logs".into(),
        },
        EnvVar {
            name: "LISTEN_ADDR",
            default: Template::text("127.0.0.1"),
            kind: VarKind::ListenAddr,
            help: "address nginx listens on (0.0.0.0: every interface)".into(),
        },
    ];
    // what nginx reads: the given files, or those made in TLS_DIR
    let tls_files = c.tls.enable.then(|| {
        [
            (
                "TLS_CERT",
                tls_file(c.tls.cert_file.as_ref(), common::deploy::tls::CERT),
            ),
            (
                "TLS_KEY",
                tls_file(c.tls.key_file.as_ref(), common::deploy::tls::KEY),
            ),
        ]
    });
    let tls_files = tls_files.into_iter().flatten();
    let ll = c.low_latency.enable;
    let mut computed = vec![
        ("RUN_DIR", Template::var("STATE_DIR").join("/run")),
        ("NGINX_CONF", run.join("/nginx.conf")),
        ("LISTEN", listen),
        ("BASE_URL", base_url),
    ];
    computed.extend(tls_files);
    let mut free_ports = vec![("URL_HOST", "PORT")];
    let mut files = vec![(conf.clone(), nginx_config(c, d, &flavour))];
    if ll {
        env.push(EnvVar {
            name: "LL_PORT",
            default: Template::text(c.low_latency.server_port.to_string()),
            kind: VarKind::Port,
            help: "loopback port of the LL-HLS server behind nginx".into(),
        });
        let mut upstream = Template::text("127.0.0.1:");
        upstream.push(&Template::var("LL_PORT"));
        computed.push(("LOOPBACK", Template::text("127.0.0.1")));
        computed.push(("LL_UPSTREAM", upstream));
        computed.push(("LL_SETTINGS", run.join("/ll-server.json")));
        free_ports.push(("LOOPBACK", "LL_PORT"));
        let settings = serde_json::to_string_pretty(&crate::ll::settings::settings(c))
            .expect("settings serialize");
        files.push((
            Template::var("LL_SETTINGS"),
            Template::text(settings + "\n"),
        ));
    }
    let mut prepare = Vec::new();
    if made_tls {
        let tls = Template::var("TLS_DIR");
        env.push(EnvVar {
            name: "TLS_DIR",
            default: Template::var("STATE_DIR").join("/tls"),
            kind: VarKind::Path,
            help: format!(
                "the TLS certificate: {cert} and {key} are used when there, else made at start with ca.pem, the CA viewers trust",
                cert = common::deploy::tls::CERT,
                key = common::deploy::tls::KEY
            ),
        });
        let names: Vec<String> = c.tls.names.iter().map(|n| n.to_string()).collect();
        let mut make = common::deploy::tls::make_certificate(&tls, &names);
        make.unit = Some(unit::Service {
            name: TLS_UNIT.into(),
            description: format!(
                "hls-swarm test origin: the TLS certificate, made once (profile {profile})"
            ),
            state_directory: Some(SERVICE_TLS_STATE.into()),
            note: Some(format!(
                "viewers trust /var/lib/{SERVICE_TLS_STATE}/{}; delete cert.pem to make a new one",
                common::deploy::tls::CA
            )),
            ..Default::default()
        });
        prepare.push(make);
    }
    // what the nginx unit reads its certificate from: the files the config
    // names, or those the TLS unit made
    let credentials: Vec<(String, String)> = if !c.tls.enable {
        Vec::new()
    } else {
        let state = |name: &str| format!("/var/lib/{SERVICE_TLS_STATE}/{name}");
        let (cert, key) = match (&c.tls.cert_file, &c.tls.key_file) {
            (Some(cert), Some(key)) => (cert.to_string(), key.to_string()),
            _ => (
                state(common::deploy::tls::CERT),
                state(common::deploy::tls::KEY),
            ),
        };
        vec![
            (common::deploy::tls::CERT.into(), cert),
            (common::deploy::tls::KEY.into(), key),
        ]
    };
    let mut script = Script {
        name: RUNNER_NAME.into(),
        title: format!("the hls-swarm test origin, profile {profile} (FFmpeg + nginx)"),
        env,
        computed,
        free_ports,
        dirs,
        files,
        prepare,
        banner: Some(banner(profile, c, d)),
        services: vec![
            Service {
                name: "ffmpeg".into(),
                program: "ffmpeg",
                debian_package: "ffmpeg",
                args: ffmpeg_args(c, d, &hls),
                unit: Some(unit::Service {
                    name: "hls-generator".into(),
                    description: format!(
                        "hls-swarm test origin: FFmpeg live encoder (profile {profile})"
                    ),
                    user: Some("hls".into()),
                    restart: "always".into(),
                    restart_sec: 2,
                    slice: Some("hls-origin-generator".into()),
                    read_write_paths: vec![hls_dir.to_owned()],
                    wanted_by: Some("multi-user.target".into()),
                    ..Default::default()
                }),
            },
            Service {
                name: "nginx".into(),
                program: "nginx",
                debian_package: "nginx-light",
                args: nginx_args(&run, &conf),
                unit: Some(unit::Service {
                    name: "hls-nginx".into(),
                    description: format!(
                        "hls-swarm test origin: nginx serving {hls_dir} (profile {profile})"
                    ),
                    dynamic_user: true,
                    restart: "always".into(),
                    restart_sec: 2,
                    after: vec!["hls-generator.service".into()],
                    slice: Some("hls-origin-nginx".into()),
                    runtime_directory: Some(if c.logging.enabled {
                        format!("{SERVICE_RUN} {SERVICE_RUN}/logs")
                    } else {
                        SERVICE_RUN.to_owned()
                    }),
                    bind_read_only_paths: vec![hls_dir.to_owned()],
                    requires: if made_tls {
                        vec![format!("{TLS_UNIT}.service")]
                    } else {
                        Vec::new()
                    },
                    load_credentials: credentials,
                    limit_nofile: Some(65535),
                    strict: true,
                    wanted_by: Some("multi-user.target".into()),
                    ..Default::default()
                }),
            },
        ],
        ready: vec![
            // the LL server's playlists are not files: it answers the
            // multivariant playlist once every rendition has a segment
            if ll {
                Ready::Http {
                    port_var: "PORT",
                    path: format!("/{}", entry_playlist(c)),
                    tls: c.tls.enable,
                }
            } else {
                Ready::File(hls.join(&format!("/{}", entry_playlist(c))))
            },
            Ready::Http {
                port_var: "PORT",
                path: "/health".into(),
                tls: c.tls.enable,
            },
        ],
        ready_timeout_secs: 30,
        system: Some(System {
            values: vec![
                ("PORT", c.server.port.to_string()),
                ("HLS_DIR", hls_dir.to_owned()),
                // nginx's `listen PORT`: an origin serves the machines of
                // the swarm (the NixOS module opens the port only with
                // `openFirewall`)
                ("LISTEN", c.server.port.to_string()),
                ("LOG_DIR", format!("/run/{SERVICE_RUN}/logs")),
                ("RUN_DIR", format!("/run/{SERVICE_RUN}")),
                ("NGINX_CONF", "/etc/hls-swarm/test-origin/nginx.conf".into()),
                ("TLS_DIR", format!("/var/lib/{SERVICE_TLS_STATE}")),
                ("LL_PORT", c.low_latency.server_port.to_string()),
                ("LOOPBACK", "127.0.0.1".into()),
                (
                    "LL_UPSTREAM",
                    format!("127.0.0.1:{}", c.low_latency.server_port),
                ),
                (
                    "LL_SETTINGS",
                    "/etc/hls-swarm/test-origin/ll-server.json".into(),
                ),
                // nginx's dynamic user reads them as its credentials
                (
                    "TLS_CERT",
                    format!("{SERVICE_TLS_DIR}/{}", common::deploy::tls::CERT),
                ),
                (
                    "TLS_KEY",
                    format!("{SERVICE_TLS_DIR}/{}", common::deploy::tls::KEY),
                ),
            ],
            units: unit::Units {
                component: "test-origin".into(),
                set_name: "hls-origin".into(),
                slices: vec![
                    unit::Slice {
                        name: "hls-origin".into(),
                        description: "hls-swarm test origin".into(),
                        memory_max: Some("3G".into()),
                        memory_high: Some("2560M".into()),
                    },
                    unit::Slice {
                        name: "hls-origin-generator".into(),
                        description: "hls-swarm test origin: encoder".into(),
                        ..Default::default()
                    },
                    unit::Slice {
                        name: "hls-origin-nginx".into(),
                        description: "hls-swarm test origin: nginx".into(),
                        ..Default::default()
                    },
                ],
                users: vec![(
                    "hls".into(),
                    "hls-swarm encoder".into(),
                    "/var/empty".into(),
                )],
                dirs: vec![(hls_dir.to_owned(), 0o755, "hls".into(), "hls".into())],
                sysctls: crate::sysctl::sysctls(),
                ..Default::default()
            },
        }),
    };
    if ll {
        let mut args: Vec<Template> = ["ll-server", "--settings"].map(Template::text).to_vec();
        args.push(Template::var("LL_SETTINGS"));
        args.push(Template::text("--dir"));
        args.push(hls.clone());
        args.push(Template::text("--listen"));
        args.push(Template::var("LL_UPSTREAM"));
        script.services.push(Service {
            name: "ll-server".into(),
            program: "test-origin",
            debian_package: "",
            args,
            unit: Some(unit::Service {
                name: "hls-ll-server".into(),
                description: format!(
                    "hls-swarm test origin: the LL-HLS server of {hls_dir} (profile {profile})"
                ),
                dynamic_user: true,
                restart: "always".into(),
                restart_sec: 2,
                after: vec!["hls-generator.service".into()],
                slice: Some("hls-origin-nginx".into()),
                bind_read_only_paths: vec![hls_dir.to_owned()],
                limit_nofile: Some(65535),
                strict: true,
                wanted_by: Some("multi-user.target".into()),
                ..Default::default()
            }),
        });
    }
    script
}

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

/// A TLS file nginx reads in a run: the one the config names, or `name` in
/// the run's `TLS_DIR`.
fn tls_file(given: Option<&common::types::AbsPath>, name: &str) -> Template {
    match given {
        Some(path) => Template::text(path.as_str()),
        None => Template::var("TLS_DIR").join(&format!("/{name}")),
    }
}

/// The TLS Secret of the origin on Kubernetes, and where it is mounted.
pub const KUBERNETES_TLS_SECRET: &str = "hls-swarm-test-origin-tls";
const KUBERNETES_TLS_DIR: &str = "/etc/hls-swarm/tls";

/// The unit that makes the TLS certificate when run by systemd.
const TLS_UNIT: &str = "hls-tls";

/// Where that unit keeps the certificate: `/var/lib/<this>`.
const SERVICE_TLS_STATE: &str = "hls-origin-tls";

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
    let image = crate::TestOrigin::image(l, binaries)?;
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
        ]
        .into_iter()
        // the TLS certificate comes through QEMU's firmware config
        .chain(c.tls.enable.then_some("qemu_fw_cfg"))
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
            TargetKind::Microvm => "Write a microVM: DIR/vmlinuz, DIR/initramfs.cpio, DIR/bin/microvm-run and microvm-stop\n\nThe guest holds the same files as the container image plus the virtio modules it needs, and its init starts the runner script as uid 1000. HTTP_PORT (default 17080) and the other forwards bind to 127.0.0.1.",
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
