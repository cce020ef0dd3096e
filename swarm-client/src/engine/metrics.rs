//! Prometheus metrics of the swarm (`hls_swarm_*`) and the endpoint serving them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkLabel {
    pub network: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Seconds from 0.5 ms to ~33 s.
fn timing_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

fn ratio_histogram() -> Histogram {
    Histogram::new([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 1.5, 2.0, 5.0])
}

fn long_histogram() -> Histogram {
    Histogram::new([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 60.0])
}

type Timings = Family<KindLabel, Histogram, fn() -> Histogram>;

/// Every metric the swarm exports.
#[derive(Clone)]
pub struct Metrics {
    pub viewers_target: Gauge,
    pub viewers_active: Gauge,
    pub viewers_stalled: Gauge,
    pub starts: Counter,
    pub restarts: Counter,
    /// Viewers that left as a load shape's target fell.
    pub departures: Counter,
    pub bytes: Counter<u64, AtomicU64>,
    pub segments: Counter,
    pub playlists: Counter,
    pub http_errors: Family<StatusLabel, Counter>,
    /// Every failed request, whatever its kind (at 0 from the start).
    pub failed_requests: Counter,
    pub timeouts: Counter,
    pub connect_errors: Counter,
    // native engine
    pub body_bytes: Counter<u64, AtomicU64>,
    pub connect_seconds: Timings,
    pub ttfb_seconds: Timings,
    pub download_seconds: Timings,
    pub download_ratio: Histogram,
    pub startup_seconds: Histogram,
    pub live_latency_seconds: Histogram,
    /// Low-Latency HLS (PLAYER.md §7).
    pub reload_hold_seconds: Histogram,
    pub reload_overshoot_seconds: Histogram,
    pub advance_lag_seconds: Histogram,
    pub blocked_reloads_refused: Family<StatusLabel, Counter>,
    pub delta_updates: Counter,
    pub hints_gone: Counter,
    pub delta_refetches: Counter,
    pub rebuffers: Counter,
    pub rebuffer_seconds: Counter<f64, AtomicU64>,
    pub segments_gone: Counter,
    pub segments_skipped: Counter,
    pub segments_failed: Counter,
    pub segments_abandoned: Counter,
    pub viewer_failures: Counter,
    pub abr_switches: Family<DirectionLabel, Counter>,
    pub errors: Family<ReasonLabel, Counter>,
    pub connections: Family<ProtocolLabel, Counter>,
    /// Per network class: segment TTFB, rebuffers, failed requests.
    pub network_segment_ttfb_seconds: Family<NetworkLabel, Histogram, fn() -> Histogram>,
    pub network_rebuffers: Family<NetworkLabel, Counter>,
    pub network_failed_requests: Family<NetworkLabel, Counter>,
    /// Failed requests by kind (`HTTP 404`, `timeout`, `connection`, a
    /// reason), for the live view; not exported (the families above are).
    pub error_kinds: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
    /// The ramp has begun (after `--start-at`): `/readyz` answers 200.
    pub ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Metrics {
    /// Puts every series whose labels are known before the run at 0, so
    /// that a dashboard shows 0 rather than no data: both ABR directions,
    /// each network class, each failure reason of the fixed set, the
    /// common error statuses.
    pub fn preset<'a>(&self, networks: impl IntoIterator<Item = &'a str>) {
        for direction in ["up", "down"] {
            let _ = self
                .abr_switches
                .get_or_create(&DirectionLabel { direction });
        }
        for network in networks {
            let label = NetworkLabel {
                network: network.to_owned(),
            };
            let _ = self.network_segment_ttfb_seconds.get_or_create(&label);
            let _ = self.network_rebuffers.get_or_create(&label);
            let _ = self.network_failed_requests.get_or_create(&label);
        }
        for reason in crate::native::failure::Failure::reasons() {
            let _ = self.errors.get_or_create(&ReasonLabel { reason });
        }
        for p in crate::native::http::Protocol::ALL {
            let protocol = p.as_str();
            let _ = self.connections.get_or_create(&ProtocolLabel { protocol });
        }
        // the statuses an origin under load answers with, and the two a
        // blocking reload is refused with (PLAYER.md §6)
        for status in [403, 404, 410, 429, 500, 502, 503, 504] {
            let _ = self.http_errors.get_or_create(&StatusLabel {
                status: status.to_string(),
            });
        }
        for status in [400, 503] {
            let _ = self.blocked_reloads_refused.get_or_create(&StatusLabel {
                status: status.to_string(),
            });
        }
    }

    /// Counts one failed request of `kind` (and in `failed_requests`).
    pub fn tally(&self, kind: String) {
        self.failed_requests.inc();
        *self
            .error_kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    /// The failed requests by kind so far.
    pub fn error_kinds(&self) -> std::collections::BTreeMap<String, u64> {
        self.error_kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            error_kinds: Default::default(),
            ready: Default::default(),
            viewers_target: Gauge::default(),
            viewers_active: Gauge::default(),
            viewers_stalled: Gauge::default(),
            starts: Counter::default(),
            restarts: Counter::default(),
            departures: Counter::default(),
            bytes: Counter::default(),
            segments: Counter::default(),
            playlists: Counter::default(),
            http_errors: Family::default(),
            failed_requests: Counter::default(),
            timeouts: Counter::default(),
            connect_errors: Counter::default(),
            body_bytes: Counter::default(),
            connect_seconds: Family::new_with_constructor(timing_histogram),
            ttfb_seconds: Family::new_with_constructor(timing_histogram),
            download_seconds: Family::new_with_constructor(timing_histogram),
            download_ratio: ratio_histogram(),
            startup_seconds: long_histogram(),
            live_latency_seconds: long_histogram(),
            reload_hold_seconds: timing_histogram(),
            reload_overshoot_seconds: timing_histogram(),
            advance_lag_seconds: timing_histogram(),
            blocked_reloads_refused: Family::default(),
            delta_updates: Counter::default(),
            hints_gone: Counter::default(),
            delta_refetches: Counter::default(),
            rebuffers: Counter::default(),
            rebuffer_seconds: Counter::default(),
            segments_gone: Counter::default(),
            segments_skipped: Counter::default(),
            segments_failed: Counter::default(),
            segments_abandoned: Counter::default(),
            viewer_failures: Counter::default(),
            abr_switches: Family::default(),
            errors: Family::default(),
            connections: Family::default(),
            network_segment_ttfb_seconds: Family::new_with_constructor(timing_histogram),
            network_rebuffers: Family::default(),
            network_failed_requests: Family::default(),
        }
    }
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
            "Viewers running now (processes or native players)",
            self.viewers_active.clone(),
        );
        r.register(
            "viewers_stalled",
            "Viewers stalled now (native: buffer empty; ffmpeg: below 0.9x real time for over 5 s)",
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
            "viewer_departures",
            "Viewers that left as the load shape's target fell (not failures)",
            self.departures.clone(),
        );
        r.register(
            "bytes",
            "Bytes the viewers received over TCP, HTTP heads included",
            self.bytes.clone(),
        );
        r.register(
            "segments",
            "Media segments loaded (ffmpeg: segment requests in the viewers' logs)",
            self.segments.clone(),
        );
        r.register(
            "playlists",
            "Playlists loaded, master and media",
            self.playlists.clone(),
        );
        r.register(
            "http_errors",
            "HTTP error responses by status",
            self.http_errors.clone(),
        );
        r.register(
            "failed_requests",
            "Failed requests of every kind: HTTP errors, timeouts, refused connections, other reasons",
            self.failed_requests.clone(),
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
        r.register(
            "body_bytes",
            "Response body bytes the native viewers read",
            self.body_bytes.clone(),
        );
        r.register(
            "request_connect_seconds",
            "Time to open a connection (native), by request kind",
            self.connect_seconds.clone(),
        );
        r.register(
            "request_ttfb_seconds",
            "Request written to first byte of the response (native), by kind",
            self.ttfb_seconds.clone(),
        );
        r.register(
            "request_download_seconds",
            "First to last byte of a response (native), by kind",
            self.download_seconds.clone(),
        );
        r.register(
            "segment_download_ratio",
            "Segment download time divided by its duration (native); above 1 cannot keep up",
            self.download_ratio.clone(),
        );
        r.register(
            "startup_seconds",
            "First request to first segment in (native)",
            self.startup_seconds.clone(),
        );
        r.register(
            "live_latency_seconds",
            "Playout position behind the segment's appearance in the playlist (native)",
            self.live_latency_seconds.clone(),
        );
        r.register(
            "reload_hold_seconds",
            "Blocking playlist reload (LL-HLS) written to response head (native)",
            self.reload_hold_seconds.clone(),
        );
        r.register(
            "reload_overshoot_seconds",
            "Blocking reload response head after the end of the part it asked for, by the program date-time (native)",
            self.reload_overshoot_seconds.clone(),
        );
        r.register(
            "playlist_advance_lag_seconds",
            "A part's end, by the program date-time, to the viewer having a playlist listing it (native)",
            self.advance_lag_seconds.clone(),
        );
        r.register(
            "blocked_reloads_refused",
            "Blocking playlist reloads answered 503 or 400, by status (native)",
            self.blocked_reloads_refused.clone(),
        );
        r.register(
            "delta_updates",
            "Delta playlist updates (_HLS_skip) merged (native)",
            self.delta_updates.clone(),
        );
        r.register(
            "hints_gone",
            "Hinted parts (EXT-X-PRELOAD-HINT) answered 404 (avplayer profile)",
            self.hints_gone.clone(),
        );
        r.register(
            "delta_refetches",
            "Whole playlists loaded because a delta update left out segments not queued (native)",
            self.delta_refetches.clone(),
        );
        r.register(
            "rebuffers",
            "Times a native viewer's buffer ran dry",
            self.rebuffers.clone(),
        );
        r.register(
            "network_segment_ttfb_seconds",
            "Segment TTFB of the native viewers of each network class",
            self.network_segment_ttfb_seconds.clone(),
        );
        r.register(
            "network_rebuffers",
            "Times the buffer of a viewer of each network class ran dry",
            self.network_rebuffers.clone(),
        );
        r.register(
            "network_failed_requests",
            "Failed requests of the viewers of each network class",
            self.network_failed_requests.clone(),
        );
        r.register(
            "rebuffer_seconds",
            "Seconds native viewers spent stalled (ended stalls)",
            self.rebuffer_seconds.clone(),
        );
        r.register(
            "segments_gone",
            "Listed segments that answered 404/410 (native)",
            self.segments_gone.clone(),
        );
        r.register(
            "segments_skipped",
            "Segments the playlist window moved past before they were loaded (native)",
            self.segments_skipped.clone(),
        );
        r.register(
            "segments_failed",
            "Segments given up after segMaxRetry failed tries (native)",
            self.segments_failed.clone(),
        );
        r.register(
            "segments_abandoned",
            "Segment loads given up as too slow for the buffer, loaded again from a lower variant (native, hlsjs ABR viewers)",
            self.segments_abandoned.clone(),
        );
        r.register(
            "viewer_failures",
            "Native viewers whose playlist stayed unreachable for the timeout",
            self.viewer_failures.clone(),
        );
        r.register(
            "abr_switches",
            "Variant switches of abr viewers, by direction",
            self.abr_switches.clone(),
        );
        r.register(
            "errors",
            "Other request failures (bad playlists, broken connections), by reason",
            self.errors.clone(),
        );
        r.register(
            "connections",
            "Connections the viewers opened, by protocol (ALPN name: http/1.1, h2)",
            self.connections.clone(),
        );
        r
    }
}

/// Where the metrics endpoint listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsAt {
    pub addr: std::net::SocketAddr,
    /// The port was not asked for (it is the profile's `metricsPort`): when
    /// it is taken — a second swarm on the host — any free port will do.
    pub or_any_free: bool,
}

/// Binds where `at` says, says where metrics are, and serves them in a
/// task; the address bound.
pub async fn start(
    at: MetricsAt,
    metrics: &Metrics,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, std::net::SocketAddr)> {
    use anyhow::Context;
    let addr = at.addr;
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if at.or_any_free && e.kind() == std::io::ErrorKind::AddrInUse => {
            let l = TcpListener::bind(std::net::SocketAddr::new(addr.ip(), 0))
                .await
                .with_context(|| format!("cannot serve metrics on {}", addr.ip()))?;
            crate::log::note(
                "metrics-port",
                &format!(
                    "port {} is taken (another swarm?); metrics on port {} instead \
                     (--metrics-addr or --set metricsPort=N chooses one)",
                    addr.port(),
                    l.local_addr()?.port()
                ),
            );
            l
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot serve metrics on {addr}; choose another --metrics-addr")
            })
        }
    };
    let bound = listener.local_addr()?;
    println!("metrics on http://{bound}/metrics");
    Ok((
        tokio::spawn(serve(
            listener,
            Arc::new(metrics.registry()),
            Arc::clone(&metrics.ready),
        )),
        bound,
    ))
}

/// Serves `GET /metrics` on `listener` until the task is dropped, with
/// `/healthz` (200 while the swarm runs) and `/readyz` (200 once `ready`:
/// the ramp has begun) for a container's probes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let registry = Arc::clone(&registry);
        let ready = ready.load(std::sync::atomic::Ordering::Relaxed);
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
            } else if path == "/healthz" {
                ("200 OK", "text/plain", "ok\n".to_owned())
            } else if path == "/readyz" {
                if ready {
                    ("200 OK", "text/plain", "ready\n".to_owned())
                } else {
                    (
                        "503 Service Unavailable",
                        "text/plain",
                        "waiting for the start\n".to_owned(),
                    )
                }
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    "see /metrics, /healthz, /readyz\n".to_owned(),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_with_known_labels_are_exported_at_zero_from_the_start() {
        let m = Metrics::default();
        m.preset(["mobile", "fiber"]);
        let mut text = String::new();
        encode(&mut text, &m.registry()).unwrap();
        for line in [
            "hls_swarm_failed_requests_total 0",
            "hls_swarm_abr_switches_total{direction=\"up\"} 0",
            "hls_swarm_abr_switches_total{direction=\"down\"} 0",
            "hls_swarm_network_rebuffers_total{network=\"mobile\"} 0",
            "hls_swarm_network_failed_requests_total{network=\"fiber\"} 0",
            "hls_swarm_network_segment_ttfb_seconds_count{network=\"mobile\"} 0",
            "hls_swarm_errors_total{reason=\"more than 5 redirects\"} 0",
            "hls_swarm_errors_total{reason=\"bad playlist: unreadable line\"} 0",
            "hls_swarm_errors_total{reason=\"URL too long (over 65534 bytes): not requested\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // a failure of any kind counts in the total
        m.tally("HTTP 503".into());
        m.tally("timeout".into());
        let mut text = String::new();
        encode(&mut text, &m.registry()).unwrap();
        assert!(text
            .lines()
            .any(|l| l == "hls_swarm_failed_requests_total 2"));
    }
}
