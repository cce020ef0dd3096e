//! What the swarm client puts into each deployment target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::render::shell::quote;
use common::target::container::{
    account_entries, config_document, labels, program_layers, Entry, ImageSpec, Layer, Program,
};

use crate::config::Config;
use crate::derive::Derived;

/// Image name of the swarm client.
pub const IMAGE_NAME: &str = "hls-swarm-swarm-client";

/// The non-root user of the image.
pub const IMAGE_USER: (&str, u32) = ("swarm", 1000);

/// Programs of the image (name, Debian package); `swarm-client` is this binary.
pub const IMAGE_PROGRAMS: &[(&str, &str)] = &[
    ("swarm-client", "hls-swarm"),
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("ss", "iproute2"),
    ("bash", "bash"),
    ("env", "coreutils"),
];

/// The container's entrypoint: `STREAM_URL` and the settings from the
/// environment, or the arguments as given.
pub fn entrypoint_script(profile: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
# hls-swarm swarm-client container entrypoint (generated; do not edit)
# Runs `swarm-client run "$STREAM_URL"` with the settings below from the
# environment; any arguments are passed on (arguments that do not start with
# `-` replace the whole command, e.g. `profiles` or `run URL …`).
set -euo pipefail
if [[ $# -gt 0 && $1 != -* ]]; then
  exec /usr/local/bin/swarm-client "$@"
fi
if [[ -z ${{STREAM_URL:-}} ]]; then
  echo "swarm-client: set STREAM_URL (e.g. -e STREAM_URL=http://origin:17080/stream.m3u8) or pass arguments" >&2
  exit 2
fi
exec /usr/local/bin/swarm-client run "$STREAM_URL" --profile {profile} \
  --set "clients=$CLIENTS" --set "rampRate=$RAMP_RATE" --set "rampJitter=$RAMP_JITTER" \
  --set "metricsPort=$METRICS_PORT" --set "logLevel=\"$LOG_LEVEL\"" --set "variant=\"$VARIANT\"" \
  --set "timeout=$TIMEOUT" --metrics-addr "0.0.0.0:$METRICS_PORT" "$@"
"#,
        profile = quote(profile)
    )
}

/// The OCI image of the swarm client.
pub fn container_image(
    profile: &str,
    c: &Config,
    d: &Derived,
    binaries: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<ImageSpec> {
    let bin = |n: &str| -> anyhow::Result<PathBuf> {
        binaries
            .get(n)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no path for `{n}`"))
    };
    // our own binary goes to /usr/local/bin whatever its host path
    let own = bin("swarm-client")?;
    let programs = vec![
        Program {
            name: "ffmpeg".into(),
            executables: vec![bin("ffmpeg")?],
            data: vec![],
        },
        Program {
            name: "ffprobe".into(),
            executables: vec![bin("ffprobe")?],
            data: vec![],
        },
        Program {
            name: "ss and bash".into(),
            executables: vec![bin("ss")?, bin("bash")?, bin("env")?],
            data: vec![],
        },
        Program {
            name: "swarm-client libraries".into(),
            executables: vec![own.clone()],
            data: vec![],
        },
    ];
    let mut layers = program_layers(&programs)?;
    // the last program layer holds our binary at its host path: move it
    if let Some(l) = layers.last_mut() {
        l.name = "swarm-client".into();
        l.entries = vec![Entry::host_file(
            "/usr/local/bin/swarm-client",
            std::fs::canonicalize(&own)?,
            0o755,
        )];
    }
    let (user, uid) = IMAGE_USER;
    layers.push(Layer {
        name: "accounts and directories".into(),
        entries: account_entries(user, uid, "/tmp"),
    });
    layers.push(Layer {
        name: "generated configs".into(),
        entries: vec![
            Entry::bytes(
                "/usr/local/bin/swarm-entrypoint",
                entrypoint_script(profile),
                0o755,
            ),
            Entry::bytes(
                "/etc/hls-swarm/swarm-client.json",
                config_document(profile, c, d)?,
                0o644,
            ),
        ],
    });
    let image_labels = labels(
        IMAGE_NAME,
        format!("hls-swarm swarm client (simulated HLS viewers), profile {profile}"),
        &[
            ("swarm.profile", profile.to_owned()),
            ("swarm.clients.default", c.clients.to_string()),
        ],
    );
    Ok(ImageSpec {
        name: IMAGE_NAME.into(),
        tag: profile.into(),
        layers,
        user: user.into(),
        entrypoint: vec!["/usr/local/bin/swarm-entrypoint".into()],
        cmd: vec![],
        env: vec![
            "PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin".into(),
            format!("CLIENTS={}", c.clients),
            format!("RAMP_RATE={}", c.ramp_rate),
            format!("RAMP_JITTER={}", c.ramp_jitter),
            format!("METRICS_PORT={}", c.metrics_port),
            format!("LOG_LEVEL={}", c.log_level.as_str()),
            format!("VARIANT={}", c.variant.as_str()),
            format!("TIMEOUT={}", c.timeout),
        ],
        exposed_ports: vec![format!("{}/tcp", c.metrics_port)],
        volumes: vec![],
        labels: image_labels,
        working_dir: "/tmp".into(),
    })
}
