//! Pushing an image layout to a registry (plain HTTP, this machine only).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `HOST:PORT/NAME:TAG` split into (registry, repository, tag).
pub fn parse_reference(r: &str) -> Result<(String, String, String)> {
    let (registry, rest) = r.split_once('/').ok_or_else(|| {
        crate::error::UsageError(format!("--push `{r}`: expected HOST:PORT/NAME:TAG"))
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
            crate::error::UsageError(format!("--push `{r}`: expected HOST:PORT/NAME:TAG")).into(),
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
        return Err(crate::error::UsageError(format!(
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
