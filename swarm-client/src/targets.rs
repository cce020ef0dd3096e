//! What the swarm client puts into each deployment target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::deploy::container::ImageSpec;
use common::deploy::deployment::{self, ImageParts};
use common::render::shell::command_by_option;
use common::render::Template;

use common::deploy::{Programs, TargetKind, Targets};
use common::Loaded;

use crate::config::Config;
use crate::derive::Derived;

/// The non-root user of the image.
pub const IMAGE_USER: (&str, u32) = ("swarm", 1000);

/// Programs of the image (name, Debian package); `swarm-client` is this binary.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("swarm-client", "hls-swarm"),
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("ss", "iproute2"),
    ("bash", "bash"),
    ("env", "coreutils"),
];

/// The settings the image reads from the environment: (variable, config
/// key). The entrypoint passes each on as `--set key=$VARIABLE`; the image's
/// defaults are the profile's values.
pub const IMAGE_SETTINGS: &[(&str, &str)] = &[
    ("CLIENTS", "clients"),
    ("RAMP_RATE", "rampRate"),
    ("RAMP_JITTER", "rampJitter"),
    ("METRICS_PORT", "metricsPort"),
    ("LOG_LEVEL", "logLevel"),
    ("VARIANT", "variant"),
    ("TIMEOUT", "timeout"),
    ("ENGINE", "engine"),
];

/// The profile's value of each [`IMAGE_SETTINGS`] entry: (variable, value,
/// whether it is a string).
fn image_settings(c: &Config) -> Vec<(&'static str, String, bool)> {
    let v = serde_json::to_value(c).expect("configs serialize");
    IMAGE_SETTINGS
        .iter()
        .map(|(var, key)| match &v[*key] {
            serde_json::Value::String(s) => (*var, s.clone(), true),
            other => (*var, other.to_string(), false),
        })
        .collect()
}

/// The swarm's command line, in the image's entrypoint and in the unit
/// alike: `run $STREAM_URL --profile PROFILE`, each [`IMAGE_SETTINGS`] entry
/// as `--set key=$VARIABLE` (a string in TOML quotes), and the metrics
/// endpoint on `listen`:`$METRICS_PORT`.
pub fn run_command(profile: &str, c: &Config, listen: &str) -> Vec<Template> {
    let mut words = vec![
        Template::text("run"),
        Template::var("STREAM_URL"),
        Template::text("--profile"),
        Template::text(profile),
    ];
    for ((var, _, string), (_, key)) in image_settings(c).iter().zip(IMAGE_SETTINGS) {
        let quote = if *string { "\"" } else { "" };
        let mut set = Template::text(format!("{key}={quote}"));
        set.push(&Template::var(var));
        set.push_text(quote);
        words.extend([Template::text("--set"), set]);
    }
    let mut addr = Template::text(format!("{listen}:"));
    addr.push(&Template::var("METRICS_PORT"));
    words.extend([Template::text("--metrics-addr"), addr]);
    words
}

/// The container's entrypoint: [`run_command`] with the settings from the
/// environment, or the arguments as given.
pub fn entrypoint_script(profile: &str, c: &Config) -> String {
    format!(
        r#"#!/usr/bin/env bash
# hls-swarm swarm-client container entrypoint (generated; do not edit)
# Runs `swarm-client run "$STREAM_URL"` with the settings below from the
# environment (and DURATION, e.g. 30s, when set); any arguments are passed on
# (arguments that do not start with `-` replace the whole command, e.g.
# `profiles` or `run URL …`).
set -euo pipefail
if [[ $# -gt 0 && $1 != -* ]]; then
  exec /usr/local/bin/swarm-client "$@"
fi
if [[ -z ${{STREAM_URL:-}} ]]; then
  echo "swarm-client: set STREAM_URL (e.g. -e STREAM_URL=http://origin:17080/stream.m3u8) or pass arguments" >&2
  exit 2
fi
exec /usr/local/bin/swarm-client {} \
    ${{DURATION:+--duration "$DURATION"}} "$@"
"#,
        command_by_option(&run_command(profile, c, "0.0.0.0"))
    )
}

/// Above this many viewers per pod, the Job's pods leave the per-viewer
/// figures out of their results (`--no-viewer-details`).
pub const MAX_DETAILED_VIEWERS: u64 = 5000;

/// How long each pod of the swarm's Job plays unless `--duration` says.
pub const JOB_DURATION: std::time::Duration = std::time::Duration::from_secs(600);

/// The kubernetes target's flags of a run split over pods.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KubernetesRun {
    /// The pods sharing the run, as an Indexed Job (default 1);
    /// pod i plays viewers [i·clients/N, (i+1)·clients/N)
    #[arg(long, value_name = "N")]
    pub pods: Option<u32>,
    /// How long each pod plays (default 10m)
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// The wall-clock time (RFC 3339, e.g.
    /// 2026-11-26T18:00:00Z) every pod waits for, so that the ramp is global
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<std::time::SystemTime>,
    /// The run's seed, the same in every pod (default 1)
    #[arg(long)]
    pub seed: Option<u64>,
    /// The stream the pods load (default: the test origin's
    /// Service in the same namespace)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// A PersistentVolumeClaim each pod also writes its
    /// results to, as shard-INDEX.json
    #[arg(long, value_name = "CLAIM")]
    pub results_claim: Option<String>,
}

/// The swarm as a Kubernetes Indexed Job: `--pods` pods, pod i
/// (`JOB_COMPLETION_INDEX`) playing shard i of the run with [`run_command`]
/// and the same seed, all starting at `--start-at`, each printing its
/// results for `merge --from-logs`; a headless Service names the pods and
/// lets Prometheus scrape each one's metrics.
pub fn kubernetes_workload(
    profile: &str,
    c: &Config,
    k: &common::deploy::kubernetes::Options,
    run: &KubernetesRun,
) -> anyhow::Result<common::deploy::kubernetes::Workload> {
    use common::deploy::kubernetes::{argument, check_dns_name, Kind, Value, Workload};
    use common::error::UsageError;
    if run.pods == Some(0) {
        return Err(UsageError("--pods 0: expected at least 1 pod".to_owned()).into());
    }
    if let Some(c) = &run.results_claim {
        check_dns_name("--results-claim", c)?;
    }
    let pods = run.pods.unwrap_or(1);
    if pods > c.viewers() {
        return Err(UsageError(format!(
            "--pods {pods}: more pods than viewers ({}); every pod needs a viewer",
            c.viewers()
        ))
        .into());
    }
    let url = match &run.url {
        Some(u) => {
            crate::run::check_url(u).map_err(|e| UsageError(format!("--url: {}", e.0)))?;
            u.clone()
        }
        None => "http://hls-swarm-test-origin:17080/stream.m3u8".to_owned(),
    };
    // a shape lasts as long as its stages
    let duration = run
        .duration
        .or_else(|| c.shape().map(|s| s.duration()))
        .unwrap_or(JOB_DURATION);
    let index = Template::var("JOB_COMPLETION_INDEX");
    let mut shard = index.clone();
    shard.push_text(&format!("/{pods}"));
    let mut args: Vec<String> = run_command(profile, c, "0.0.0.0")
        .iter()
        .map(argument)
        .collect();
    args.extend([
        "--shard".to_owned(),
        argument(&shard),
        "--seed".to_owned(),
        run.seed.unwrap_or(1).to_string(),
        "--duration".to_owned(),
        humantime::format_duration(duration).to_string(),
        "--print-results".to_owned(),
        "--plain".to_owned(),
    ]);
    // a pod's log must hold its results: the kubelet keeps 10 MiB of it by
    // default, and each viewer's own figures take about 560 bytes
    let per_pod = u64::from(c.viewers().div_ceil(pods));
    if per_pod > MAX_DETAILED_VIEWERS {
        args.push("--no-viewer-details".to_owned());
    }
    if let Some(at) = run.start_at {
        args.extend([
            "--start-at".to_owned(),
            humantime::format_rfc3339_seconds(at).to_string(),
        ]);
    }
    let results_dir = "/results";
    if run.results_claim.is_some() {
        let mut file = Template::text(format!("{results_dir}/shard-"));
        file.push(&index);
        file.push_text(".json");
        args.extend(["--summary-json".to_owned(), argument(&file)]);
    }
    let mut env = vec![
        (
            "JOB_COMPLETION_INDEX".to_owned(),
            Value::Field(
                "metadata.annotations['batch.kubernetes.io/job-completion-index']".to_owned(),
            ),
        ),
        ("STREAM_URL".to_owned(), Value::Text(url)),
    ];
    env.extend(
        image_settings(c)
            .into_iter()
            .map(|(var, value, _)| (var.to_owned(), Value::Text(value))),
    );
    // the largest shard's viewers: about 64 KB and 0.25 millicores each
    // (docs/BENCHMARKS.md), on top of the process itself
    let port = c.metrics_port as u16;
    Ok(Workload {
        name: "hls-swarm-swarm-client".into(),
        component: "swarm-client".into(),
        profile: profile.to_owned(),
        image: k.image.clone(),
        namespace: k.namespace.clone(),
        kind: Kind::Shards { pods, retries: 1 },
        uid: IMAGE_USER.1,
        command: vec!["/usr/local/bin/swarm-client".into()],
        args,
        env,
        ports: vec![("metrics".into(), port)],
        probes: Some(("metrics".into(), "/healthz".into(), "/readyz".into())),
        scrape: Some((port, "/metrics".into())),
        memory_volumes: Vec::new(),
        claim: run
            .results_claim
            .clone()
            .map(|claim| (claim, results_dir.to_owned())),
        secret: None,
        https: false,
        cpu_millis: 100 + per_pod / 4,
        memory_mb: 64 + per_pod * crate::derive::NATIVE_VIEWER_KB / 1024,
        sysctls: crate::sysctl::sysctls(),
        notes: vec![format!(
            "An Indexed Job of {pods} pod(s) playing {} viewers in all, each pod its share \
             (`--shard $(JOB_COMPLETION_INDEX)/{pods}`) for {}, then printing its results \
             between marker lines. Collect and merge them when the Job is complete:\n\n\
             ```\nkubectl wait --for=condition=complete job/hls-swarm-swarm-client --timeout=-1s\n\
             kubectl logs -l job-name=hls-swarm-swarm-client --tail=-1 --max-log-requests={pods} \\\n\
             \x20 | swarm-client merge --from-logs - -o merged.json --report report.html\n```\n\n\
             A Job runs once: delete it (`kubectl delete -k .`) before applying it again.",
            c.viewers(),
            humantime::format_duration(duration)
        )],
    })
}

/// What the swarm's image holds besides its programs: the entrypoint script
/// and the settings it reads, with the profile's values as defaults.
pub fn image_parts(profile: &str, c: &Config) -> ImageParts {
    ImageParts {
        title: format!("hls-swarm swarm client (simulated HLS viewers), profile {profile}"),
        user: IMAGE_USER,
        home: "/tmp",
        working_dir: "/tmp",
        entrypoint: ("swarm-entrypoint".into(), entrypoint_script(profile, c)),
        env: image_settings(c)
            .into_iter()
            .map(|(var, value, _)| (var.to_owned(), value))
            .collect(),
        ports: vec![c.metrics_port as u16],
        volumes: vec![],
        dirs: vec![],
        files: vec![],
        program_data: vec![],
        labels: vec![
            ("swarm.profile".into(), profile.to_owned()),
            ("swarm.clients.default".into(), c.clients.to_string()),
        ],
        programs: None,
    }
}

/// Where the admin puts `STREAM_URL=…` for the service.
pub const ENVIRONMENT_FILE: &str = "/etc/hls-swarm/swarm-client.env";

/// The swarm's service: [`run_command`] on 127.0.0.1 with the profile's
/// settings as `Environment=`; not started by default (it needs a
/// `STREAM_URL`), open-file limit and memory cap from the derived values,
/// restarted on failure.
pub fn service(
    profile: &str,
    c: &Config,
    d: &Derived,
    program: &str,
) -> common::deploy::unit::Service {
    let mut exec = vec![Template::text(program)];
    exec.extend(run_command(profile, c, "127.0.0.1"));
    common::deploy::unit::Service {
        name: "hls-swarm-client".into(),
        description: format!(
            "hls-swarm swarm client: {} simulated viewers (profile {profile})",
            c.viewers()
        ),
        note: Some(format!(
            "set STREAM_URL in {ENVIRONMENT_FILE}, then start it"
        )),
        exec_start: exec,
        // the profile's values, for an admin to change in a drop-in
        environment: image_settings(c)
            .into_iter()
            .map(|(var, value, _)| (var.to_owned(), value))
            .collect(),
        environment_file: Some(ENVIRONMENT_FILE.into()),
        dynamic_user: true,
        restart: "on-failure".into(),
        restart_sec: 5,
        limit_nofile: Some(d.recommended_fd_limit),
        memory_max: Some(format!("{}M", d.container_memory_mb)),
        ..Default::default()
    }
}

/// Files of the systemd target: the unit, an example environment file and
/// the client's sysctls.
pub fn systemd_files(
    profile: &str,
    c: &Config,
    d: &Derived,
    program: &str,
) -> Vec<(String, String)> {
    common::deploy::systemd::files(&common::deploy::unit::Units {
        component: "swarm-client".into(),
        services: vec![service(profile, c, d, program)],
        sysctls: crate::sysctl::sysctls(),
        files: vec![(
            "hls-swarm/swarm-client.env.example".into(),
            "# Copy to /etc/hls-swarm/swarm-client.env and set the stream to load.\nSTREAM_URL=http://127.0.0.1:17080/stream.m3u8\n".into(),
        )],
        ..Default::default()
    })
}

/// The NixOS module of the swarm client: the same service, started only when
/// `streamUrl` is set.
pub fn nixos_module(profile: &str, c: &Config, d: &Derived) -> String {
    use common::deploy::nixos::{render, Module};
    let mut svc = service(profile, c, d, "swarm-client");
    svc.environment_file = None;
    let module = Module {
        option_path: "services.hls-swarm.swarm-client".into(),
        description: format!("the hls-swarm swarm client (profile {profile})"),
        packages: vec![("package".into(), "hls-swarm".into()), ("ffmpeg".into(), "ffmpeg".into())],
        programs: [("hls-swarm-client".to_owned(), "${cfg.package}/bin/swarm-client".to_owned())].into(),
        sysctls: crate::sysctl::sysctls().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        services: vec![svc],
        extra_options: vec![
            "streamUrl = lib.mkOption {".into(),
            "  type = lib.types.nullOr lib.types.str;".into(),
            "  default = null;".into(),
            "  description = \"The stream to load; the service starts at boot only when it is set.\";".into(),
            "};".into(),
        ],
        extra_config: vec![
            "systemd.services.hls-swarm-client.environment.STREAM_URL = lib.mkIf (cfg.streamUrl != null) cfg.streamUrl;".into(),
            "systemd.services.hls-swarm-client.wantedBy = lib.mkIf (cfg.streamUrl != null) [ \"multi-user.target\" ];".into(),
            "systemd.services.hls-swarm-client.path = [ cfg.ffmpeg pkgs.iproute2 ];".into(),
        ],
        ..Default::default()
    };
    render(&module)
}

/// The swarm's microVM: the image's files, the entrypoint started by the
/// guest's init as `swarm`, 2 vCPUs and `vmMemoryMB`, the metrics port
/// forwarded to 127.0.0.1; STREAM_URL, CLIENTS and DURATION come from the host.
pub fn microvm_spec(
    l: &Loaded<crate::SwarmClient>,
    binaries: &Programs,
    kernel: PathBuf,
    modules_dir: PathBuf,
) -> anyhow::Result<common::deploy::microvm::VmSpec> {
    use common::deploy::microvm::{GuestService, Net, VmShape, VmSpec};
    let (c, d) = (&l.config, &l.derived);
    let image = crate::SwarmClient::image(l, binaries)?;
    let env: Vec<(String, String)> = image
        .env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .filter(|(k, _)| k != "PATH")
        .collect();
    Ok(VmSpec {
        name: "swarm-client".into(),
        entries: image.layers.into_iter().flat_map(|l| l.entries).collect(),
        kernel,
        modules_dir,
        // tcp_diag: `ss` reads the viewers' byte counters through sock_diag
        // qemu_fw_cfg: the profile's config comes through the firmware config
        modules: [
            "virtio_mmio",
            "virtio_net",
            "tcp_diag",
            "inet_diag",
            "qemu_fw_cfg",
        ]
        .map(String::from)
        .to_vec(),
        sysctls: crate::sysctl::sysctls()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        services: vec![GuestService {
            name: "swarm".into(),
            env,
            argv: vec!["/usr/local/bin/swarm-entrypoint".into()],
            user: IMAGE_USER.0.into(),
        }],
        shape: VmShape {
            vcpus: 2,
            memory_mb: d.vm_memory_mb,
            net: Net::User {
                forwards: vec![(
                    "METRICS_PORT".into(),
                    c.metrics_port as u16,
                    c.metrics_port as u16,
                )],
            },
            log_volume: None,
        },
        serial_port: 17023,
        guest_env: ["STREAM_URL", "CLIENTS", "DURATION"]
            .map(String::from)
            .to_vec(),
        // the metrics endpoint's liveness answer: the swarm runs
        health: Some((c.metrics_port as u16, "/healthz".into())),
        tls: None,
    })
}

impl Targets for crate::SwarmClient {
    type KubernetesRun = KubernetesRun;
    const TARGETS: &'static [TargetKind] = &[
        TargetKind::Configs,
        TargetKind::Container,
        TargetKind::Microvm,
        TargetKind::NixosModule,
        TargetKind::Systemd,
        TargetKind::Sysctl,
        TargetKind::Kubernetes,
    ];
    const PROGRAMS: &'static [(&'static str, &'static str)] = PROGRAMS;

    fn about(kind: TargetKind) -> Option<&'static str> {
        match kind {
            TargetKind::Configs => Some("Write DIR/swarm-client.json: the merged config and its derived values"),
            TargetKind::Container => Some("Build the OCI image of the swarm client (no daemon needed)\n\nThis binary, FFmpeg, ffprobe, ss and bash with their shared-library closure; runs as user swarm (uid 1000). Run it with `-e STREAM_URL=http://…/stream.m3u8`; CLIENTS, RAMP_RATE, RAMP_JITTER, METRICS_PORT, LOG_LEVEL, VARIANT, TIMEOUT and ENGINE override the profile."),
            TargetKind::Microvm => Some("Write a microVM: DIR/kernel and DIR/base (the kernel and the guest's programs, the same for every profile; shared by the microVMs built with the same --base-dir), DIR/config.cpio (the profile's files), DIR/bin/microvm-run and microvm-stop\n\nStart it with STREAM_URL (from the guest, the host is 10.0.2.2), and optionally CLIENTS and DURATION; the VM powers off when the swarm ends."),
            TargetKind::NixosModule => Some("Write the NixOS module DIR/swarm-client.nix"),
            TargetKind::Systemd => Some("Write the systemd unit (not enabled: it needs STREAM_URL), an example environment file and the sysctl.d file\n\nThe unit runs this binary unless --binary swarm-client=PATH says otherwise."),
            TargetKind::Sysctl => Some("Print (or write, or apply) the client's kernel settings as a sysctl.d file"),
            TargetKind::Kubernetes => Some("Write Kubernetes manifests to DIR: the swarm as an Indexed Job of --pods pods, a headless Service, a kustomization and a README\n\nPod i plays viewers [i·clients/N, (i+1)·clients/N) of the profile's clients (--set clients=… for the whole run), with the same --seed, from --start-at, for --duration, and prints its results for `merge --from-logs`. Hardened: non-root, read-only root filesystem, no capabilities, seccomp RuntimeDefault."),
            TargetKind::Runner => None,
        }
    }

    fn sysctls() -> BTreeMap<&'static str, &'static str> {
        crate::sysctl::sysctls()
    }

    fn image(l: &Loaded<Self>, programs: &Programs) -> anyhow::Result<ImageSpec> {
        deployment::image(l, &image_parts(&l.profile, &l.config), programs)
    }

    fn kubernetes(
        l: &Loaded<Self>,
        k: &common::deploy::kubernetes::Options,
        run: &KubernetesRun,
    ) -> anyhow::Result<common::deploy::kubernetes::Workload> {
        kubernetes_workload(&l.profile, &l.config, k, run)
    }

    fn systemd(l: &Loaded<Self>, programs: &Programs) -> anyhow::Result<Vec<(String, String)>> {
        let own = programs["swarm-client"].to_string_lossy().into_owned();
        Ok(systemd_files(&l.profile, &l.config, &l.derived, &own))
    }

    fn nixos_module(l: &Loaded<Self>) -> anyhow::Result<Vec<(String, String)>> {
        Ok(vec![(
            "swarm-client.nix".into(),
            nixos_module(&l.profile, &l.config, &l.derived),
        )])
    }

    fn microvm(
        l: &Loaded<Self>,
        programs: &Programs,
        kernel: PathBuf,
        modules_dir: PathBuf,
    ) -> anyhow::Result<common::deploy::microvm::VmSpec> {
        microvm_spec(l, programs, kernel, modules_dir)
    }
}
