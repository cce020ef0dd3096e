//! Writing an image: layer tars with sorted entries, numeric owners and one
//! mtime, gzip without timestamps, blobs cached by a hash of their inputs,
//! then the image layout (or its archive).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::oci::*;
use super::*;

/// A writer that hashes and counts what passes through.
pub(super) struct Hashing<W: Write> {
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
pub(super) fn normalized(entries: &[Entry]) -> Result<Vec<Entry>> {
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
pub(super) fn layer_key(entries: &[Entry], mtime: u64) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    h.update(format!("hls-swarm layer v2 mtime={mtime}\n"));
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

/// How layers are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (level 6), which every runtime and registry takes.
    Gzip,
    /// zstd (level 3): smaller and quicker; podman, containerd and most
    /// registries take it, older Docker engines do not.
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Bytes of tar a compressing thread takes at a time. The blocks are fixed
/// by the input, not by the threads: the same bytes on any number of cores.
const GZIP_BLOCK: usize = 1 << 20;

/// A compressor on every core; `finish` gives the file back.
enum Compressor {
    Gzip(
        gzp::par::compress::ParCompress<
            'static,
            gzp::deflate::Mgzip,
            std::io::BufWriter<std::fs::File>,
        >,
    ),
    Zstd(zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>),
}

impl Compressor {
    fn new(codec: Compression, file: std::fs::File) -> Result<Self> {
        let out = std::io::BufWriter::new(file);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(match codec {
            Compression::Gzip => Compressor::Gzip(
                gzp::par::compress::ParCompressBuilder::<gzp::deflate::Mgzip>::new()
                    .num_threads(threads)?
                    .buffer_size(GZIP_BLOCK)?
                    .compression_level(gzp::Compression::new(6))
                    .from_writer(out),
            ),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, 3)?;
                // with one worker or more, the output does not depend on
                // how many (none would give other bytes)
                e.multithread(threads as u32)?;
                e.include_checksum(true)?;
                Compressor::Zstd(e)
            }
        })
    }

    fn finish(self) -> Result<std::io::BufWriter<std::fs::File>> {
        use gzp::ZWriter;
        Ok(match self {
            Compressor::Gzip(mut g) => g.finish()?,
            Compressor::Zstd(z) => z.finish()?,
        })
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// The bytes of tar a layer's entries make, roughly (file sizes and a
/// header each): what progress is counted against.
pub(super) fn layer_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| {
            512 + match &e.content {
                Content::HostFile(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
                Content::Bytes(b) => b.len() as u64,
                _ => 0,
            }
        })
        .sum()
}

/// Writes the layer tar, compressed, to `out`, calling `progress` with the
/// tar bytes written; returns (diff_id, digest, size).
pub(super) fn write_layer(
    entries: &[Entry],
    mtime: u64,
    out: &Path,
    codec: Compression,
    progress: &dyn Fn(u64),
) -> Result<(String, String, u64)> {
    struct Counting<'a, W: Write> {
        inner: Hashing<W>,
        progress: &'a dyn Fn(u64),
    }
    impl<W: Write> Write for Counting<'_, W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            (self.progress)(n as u64);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let tar_out = Counting {
        inner: Hashing {
            inner: Compressor::new(codec, std::fs::File::create(out)?)?,
            hash: Sha256::new(),
            len: 0,
        },
        progress,
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
    let tar_out = tar.into_inner()?.inner;
    let diff_id = hex(&tar_out.hash.finalize());
    tar_out.inner.finish()?.flush()?;
    // the compressed blob's digest, read back (from the page cache)
    let mut h = Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(out)?, &mut h)?;
    Ok((diff_id, hex(&h.finalize()), size))
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
pub(super) fn cached_layer(
    entries: &[Entry],
    mtime: u64,
    cache: &Path,
    codec: Compression,
    progress: &dyn Fn(u64),
) -> Result<(String, String, u64, PathBuf, bool)> {
    let mut key = layer_key(entries, mtime)?;
    if codec != Compression::Gzip {
        key = format!("{key}.{}", codec.name());
    }
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
    let (diff_id, digest, size) = write_layer(entries, mtime, tmp.path(), codec, progress)?;
    let blob = cache.join(&digest);
    tmp.persist(&blob)?;
    crate::artifact::write_atomic(
        &meta,
        canonical_json(&json!({"diffId": diff_id, "digest": digest, "size": size})).as_bytes(),
    )?;
    Ok((diff_id, digest, size, blob, true))
}

/// Builds the image into `out` (written to a temp path next to it, then
/// renamed); with `push`, also pushes it to that reference.
pub fn build(
    spec: &ImageSpec,
    out: &Path,
    format: Format,
    cache: &Path,
    codec: Compression,
    progress: bool,
    push: Option<(&str, &PushOptions)>,
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

    // progress in bytes of tar: a cached layer's go by at once
    let sizes: Vec<u64> = spec
        .layers
        .iter()
        .map(|l| layer_bytes(&l.entries))
        .collect();
    let bar = if progress {
        let b = indicatif::ProgressBar::new(sizes.iter().sum());
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut diff_ids = Vec::new();
    let mut layer_descs = Vec::new();
    let mut built = Built {
        manifest_digest: String::new(),
        config_digest: String::new(),
        layers: Vec::new(),
        compressed: 0,
        pushed: None,
    };
    let mut history = Vec::new();
    for (layer, size) in spec.layers.iter().zip(&sizes) {
        let cores = if threads == 1 { "1 core" } else { "cores" };
        bar.set_message(format!(
            "layer {} ({}, {threads} {cores})",
            layer.name,
            codec.name()
        ));
        let start = bar.position();
        let entries = normalized(&layer.entries)?;
        let (diff_id, digest, size_z, blob, fresh) =
            cached_layer(&entries, mtime, cache, codec, &|n| bar.inc(n))?;
        bar.set_position(start + size);
        if fresh {
            built.compressed += 1;
            if !progress && *size > 16 << 20 {
                eprintln!(
                    "compressed layer {} ({} MB of tar, {}, {threads} {cores})",
                    layer.name,
                    size >> 20,
                    codec.name()
                );
            }
        }
        let dest = blobs.join(&digest);
        if std::fs::hard_link(&blob, &dest).is_err() {
            std::fs::copy(&blob, &dest)?;
        }
        diff_ids.push(format!("sha256:{diff_id}"));
        layer_descs.push(descriptor(codec.media_type(), &digest, size_z));
        history.push(json!({"created_by": format!("hls-swarm: {}", layer.name)}));
        built
            .layers
            .push((layer.name.clone(), format!("sha256:{digest}"), size_z));
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

    let into_layout = format == Format::OciDir && out.join("oci-layout").is_file();
    if into_layout {
        // an image layout already there: this image joins it under its tag
        add_to_layout(&layout, out)?;
    } else {
        let staged = match format {
            Format::OciDir => layout.clone(),
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
    }
    built.manifest_digest = format!("sha256:{manifest_digest}");
    // the image is in place first: a push that fails loses nothing
    if let Some((reference, opts)) = push {
        bar.set_message(format!("pushing to {reference}"));
        let from = if format == Format::OciDir {
            out
        } else {
            layout.as_path()
        };
        built.pushed = Some(push_layout(from, &built.manifest_digest, reference, opts)?);
    }
    bar.finish_and_clear();
    built.config_digest = format!("sha256:{config_digest}");
    Ok(built)
}

/// Adds the one image of layout `new` to the image layout `into`: its blobs
/// (those not there yet, each by a rename), then `index.json` with the image
/// in place of one of the same tag, written whole by a rename; blobs no
/// image refers to any more go last. Images of other tags share the blobs
/// they have in common, as in any image layout.
pub(super) fn add_to_layout(new: &Path, into: &Path) -> Result<()> {
    let read_index = |p: &Path| -> Result<Value> {
        let text = std::fs::read_to_string(p.join("index.json"))
            .with_context(|| format!("cannot read {}/index.json", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}/index.json", p.display()))
    };
    // one writer at a time: another build adding to the same layout waits
    let _lock = nix::fcntl::Flock::lock(
        std::fs::File::open(into)?,
        nix::fcntl::FlockArg::LockExclusive,
    )
    .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", into.display()))?;
    let (ours, mut theirs) = (read_index(new)?, read_index(into)?);
    let blobs = into.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    for e in std::fs::read_dir(new.join("blobs/sha256"))? {
        let e = e?;
        let dest = blobs.join(e.file_name());
        if !dest.exists() {
            std::fs::rename(e.path(), &dest)?;
        }
    }
    let tag_of = |m: &Value| m["annotations"]["org.opencontainers.image.ref.name"].clone();
    let added = ours["manifests"][0].clone();
    let mut manifests: Vec<Value> = theirs["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| tag_of(m) != tag_of(&added))
        .collect();
    manifests.push(added);
    manifests.sort_by_key(|m| tag_of(m).as_str().unwrap_or_default().to_owned());
    theirs["manifests"] = Value::Array(manifests.clone());
    crate::artifact::write_atomic(&into.join("index.json"), canonical_json(&theirs).as_bytes())?;
    // the blobs the layout's images still use; a layout that holds more
    // than image manifests (an index of its own, another tool's) is not
    // cleaned
    if manifests
        .iter()
        .any(|m| m["mediaType"] != "application/vnd.oci.image.manifest.v1+json")
    {
        return Ok(());
    }
    let mut used = std::collections::BTreeSet::new();
    for m in &manifests {
        let Some(d) = m["digest"].as_str() else {
            continue;
        };
        let d = d.trim_start_matches("sha256:").to_owned();
        let manifest: Value = serde_json::from_slice(&std::fs::read(blobs.join(&d))?)?;
        used.insert(d);
        for layer in std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().into_iter().flatten())
        {
            if let Some(d) = layer["digest"].as_str() {
                used.insert(d.trim_start_matches("sha256:").to_owned());
            }
        }
    }
    for e in std::fs::read_dir(&blobs)? {
        let e = e?;
        if !used.contains(e.file_name().to_string_lossy().as_ref()) {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// A deterministic tar of a directory (sorted, numeric owners 0, fixed mtime).
pub(super) fn tar_dir(dir: &Path, out: &Path, mtime: u64) -> Result<()> {
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

pub(super) fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::super::oci::*;
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
            Compression::Gzip,
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
            Compression::Gzip,
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
            Compression::Gzip,
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
