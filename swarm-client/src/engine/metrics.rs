//! Prometheus metrics of the swarm (`hls_swarm_*`) and the endpoint serving them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// Every metric the swarm exports.
#[derive(Clone, Default)]
pub struct Metrics {
    pub viewers_target: Gauge,
    pub viewers_active: Gauge,
    pub viewers_stalled: Gauge,
    pub starts: Counter,
    pub restarts: Counter,
    pub bytes: Counter<u64, AtomicU64>,
    pub segments: Counter,
    pub playlists: Counter,
    pub http_errors: Family<StatusLabel, Counter>,
    pub timeouts: Counter,
    pub connect_errors: Counter,
}

impl Metrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("hls_swarm");
        r.register(
            "viewers_target",
            "Viewers the swarm aims to run",
            self.viewers_target.clone(),
        );
        r.register(
            "viewers_active",
            "Viewer processes running now",
            self.viewers_active.clone(),
        );
        r.register(
            "viewers_stalled",
            "Viewers reading slower than 0.9x real time for over 5 s",
            self.viewers_stalled.clone(),
        );
        r.register(
            "viewer_starts",
            "Viewer processes started (first starts and restarts)",
            self.starts.clone(),
        );
        r.register(
            "viewer_restarts",
            "Viewer processes restarted after they exited",
            self.restarts.clone(),
        );
        r.register(
            "bytes",
            "Bytes the viewers received over TCP (kernel socket counters)",
            self.bytes.clone(),
        );
        r.register(
            "segments",
            "Media segment requests seen in the viewers' logs",
            self.segments.clone(),
        );
        r.register(
            "playlists",
            "Playlist loads seen in the viewers' logs",
            self.playlists.clone(),
        );
        r.register(
            "http_errors",
            "HTTP error responses by status",
            self.http_errors.clone(),
        );
        r.register(
            "timeouts",
            "Timed-out reads or connects",
            self.timeouts.clone(),
        );
        r.register(
            "connect_errors",
            "Refused or reset connections",
            self.connect_errors.clone(),
        );
        r
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // read the request head (enough for a GET)
            while n < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sock.read(&mut buf[n..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(k)) => {
                        n += k;
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (status, ctype, body) = if method != "GET" && method != "HEAD" {
                (
                    "405 Method Not Allowed",
                    "text/plain",
                    "only GET\n".to_owned(),
                )
            } else if path == "/metrics" {
                let mut text = String::new();
                let _ = encode(&mut text, &registry);
                (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                )
            } else {
                ("404 Not Found", "text/plain", "see /metrics\n".to_owned())
            };
            let len = body.len();
            let body = if method == "HEAD" {
                String::new()
            } else {
                body
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}"
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
