//! hls-probe: ffprobe reads a stream every `interval` seconds; `/health` says
//! whether the recent probes passed. It is the smallest component of the
//! workspace: a typed config, two profiles and a [`Deployment`], from which
//! `common` builds its runner script, container image and systemd unit.

use common::deploy::description::{EnvVar, Ready, VarKind};
use common::deploy::{Deployment, TargetKind};
use common::render::Template;
use common::types::HttpUrl;
use common::Loaded;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The probe's config (camelCase keys, unknown keys rejected).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The stream to probe.
    pub url: HttpUrl,
    /// Port of `/health` and `/metrics`.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// Seconds between probes.
    #[schemars(range(min = 1, max = 3600))]
    pub interval: u32,
    /// Seconds one probe may take.
    #[schemars(range(min = 1, max = 600))]
    pub timeout: u32,
    /// Failed probes in a row that make the stream unhealthy.
    #[schemars(range(min = 1, max = 100))]
    pub unhealthy_after: u32,
}

/// Values computed from the config.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Derived {
    /// A passed probe older than this no longer counts (seconds).
    pub stale_after_secs: u32,
}

/// hls-probe as a component of the framework.
pub struct HlsProbe;

impl common::Component for HlsProbe {
    const NAME: &'static str = "hls-probe";
    const ABOUT: &'static str = env!("CARGO_PKG_DESCRIPTION");
    const PROFILES_TOML: &'static str = include_str!("../profiles.toml");
    const SET_EXAMPLES: [&'static str; 2] =
        ["interval=5", "url=\"http://127.0.0.1:17080/stream.m3u8\""];
    type Config = Config;
    type Derived = Derived;

    fn derive(c: &Config) -> Derived {
        Derived {
            stale_after_secs: c.interval * c.unhealthy_after + c.timeout,
        }
    }

    fn check(c: &Config) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if c.timeout > c.interval {
            v.push((
                "timeout".into(),
                format!(
                    "must be at most `interval` ({} s), got {}",
                    c.interval, c.timeout
                ),
            ));
        }
        v
    }
}

impl common::Targets for HlsProbe {
    type KubernetesRun = common::cli::NoRunFlags;
    const TARGETS: &'static [TargetKind] = &[
        TargetKind::Configs,
        TargetKind::Runner,
        TargetKind::Container,
        TargetKind::Systemd,
        TargetKind::Kubernetes,
    ];
    const PROGRAMS: &'static [(&'static str, &'static str)] =
        &[("hls-probe", "hls-swarm"), ("ffprobe", "ffmpeg")];

    fn deployment(l: &Loaded<Self>) -> Option<Deployment> {
        let c = &l.config;
        let env = |name, default: String, kind, help: &str| EnvVar {
            name,
            default: Template::text(default),
            kind,
            help: help.into(),
        };
        let mut args: Vec<Template> = ["run", "--profile", &l.profile]
            .map(Template::text)
            .to_vec();
        for (flag, var) in [
            ("--url", "STREAM_URL"),
            ("--port", "PORT"),
            ("--listen", "LISTEN_ADDR"),
        ] {
            args.extend([Template::text(flag), Template::var(var)]);
        }
        Some(Deployment {
            title: format!("the hls-swarm stream probe, profile {}", l.profile),
            program: "hls-probe",
            debian_package: "hls-swarm",
            args,
            env: vec![
                env(
                    "STREAM_URL",
                    c.url.to_string(),
                    VarKind::Url,
                    "the stream to probe",
                ),
                env(
                    "PORT",
                    c.port.to_string(),
                    VarKind::Port,
                    "port of /health and /metrics",
                ),
                env(
                    "LISTEN_ADDR",
                    "127.0.0.1".into(),
                    VarKind::ListenAddr,
                    "address to listen on",
                ),
            ],
            user: ("probe", 1000),
            ports: vec![c.port as u16],
            labels: vec![("hls-probe.interval".into(), c.interval.to_string())],
            ready: vec![Ready::Http {
                port_var: "PORT",
                path: "/metrics".into(),
                tls: false,
            }],
        })
    }
}
