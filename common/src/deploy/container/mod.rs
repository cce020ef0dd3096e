//! The container target: an OCI image built without a daemon.
//!
//! Byte-identical output for identical input: layer tars list their entries
//! sorted, with numeric owners, fixed modes and one mtime (`SOURCE_DATE_EPOCH`,
//! else 0); gzip without a timestamp or name; JSON with sorted keys. Layer blobs
//! are cached by a hash of their inputs, so a rebuild compresses nothing that
//! has not changed.
//!
//! Its parts: `layers` (what goes in: programs with their libraries,
//! accounts), `oci` (the OCI documents: canonical JSON, digests,
//! descriptors), `build` (writing the layers and the image layout, cached)
//! and `registry` (pushing to a registry).

mod build;
mod layers;
mod oci;
mod registry;

pub use build::{build, default_cache_dir, Compression};
pub use layers::{account_entries, program_layers, program_layers_with_own, Program};
pub use oci::{canonical_json, source_date_epoch};
pub use registry::{check_push_reference, parse_reference, push_layout, PushOptions, Pushed};

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

/// What an image entry holds.
#[derive(Clone, Debug)]
pub enum Content {
    /// A regular file copied from the host.
    HostFile(PathBuf),
    /// A regular file with these bytes.
    Bytes(Vec<u8>),
    Dir,
    Symlink(String),
}

/// One path in a layer.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Absolute path in the image (`/usr/bin/ffmpeg`).
    pub path: String,
    pub content: Content,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    pub fn host_file(path: impl Into<String>, host: impl Into<PathBuf>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            content: Content::HostFile(host.into()),
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn bytes(path: impl Into<String>, bytes: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            content: Content::Bytes(bytes.into()),
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn dir(path: impl Into<String>, mode: u32, uid: u32, gid: u32) -> Self {
        Entry {
            path: path.into(),
            content: Content::Dir,
            mode,
            uid,
            gid,
        }
    }
}

/// A layer: a named set of entries.
#[derive(Clone, Debug)]
pub struct Layer {
    /// What it holds (`libraries of ffmpeg`, `ffmpeg`, `config`); recorded in the
    /// image history.
    pub name: String,
    pub entries: Vec<Entry>,
}

/// Everything about an image.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Repository name (`hls-swarm-NAME`).
    pub name: String,
    /// Tag (the profile).
    pub tag: String,
    pub layers: Vec<Layer>,
    pub user: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub working_dir: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A tar of the OCI image layout (`skopeo … oci-archive:FILE`, `podman load`).
    OciArchive,
    /// The OCI image layout as a directory; into a layout already there,
    /// the image is added under its tag and shares the blobs it has in
    /// common with the others.
    OciDir,
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Built {
    pub manifest_digest: String,
    pub config_digest: String,
    /// (layer name, compressed digest, size)
    pub layers: Vec<(String, String, u64)>,
    /// How many layers were compressed (the rest came from the cache).
    pub compressed: usize,
    /// What a push did.
    pub pushed: Option<Pushed>,
}

/// The merged config of a profile with its derived values, as the JSON file
/// images carry in /etc/hls-swarm/.
pub fn config_document(
    profile: &str,
    config: &impl serde::Serialize,
    derived: &impl serde::Serialize,
) -> Result<String> {
    let mut v = serde_json::to_value(config)?;
    v["derived"] = serde_json::to_value(derived)?;
    v["profile"] = Value::from(profile);
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// The standard OCI labels of an image (title, description, version) plus `extra`.
pub fn labels(
    title: &str,
    description: String,
    extra: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "org.opencontainers.image.title".to_owned(),
        title.to_owned(),
    );
    m.insert(
        "org.opencontainers.image.description".to_owned(),
        description,
    );
    m.insert(
        "org.opencontainers.image.version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    for (k, v) in extra {
        m.insert((*k).to_owned(), v.clone());
    }
    m
}

/// The text parts of an image, for review: its settings and the layers'
/// entries (as `image` and `image<path>` for the files it writes itself;
/// layers of host files are named only, as they differ between hosts).
pub fn describe(spec: &ImageSpec) -> Vec<(String, String)> {
    let mut head = String::new();
    let mut files = Vec::new();
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    head.push_str(&format!("name: {}:{}\n", spec.name, spec.tag));
    head.push_str(&format!("user: {}\n", spec.user));
    head.push_str(&format!("entrypoint: {}\n", list(&spec.entrypoint)));
    head.push_str(&format!("cmd: {}\n", list(&spec.cmd)));
    head.push_str(&format!("working dir: {}\n", spec.working_dir));
    head.push_str(&format!("exposed ports: {}\n", list(&spec.exposed_ports)));
    head.push_str(&format!("volumes: {}\n", list(&spec.volumes)));
    head.push_str("env:\n");
    for e in &spec.env {
        head.push_str(&format!("  {e}\n"));
    }
    head.push_str("labels:\n");
    for (k, v) in &spec.labels {
        head.push_str(&format!("  {k} = {v}\n"));
    }
    for layer in &spec.layers {
        if layer
            .entries
            .iter()
            .any(|e| matches!(e.content, Content::HostFile(_)))
        {
            head.push_str(&format!("layer {}: files from the host\n", layer.name));
            continue;
        }
        head.push_str(&format!("layer {}:\n", layer.name));
        for e in &layer.entries {
            let what = match &e.content {
                Content::Dir => "dir".to_owned(),
                Content::Bytes(b) => {
                    files.push((
                        format!("image{}", e.path),
                        String::from_utf8_lossy(b).into_owned(),
                    ));
                    format!("file, {} bytes", b.len())
                }
                Content::Symlink(t) => format!("symlink to {t}"),
                Content::HostFile(_) => unreachable!("layers of host files are skipped"),
            };
            head.push_str(&format!(
                "  {} {:o} {}:{} {what}\n",
                e.path, e.mode, e.uid, e.gid
            ));
        }
    }
    let mut out = vec![("image".to_owned(), head)];
    out.extend(files);
    out
}
