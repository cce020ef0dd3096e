//! The container target: an OCI image built without a daemon.
//!
//! Byte-identical output for identical input: layer tars list their entries
//! sorted, with numeric owners, fixed modes and one mtime (`SOURCE_DATE_EPOCH`,
//! else 0); gzip without a timestamp or name; JSON with sorted keys. Layer blobs
//! are cached by a hash of their inputs, so a rebuild compresses nothing that
//! has not changed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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
    /// What it holds (`system libraries`, `ffmpeg`, `config`); recorded in the
    /// image history.
    pub name: String,
    pub entries: Vec<Entry>,
}

/// Everything about an image.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Repository name (`hls-swarm-test-origin`).
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
    /// The OCI image layout as a directory.
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
}

/// JSON with object keys sorted, no spaces: the canonical form of every blob.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("strings serialize"));
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The mtime of every entry: `SOURCE_DATE_EPOCH`, else 0.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A writer that hashes and counts what passes through.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Entries sorted by path, with every missing parent directory added (root, 0755).
fn normalized(entries: &[Entry]) -> Result<Vec<Entry>> {
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    for e in entries {
        if !e.path.starts_with('/')
            || e.path.contains("/../")
            || e.path.ends_with('/') && e.path != "/"
        {
            bail!("bad image path {:?}", e.path);
        }
        if by_path.insert(e.path.clone(), e.clone()).is_some() {
            bail!("{} is in the layer twice", e.path);
        }
    }
    let paths: Vec<String> = by_path.keys().cloned().collect();
    for p in paths {
        let mut parent = Path::new(&p).parent();
        while let Some(d) = parent {
            let ds = d.to_string_lossy().to_string();
            if ds == "/" {
                break;
            }
            by_path
                .entry(ds.clone())
                .or_insert_with(|| Entry::dir(ds, 0o755, 0, 0));
            parent = d.parent();
        }
    }
    Ok(by_path.into_values().collect())
}

/// The key of a layer's inputs: paths, modes, owners, and for host files their
/// identity (path, size, mtime, inode); for bytes, their hash.
fn layer_key(entries: &[Entry], mtime: u64) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    h.update(format!("hls-swarm layer v1 mtime={mtime}\n"));
    for e in entries {
        h.update(format!("{}\0{:o}\0{}\0{}\0", e.path, e.mode, e.uid, e.gid));
        match &e.content {
            Content::HostFile(p) => {
                let m =
                    std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
                h.update(format!(
                    "file\0{}\0{}\0{}\0{}\n",
                    p.display(),
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                    m.ino()
                ));
            }
            Content::Bytes(b) => h.update(format!("bytes\0{}\n", sha256_hex(b))),
            Content::Dir => h.update("dir\n"),
            Content::Symlink(t) => h.update(format!("symlink\0{t}\n")),
        }
    }
    Ok(hex(&h.finalize()))
}

/// Writes the layer tar, gzipped, to `out`; returns (diff_id, digest, size).
fn write_layer(entries: &[Entry], mtime: u64, out: &Path) -> Result<(String, String, u64)> {
    let file = std::fs::File::create(out)?;
    let gz_out = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
        len: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(gz_out, flate2::Compression::default());
    let tar_out = Hashing {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    };
    let mut tar = tar::Builder::new(tar_out);
    tar.mode(tar::HeaderMode::Deterministic);
    for e in entries {
        let rel = e.path.trim_start_matches('/');
        let mut header = tar::Header::new_gnu();
        header.set_mode(e.mode);
        header.set_uid(u64::from(e.uid));
        header.set_gid(u64::from(e.gid));
        header.set_mtime(mtime);
        match &e.content {
            Content::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{rel}/"), std::io::empty())?;
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, rel, target)?;
            }
            Content::Bytes(b) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(b.len() as u64);
                tar.append_data(&mut header, rel, &b[..])?;
            }
            Content::HostFile(p) => {
                let mut f = std::fs::File::open(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let len = f.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(len);
                tar.append_data(&mut header, rel, (&mut f).take(len))?;
            }
        }
    }
    let tar_out = tar.into_inner()?;
    let diff_id = hex(&tar_out.hash.finalize());
    let mut gz_out = tar_out.inner.finish()?;
    gz_out.flush()?;
    let digest = hex(&gz_out.hash.finalize());
    Ok((diff_id, digest, gz_out.len))
}

/// Where layer blobs are kept between builds.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("hls-swarm").join("layers")
}

/// A layer from the cache, or built and put there.
fn cached_layer(
    entries: &[Entry],
    mtime: u64,
    cache: &Path,
) -> Result<(String, String, u64, PathBuf, bool)> {
    let key = layer_key(entries, mtime)?;
    let meta = cache.join(format!("{key}.json"));
    if let Ok(text) = std::fs::read_to_string(&meta) {
        let v: Value = serde_json::from_str(&text)?;
        let digest = v["digest"].as_str().unwrap_or_default().to_owned();
        let blob = cache.join(&digest);
        if blob.is_file() {
            return Ok((
                v["diffId"].as_str().unwrap_or_default().to_owned(),
                digest,
                v["size"].as_u64().unwrap_or(0),
                blob,
                false,
            ));
        }
    }
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the layer cache {}", cache.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(cache)?;
    let (diff_id, digest, size) = write_layer(entries, mtime, tmp.path())?;
    let blob = cache.join(&digest);
    tmp.persist(&blob)?;
    crate::artifact::write_atomic(
        &meta,
        canonical_json(&json!({"diffId": diff_id, "digest": digest, "size": size})).as_bytes(),
    )?;
    Ok((diff_id, digest, size, blob, true))
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": size})
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Builds the image into `out` (written to a temp path next to it, then
/// renamed); with `push`, also pushes it to that reference.
pub fn build(
    spec: &ImageSpec,
    out: &Path,
    format: Format,
    cache: &Path,
    progress: bool,
    push: Option<&str>,
) -> Result<Built> {
    let mtime = source_date_epoch();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let stage = tempfile::Builder::new()
        .prefix(".oci-build-")
        .tempdir_in(&parent)?;
    let layout = stage.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;

    let bar = if progress {
        let b = indicatif::ProgressBar::new(spec.layers.len() as u64 + 1);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut diff_ids = Vec::new();
    let mut layer_descs = Vec::new();
    let mut built = Built {
        manifest_digest: String::new(),
        config_digest: String::new(),
        layers: Vec::new(),
        compressed: 0,
    };
    let mut history = Vec::new();
    for layer in &spec.layers {
        bar.set_message(format!("layer: {}", layer.name));
        let entries = normalized(&layer.entries)?;
        let (diff_id, digest, size, blob, fresh) = cached_layer(&entries, mtime, cache)?;
        if fresh {
            built.compressed += 1;
        }
        let dest = blobs.join(&digest);
        if std::fs::hard_link(&blob, &dest).is_err() {
            std::fs::copy(&blob, &dest)?;
        }
        diff_ids.push(format!("sha256:{diff_id}"));
        layer_descs.push(descriptor(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &digest,
            size,
        ));
        history.push(json!({"created_by": format!("hls-swarm: {}", layer.name)}));
        built
            .layers
            .push((layer.name.clone(), format!("sha256:{digest}"), size));
        bar.inc(1);
    }
    bar.set_message("config and manifest");

    let set = |v: &[String]| -> Value {
        Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
    };
    let mut config = json!({
        "User": spec.user,
        "Env": spec.env,
        "Entrypoint": spec.entrypoint,
        "WorkingDir": spec.working_dir,
        "Labels": spec.labels,
        "ExposedPorts": set(&spec.exposed_ports),
        "Volumes": set(&spec.volumes),
    });
    if !spec.cmd.is_empty() {
        config["Cmd"] = json!(spec.cmd);
    }
    let created = format_rfc3339(mtime);
    let image_config = json!({
        "created": created,
        "architecture": host_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    // the typed OCI structures accept it: a check that the JSON is a valid config
    let _: oci_spec::image::ImageConfiguration = serde_json::from_value(image_config.clone())
        .context("the image config is not valid OCI")?;
    let config_bytes = canonical_json(&image_config).into_bytes();
    let config_digest = sha256_hex(&config_bytes);
    std::fs::write(blobs.join(&config_digest), &config_bytes)?;

    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_owned(),
        spec.name.clone(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config_digest, config_bytes.len() as u64),
        "layers": layer_descs,
        "annotations": annotations,
    });
    let _: oci_spec::image::ImageManifest =
        serde_json::from_value(manifest.clone()).context("the manifest is not valid OCI")?;
    let manifest_bytes = canonical_json(&manifest).into_bytes();
    let manifest_digest = sha256_hex(&manifest_bytes);
    std::fs::write(blobs.join(&manifest_digest), &manifest_bytes)?;

    let mut mdesc = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &manifest_digest,
        manifest_bytes.len() as u64,
    );
    mdesc["annotations"] = json!({
        "org.opencontainers.image.ref.name": spec.tag,
        "io.containerd.image.name": format!("{}:{}", spec.name, spec.tag),
    });
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [mdesc]});
    std::fs::write(layout.join("index.json"), canonical_json(&index))?;
    std::fs::write(
        layout.join("oci-layout"),
        canonical_json(&json!({"imageLayoutVersion": "1.0.0"})),
    )?;

    if let Some(reference) = push {
        bar.set_message(format!("pushing to {reference}"));
        push_layout(&layout, reference)?;
    }
    let staged = match format {
        Format::OciDir => layout,
        Format::OciArchive => {
            let archive = stage.path().join("image.tar");
            tar_dir(&layout, &archive, mtime)?;
            archive
        }
    };
    if out.exists() {
        if out.is_dir() {
            std::fs::remove_dir_all(out)?;
        } else {
            std::fs::remove_file(out)?;
        }
    }
    std::fs::rename(&staged, out).with_context(|| format!("cannot write {}", out.display()))?;
    bar.finish_and_clear();
    built.manifest_digest = format!("sha256:{manifest_digest}");
    built.config_digest = format!("sha256:{config_digest}");
    Ok(built)
}

/// A deterministic tar of a directory (sorted, numeric owners 0, fixed mtime).
fn tar_dir(dir: &Path, out: &Path, mtime: u64) -> Result<()> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut tar = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(out)?));
    for rel in files {
        let p = dir.join(&rel);
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        if p.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, format!("{rel}/"), std::io::empty())?;
        } else {
            let mut f = std::fs::File::open(&p)?;
            let len = f.metadata()?.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(len);
            tar.append_data(&mut header, &rel, (&mut f).take(len))?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let rel = p.strip_prefix(root)?.to_string_lossy().to_string();
        out.push(rel);
        if p.is_dir() {
            collect(root, &p, out)?;
        }
    }
    Ok(())
}

/// `1970-01-01T00:00:00Z` for a Unix time.
fn format_rfc3339(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "x"}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[1,{"y":"x","z":0}]},"b":1}"#
        );
    }

    #[test]
    fn dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn layers_are_deterministic_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let spec = ImageSpec {
            name: "t".into(),
            tag: "x".into(),
            layers: vec![Layer {
                name: "one".into(),
                entries: vec![
                    Entry::host_file("/usr/bin/f", &f, 0o755),
                    Entry::bytes("/etc/a", "a\n", 0o644),
                    Entry::dir("/tmp", 0o1777, 0, 0),
                ],
            }],
            user: "1000".into(),
            entrypoint: vec!["/usr/bin/f".into()],
            cmd: vec![],
            env: vec![],
            exposed_ports: vec![],
            volumes: vec![],
            labels: BTreeMap::new(),
            working_dir: "/".into(),
        };
        let cache = dir.path().join("cache");
        let a = build(
            &spec,
            &dir.path().join("a.tar"),
            Format::OciArchive,
            &cache,
            false,
            None,
        )
        .unwrap();
        assert_eq!(a.compressed, 1);
        let b = build(
            &spec,
            &dir.path().join("b.tar"),
            Format::OciArchive,
            &cache,
            false,
            None,
        )
        .unwrap();
        assert_eq!(b.compressed, 0, "second build comes from the cache");
        assert_eq!(
            std::fs::read(dir.path().join("a.tar")).unwrap(),
            std::fs::read(dir.path().join("b.tar")).unwrap()
        );
        let c = build(
            &spec,
            &dir.path().join("c.tar"),
            Format::OciArchive,
            &dir.path().join("cache2"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            a.manifest_digest, c.manifest_digest,
            "a cold build gives the same bytes"
        );
        // nothing half-written next to the output
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".oci-build-")),
            "{names:?}"
        );
    }
}

/// A program to put in an image, with data files it reads at run time.
#[derive(Clone, Debug)]
pub struct Program {
    /// Layer name (`ffmpeg`).
    pub name: String,
    /// Host executables of this layer; each keeps its host path in the image.
    pub executables: Vec<PathBuf>,
    /// Data files or directories copied as they are (image path = host path).
    pub data: Vec<PathBuf>,
}

fn image_mode(host: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    // no setuid/setgid/sticky bits from the host
    Ok(std::fs::metadata(host)?.permissions().mode() & 0o777)
}

fn add_tree(host: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let meta =
        std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
    let path = host.to_string_lossy().to_string();
    if meta.is_dir() {
        out.push(Entry::dir(path, 0o755, 0, 0));
        let mut kids: Vec<PathBuf> = std::fs::read_dir(host)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        kids.sort();
        for k in kids {
            add_tree(&k, out)?;
        }
    } else {
        out.push(Entry::host_file(
            path,
            std::fs::canonicalize(host)?,
            image_mode(host)?,
        ));
    }
    Ok(())
}

/// Layers for `programs`: first one with every shared library of their
/// closure (and the ELF interpreter), then one per program with its
/// executables and data files — a stable split, so that a program or a
/// library change touches only its own layer.
pub fn program_layers(programs: &[Program]) -> Result<Vec<Layer>> {
    let exes: Vec<PathBuf> = programs
        .iter()
        .flat_map(|p| p.executables.iter().cloned())
        .collect();
    let files = crate::closure::closure(&exes)?;
    let mut libs = Layer {
        name: "system libraries".into(),
        entries: Vec::new(),
    };
    for (image, host) in &files {
        if exes.contains(image) {
            continue;
        }
        libs.entries.push(Entry::host_file(
            image.to_string_lossy(),
            host,
            image_mode(host)?,
        ));
    }
    let mut layers = vec![libs];
    for p in programs {
        let mut entries = Vec::new();
        for exe in &p.executables {
            let host = files.get(exe).cloned().unwrap_or_else(|| exe.clone());
            entries.push(Entry::host_file(exe.to_string_lossy(), host, 0o755));
        }
        for d in &p.data {
            add_tree(d, &mut entries)?;
        }
        layers.push(Layer {
            name: p.name.clone(),
            entries,
        });
    }
    Ok(layers)
}

/// [`program_layers`] plus a component's own binary (`name`, host path): its
/// libraries join the shared library layer, and the binary itself goes, whatever
/// its host path, to /usr/local/bin/NAME in a last layer named NAME.
pub fn program_layers_with_own(programs: &[Program], name: &str, own: &Path) -> Result<Vec<Layer>> {
    let mut all = programs.to_vec();
    all.push(Program {
        name: name.into(),
        executables: vec![own.to_path_buf()],
        data: vec![],
    });
    let mut layers = program_layers(&all)?;
    let last = layers.last_mut().expect("one layer per program");
    last.entries = vec![Entry::host_file(
        format!("/usr/local/bin/{name}"),
        std::fs::canonicalize(own)?,
        0o755,
    )];
    Ok(layers)
}

/// The account files of a non-root image: `root` and one user/group `name`
/// with `uid`; every password locked (`!`).
pub fn account_entries(name: &str, uid: u32, home: &str) -> Vec<Entry> {
    let passwd = format!("root:x:0:0:root:/root:/usr/sbin/nologin\n{name}:x:{uid}:{uid}:{name}:{home}:/usr/sbin/nologin\n");
    let group = format!("root:x:0:\n{name}:x:{uid}:\n");
    let shadow = format!("root:!:1::::::\n{name}:!:1::::::\n");
    let nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";
    vec![
        Entry::bytes("/etc/passwd", passwd, 0o644),
        Entry::bytes("/etc/group", group, 0o644),
        Entry::bytes("/etc/shadow", shadow, 0o600),
        Entry::bytes("/etc/nsswitch.conf", nsswitch, 0o644),
        Entry::dir("/tmp", 0o1777, 0, 0),
    ]
}

/// `HOST:PORT/NAME:TAG` split into (registry, repository, tag).
pub fn parse_reference(r: &str) -> Result<(String, String, String)> {
    let (registry, rest) = r.split_once('/').ok_or_else(|| {
        crate::cli::UsageError(format!("--push `{r}`: expected HOST:PORT/NAME:TAG"))
    })?;
    let (name, tag) = match rest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (rest, "latest"),
    };
    let ok = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if !ok(registry, ".-:[]") || !ok(name, "._-/") || !ok(tag, "._-") {
        return Err(
            crate::cli::UsageError(format!("--push `{r}`: expected HOST:PORT/NAME:TAG")).into(),
        );
    }
    Ok((registry.to_owned(), name.to_owned(), tag.to_owned()))
}

/// Checks a push reference before anything is built: (registry, name, tag).
pub fn check_push_reference(reference: &str) -> Result<(String, String, String)> {
    let (registry, name, tag) = parse_reference(reference)?;
    let host = registry
        .rsplit_once(':')
        .map_or(registry.as_str(), |(h, _)| h);
    if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        return Err(crate::cli::UsageError(format!(
            "--push: only registries on this machine (localhost, 127.0.0.1) are supported, over plain HTTP; push {reference} with `skopeo copy oci-archive:FILE docker://{reference}`"
        ))
        .into());
    }
    Ok((registry, name, tag))
}

/// Pushes an OCI image layout directory to a registry over plain HTTP. Only
/// registries on this machine are accepted: there is no TLS stack here.
pub fn push_layout(layout: &Path, reference: &str) -> Result<String> {
    let (registry, name, tag) = check_push_reference(reference)?;
    let base = format!("http://{registry}/v2/{name}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let index: Value = serde_json::from_str(&std::fs::read_to_string(layout.join("index.json"))?)?;
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json has no manifest")?
        .to_owned();
    let blob_path = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest_bytes = std::fs::read(blob_path(&mdigest))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)?;
    let mut blobs = vec![manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned()];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str().map(String::from)),
    );
    for d in blobs {
        let head = agent
            .head(format!("{base}/blobs/{d}"))
            .call()
            .with_context(|| format!("cannot reach {registry}"))?;
        if head.status() == 200 {
            continue;
        }
        let start = agent.post(format!("{base}/blobs/uploads/")).send_empty()?;
        if start.status() != 202 {
            bail!("{registry} refused an upload: HTTP {}", start.status());
        }
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("no upload location")?
            .to_owned();
        let url = if location.starts_with('/') {
            format!("http://{registry}{location}")
        } else {
            location
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let file = std::fs::File::open(blob_path(&d))?;
        let put = agent
            .put(format!("{url}{sep}digest={d}"))
            .header("Content-Type", "application/octet-stream")
            .send(ureq::SendBody::from_owned_reader(file))?;
        if put.status() != 201 {
            bail!("{registry} did not take blob {d}: HTTP {}", put.status());
        }
    }
    let put = agent
        .put(format!("{base}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest_bytes[..])?;
    if put.status() != 201 {
        bail!(
            "{registry} did not take the manifest: HTTP {}",
            put.status()
        );
    }
    Ok(mdigest)
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
