//! The kubernetes target: every component's manifests against the official
//! schemas, bad input refused, and the swarm's Indexed Job run on this
//! machine exactly as its manifest says (no cluster runs here): each pod's
//! command and environment, with JOB_COMPLETION_INDEX = 0..N-1, against a
//! local test origin; their output merged as `kubectl logs` would give it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::origin::{binaries, TestOrigin};

fn bin(name: &str) -> PathBuf {
    binaries().join(name)
}

/// `<component> kubernetes ARGS -o DIR`: (exit status, stdout + stderr).
fn kubernetes(component: &str, args: &[&str], dir: &Path) -> (i32, String) {
    testkit::run_any(
        Command::new(bin(component))
            .arg("kubernetes")
            .args(args)
            .arg("-o")
            .arg(dir),
    )
}

fn profiles(component: &str) -> Vec<String> {
    let out = testkit::run_ok(Command::new(bin(component)).arg("profiles"));
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("written")).expect("YAML")
}

#[test]
fn every_component_and_profile_passes_the_official_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for component in ["test-origin", "swarm-client", "hls-probe"] {
        for profile in profiles(component) {
            let dir = tmp.path().join(format!("{component}-{profile}"));
            let image = format!("registry.example.com/hls-swarm-{component}:{profile}");
            let mut args = vec!["--profile", &profile, "--image", &image];
            if component == "swarm-client" {
                args.extend(["--pods", "2", "--namespace", "load-test"]);
                // typed-looking values: a timestamp and a number (each must
                // reach the pod as the string it is)
                args.extend(["--start-at", "2026-11-26T18:00:00Z", "--seed", "10"]);
            }
            let (code, out) = kubernetes(component, &args, &dir);
            assert_eq!(code, 0, "{component} {profile}: {out}");
            let kustomization = yaml(&dir.join("kustomization.yaml"));
            let listed: Vec<&str> = kustomization["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            for name in &listed {
                let path = dir.join(name);
                let object = yaml(&path);
                // hardened as the issue of this target asks
                let pod = &object["spec"]["template"]["spec"];
                if !pod.is_null() {
                    let c = &pod["containers"][0]["securityContext"];
                    assert_eq!(c["runAsNonRoot"], true, "{path:?}");
                    assert_eq!(c["runAsUser"], 1000, "{path:?}");
                    assert_eq!(c["readOnlyRootFilesystem"], true, "{path:?}");
                    assert_eq!(c["allowPrivilegeEscalation"], false, "{path:?}");
                    assert_eq!(c["capabilities"]["drop"][0], "ALL", "{path:?}");
                    assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault", "{path:?}");
                }
                files.push(path);
            }
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
                .collect();
            on_disk.sort();
            let mut sorted = listed.clone();
            sorted.sort();
            assert_eq!(on_disk, sorted, "the kustomization lists every object");
        }
    }
    testkit::kubernetes_validate(&files);
    // and what a YAML 1.1 reader (PyYAML, as kubectl's reads them) makes of
    // the job's arguments: strings, every one
    let job = tmp.path().join("swarm-client-default/job.yaml");
    let out = testkit::run_ok(Command::new("python3").arg("-c").arg(
        "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
         c = d['spec']['template']['spec']['containers'][0]; \
         print([type(a).__name__ for a in c['args']], [type(e.get('value', '')).__name__ for e in c['env']])",
    ).arg(&job));
    assert!(
        !out.contains("datetime") && !out.contains("bool") && !out.contains("int"),
        "{out}"
    );
    let text = std::fs::read_to_string(&job).unwrap();
    assert!(text.contains("- '2026-11-26T18:00:00Z'"), "{text}");
}

#[test]
fn the_origin_keeps_its_stream_in_memory_and_is_probed_on_health() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let (code, out) = kubernetes("test-origin", &["--image", "r.io/o:1"], &dir);
    assert_eq!(code, 0, "{out}");
    let d = yaml(&dir.join("deployment.yaml"));
    let pod = &d["spec"]["template"]["spec"];
    let hls = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "hls")
        .expect("an hls volume");
    assert_eq!(hls["emptyDir"]["medium"], "Memory");
    // recommendedTmpfsMB of the default profile (SPEC: 74 MB)
    assert_eq!(hls["emptyDir"]["sizeLimit"], "74Mi");
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["image"], "r.io/o:1");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("net.core.rmem_max"),
        "node settings:\n{readme}"
    );
    let safe: Vec<&str> = pod["securityContext"]["sysctls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(safe.contains(&"net.ipv4.tcp_keepalive_time"), "{safe:?}");
    assert!(!safe.contains(&"net.core.rmem_max"), "{safe:?}");
}

/// A TLS origin on Kubernetes: its certificate is a Secret the user
/// creates (the README says how), mounted read-only where the runner looks
/// for one, and the probes speak HTTPS; the manifests pass the schemas.
#[test]
fn a_tls_origin_mounts_its_secret_and_probes_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let (code, out) = kubernetes(
        "test-origin",
        &["--image", "r.io/o:1", "--set", "tls.enable=true"],
        &dir,
    );
    assert_eq!(code, 0, "{out}");
    let d = yaml(&dir.join("deployment.yaml"));
    let pod = &d["spec"]["template"]["spec"];
    let secret = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "secret")
        .expect("a secret volume");
    assert_eq!(secret["secret"]["secretName"], "hls-swarm-test-origin-tls");
    assert_eq!(secret["secret"]["items"][0]["key"], "tls.crt");
    assert_eq!(secret["secret"]["items"][0]["path"], "cert.pem");
    assert_eq!(secret["secret"]["items"][1]["path"], "key.pem");
    let c = &pod["containers"][0];
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "secret")
        .expect("mounted");
    assert_eq!(mount["readOnly"], true);
    let tls_dir = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "TLS_DIR")
        .expect("TLS_DIR set");
    assert_eq!(tls_dir["value"], mount["mountPath"]);
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "kubectl create secret tls hls-swarm-test-origin-tls --cert=cert.pem --key=key.pem"
        ),
        "{readme}"
    );
    testkit::kubernetes_validate(&[dir.join("deployment.yaml"), dir.join("service.yaml")]);
}

#[test]
fn bad_input_is_refused_naming_the_value_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "swarm-client",
            &["--image", "r.io/s:1", "--pods", "0"],
            "--pods 0",
        ),
        (
            "swarm-client",
            &["--image", "r.io/s:1", "--pods", "5", "--set", "clients=4"],
            "--pods 5: more pods than viewers",
        ),
        (
            "swarm-client",
            &["--image", "r.io/s 1"],
            "--image `r.io/s 1`",
        ),
        (
            "test-origin",
            &["--image", "r.io/o\n1"],
            "--image `r.io/o\\n1`",
        ),
        (
            "hls-probe",
            &["--image", "r.io/p:1", "--namespace", "Load_Test"],
            "--namespace `Load_Test`",
        ),
        (
            "test-origin",
            &["--image", "r.io/o:1", "--pods", "2"],
            // the flags of a run split over pods are swarm-client's own
            "unexpected argument '--pods'",
        ),
    ];
    for (i, (component, args, expected)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case-{i}"));
        let (code, out) = kubernetes(component, args, &dir);
        assert_eq!(code, 2, "{component} {args:?}: {out}");
        assert!(out.contains(expected), "{component} {args:?}: {out}");
        assert!(!dir.exists(), "{component} {args:?} wrote {dir:?}");
    }
}

/// Kubernetes' `$(NAME)` expansion of `text` with `env` (`$$` is a `$`).
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(end) = rest.strip_prefix("$(").and_then(|r| r.find(')')) {
            let name = &rest[2..2 + end];
            match env.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[..3 + end]),
            }
            rest = &rest[3 + end..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out + rest
}

/// One pod of the Job as this machine runs it: the container's command,
/// arguments and environment from the manifest, with JOB_COMPLETION_INDEX
/// = `index`. Two things differ from a cluster, where each pod has a
/// network namespace of its own: the metrics endpoint listens on loopback
/// and on a port of its own, and the image's /usr/local/bin/swarm-client is
/// this build's.
fn pod(job: &Value, index: u32, metrics_port: u16) -> Command {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let mut env: Vec<(String, String)> = Vec::new();
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_owned();
        let value = if e["valueFrom"]["fieldRef"]["fieldPath"]
            == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        {
            index.to_string()
        } else if name == "METRICS_PORT" {
            metrics_port.to_string()
        } else {
            expand(e["value"].as_str().unwrap(), &env)
        };
        env.push((name, value));
    }
    let command = c["command"][0].as_str().unwrap();
    assert_eq!(command, "/usr/local/bin/swarm-client");
    let mut cmd = Command::new(bin("swarm-client"));
    for a in c["args"].as_array().unwrap() {
        cmd.arg(expand(a.as_str().unwrap(), &env).replace("0.0.0.0:", "127.0.0.1:"));
    }
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `swarm-client merge --from-logs - ARGS` with `logs` on stdin.
fn merge(logs: &str, args: &[&str]) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(bin("swarm-client"))
        .args(["merge", "--from-logs", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(logs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), testkit::printed(&out))
}

#[test]
fn the_indexed_job_runs_here_as_its_manifest_says_and_merges() {
    let _serial = testkit::serial();
    let origin = TestOrigin::start(&[], 3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let pods = 3u32;
    let start_at = std::time::SystemTime::now() + std::time::Duration::from_secs(4);
    let start_text = humantime::format_rfc3339_seconds(start_at).to_string();
    let url = origin.url();
    let (code, out) = kubernetes(
        "swarm-client",
        &[
            "--image",
            "r.io/s:1",
            "--set",
            "clients=10",
            "--set",
            "rampRate=5",
            "--pods",
            &pods.to_string(),
            "--duration",
            "10s",
            "--seed",
            "7",
            "--start-at",
            &start_text,
            "--url",
            &url,
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}");
    let job = yaml(&dir.join("job.yaml"));
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], pods);
    assert_eq!(job["spec"]["parallelism"], pods);
    let running: Vec<_> = (0..pods)
        .map(|i| {
            pod(&job, i, testkit::free_port())
                .spawn()
                .expect("the pod's command runs")
        })
        .collect();
    let logs: Vec<String> = running
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = testkit::printed(&out);
            assert!(out.status.success(), "a pod failed:\n{text}");
            text
        })
        .collect();
    // as `kubectl logs -l job-name=… --tail=-1` gives them: one pod after another
    let all = logs.concat();
    let shards = swarm_client::merge::from_logs(&all).expect("every pod printed its results");
    assert_eq!(shards.len(), pods as usize);
    // --start-at is written to the second; the pods were started 4 s early
    let start_unix = start_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for s in &shards {
        let first = s.series.first().expect("a series").t;
        assert!(
            first >= start_unix,
            "a pod started before --start-at: {first} < {start_unix}"
        );
    }

    let merged_path = tmp.path().join("merged.json");
    let report = tmp.path().join("report.html");
    let (code, out) = merge(
        &all,
        &[
            "-o",
            merged_path.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--slo",
            "segmentTtfbP99=10s",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(report.is_file());
    let merged = support::results(&merged_path);
    // the union is exactly the whole run: viewers 0..10, each once
    let ids: Vec<u32> = merged.viewers.iter().map(|v| v.id).collect();
    assert_eq!(ids, (0..10).collect::<Vec<u32>>());
    let shard_ids: Vec<Vec<u32>> = shards
        .iter()
        .map(|s| s.viewers.iter().map(|v| v.id).collect())
        .collect();
    assert_eq!(shard_ids, [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8, 9]]);
    // totals are the sums of the shards'
    let sum = |f: fn(&swarm_client::results::Totals) -> u64| -> u64 {
        shards.iter().map(|s| f(&s.totals)).sum()
    };
    let t = &merged.totals;
    assert_eq!(t.counts.segments, sum(|t| t.counts.segments), "segments");
    assert_eq!(t.counts.playlists, sum(|t| t.counts.playlists), "playlists");
    assert_eq!(t.counts.bytes, sum(|t| t.counts.bytes), "bytes");
    assert_eq!(
        u64::from(t.viewers_started),
        sum(|t| u64::from(t.viewers_started)),
        "viewersStarted"
    );
    assert_eq!(t.viewers, 10);
    // 10 viewers for 10 s, each from the 3 segments of the live edge: at
    // least the 3 each loads when it starts
    assert!(t.counts.segments >= 30, "{t:?}");
    // the verdict is computed on the merged histograms
    let verdict = &merged.slo[0];
    assert_eq!(verdict.figure, "segmentTtfbP99");
    let native = merged.totals.native.as_ref().expect("native totals");
    assert_eq!(
        verdict.measured,
        Some(native.requests["segment"].ttfb_ms.p99)
    );
    assert!(verdict.pass, "{verdict:?}");

    // a shard missing, or reported twice, is an error naming it
    let (code, out) = merge(&format!("{}{}", logs[0], logs[2]), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard 1 of 3 missing"), "{out}");
    let (code, out) = merge(
        &format!("{}{}{}{}", logs[0], logs[1], logs[2], logs[0]),
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard 0 reported more than once"), "{out}");
    drop(origin);
}
