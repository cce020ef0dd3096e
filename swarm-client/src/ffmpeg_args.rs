//! One simulated viewer: the FFmpeg arguments (SPEC §4 "One simulated viewer").
//! Every target — the swarm engine, `viewer-args`, the runner script, the
//! container and units — takes its arguments from [`viewer_args`].

use crate::config::{Config, LogLevel};

/// The file descriptor a viewer writes `-progress` to in the swarm engine.
pub const PROGRESS_FD: u32 = 3;

/// Which streams a viewer reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamMap {
    /// `-map 0`: every stream of every variant.
    All,
    /// `-map 0:v:0? -map 0:a:0?`: the first video and audio stream.
    First,
    /// `-map 0:p:ID`: one program (variant) of the master playlist.
    Program(u32),
}

impl StreamMap {
    fn args(&self) -> Vec<String> {
        match self {
            StreamMap::All => vec!["-map".into(), "0".into()],
            StreamMap::First => vec![
                "-map".into(),
                "0:v:0?".into(),
                "-map".into(),
                "0:a:0?".into(),
            ],
            StreamMap::Program(id) => vec!["-map".into(), format!("0:p:{id}")],
        }
    }
}

/// What the FFmpeg in use can do (found once, at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The HLS demuxer has `-seg_max_retry` (FFmpeg 6.1 and later).
    pub seg_max_retry: bool,
}

impl Capabilities {
    /// Everything: what the arguments look like on a current FFmpeg.
    pub const FULL: Capabilities = Capabilities {
        seg_max_retry: true,
    };
}

/// Per-run choices beyond the config.
#[derive(Clone, Debug)]
pub struct ViewerOptions {
    pub map: StreamMap,
    /// The file descriptor FFmpeg writes `-progress` to (3 in the engine);
    /// `None` for no progress output.
    pub progress_fd: Option<u32>,
    /// Connect to this address instead of the URL's host, keeping `Host:`.
    pub resolve: Option<std::net::IpAddr>,
    /// Extra headers from the command line (after the config's).
    pub headers: Vec<(String, String)>,
    pub caps: Capabilities,
}

impl Default for ViewerOptions {
    fn default() -> Self {
        Self {
            map: StreamMap::All,
            progress_fd: None,
            resolve: None,
            headers: Vec::new(),
            caps: Capabilities::FULL,
        }
    }
}

/// How much a log level shows: higher shows more.
pub fn verbosity(l: LogLevel) -> u8 {
    match l {
        LogLevel::Quiet => 0,
        LogLevel::Panic => 1,
        LogLevel::Fatal => 2,
        LogLevel::Error => 3,
        LogLevel::Warning => 4,
        LogLevel::Info => 5,
        LogLevel::Verbose => 6,
        LogLevel::Debug => 7,
        LogLevel::Trace => 8,
    }
}

/// The `-loglevel` a viewer runs with: at least `info`, because segments and
/// playlists are counted from the `Opening '…' for reading` lines that level
/// shows, with each line tagged by its level (`level+`) so the engine can
/// keep only what the configured `logLevel` asked for.
pub fn ffmpeg_log_level(c: &Config) -> String {
    let level = if verbosity(c.log_level) < verbosity(LogLevel::Info) {
        LogLevel::Info
    } else {
        c.log_level
    };
    format!("level+{}", level.as_str())
}

/// The user agent of viewer `id`: `<userAgent>/client-<id>`, so the origin's
/// log tells viewers apart.
pub fn user_agent(c: &Config, id: u32) -> String {
    format!("{}/client-{id}", c.user_agent.0)
}

/// Splits `http://host:port/path` into (scheme, authority, rest).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, authority, path))
}

/// The URL to open and the `Host` header to send when connecting to `ip`.
pub fn resolve_url(url: &str, ip: std::net::IpAddr) -> Option<(String, String)> {
    let (scheme, authority, path) = split_url(url)?;
    let port = if authority.starts_with('[') {
        authority.rsplit_once("]:").map(|(_, p)| p)
    } else {
        authority.rsplit_once(':').map(|(_, p)| p)
    }
    .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let ip = match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let target = match port {
        Some(p) => format!("{scheme}://{ip}:{p}{path}"),
        None => format!("{scheme}://{ip}{path}"),
    };
    Some((target, authority.to_owned()))
}

/// The arguments after `ffmpeg` for viewer `id` reading `url`.
pub fn viewer_args(c: &Config, url: &str, id: u32, o: &ViewerOptions) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&[
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        &ffmpeg_log_level(c),
    ]);
    if let Some(fd) = o.progress_fd {
        push(&["-progress", &format!("pipe:{fd}"), "-stats_period", "1"]);
    }
    if c.reconnect {
        push(&[
            "-reconnect",
            "1",
            "-reconnect_streamed",
            "1",
            "-reconnect_on_network_error",
            "1",
        ]);
        push(&["-reconnect_delay_max", &c.reconnect_delay_max.to_string()]);
    }
    push(&[
        "-rw_timeout",
        &(u64::from(c.timeout) * 1_000_000).to_string(),
    ]);
    push(&["-user_agent", &user_agent(c, id)]);

    let mut headers: Vec<(String, String)> = Vec::new();
    let mut open_url = url.to_owned();
    if let Some(ip) = o.resolve {
        if let Some((target, host)) = resolve_url(url, ip) {
            open_url = target;
            headers.push(("Host".into(), host));
        }
    }
    if c.no_cache {
        headers.push(("Cache-Control".into(), "no-cache".into()));
        headers.push(("Pragma".into(), "no-cache".into()));
    }
    headers.extend(c.headers.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    headers.extend(o.headers.iter().cloned());
    if !headers.is_empty() {
        let block: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        push(&["-headers", &block]);
    }
    if o.caps.seg_max_retry {
        push(&["-seg_max_retry", &c.seg_max_retry.to_string()]);
    }
    push(&["-i", &open_url]);
    a.extend(o.map.args());
    a.extend(["-c", "copy", "-f", "null", "-"].map(String::from));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_keeps_the_host_header() {
        let ip: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            resolve_url("http://cdn.example:8080/live/stream.m3u8", ip),
            Some((
                "http://10.0.0.5:8080/live/stream.m3u8".into(),
                "cdn.example:8080".into()
            ))
        );
        assert_eq!(
            resolve_url("https://cdn.example/a.m3u8", ip),
            Some(("https://10.0.0.5/a.m3u8".into(), "cdn.example".into()))
        );
        assert_eq!(resolve_url("nonsense", ip), None);
    }
}
