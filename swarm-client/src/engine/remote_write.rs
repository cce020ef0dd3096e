//! Prometheus remote write (`run --remote-write URL`): the swarm's metrics
//! — the same as `/metrics` — pushed every few seconds to a receiver
//! (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos,
//! VictoriaMetrics…) as remote write 1.0 has it: a protobuf `WriteRequest`,
//! snappy-compressed, POSTed. One push in flight at a time, each with a
//! deadline; a receiver that fails costs a warning (once) and a count,
//! never the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prometheus_client::registry::Registry;
use url::Url;

/// The longest one push may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// `prometheus.WriteRequest` (remote write 1.0).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One sample of an exposition: its name, labels and value.
pub type Exposed = (String, Vec<(String, String)>, f64);

/// The samples of an OpenMetrics text exposition (what the registry
/// encodes), one for each sample line.
pub fn samples(text: &str) -> Result<Vec<Exposed>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: {line}", n + 1);
        let name_end = line.find(['{', ' ']).ok_or_else(|| bad("no value"))?;
        let name = &line[..name_end];
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '}' {
                    end = Some(i);
                    break;
                }
                if c == ',' || c == ' ' {
                    continue;
                }
                // NAME="VALUE"
                let start = i;
                let eq = inner[start..]
                    .find('=')
                    .ok_or_else(|| bad("a label without ="))?
                    + start;
                let key = inner[start..eq].to_owned();
                while chars.peek().is_some_and(|(j, _)| *j <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(bad("a label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(bad("a label value cut short")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("a label value cut short")),
                    }
                }
                labels.push((key, value));
            }
            let end = end.ok_or_else(|| bad("labels not closed"))?;
            rest = &inner[end + 1..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad("a value that is not a number"))?,
        };
        out.push((name.to_owned(), labels, value));
    }
    Ok(out)
}

/// The write request of `text`'s samples at `timestamp_ms`, each series
/// with `extra` labels too (sorted by name, as the protocol asks),
/// snappy-compressed.
pub fn encode(
    text: &str,
    extra: &[(String, String)],
    timestamp_ms: i64,
) -> Result<Vec<u8>, String> {
    let mut timeseries = Vec::new();
    for (name, labels, value) in samples(text)? {
        let mut all: Vec<Label> = std::iter::once(("__name__".to_owned(), name))
            .chain(labels)
            .chain(extra.iter().cloned())
            .map(|(name, value)| Label { name, value })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        timeseries.push(TimeSeries {
            labels: all,
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        });
    }
    let raw = prost::Message::encode_to_vec(&WriteRequest { timeseries });
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| format!("cannot compress: {e}"))
}

/// POSTs `body` to `url` (http, or https with `tls`) within [`DEADLINE`].
async fn post(
    url: &Url,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    body: Vec<u8>,
) -> Result<(), String> {
    let host = url.host_str().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = http::Request::post(path)
        .header(http::header::HOST, url.authority())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(http::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(
            http::header::USER_AGENT,
            concat!("hls-swarm/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = match (url.scheme(), tls) {
        ("https", Some(tls)) => {
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("{host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(hyper_util::rt::TokioIo::new(stream), request).await?
        }
        _ => send(hyper_util::rt::TokioIo::new(tcp), request).await?,
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        // the receiver's reason, a bounded part of it
        let body = http_body_util::Limited::new(response.into_body(), 4096)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ))
    }
}

async fn send<T>(
    io: T,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// How the pushes went: counted by the pushes themselves.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub pushed: AtomicU64,
    pub failed: AtomicU64,
    warned: AtomicBool,
}

impl Outcomes {
    fn count(&self, url: &Url, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.pushed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if !self.warned.swap(true, Ordering::Relaxed) {
                    crate::log::warning(
                        "remote-write",
                        &format!("remote write to {url} failed: {e}; the run goes on"),
                    );
                }
            }
        }
    }
}

/// The pusher of a run.
pub struct RemoteWrite {
    url: Url,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    registry: Arc<Registry>,
    labels: Vec<(String, String)>,
    every: Duration,
    last: Option<Instant>,
    in_flight: Option<tokio::task::JoinHandle<()>>,
    pub outcomes: Arc<Outcomes>,
}

impl RemoteWrite {
    /// A pusher of `registry` to `url` every `every`, each series labelled
    /// with `labels` too.
    pub fn new(
        url: Url,
        registry: Registry,
        labels: Vec<(String, String)>,
        every: Duration,
    ) -> Result<RemoteWrite, String> {
        let tls = (url.scheme() == "https")
            .then(|| {
                crate::native::http::tls_config(None, crate::native::http::HttpVersion::Http11)
            })
            .transpose()?;
        Ok(RemoteWrite {
            url,
            tls,
            registry: Arc::new(registry),
            labels,
            every,
            last: None,
            in_flight: None,
            outcomes: Arc::default(),
        })
    }

    /// Pushes when it is time and the last push is done.
    pub fn tick(&mut self, now: Instant) {
        if self.last.is_some_and(|l| now - l < self.every) {
            return;
        }
        if self.in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.last = Some(now);
        let body = self.body();
        let (url, tls, outcomes) = (
            self.url.clone(),
            self.tls.clone(),
            Arc::clone(&self.outcomes),
        );
        self.in_flight = Some(tokio::spawn(async move {
            let r = match body {
                Ok(b) => push(&url, tls, b).await,
                Err(e) => Err(e),
            };
            outcomes.count(&url, r);
        }));
    }

    /// The last push, at the end of the run (the figures as they ended),
    /// waited for within its deadline.
    pub async fn finish(&mut self) {
        if let Some(h) = self.in_flight.take() {
            let _ = tokio::time::timeout(DEADLINE, h).await;
        }
        let r = match self.body() {
            Ok(b) => push(&self.url, self.tls.clone(), b).await,
            Err(e) => Err(e),
        };
        self.outcomes.count(&self.url, r);
    }

    fn body(&self) -> Result<Vec<u8>, String> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| e.to_string())?;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        encode(&text, &self.labels, ms)
    }
}

/// One push within [`DEADLINE`].
async fn push(
    url: &Url,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    body: Vec<u8>,
) -> Result<(), String> {
    tokio::time::timeout(DEADLINE, post(url, tls, body))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", DEADLINE.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_read_sample_by_sample() {
        let text = "# HELP hls_swarm_bytes Bytes.\n# TYPE hls_swarm_bytes counter\n\
                    hls_swarm_bytes_total 1234\n\
                    hls_swarm_http_errors_total{status=\"404\"} 2\n\
                    hls_swarm_ttfb_seconds_bucket{kind=\"segment\",le=\"+Inf\"} 7\n\
                    hls_swarm_errors_total{reason=\"a \\\"quoted\\\" one, with\\\\ back\"} 1\n# EOF\n";
        let s = samples(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0], ("hls_swarm_bytes_total".into(), vec![], 1234.0));
        assert_eq!(
            s[2].1,
            [
                ("kind".into(), "segment".into()),
                ("le".into(), "+Inf".into())
            ]
        );
        assert_eq!(s[3].1[0].1, "a \"quoted\" one, with\\ back");
        assert!(samples("x{a=1} 2").unwrap_err().contains("not quoted"));
        assert!(samples("x{a=\"1 2").unwrap_err().contains("cut short"));
    }

    #[test]
    fn a_write_request_decodes_back_with_its_labels_sorted() {
        let text = "m_total{z=\"1\",a=\"2\"} 5\n";
        let body = encode(
            text,
            &[("job".into(), "hls-swarm".into())],
            1_700_000_000_000,
        )
        .unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let w: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
        let names: Vec<&str> = w.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "a", "job", "z"]);
        assert_eq!(
            w.timeseries[0].samples[0],
            Sample {
                value: 5.0,
                timestamp: 1_700_000_000_000
            }
        );
    }
}
