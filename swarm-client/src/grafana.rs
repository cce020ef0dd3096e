//! `swarm-client grafana-dashboard`: a Grafana dashboard for the swarm's
//! `hls_swarm_*` metrics, summed over every swarm Prometheus scrapes (one
//! box or many pods), with the report's panels — viewers, throughput,
//! requests/s, segment TTFB, errors, stalled viewers, QoE —, a row for
//! Low-Latency HLS (reload hold and overshoot, advance lag, requests per
//! viewer) and one for the origin's nginx exporter where it is deployed.

use serde_json::{json, Value};

/// One panel: title, unit, and its queries as (legend, PromQL).
struct Panel {
    title: &'static str,
    unit: &'static str,
    queries: Vec<(&'static str, String)>,
}

const RATE: &str = "[$__rate_interval]";

fn quantile(q: f64, metric: &str, filter: &str) -> String {
    format!("histogram_quantile({q}, sum by (le) (rate({metric}_bucket{filter}{RATE})))")
}

/// The swarm's panels, in the report's order.
fn swarm_panels() -> Vec<Panel> {
    vec![
        Panel {
            title: "Viewers",
            unit: "short",
            queries: vec![
                ("active", "sum(hls_swarm_viewers_active)".into()),
                ("target", "sum(hls_swarm_viewers_target)".into()),
            ],
        },
        Panel {
            title: "Throughput",
            unit: "bps",
            queries: vec![(
                "received",
                format!("8 * sum(rate(hls_swarm_bytes_total{RATE}))"),
            )],
        },
        Panel {
            title: "Requests",
            unit: "reqps",
            queries: vec![
                (
                    "segments",
                    format!("sum(rate(hls_swarm_segments_total{RATE}))"),
                ),
                (
                    "playlists",
                    format!("sum(rate(hls_swarm_playlists_total{RATE}))"),
                ),
            ],
        },
        Panel {
            title: "Segment TTFB",
            unit: "s",
            queries: vec![
                (
                    "p50",
                    quantile(0.5, "hls_swarm_request_ttfb_seconds", "{kind=\"segment\"}"),
                ),
                (
                    "p99",
                    quantile(0.99, "hls_swarm_request_ttfb_seconds", "{kind=\"segment\"}"),
                ),
            ],
        },
        Panel {
            title: "Errors",
            unit: "reqps",
            queries: vec![
                (
                    "HTTP {{status}}",
                    format!("sum by (status) (rate(hls_swarm_http_errors_total{RATE}))"),
                ),
                (
                    "timeouts",
                    format!("sum(rate(hls_swarm_timeouts_total{RATE}))"),
                ),
                (
                    "connection",
                    format!("sum(rate(hls_swarm_connect_errors_total{RATE}))"),
                ),
                (
                    "{{reason}}",
                    format!("sum by (reason) (rate(hls_swarm_errors_total{RATE}))"),
                ),
            ],
        },
        Panel {
            title: "Stalled viewers and rebuffers",
            unit: "short",
            queries: vec![
                ("stalled", "sum(hls_swarm_viewers_stalled)".into()),
                (
                    "rebuffers/s",
                    format!("sum(rate(hls_swarm_rebuffers_total{RATE}))"),
                ),
            ],
        },
        Panel {
            title: "Startup and segment download",
            unit: "s",
            queries: vec![
                (
                    "startup p95",
                    quantile(0.95, "hls_swarm_startup_seconds", ""),
                ),
                (
                    "segment download p99",
                    quantile(
                        0.99,
                        "hls_swarm_request_download_seconds",
                        "{kind=\"segment\"}",
                    ),
                ),
            ],
        },
        Panel {
            title: "Segment download ratio",
            unit: "short",
            queries: vec![(
                "p99 (above 1: slower than real time)",
                quantile(0.99, "hls_swarm_segment_download_ratio", ""),
            )],
        },
    ]
}

/// The Low-Latency HLS panels (PLAYER.md §7): empty while no viewer plays
/// LL-HLS.
fn low_latency_panels() -> Vec<Panel> {
    let hold = "hls_swarm_reload_hold_seconds";
    let over = "hls_swarm_reload_overshoot_seconds";
    vec![
        Panel {
            title: "Blocking reloads: hold and overshoot",
            unit: "s",
            queries: vec![
                ("hold p50", quantile(0.5, hold, "")),
                ("hold p99", quantile(0.99, hold, "")),
                ("overshoot p50", quantile(0.5, over, "")),
                ("overshoot p99", quantile(0.99, over, "")),
            ],
        },
        Panel {
            title: "Playlist advance lag and part TTFB",
            unit: "s",
            queries: vec![
                (
                    "advance lag p99",
                    quantile(0.99, "hls_swarm_playlist_advance_lag_seconds", ""),
                ),
                (
                    "part TTFB p99",
                    quantile(0.99, "hls_swarm_request_ttfb_seconds", "{kind=\"part\"}"),
                ),
            ],
        },
        Panel {
            title: "Requests per viewer per second",
            unit: "short",
            queries: vec![(
                "{{kind}}",
                format!(
                    "sum by (kind) (rate(hls_swarm_request_ttfb_seconds_count{RATE})) \
                     / scalar(sum(hls_swarm_viewers_active))"
                ),
            )],
        },
        Panel {
            title: "Connections opened, by protocol",
            unit: "short",
            queries: vec![(
                "{{protocol}}",
                format!("sum by (protocol) (rate(hls_swarm_connections_total{RATE}))"),
            )],
        },
        Panel {
            title: "Delta updates, refused reloads, hinted parts 404",
            unit: "reqps",
            queries: vec![
                (
                    "hinted parts 404",
                    format!("sum(rate(hls_swarm_hints_gone_total{RATE}))"),
                ),
                (
                    "delta updates",
                    format!("sum(rate(hls_swarm_delta_updates_total{RATE}))"),
                ),
                (
                    "refetched after a delta",
                    format!("sum(rate(hls_swarm_delta_refetches_total{RATE}))"),
                ),
                (
                    "refused {{status}}",
                    format!(
                        "sum by (status) (rate(hls_swarm_blocked_reloads_refused_total{RATE}))"
                    ),
                ),
            ],
        },
    ]
}

/// The origin's panels, from the nginx exporter the origin's NixOS module
/// deploys (port 9113).
fn origin_panels() -> Vec<Panel> {
    vec![
        Panel {
            title: "Origin connections",
            unit: "short",
            queries: vec![
                ("active", "sum(nginx_connections_active)".into()),
                ("writing", "sum(nginx_connections_writing)".into()),
            ],
        },
        Panel {
            title: "Origin requests",
            unit: "reqps",
            queries: vec![(
                "served",
                format!("sum(rate(nginx_http_requests_total{RATE}))"),
            )],
        },
    ]
}

fn panel(id: u64, p: &Panel, x: u64, y: u64) -> Value {
    let targets: Vec<Value> = p
        .queries
        .iter()
        .zip('A'..)
        .map(|((legend, expr), r)| {
            json!({
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "expr": expr,
                "legendFormat": legend,
                "refId": r.to_string(),
            })
        })
        .collect();
    json!({
        "id": id,
        "type": "timeseries",
        "title": p.title,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
        "fieldConfig": { "defaults": { "unit": p.unit }, "overrides": [] },
        "options": { "legend": { "displayMode": "list", "placement": "bottom" } },
        "targets": targets,
    })
}

fn row(id: u64, title: &str, y: u64) -> Value {
    json!({
        "id": id, "type": "row", "title": title, "collapsed": false,
        "gridPos": { "h": 1, "w": 24, "x": 0, "y": y }, "panels": [],
    })
}

/// The dashboard, as Grafana imports it.
pub fn dashboard() -> Value {
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (title, group) in [
        ("Swarm (hls_swarm_*)", swarm_panels()),
        ("Low-Latency HLS (hls_swarm_*)", low_latency_panels()),
        ("Origin (nginx exporter)", origin_panels()),
    ] {
        panels.push(row(id, title, y));
        id += 1;
        y += 1;
        for (i, p) in group.iter().enumerate() {
            let x = if i % 2 == 0 { 0 } else { 12 };
            panels.push(panel(id, p, x, y));
            id += 1;
            if i % 2 == 1 {
                y += 8;
            }
        }
        if group.len() % 2 == 1 {
            y += 8;
        }
    }
    json!({
        "title": "hls-swarm",
        "uid": "hls-swarm",
        "description": "Simulated HLS viewers (hls-swarm swarm-client) and the origin they load",
        "tags": ["hls-swarm"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "refresh": "5s",
        "time": { "from": "now-30m", "to": "now" },
        "timezone": "utc",
        "templating": { "list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
        }]},
        "annotations": { "list": [] },
        "panels": panels,
    })
}

/// The metric names a PromQL expression reads (`hls_swarm_…`, `nginx_…`).
pub fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..].iter().collect();
        if starts_word && (rest.starts_with("hls_swarm_") || rest.starts_with("nginx_")) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            i += name.len();
            if !out.contains(&name) {
                out.push(name);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample name the swarm's registry exposes.
    fn exported() -> Vec<String> {
        let m = crate::engine::metrics::Metrics::default();
        // a label value of each family, so labelled families have samples
        use crate::engine::metrics::{KindLabel, ProtocolLabel, ReasonLabel, StatusLabel};
        m.connections
            .get_or_create(&ProtocolLabel { protocol: "h2" })
            .inc();
        m.http_errors
            .get_or_create(&StatusLabel {
                status: "404".into(),
            })
            .inc();
        m.errors
            .get_or_create(&ReasonLabel {
                reason: "bad playlist".into(),
            })
            .inc();
        m.blocked_reloads_refused
            .get_or_create(&StatusLabel {
                status: "503".into(),
            })
            .inc();
        for family in [&m.connect_seconds, &m.ttfb_seconds, &m.download_seconds] {
            family
                .get_or_create(&KindLabel { kind: "segment" })
                .observe(0.001);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry()).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_swarm_metric_the_dashboard_queries_is_exported() {
        let exported = exported();
        let d = dashboard();
        let mut queried = 0;
        let mut row = "";
        for p in d["panels"].as_array().unwrap() {
            if p["type"] == "row" {
                row = p["title"].as_str().unwrap();
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap();
                for name in metrics_in(expr) {
                    if name.starts_with("nginx_") {
                        assert!(
                            row.starts_with("Origin"),
                            "nginx metrics belong in the origin row: {expr}"
                        );
                        continue;
                    }
                    queried += 1;
                    assert!(
                        exported.contains(&name),
                        "{name} (in `{expr}`) is not exported; the swarm exports {exported:?}"
                    );
                }
            }
        }
        assert!(queried >= 12, "{queried}");
        assert_eq!(
            metrics_in("rate(hls_swarm_bytes_total[5m]) + nginx_x"),
            ["hls_swarm_bytes_total", "nginx_x"]
        );
    }

    #[test]
    fn the_dashboard_is_complete_and_the_same_each_time() {
        let d = dashboard();
        assert_eq!(d, dashboard());
        let titles: Vec<&str> = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        for t in [
            "Viewers",
            "Throughput",
            "Requests",
            "Segment TTFB",
            "Errors",
            "Stalled viewers and rebuffers",
            "Origin connections",
            "Blocking reloads: hold and overshoot",
        ] {
            assert!(titles.contains(&t), "{t}: {titles:?}");
        }
        let ids: Vec<u64> = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(ids, unique, "panel ids are unique");
    }
}
