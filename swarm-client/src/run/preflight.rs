//! Checks before a run: is the stream reachable now (a warning when not:
//! the run starts anyway), and is the open-file limit high enough.

use std::time::Duration;

use crate::config::Config;

/// Raises the open-file limit toward `wanted`; warns when it stays below.
pub(super) fn check_fd_limit(wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let target = wanted.min(hard);
    if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() && target >= wanted
    {
        return;
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|l| l.0)
        .unwrap_or(soft);
    crate::log::warning(
        "open-file-limit",
        &format!("the open-file limit is {now}, below the {wanted} this swarm may need; raise it with `ulimit -n {wanted}`"),
    );
}

/// Checks that the URL answers now; a warning if not.
pub(super) fn preflight_reachable(url: &str, c: &Config) -> bool {
    let timeout = Duration::from_secs(u64::from(c.timeout).min(10));
    match common::http_check::http_get(url, timeout) {
        Ok((200, _)) => true,
        Ok((status, _)) => {
            crate::log::warning("preflight", &format!("{url} answered HTTP {status}"));
            false
        }
        Err(e) => {
            crate::log::warning(
                "preflight",
                &format!("{url} is not reachable now ({e}); starting anyway"),
            );
            false
        }
    }
}

/// The same check with the native engine's own HTTP client (so HTTPS, the
/// CA file, `--resolve` and the headers apply), following redirects;
/// bounded as a viewer's playlist request is: the whole check within the
/// timeout (10 s at most), and no more of the body read than a playlist
/// may have.
pub(super) fn native_preflight(url: &url::Url, client: &crate::native::http::ClientConfig) -> bool {
    use crate::native::http::Client;
    let mut cfg = client.clone();
    cfg.timeout = cfg.timeout.min(Duration::from_secs(10));
    let deadline = cfg.timeout;
    let began = std::time::Instant::now();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    let result = rt.block_on(async {
        let mut c = Client::new(std::sync::Arc::new(cfg), "hls-swarm-preflight");
        let mut at = url.clone();
        for _ in 0..=crate::native::http::MAX_REDIRECTS {
            let left = deadline.saturating_sub(began.elapsed());
            let keep = crate::native::playlist::MAX_PLAYLIST_BYTES + 1;
            let r = c.get(&at, keep, left, &mut |_| {}).await?;
            match r.location.as_deref().and_then(|l| at.join(l).ok()) {
                Some(next) if (300..400).contains(&r.status) => at = next,
                _ => return Ok(r.status),
            }
        }
        Err(crate::native::failure::Failure::TooManyRedirects)
    });
    match result {
        Ok(200) => true,
        Ok(status) => {
            crate::log::warning("preflight", &format!("{url} answered HTTP {status}"));
            false
        }
        Err(f) => {
            crate::log::warning(
                "preflight",
                &format!(
                    "{url} is not reachable now ({}); starting anyway",
                    f.message()
                ),
            );
            false
        }
    }
}
