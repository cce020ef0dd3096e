//! The runner script, container image and systemd unit of a simple component,
//! built from one description of its long-running command. A component that
//! fills in a [`Deployment`] writes no target code of its own.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::container::{
    account_entries, config_document, labels, program_layers, program_layers_with_own, Entry,
    ImageSpec, Layer, Program,
};
use super::runner::{EnvVar, Ready, Script, Service, VarKind};
use super::{Programs, Targets, RUNNER_TOOLS};
use crate::component::Loaded;
use crate::render::Template;

/// One long-running command and how it is deployed.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// What it is, in a few words (`the hls-swarm stream probe, profile default`).
    pub title: String,
    /// The program (one of the component's `PROGRAMS`; usually its own binary).
    pub program: &'static str,
    pub debian_package: &'static str,
    /// Its arguments; they may use the variables of `env`.
    pub args: Vec<Template>,
    /// Settings read from the environment, with defaults. In the image they
    /// are `Env` defaults; in the unit, `Environment=` lines.
    pub env: Vec<EnvVar>,
    /// The image's user (name, uid).
    pub user: (&'static str, u32),
    /// Ports the command listens on (exposed by the image).
    pub ports: Vec<u16>,
    /// Image labels besides the standard ones and `<component>.profile`.
    pub labels: Vec<(String, String)>,
    /// What the runner waits for before it says the run is ready.
    pub ready: Vec<Ready>,
}

/// The runner script's file name: `run-<component>`.
pub fn runner_name<C: Targets>() -> String {
    format!("run-{}", C::NAME)
}

/// The image's name: `hls-swarm-<component>`.
pub fn image_name<C: Targets>() -> String {
    format!("hls-swarm-{}", C::NAME)
}

/// The runner script: the command, supervised and restarted, with its
/// settings from the environment.
pub fn runner<C: Targets>(d: &Deployment) -> Script {
    let free_ports = d
        .env
        .iter()
        .find(|v| v.kind == VarKind::ListenAddr)
        .into_iter()
        .flat_map(|_| d.env.iter().filter(|v| v.kind == VarKind::Port))
        .map(|p| ("URL_HOST", p.name))
        .collect();
    Script {
        name: runner_name::<C>(),
        title: d.title.clone(),
        env: d.env.clone(),
        computed: Vec::new(),
        free_ports,
        dirs: Vec::new(),
        files: Vec::new(),
        banner: None,
        services: vec![Service {
            name: C::NAME.into(),
            program: d.program,
            debian_package: d.debian_package,
            args: d.args.clone(),
        }],
        ready: d.ready.clone(),
        ready_timeout_secs: 30,
    }
}

fn env_default(v: &EnvVar) -> Option<String> {
    match v.kind {
        // inside the image's own network namespace: reachable only where the
        // user publishes the port
        VarKind::ListenAddr => Some("0.0.0.0".into()),
        _ => v.default.as_plain(),
    }
}

fn program(programs: &Programs, name: &str) -> Result<PathBuf> {
    programs
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow!("no path for `{name}`"))
}

/// The OCI image: the programs with their libraries (the component's own
/// binary in /usr/local/bin), the runner script as entrypoint, the merged
/// config in /etc/hls-swarm/, a non-root user.
pub fn image<C: Targets>(l: &Loaded<C>, d: &Deployment, programs: &Programs) -> Result<ImageSpec> {
    let mut host_programs = Vec::new();
    for (name, _) in C::PROGRAMS.iter().filter(|(n, _)| *n != C::NAME) {
        host_programs.push(Program {
            name: (*name).into(),
            executables: vec![program(programs, name)?],
            data: vec![],
        });
    }
    host_programs.push(Program {
        name: "bash and coreutils".into(),
        executables: RUNNER_TOOLS
            .iter()
            .map(|(n, _)| program(programs, n))
            .collect::<Result<_>>()?,
        data: vec![],
    });
    let mut layers = if C::PROGRAMS.iter().any(|(n, _)| *n == C::NAME) {
        program_layers_with_own(&host_programs, C::NAME, &program(programs, C::NAME)?)?
    } else {
        program_layers(&host_programs)?
    };
    let (user, uid) = d.user;
    layers.push(Layer {
        name: "accounts and directories".into(),
        entries: account_entries(user, uid, "/tmp"),
    });
    let runner = runner::<C>(d);
    layers.push(Layer {
        name: "generated configs".into(),
        entries: vec![
            Entry::bytes(
                format!("/usr/local/bin/{}", runner.name),
                super::runner::render(&runner),
                0o755,
            ),
            Entry::bytes(
                format!("/etc/hls-swarm/{}.json", C::NAME),
                config_document(&l.profile, &l.config, &l.derived)?,
                0o644,
            ),
        ],
    });
    let profile_label = format!("{}.profile", C::NAME);
    let mut extra = vec![(profile_label.as_str(), l.profile.clone())];
    extra.extend(d.labels.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let mut env = vec!["PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin".to_owned()];
    env.extend(
        d.env
            .iter()
            .filter_map(|v| env_default(v).map(|x| format!("{}={x}", v.name))),
    );
    let name = image_name::<C>();
    Ok(ImageSpec {
        labels: labels(&name, d.title.clone(), &extra),
        name,
        tag: l.profile.clone(),
        layers,
        user: user.into(),
        entrypoint: vec![format!("/usr/local/bin/{}", runner.name)],
        cmd: vec![],
        env,
        exposed_ports: d.ports.iter().map(|p| format!("{p}/tcp")).collect(),
        volumes: vec![],
        working_dir: "/tmp".into(),
    })
}

/// The systemd target: one hardened service with a dynamic user, restarted on
/// failure, its settings as `Environment=` lines; plus the sysctl.d file when
/// the component has kernel settings.
pub fn systemd<C: Targets>(d: &Deployment, programs: &Programs) -> Result<Vec<(String, String)>> {
    let path = program(programs, d.program)?;
    let path = path
        .to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))?;
    let mut exec = vec![Template::text(path)];
    exec.extend(d.args.iter().cloned());
    let service = super::systemd::Service {
        name: C::NAME.into(),
        description: d.title.clone(),
        exec_start: exec,
        environment: d
            .env
            .iter()
            .filter_map(|v| match v.kind {
                VarKind::ListenAddr => Some((v.name.to_owned(), "127.0.0.1".to_owned())),
                _ => v.default.as_plain().map(|x| (v.name.to_owned(), x)),
            })
            .collect(),
        dynamic_user: true,
        restart: "on-failure".into(),
        restart_sec: 5,
        wanted_by: Some("multi-user.target".into()),
        ..Default::default()
    };
    let mut files = vec![(
        format!("systemd/{}.service", C::NAME),
        super::systemd::render_service(&service),
    )];
    let sysctls = C::sysctls();
    if !sysctls.is_empty() {
        files.push((
            format!("sysctl.d/90-{}.conf", C::NAME),
            crate::render::sysctl::sysctl_conf(C::NAME, &sysctls),
        ));
    }
    Ok(files)
}
