//! The origin's run description: FFmpeg, nginx and (Low-Latency HLS) the
//! LL server as services, their settings, files and readiness, the TLS
//! certificate made at start, and how they run as system services. The
//! runner script, `test-origin run`, the image's entrypoint, the microVM's
//! guest, the systemd units and the NixOS module all come from it.

use common::deploy::description::{EnvVar, Ready, Script, Service, System, VarKind};
use common::deploy::unit;
use common::render::Template;

use crate::banner::{banner, made_ca};
use crate::config::Config;
use crate::derive::Derived;
use crate::ffmpeg::{entry_playlist, ffmpeg_args};
use crate::nginx::{
    nginx_args, nginx_config, required_dirs, Flavour, LocalSite, SERVICE_LL_RUN, SERVICE_LL_SOCKET,
    SERVICE_TLS_DIR,
};

use super::SERVICE_RUN;

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
        ll_socket: Template::var("LL_SOCKET"),
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
    let free_ports = vec![("URL_HOST", "PORT")];
    let mut files = vec![(conf.clone(), nginx_config(c, d, &flavour))];
    if ll {
        // nginx reaches the LL server on a Unix socket: no port to collide,
        // and half the kernel's work of loopback TCP per held request
        let mut upstream = Template::text("unix:");
        upstream.push(&Template::var("LL_SOCKET"));
        computed.push(("LL_SOCKET", run.join("/ll.sock")));
        computed.push(("LL_UPSTREAM", upstream));
        computed.push(("LL_SETTINGS", run.join("/ll-server.json")));
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
                    after: if ll {
                        vec![
                            "hls-generator.service".into(),
                            "hls-ll-server.service".into(),
                        ]
                    } else {
                        vec!["hls-generator.service".into()]
                    },
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
                ("LL_SOCKET", SERVICE_LL_SOCKET.into()),
                ("LL_UPSTREAM", format!("unix:{SERVICE_LL_SOCKET}")),
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
                runtime_directory: Some(SERVICE_LL_RUN.into()),
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

/// A TLS file nginx reads in a run: the one the config names, or `name` in
/// the run's `TLS_DIR`.
fn tls_file(given: Option<&common::types::AbsPath>, name: &str) -> Template {
    match given {
        Some(path) => Template::text(path.as_str()),
        None => Template::var("TLS_DIR").join(&format!("/{name}")),
    }
}

/// The unit that makes the TLS certificate when run by systemd.
const TLS_UNIT: &str = "hls-tls";

/// Where that unit keeps the certificate: `/var/lib/<this>`.
const SERVICE_TLS_STATE: &str = "hls-origin-tls";
