//! Small HTTP checks: is a server up, does a URL answer.

use std::time::Duration;

/// The status and body of a plain HTTP GET, or why it failed.
pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    let mut resp = get(url, timeout)?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// Whether `url` answers 200 within `timeout`.
pub fn is_ok(url: &str, timeout: Duration) -> bool {
    matches!(http_get(url, timeout), Ok((200, _)))
}

/// Whether `https://…` `url` answers 200 within `timeout`, whoever signed
/// its certificate: a server's own readiness, not its identity.
pub fn is_ok_any_certificate(url: &str, timeout: Duration) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into();
    matches!(agent.get(url).call(), Ok(r) if r.status() == 200)
}

/// The status of a GET of `url` (the body, text or not, is read and dropped).
pub fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let mut resp = get(url, timeout)?;
    let status = resp.status().as_u16();
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// A GET of `url` whose answer, whatever its status, arrives within
/// `timeout` (the body is the caller's to read).
fn get(url: &str, timeout: Duration) -> Result<ureq::http::Response<ureq::Body>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    agent.get(url).call().map_err(|e| e.to_string())
}
