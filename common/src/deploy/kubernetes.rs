//! The kubernetes target: a component's image run on a cluster, hardened
//! (non-root, read-only root filesystem, no privilege escalation, no
//! capabilities, seccomp `RuntimeDefault`), as a Deployment (long-running
//! services) or an Indexed Job (a swarm split over pods), with its Service
//! and a kustomization. Objects are k8s-openapi's types, written as YAML one
//! file per object: user values are never pasted into a text template.

use std::collections::BTreeMap;

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaimVolumeSource,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, Sysctl, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::UsageError;

/// What the kubernetes target was asked for (`<component> kubernetes`),
/// the same for every component; a component's own flags (a run split over
/// pods) are its [`super::Targets::KubernetesRun`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The image the pods run (`--image`), checked by [`check_image`].
    pub image: String,
    /// `--namespace`, checked by [`check_namespace`].
    pub namespace: Option<String>,
}

/// The oldest Kubernetes the manifests are written for (k8s-openapi's
/// `v1_33` types; every field used is in 1.33 and later).
pub const MIN_KUBERNETES: &str = "1.33";

/// Sysctls a pod may set in its own network namespace without the cluster
/// allowing unsafe sysctls (Kubernetes' safe set as of 1.33).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// How the pods run.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// One long-running pod (a Deployment of one replica).
    Service,
    /// An Indexed Job of `pods` pods, each retried at most `retries` times.
    Shards { pods: u32, retries: u32 },
}

/// How a container's value is given.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    /// A field of the pod (`metadata.annotations['…']`), by the downward API.
    Field(String),
}

/// A scratch volume (an emptyDir), in memory or on the node's disk.
#[derive(Clone, Debug, PartialEq)]
pub struct ScratchVolume {
    pub name: String,
    pub mount: String,
    pub size_mb: u64,
    pub memory: bool,
}

/// A Secret a pod mounts.
#[derive(Clone, Debug)]
pub struct SecretMount {
    /// The Secret's name; the README says how to create it.
    pub name: String,
    /// Where it is mounted.
    pub mount: String,
    /// Its keys and the file each becomes (`tls.crt` → `cert.pem`).
    pub items: Vec<(String, String)>,
}

/// A component on Kubernetes: what its pods run and how they are reached,
/// probed, sized and spread. Built by each component from its own
/// deployment description; rendered by [`objects`].
#[derive(Clone, Debug)]
pub struct Workload {
    /// Object names: `hls-swarm-<component>`.
    pub name: String,
    pub component: String,
    pub profile: String,
    pub image: String,
    pub namespace: Option<String>,
    pub kind: Kind,
    /// The image's non-root user id.
    pub uid: u32,
    /// The command and its arguments; empty: the image's entrypoint. `$(VAR)`
    /// is a variable of `env` (Kubernetes expands it).
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, Value)>,
    /// Named ports (name, port) the container listens on.
    pub ports: Vec<(String, u16)>,
    /// The port (name) and paths of the liveness and readiness probes.
    pub probes: Option<(String, String, String)>,
    /// Prometheus scraping: (port, path).
    pub scrape: Option<(u16, String)>,
    /// Scratch volumes (besides /tmp, which every pod gets).
    pub memory_volumes: Vec<ScratchVolume>,
    /// A PersistentVolumeClaim mounted at a path: (claim, path).
    pub claim: Option<(String, String)>,
    /// A Secret the user creates, mounted read-only (a TLS certificate).
    pub secret: Option<SecretMount>,
    /// The probes speak HTTPS (the server's certificate is not checked).
    pub https: bool,
    /// Requests (CPU millicores, memory MiB); the memory is also the limit.
    /// No CPU limit: throttling would distort what the pod measures.
    pub cpu_millis: u64,
    pub memory_mb: u64,
    /// The component's kernel settings: the safe ones go into the pod's
    /// security context, the rest into the README as node settings.
    pub sysctls: BTreeMap<&'static str, &'static str>,
    /// Paragraphs of the README on how to use the objects.
    pub notes: Vec<String>,
}

impl Workload {
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), self.name.clone()),
            (
                "app.kubernetes.io/part-of".to_owned(),
                "hls-swarm".to_owned(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                self.component.clone(),
            ),
            ("hls-swarm/profile".to_owned(), self.profile.clone()),
        ])
    }

    fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/name".to_owned(), self.name.clone())])
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: self.namespace.clone(),
            labels: Some(self.labels()),
            ..Default::default()
        }
    }

    fn safe_sysctls(&self) -> Vec<Sysctl> {
        self.sysctls
            .iter()
            .filter(|(k, _)| SAFE_SYSCTLS.contains(k))
            .map(|(k, v)| Sysctl {
                name: (*k).to_owned(),
                value: (*v).to_owned(),
            })
            .collect()
    }

    /// The kernel settings a pod cannot set: the nodes' administrators do.
    pub fn node_sysctls(&self) -> Vec<(&'static str, &'static str)> {
        self.sysctls
            .iter()
            .filter(|(k, _)| !SAFE_SYSCTLS.contains(k))
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    fn container(&self) -> Container {
        let probe = |path: &str, period: i32| Probe {
            http_get: self.probes.as_ref().map(|(port, _, _)| HTTPGetAction {
                path: Some(path.to_owned()),
                port: IntOrString::String(port.clone()),
                scheme: self.https.then(|| "HTTPS".to_owned()),
                ..Default::default()
            }),
            period_seconds: Some(period),
            timeout_seconds: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let mut mounts = vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }];
        mounts.extend(self.memory_volumes.iter().map(|v| VolumeMount {
            name: v.name.clone(),
            mount_path: v.mount.clone(),
            ..Default::default()
        }));
        if let Some((_, path)) = &self.claim {
            mounts.push(VolumeMount {
                name: "results".into(),
                mount_path: path.clone(),
                ..Default::default()
            });
        }
        if let Some(secret) = &self.secret {
            mounts.push(VolumeMount {
                name: "secret".into(),
                mount_path: secret.mount.clone(),
                read_only: Some(true),
                ..Default::default()
            });
        }
        let memory = Quantity(format!("{}Mi", self.memory_mb));
        Container {
            name: self.component.clone(),
            image: Some(self.image.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: (!self.command.is_empty()).then(|| self.command.clone()),
            args: (!self.args.is_empty()).then(|| self.args.clone()),
            env: (!self.env.is_empty()).then(|| {
                self.env
                    .iter()
                    .map(|(name, v)| match v {
                        Value::Text(t) => EnvVar {
                            name: name.clone(),
                            // Kubernetes expands `$(NAME)` in values too
                            value: Some(t.replace("$(", "$$(")),
                            ..Default::default()
                        },
                        Value::Field(path) => EnvVar {
                            name: name.clone(),
                            value_from: Some(EnvVarSource {
                                field_ref: Some(ObjectFieldSelector {
                                    field_path: path.clone(),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    })
                    .collect()
            }),
            ports: (!self.ports.is_empty()).then(|| {
                self.ports
                    .iter()
                    .map(|(name, port)| ContainerPort {
                        name: Some(name.clone()),
                        container_port: i32::from(*port),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect()
            }),
            liveness_probe: self.probes.as_ref().map(|(_, live, _)| probe(live, 10)),
            readiness_probe: self.probes.as_ref().map(|(_, _, ready)| probe(ready, 5)),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), Quantity(format!("{}m", self.cpu_millis))),
                    ("memory".to_owned(), memory.clone()),
                ])),
                limits: Some(BTreeMap::from([("memory".to_owned(), memory)])),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(i64::from(self.uid)),
                run_as_group: Some(i64::from(self.uid)),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            volume_mounts: Some(mounts),
            ..Default::default()
        }
    }

    fn pod(&self) -> PodTemplateSpec {
        let mut volumes = vec![Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..Default::default()
            }),
            ..Default::default()
        }];
        volumes.extend(self.memory_volumes.iter().map(|v| Volume {
            name: v.name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: v.memory.then(|| "Memory".into()),
                size_limit: Some(Quantity(format!("{}Mi", v.size_mb))),
            }),
            ..Default::default()
        }));
        if let Some((claim, _)) = &self.claim {
            volumes.push(Volume {
                name: "results".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        if let Some(secret) = &self.secret {
            volumes.push(Volume {
                name: "secret".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.name.clone()),
                    items: Some(
                        secret
                            .items
                            .iter()
                            .map(|(key, path)| KeyToPath {
                                key: key.clone(),
                                path: path.clone(),
                                mode: None,
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let annotations = self.scrape.as_ref().map(|(port, path)| {
            BTreeMap::from([
                ("prometheus.io/scrape".to_owned(), "true".to_owned()),
                ("prometheus.io/port".to_owned(), port.to_string()),
                ("prometheus.io/path".to_owned(), path.clone()),
            ])
        });
        let sysctls = self.safe_sysctls();
        let shards = matches!(self.kind, Kind::Shards { .. });
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(self.labels()),
                annotations,
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![self.container()],
                volumes: Some(volumes),
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                restart_policy: shards.then(|| "Never".into()),
                // the pods of a Job: `<job>-<index>.<service>` in DNS
                subdomain: shards.then(|| self.name.clone()),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(i64::from(self.uid)),
                    run_as_group: Some(i64::from(self.uid)),
                    fs_group: Some(i64::from(self.uid)),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".into(),
                        ..Default::default()
                    }),
                    sysctls: (!sysctls.is_empty()).then_some(sysctls),
                    ..Default::default()
                }),
                affinity: shards.then(|| Affinity {
                    // one pod per node where the cluster has the nodes
                    pod_anti_affinity: Some(PodAntiAffinity {
                        preferred_during_scheduling_ignored_during_execution: Some(vec![
                            WeightedPodAffinityTerm {
                                weight: 100,
                                pod_affinity_term: PodAffinityTerm {
                                    label_selector: Some(LabelSelector {
                                        match_labels: Some(self.selector()),
                                        ..Default::default()
                                    }),
                                    topology_key: "kubernetes.io/hostname".into(),
                                    ..Default::default()
                                },
                            },
                        ]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                termination_grace_period_seconds: Some(30),
                ..Default::default()
            }),
        }
    }
}

/// The objects of a workload as (file name, YAML): the Deployment or Job,
/// its Service (headless for a Job: it names the pods and lets each pod's
/// metrics be scraped) and a kustomization listing them.
pub fn objects(w: &Workload) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let service_ports: Vec<ServicePort> = w
        .ports
        .iter()
        .map(|(name, port)| ServicePort {
            name: Some(name.clone()),
            port: i32::from(*port),
            target_port: Some(IntOrString::String(name.clone())),
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    match &w.kind {
        Kind::Service => {
            let d = Deployment {
                metadata: w.meta(&w.name),
                spec: Some(DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector {
                        match_labels: Some(w.selector()),
                        ..Default::default()
                    },
                    // one stream at a time: a second encoder would write
                    // another stream under the same names
                    strategy: Some(DeploymentStrategy {
                        type_: Some("Recreate".into()),
                        ..Default::default()
                    }),
                    template: w.pod(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            files.push(("deployment.yaml".to_owned(), yaml(&d)?));
        }
        Kind::Shards { pods, retries } => {
            let pods = i32::try_from(*pods)
                .map_err(|_| UsageError(format!("{pods} pods: at most {}", i32::MAX)))?;
            let j = Job {
                metadata: w.meta(&w.name),
                spec: Some(JobSpec {
                    completion_mode: Some("Indexed".into()),
                    completions: Some(pods),
                    parallelism: Some(pods),
                    backoff_limit_per_index: Some(i32::try_from(*retries).unwrap_or(i32::MAX)),
                    // a shard that failed for good fails the run: its
                    // viewers would be missing from the results
                    max_failed_indexes: Some(0),
                    pod_failure_policy: Some(PodFailurePolicy {
                        rules: vec![PodFailurePolicyRule {
                            // bad input fails every pod alike: do not retry
                            action: "FailJob".into(),
                            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                                container_name: Some(w.component.clone()),
                                operator: "In".into(),
                                values: vec![2],
                            }),
                            ..Default::default()
                        }],
                    }),
                    template: w.pod(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            files.push(("job.yaml".to_owned(), yaml(&j)?));
        }
    }
    if !service_ports.is_empty() {
        let headless = matches!(w.kind, Kind::Shards { .. });
        let s = Service {
            metadata: w.meta(&w.name),
            spec: Some(ServiceSpec {
                selector: Some(w.selector()),
                ports: Some(service_ports),
                cluster_ip: headless.then(|| "None".into()),
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        files.push(("service.yaml".to_owned(), yaml(&s)?));
    }
    let kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    });
    files.push(("kustomization.yaml".to_owned(), yaml(&kustomization)?));
    Ok(files)
}

/// The files of the kubernetes target: [`objects`] and a README.md on
/// applying them and on the node settings pods cannot make.
pub fn files(w: &Workload) -> Result<Vec<(String, String)>> {
    let mut files = objects(w)?;
    let mut readme = format!(
        "# {} on Kubernetes (profile {})\n\n\
         Generated by `{} kubernetes`; do not edit. Kubernetes {MIN_KUBERNETES} or newer.\n\n\
         Files: {}.\n\n\
         ```\nkubectl apply -k .\n```\n",
        w.name,
        w.profile,
        w.component,
        files
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for note in &w.notes {
        readme.push('\n');
        readme.push_str(note);
        readme.push('\n');
    }
    let node = w.node_sysctls();
    if !node.is_empty() {
        readme.push_str(
            "\n## Node settings\n\n\
             These kernel settings are not namespaced (or not in Kubernetes' safe set), so a \
             pod cannot make them. Set them on the nodes that run these pods (for example \
             with a sysctl.d file, as `sysctl --output` writes it):\n\n```\n",
        );
        for (k, v) in &node {
            readme.push_str(&format!("{k} = {v}\n"));
        }
        readme.push_str("```\n");
    }
    let safe = w.safe_sysctls();
    if !safe.is_empty() {
        readme.push_str(&format!(
            "\nThe pod sets the safe, namespaced ones itself (`securityContext.sysctls`): {}.\n",
            safe.iter()
                .map(|s| format!("`{}`", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    files.push(("README.md".to_owned(), readme));
    Ok(files)
}

/// An object as YAML, after a header line saying what wrote it; strings a
/// YAML 1.1 reader would take for a timestamp, a number or a boolean are
/// quoted (`crate::render::yaml`).
fn yaml<T: serde::Serialize>(object: &T) -> Result<String> {
    let value = serde_json::to_value(object)?;
    Ok(format!(
        "# generated by hls-swarm; do not edit\n{}",
        crate::render::yaml::to_string(&value)
    ))
}

/// A template as a container argument: its variables as `$(NAME)`, which
/// Kubernetes fills in from the container's environment, and any `$(` of
/// its text escaped (`$$(`) so that Kubernetes leaves it as it is.
pub fn argument(t: &crate::render::Template) -> String {
    t.pieces()
        .iter()
        .map(|p| match p {
            crate::render::Piece::Text(s) => s.replace("$(", "$$("),
            crate::render::Piece::Var(v) => format!("$({v})"),
        })
        .collect()
}

/// Checks a `--namespace`: a DNS label (RFC 1123).
pub fn check_namespace(ns: &str) -> Result<(), UsageError> {
    let ok = (1..=63).contains(&ns.len())
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "--namespace `{}`: expected a DNS label: 1 to 63 lowercase letters, digits or `-`, \
             starting and ending with a letter or digit (e.g. load-test)",
            ns.escape_debug()
        )))
    }
}

/// Checks an object name given by `flag` (a claim's name): a DNS subdomain
/// (RFC 1123).
pub fn check_dns_name(flag: &str, name: &str) -> Result<(), UsageError> {
    let ok = (1..=253).contains(&name.len()) && name.split('.').all(|l| check_namespace(l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{flag} `{}`: expected a Kubernetes object name: lowercase letters, digits, `-` \
             and `.`, at most 253 characters, each part starting and ending with a letter or digit",
            name.escape_debug()
        )))
    }
}

/// Checks an `--image` reference: `[HOST[:PORT]/]PATH[:TAG][@DIGEST]` with
/// the characters the OCI distribution spec allows, e.g.
/// `registry.example.com/hls-swarm-origin:default`.
pub fn check_image(image: &str) -> Result<(), UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--image `{}`: {why}; expected [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. \
             registry.example.com/team/hls-swarm-NAME:default",
            image.escape_debug()
        ))
    };
    if image.is_empty() || image.len() > 512 {
        return Err(bad("empty or longer than 512 characters"));
    }
    if let Some(c) = image
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/:@".contains(*c)))
    {
        return Err(bad(&format!("`{}` is not allowed", c.escape_debug())));
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("the digest is not sha256: and 64 hex digits"));
        }
    }
    // a tag is after the last `:` that follows the last `/`
    let last = name.rsplit('/').next().unwrap_or(name);
    if let Some((_, tag)) = last.split_once(':') {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && !tag.contains(['/', ':']);
        if !ok {
            return Err(bad(&format!("`{tag}` is not a tag")));
        }
    }
    let path_ok = name.split('/').all(|part| {
        let part = part.split(':').next().unwrap_or("");
        !part.is_empty() && !part.starts_with(['.', '-', '_']) && !part.ends_with(['.', '-', '_'])
    });
    if !path_ok {
        return Err(bad(
            "a path component is empty or starts or ends with `.`, `-` or `_`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_variables_the_kubernetes_way() {
        let mut t = crate::render::Template::text("a=$(b) ");
        t.push(&crate::render::Template::var("JOB_COMPLETION_INDEX"));
        t.push_text("/4");
        assert_eq!(argument(&t), "a=$$(b) $(JOB_COMPLETION_INDEX)/4");
    }

    #[test]
    fn namespaces_are_dns_labels() {
        for ok in ["default", "load-test", "a", "x1"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Load",
            "-a",
            "a-",
            "a_b",
            "a.b",
            &"a".repeat(64),
            "a\nb",
        ] {
            let e = check_namespace(bad).unwrap_err().0;
            assert!(e.contains("DNS label"), "{bad}: {e}");
        }
    }

    #[test]
    fn image_references_are_checked() {
        for ok in [
            "hls-swarm-origin:default",
            "registry.example.com:5000/team/hls-swarm-swarm:default",
            "localhost/x",
            &format!("r.io/x@sha256:{}", "a".repeat(64)),
        ] {
            assert!(check_image(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("with space:1", "` ` is not allowed"),
            ("a\nb", "`\\n` is not allowed"),
            ("x:", "is not a tag"),
            ("x@sha256:12", "digest"),
            ("/x", "path component"),
            ("", "empty"),
        ] {
            let e = check_image(bad).unwrap_err().0;
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
