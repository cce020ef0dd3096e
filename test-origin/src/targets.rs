//! What the test origin puts into each deployment target. The formats are
//! `common::target`'s; the pieces come from this crate's generators.

use common::render::Template;
use common::target::runner::{EnvVar, Ready, Script, Service, VarKind};

use crate::banner::banner;
use crate::config::Config;
use crate::derive::Derived;
use crate::ffmpeg::{entry_playlist, ffmpeg_args};
use crate::nginx::{nginx_args, nginx_config, required_dirs, Flavour, LocalSite};

/// Name of the runner script (the old flake's `test-hls-origin`).
pub const RUNNER_NAME: &str = "test-hls-origin";

/// The standalone runner script: `PORT`, `HLS_DIR` and `LISTEN_ADDR` are read
/// from the environment at run time.
pub fn runner_script(profile: &str, c: &Config, d: &Derived) -> Script {
    let hls = Template::var("HLS_DIR");
    let run = Template::var("RUN_DIR");
    let mut listen = Template::var("LISTEN_ADDR");
    listen.push_text(":");
    listen.push(&Template::var("PORT"));
    let flavour = Flavour::Local(LocalSite {
        listen,
        root: hls.clone(),
        run_dir: run.clone(),
    });
    let conf = run.join("/nginx.conf");
    let mut base_url = Template::text("http://");
    base_url.push(&Template::var("URL_HOST"));
    base_url.push_text(":");
    base_url.push(&Template::var("PORT"));
    let mut dirs = vec![hls.clone(), run.clone()];
    dirs.extend(required_dirs(c, &flavour));
    Script {
        name: RUNNER_NAME.into(),
        title: format!("the hls-swarm test origin, profile {profile} (FFmpeg + nginx)"),
        env: vec![
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
                name: "LISTEN_ADDR",
                default: Template::text("127.0.0.1"),
                kind: VarKind::ListenAddr,
                help: "address nginx listens on (0.0.0.0: every interface)".into(),
            },
        ],
        computed: vec![
            ("RUN_DIR", Template::var("STATE_DIR").join("/run")),
            ("BASE_URL", base_url),
        ],
        free_ports: vec![("URL_HOST", "PORT")],
        dirs,
        files: vec![(conf.clone(), nginx_config(c, d, &flavour))],
        banner: Some(banner(profile, c, d)),
        services: vec![
            Service {
                name: "ffmpeg".into(),
                program: "ffmpeg",
                debian_package: "ffmpeg",
                args: ffmpeg_args(c, d, &hls),
            },
            Service {
                name: "nginx".into(),
                program: "nginx",
                debian_package: "nginx-light",
                args: nginx_args(&run, &conf),
            },
        ],
        ready: vec![
            Ready::File(hls.join(&format!("/{}", entry_playlist(c)))),
            Ready::Http {
                port_var: "PORT",
                path: "/health".into(),
            },
        ],
        ready_timeout_secs: 30,
    }
}
