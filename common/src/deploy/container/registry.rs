//! Pushing an image layout to a registry (the OCI distribution API): HTTPS
//! trusting the system's CAs and the registry's own under `certs.d`, or
//! plain HTTP to a registry on this machine that does not speak TLS; basic
//! or bearer-token authentication with the credentials `podman login`
//! writes (the containers auth file), a bearer token fetched again when the
//! registry stops taking it during the push; blobs the registry already has
//! are not sent again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::error::UsageError;

/// `HOST[:PORT]/NAME[:TAG]` split into (registry, repository, tag).
pub fn parse_reference(r: &str) -> Result<(String, String, String)> {
    let bad = || {
        UsageError(format!("--push `{r}`: expected HOST[:PORT]/NAME[:TAG], e.g. registry.example.com/team/origin:v1"))
    };
    let (registry, rest) = r.split_once('/').ok_or_else(bad)?;
    let (name, tag) = match rest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (rest, "latest"),
    };
    let ok = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    // a registry is a host name (with a dot or a port) or localhost, as
    // podman reads references
    let host_like = registry.contains(['.', ':']) || registry == "localhost";
    if !host_like || !ok(registry, ".-:[]") || !ok(name, "._-/") || !ok(tag, "._-") {
        return Err(bad().into());
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) || tag.len() > 128 {
        return Err(bad().into());
    }
    Ok((registry.to_owned(), name.to_owned(), tag.to_owned()))
}

/// Checks a push reference before anything is built: (registry, name, tag).
pub fn check_push_reference(reference: &str) -> Result<(String, String, String)> {
    parse_reference(reference)
}

/// Where TLS and credentials for a push come from.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// CA certificates (`*.crt`) of the registry, instead of those in
    /// `/etc/containers/certs.d/REGISTRY/` and `~/.config/containers/certs.d/REGISTRY/`.
    pub cert_dir: Option<PathBuf>,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub manifest_digest: String,
    /// Blobs sent, and their bytes.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Blobs the registry had already.
    pub reused: usize,
}

/// The auth file `podman login` writes: `REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json`, else
/// `~/.config/containers/auth.json`, else Docker's `~/.docker/config.json`
/// — the first that exists.
fn auth_file() -> Option<PathBuf> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(f));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    [
        std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json")),
        home.as_ref()
            .map(|h| h.join(".config/containers/auth.json")),
        home.as_ref().map(|h| h.join(".docker/config.json")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// The user and password for `registry` in the auth file, and the file.
fn credentials(registry: &str) -> Result<Option<(String, String, PathBuf)>> {
    use base64::Engine;
    let Some(file) = auth_file() else {
        return Ok(None);
    };
    let text = match std::fs::read(&file) {
        Ok(t) => t,
        // REGISTRY_AUTH_FILE names a file not there yet: no credentials
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    if text.len() > 1 << 20 {
        bail!("{} is over 1 MiB: not an auth file", file.display());
    }
    let v: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let auths = &v["auths"];
    let entry = [
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
    .iter()
    .find_map(|k| auths.get(k))
    .cloned();
    let Some(auth) = entry.as_ref().and_then(|e| e["auth"].as_str()) else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| {
            format!(
                "{}: the credentials of {registry} are not base64 of USER:PASSWORD; log in again with `podman login {registry}`",
                file.display()
            )
        })?;
    let (user, password) = decoded.split_once(':').with_context(|| {
        format!(
            "{}: the credentials of {registry} are not USER:PASSWORD",
            file.display()
        )
    })?;
    Ok(Some((user.to_owned(), password.to_owned(), file)))
}

/// The CA certificates to trust for `registry`: the system's, and those of
/// its certs.d directory (or `cert_dir`).
fn roots(registry: &str, cert_dir: Option<&Path>) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut out: Vec<ureq::tls::Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => {
            let mut d = vec![Path::new("/etc/containers/certs.d").join(registry)];
            if let Some(h) = std::env::var_os("HOME") {
                d.push(
                    PathBuf::from(h)
                        .join(".config/containers/certs.d")
                        .join(registry),
                );
            }
            d
        }
    };
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            if cert_dir.is_some() {
                bail!("--cert-dir {}: cannot read it", dir.display());
            }
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for f in files {
            let pem = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

/// How a TLS connection failed.
enum Tls {
    /// The server does not speak TLS.
    NotTls,
    /// Its certificate was not trusted.
    Certificate,
}

/// Whether `e` is a TLS failure, and which.
fn tls_failure(e: &ureq::Error) -> Option<Tls> {
    let inner: &(dyn std::error::Error + 'static) = match e {
        ureq::Error::Io(io) => io.get_ref()?,
        ureq::Error::Rustls(r) => r,
        _ => return None,
    };
    match inner.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => Some(Tls::NotTls),
        rustls::Error::InvalidCertificate(_) => Some(Tls::Certificate),
        _ => None,
    }
}

/// An `Authorization` challenge: its scheme and parameters.
fn challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while let Some((k, v)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (value, after) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        params.push((k, value.to_owned()));
        rest = after.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// A registry session: the agent, the base URL and the header each request
/// carries.
struct Session {
    agent: ureq::Agent,
    base: String,
    registry: String,
    /// The repository pushed to (a token's scope).
    name: String,
    auth: Option<String>,
}

type Response = ureq::http::Response<ureq::Body>;

/// The `WWW-Authenticate` challenge of a response ("" when none).
fn challenge_of(resp: &Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A response body read to a bound.
fn body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    resp.body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default()
}

impl Session {
    fn open(registry: &str, name: &str, opts: &PushOptions) -> Result<Session> {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots(
                registry,
                opts.cert_dir.as_deref(),
            )?)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(Duration::from_secs(10)))
            .timeout_connect(Some(Duration::from_secs(10)))
            // a request's whole time is bounded too; an upload's by its size
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build()
            .into();
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        // HTTPS; plain HTTP only to a registry on this machine that does
        // not speak TLS
        let mut base = format!("https://{registry}");
        let first = match agent.get(format!("{base}/v2/")).call() {
            Ok(r) => r,
            Err(e) => match tls_failure(&e) {
                Some(Tls::NotTls) if local => {
                    base = format!("http://{registry}");
                    agent
                        .get(format!("{base}/v2/"))
                        .call()
                        .with_context(|| format!("cannot reach {registry} over HTTPS or HTTP"))?
                }
                Some(Tls::Certificate) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "{registry}: its certificate is not trusted; if it is of a CA of your own, put the CA in /etc/containers/certs.d/{registry}/ca.crt (or ~/.config/containers/certs.d/{registry}/) or pass --cert-dir DIR"
                    )))
                }
                _ => return Err(e).with_context(|| format!("cannot reach {registry}")),
            },
        };
        let mut s = Session {
            agent,
            base,
            registry: registry.to_owned(),
            name: name.to_owned(),
            auth: None,
        };
        if first.status() == 401 {
            s.auth = Some(s.login(&challenge_of(&first))?);
            // the credentials are judged here, before any upload
            let mut check = s.call(s.agent.get(format!("{}/v2/", s.base)))?;
            if check.status() == 401 {
                let _ = body(&mut check);
                bail!("{}", s.refused());
            }
        }
        Ok(s)
    }

    /// What to say when the registry refuses the credentials.
    fn refused(&self) -> String {
        match credentials(&self.registry) {
            Ok(Some((user, _, file))) => format!(
                "{r} refused the credentials of user `{user}` (from {f}): log in again with `podman login {r}`",
                r = self.registry,
                f = file.display()
            ),
            _ => format!(
                "{r} asks for credentials and there are none: log in with `podman login {r}` (or set REGISTRY_AUTH_FILE to an auth file)",
                r = self.registry
            ),
        }
    }

    /// The `Authorization` header for a challenge: basic, or a bearer
    /// token from the challenge's realm for pushing to `name`.
    fn login(&self, header: &str) -> Result<String> {
        use base64::Engine;
        let name = &self.name;
        let creds = credentials(&self.registry)?;
        let basic = creds.as_ref().map(|(u, p, _)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let (scheme, params) = challenge(header);
        match scheme.as_str() {
            "basic" => basic.with_context(|| self.refused()),
            "bearer" => {
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let realm = get("realm").context("a bearer challenge without a realm")?;
                if !realm.starts_with("https://") && !realm.starts_with("http://") {
                    bail!(
                        "{}: a token realm that is not a URL: {realm}",
                        self.registry
                    );
                }
                let mut req = self
                    .agent
                    .get(&realm)
                    .query("scope", format!("repository:{name}:pull,push"));
                if let Some(service) = get("service") {
                    req = req.query("service", service);
                }
                if let Some(b) = &basic {
                    req = req.header("Authorization", b);
                }
                let mut resp = req
                    .call()
                    .with_context(|| format!("cannot reach the token service {realm}"))?;
                if resp.status() == 401 || resp.status() == 403 {
                    bail!("{}", self.refused());
                }
                if resp.status() != 200 {
                    bail!("the token service {realm} answered HTTP {}", resp.status());
                }
                let v: Value = serde_json::from_str(&body(&mut resp))
                    .with_context(|| format!("the token service {realm} sent no JSON"))?;
                let token = v["token"]
                    .as_str()
                    .or_else(|| v["access_token"].as_str())
                    .context("the token service sent no token")?;
                Ok(format!("Bearer {token}"))
            }
            _ => bail!(
                "{} asks for an authentication this push does not speak: {scheme}",
                self.registry
            ),
        }
    }

    /// `req` with the session's `Authorization`, if any.
    fn authed<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }

    fn call(&self, req: ureq::RequestBuilder<ureq::typestate::WithoutBody>) -> Result<Response> {
        self.authed(req)
            .call()
            .with_context(|| format!("cannot reach {}", self.registry))
    }

    /// The response to the request `send` makes (with the session's
    /// `Authorization`, as it chooses); a 401 with a bearer challenge once
    /// the session holds a token — a token that expired during a long push,
    /// or one the registry no longer takes — fetches a new token and sends
    /// the request once more.
    fn renewing(&mut self, send: impl Fn(&Session) -> Result<Response>) -> Result<Response> {
        let mut resp = send(self)?;
        let header = challenge_of(&resp);
        let bearer = self.auth.as_ref().is_some_and(|a| a.starts_with("Bearer "));
        if resp.status() != 401 || !bearer || challenge(&header).0 != "bearer" {
            return Ok(resp);
        }
        let _ = body(&mut resp);
        self.auth = Some(self.login(&header)?);
        send(self)
    }

    /// Where an upload goes: `location` resolved against the request it
    /// answered, and whether the session's `Authorization` may go with it
    /// (only to the registry itself; never from HTTPS down to HTTP).
    fn upload_url(&self, request: &str, location: &str) -> Result<(String, bool)> {
        let base = url::Url::parse(&self.base).context("the registry's URL")?;
        let to = url::Url::parse(request)
            .and_then(|r| r.join(location))
            .with_context(|| format!("{}: a bad upload location {location:?}", self.registry))?;
        if base.scheme() == "https" && to.scheme() != "https" {
            bail!(
                "{}: the upload location leaves HTTPS ({}); nothing is sent there",
                self.registry,
                to.scheme()
            );
        }
        let same = to.scheme() == base.scheme()
            && to.host_str() == base.host_str()
            && to.port_or_known_default() == base.port_or_known_default();
        Ok((to.to_string(), same))
    }
}

/// Pushes the image of manifest `mdigest` (`sha256:…`) in the OCI image
/// layout `layout` to a registry.
pub fn push_layout(
    layout: &Path,
    mdigest: &str,
    reference: &str,
    opts: &PushOptions,
) -> Result<Pushed> {
    let (registry, name, tag) = check_push_reference(reference)?;
    let mdigest = mdigest.to_owned();
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
    let mut s = Session::open(&registry, &name, opts)?;
    let repo = format!("{}/v2/{name}", s.base);
    let mut pushed = Pushed {
        manifest_digest: mdigest.clone(),
        uploaded: 0,
        uploaded_bytes: 0,
        reused: 0,
    };
    for d in blobs {
        let mut head = s.renewing(|s| s.call(s.agent.head(format!("{repo}/blobs/{d}"))))?;
        if head.status() == 200 {
            pushed.reused += 1;
            continue;
        }
        let _ = body(&mut head);
        let mut start = s.renewing(|s| {
            s.authed(s.agent.post(format!("{repo}/blobs/uploads/")))
                .send_empty()
                .with_context(|| format!("cannot reach {registry}"))
        })?;
        if start.status() == 401 {
            bail!("{}", s.refused());
        }
        if start.status() != 202 {
            bail!(
                "{registry} refused an upload to {name}: HTTP {} {}",
                start.status(),
                body(&mut start).chars().take(300).collect::<String>()
            );
        }
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("the registry gave no upload location")?
            .to_owned();
        let (url, same) = s.upload_url(&format!("{repo}/blobs/uploads/"), &location)?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let path = blob_path(&d);
        let size = std::fs::metadata(&path)?.len();
        // at least 1 MB/s, and two minutes whatever the size
        let deadline = Duration::from_secs(120 + size / 1_000_000);
        let send = |s: &Session| {
            let file = std::fs::File::open(&path)?;
            let put = s
                .agent
                .put(format!("{url}{sep}digest={d}"))
                .config()
                .timeout_global(Some(deadline))
                .build()
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", size.to_string());
            let put = if same { s.authed(put) } else { put };
            put.send(ureq::SendBody::from_owned_reader(file))
                .with_context(|| format!("cannot upload blob {d} to {registry}"))
        };
        // a token is fetched again only for the registry itself: a 401 from
        // another host never sends the credentials to a realm it names
        let mut put = if same { s.renewing(send)? } else { send(&s)? };
        if put.status() != 201 {
            bail!(
                "{registry} did not take blob {d}: HTTP {} {}",
                put.status(),
                body(&mut put).chars().take(300).collect::<String>()
            );
        }
        pushed.uploaded += 1;
        pushed.uploaded_bytes += size;
    }
    let media = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json");
    let mut put = s.renewing(|s| {
        s.authed(s.agent.put(format!("{repo}/manifests/{tag}")))
            .header("Content-Type", media)
            .send(&manifest_bytes[..])
            .with_context(|| format!("cannot reach {registry}"))
    })?;
    if put.status() != 201 {
        bail!(
            "{registry} did not take the manifest: HTTP {} {}",
            put.status(),
            body(&mut put).chars().take(300).collect::<String>()
        );
    }
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let (s, p) = challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            [
                (
                    "realm".to_owned(),
                    "https://auth.example.com/token".to_owned()
                ),
                ("service".to_owned(), "registry.example.com".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
        let (s, p) = challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "basic");
        assert_eq!(p, [("realm".to_owned(), "Registry Realm".to_owned())]);
    }

    #[test]
    fn credentials_go_only_to_the_registry_and_never_down_to_http() {
        let s = Session {
            agent: ureq::Agent::new_with_defaults(),
            base: "https://reg.example:5000".into(),
            registry: "reg.example:5000".into(),
            name: "a".into(),
            auth: Some("Basic eA==".into()),
        };
        let req = "https://reg.example:5000/v2/a/blobs/uploads/";
        let (u, same) = s.upload_url(req, "/v2/a/blobs/uploads/u1?s=1").unwrap();
        assert_eq!(u, "https://reg.example:5000/v2/a/blobs/uploads/u1?s=1");
        assert!(same);
        // relative to the request, as RFC 3986 resolves it
        let (u, same) = s.upload_url(req, "u2").unwrap();
        assert_eq!(u, "https://reg.example:5000/v2/a/blobs/uploads/u2");
        assert!(same);
        let (_, same) = s.upload_url(req, "https://storage.example/u3").unwrap();
        assert!(!same, "another host gets no credentials");
        let (_, same) = s.upload_url(req, "https://reg.example:6000/u4").unwrap();
        assert!(!same, "another port gets no credentials");
        let e = s.upload_url(req, "http://reg.example:5000/u5").unwrap_err();
        assert!(e.to_string().contains("leaves HTTPS"), "{e}");
    }

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("registry.example.com:5000/a/b:v1").unwrap(),
            (
                "registry.example.com:5000".into(),
                "a/b".into(),
                "v1".into()
            )
        );
        assert_eq!(
            parse_reference("localhost/x").unwrap(),
            ("localhost".into(), "x".into(), "latest".into())
        );
        // no registry host: podman would look it up in its search list
        assert!(parse_reference("library/nginx:1").is_err());
        assert!(parse_reference("reg.example.com/Upper:1").is_err());
        assert!(parse_reference("reg.example.com/a:b c").is_err());
    }
}
