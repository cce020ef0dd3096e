//! The runner script, container image and systemd unit of a simple component,
//! built from one description of its long-running command. A component that
//! fills in a [`Deployment`] writes no target code of its own.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::container::{
    account_entries, config_document, labels, program_layers, program_layers_with_own, Entry,
    ImageSpec, Layer, Program,
};
use super::description::{EnvVar, Ready, Script, Service, System, VarKind};
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
        prepare: Vec::new(),
        banner: None,
        services: vec![Service {
            name: C::NAME.into(),
            program: d.program,
            debian_package: d.debian_package,
            args: d.args.clone(),
            unit: Some(super::unit::Service {
                name: C::NAME.into(),
                description: d.title.clone(),
                dynamic_user: true,
                restart: "on-failure".into(),
                restart_sec: 5,
                wanted_by: Some("multi-user.target".into()),
                ..Default::default()
            }),
        }],
        ready: d.ready.clone(),
        ready_timeout_secs: 30,
        // as a system service: the settings' defaults, on 127.0.0.1
        system: Some(System {
            values: d
                .env
                .iter()
                .filter_map(|v| match v.kind {
                    VarKind::ListenAddr => Some((v.name, "127.0.0.1".to_owned())),
                    _ => v.default.as_plain().map(|x| (v.name, x)),
                })
                .collect(),
            units: super::unit::Units {
                component: C::NAME.into(),
                sysctls: C::sysctls(),
                ..Default::default()
            },
        }),
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

/// What a component puts into its OCI image besides its programs: the one
/// description every image is assembled from by [`image`].
#[derive(Clone, Debug)]
pub struct ImageParts {
    /// The image's description label (`hls-swarm stream probe, profile default`).
    pub title: String,
    /// The non-root user (name, uid) and its home directory.
    pub user: (&'static str, u32),
    pub home: &'static str,
    pub working_dir: &'static str,
    /// The entrypoint: a script in /usr/local/bin (file name, text).
    pub entrypoint: (String, String),
    /// Environment defaults (PATH comes first, from here).
    pub env: Vec<(String, String)>,
    pub ports: Vec<u16>,
    pub volumes: Vec<String>,
    /// Directories besides the account's (their owners set).
    pub dirs: Vec<Entry>,
    /// Generated files besides the entrypoint and `/etc/hls-swarm/<component>.json`
    /// (absolute path, text), mode 0644.
    pub files: Vec<(String, String)>,
    /// Data files a program needs (program, host path), taken when present.
    pub program_data: Vec<(&'static str, PathBuf)>,
    /// Labels besides the standard OCI ones.
    pub labels: Vec<(String, String)>,
    /// The component's programs this image carries; `None`: all of them.
    pub programs: Option<Vec<&'static str>>,
}

/// The PATH of every image.
pub const IMAGE_PATH: &str = "PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin";

/// The OCI image of a component: its programs with their shared-library
/// closure (its own binary in /usr/local/bin), bash and the coreutils every
/// entrypoint script may use, the account and directories, the entrypoint
/// and the generated configs, as `parts` describes them.
pub fn image<C: Targets>(
    l: &Loaded<C>,
    parts: &ImageParts,
    programs: &Programs,
) -> Result<ImageSpec> {
    let tool = |n: &str| RUNNER_TOOLS.iter().any(|(t, _)| *t == n);
    let wanted = |n: &str| parts.programs.as_ref().is_none_or(|p| p.contains(&n));
    let mut host_programs = Vec::new();
    for (name, _) in C::PROGRAMS
        .iter()
        .filter(|(n, _)| *n != C::NAME && !tool(n) && wanted(n))
    {
        host_programs.push(Program {
            name: (*name).into(),
            executables: vec![program(programs, name)?],
            data: parts
                .program_data
                .iter()
                .filter(|(n, d)| n == name && d.is_file())
                .map(|(_, d)| d.clone())
                .collect(),
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
    let mut layers = if C::PROGRAMS.iter().any(|(n, _)| *n == C::NAME) && wanted(C::NAME) {
        program_layers_with_own(&host_programs, C::NAME, &program(programs, C::NAME)?)?
    } else {
        program_layers(&host_programs)?
    };
    let (user, uid) = parts.user;
    let mut accounts = account_entries(user, uid, parts.home);
    accounts.extend(parts.dirs.iter().cloned());
    layers.push(Layer {
        name: "accounts and directories".into(),
        entries: accounts,
    });
    let (entry_name, entry_text) = &parts.entrypoint;
    let entrypoint = format!("/usr/local/bin/{entry_name}");
    let mut generated = vec![
        Entry::bytes(entrypoint.clone(), entry_text.clone(), 0o755),
        Entry::bytes(
            format!("/etc/hls-swarm/{}.json", C::NAME),
            config_document(&l.profile, &l.config, &l.derived)?,
            0o644,
        ),
    ];
    generated.extend(
        parts
            .files
            .iter()
            .map(|(path, text)| Entry::bytes(path.clone(), text.clone(), 0o644)),
    );
    layers.push(Layer {
        name: "generated configs".into(),
        entries: generated,
    });
    let extra: Vec<(&str, String)> = parts
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let mut env = vec![IMAGE_PATH.to_owned()];
    env.extend(parts.env.iter().map(|(k, v)| format!("{k}={v}")));
    let name = image_name::<C>();
    Ok(ImageSpec {
        labels: labels(&name, parts.title.clone(), &extra),
        name,
        tag: l.profile.clone(),
        layers,
        user: user.into(),
        entrypoint: vec![entrypoint],
        cmd: vec![],
        env,
        exposed_ports: parts.ports.iter().map(|p| format!("{p}/tcp")).collect(),
        volumes: parts.volumes.clone(),
        working_dir: parts.working_dir.into(),
    })
}

/// The image of a simple component: its runner script as entrypoint, its
/// settings' defaults as environment, user and ports from the deployment.
pub fn simple_image<C: Targets>(
    l: &Loaded<C>,
    d: &Deployment,
    programs: &Programs,
) -> Result<ImageSpec> {
    let runner = runner::<C>(d);
    let profile_label = format!("{}.profile", C::NAME);
    let mut labels = vec![(profile_label, l.profile.clone())];
    labels.extend(d.labels.iter().cloned());
    let parts = ImageParts {
        title: d.title.clone(),
        user: d.user,
        home: "/tmp",
        working_dir: "/tmp",
        entrypoint: (runner.name.clone(), super::runner::render(&runner)),
        env: d
            .env
            .iter()
            .filter_map(|v| env_default(v).map(|x| (v.name.to_owned(), x)))
            .collect(),
        ports: d.ports.clone(),
        volumes: vec![],
        dirs: vec![],
        files: vec![],
        program_data: vec![],
        labels,
        programs: None,
    };
    image(l, &parts, programs)
}

/// The kubernetes target of a simple component: its image as a hardened
/// Deployment of one pod, its settings as the container's environment (the
/// listen address 0.0.0.0: the pod's own network namespace, reached through
/// the Service), probed where the runner waits for it to be ready.
pub fn kubernetes<C: Targets>(
    l: &Loaded<C>,
    d: &Deployment,
    k: &super::kubernetes::Options,
) -> Result<super::kubernetes::Workload> {
    use super::kubernetes::{Kind, Value, Workload};
    let port_name = |i: usize| {
        if i == 0 {
            "http".to_owned()
        } else {
            format!("port-{i}")
        }
    };
    let ports: Vec<(String, u16)> = d
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (port_name(i), *p))
        .collect();
    let probes = d.ready.iter().find_map(|r| match r {
        Ready::Http { path, .. } if !ports.is_empty() => {
            Some((ports[0].0.clone(), path.clone(), path.clone()))
        }
        _ => None,
    });
    Ok(Workload {
        name: image_name::<C>(),
        component: C::NAME.into(),
        profile: l.profile.clone(),
        image: k.image.clone(),
        namespace: k.namespace.clone(),
        kind: Kind::Service,
        uid: d.user.1,
        command: Vec::new(),
        args: Vec::new(),
        env: d
            .env
            .iter()
            .filter_map(|v| env_default(v).map(|x| (v.name.to_owned(), Value::Text(x))))
            .collect(),
        ports,
        scrape: probes
            .as_ref()
            .filter(|(_, _, path)| path == "/metrics")
            .map(|(_, _, path)| (d.ports[0], path.clone())),
        probes,
        memory_volumes: Vec::new(),
        claim: None,
        secret: None,
        https: false,
        cpu_millis: 100,
        memory_mb: 64,
        sysctls: C::sysctls(),
        notes: Vec::new(),
    })
}

/// The systemd target: the runner's service as one hardened unit with a
/// dynamic user, restarted on failure, its settings as `Environment=` lines;
/// plus the sysctl.d file when the component has kernel settings.
pub fn systemd<C: Targets>(d: &Deployment, programs: &Programs) -> Result<Vec<(String, String)>> {
    let units = super::systemd::units_of(&runner::<C>(d), &|name| {
        let path = program(programs, name)?;
        path.to_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))
    })?;
    Ok(super::systemd::files(&units))
}
