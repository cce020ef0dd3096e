//! The swarm's metrics in a real Prometheus (Debian's): pushed with
//! `--remote-write` to its remote-write receiver on loopback, and scraped
//! from `/metrics` beside the origin's nginx exporter. Every query of the
//! Grafana dashboard then returns data, and `promtool` finds them all
//! well-formed.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{free_port, serial, Captured};

/// `GET` of Prometheus's HTTP API at `port`: the `data` of its answer.
fn api(port: u16, path: &str, query: &[(&str, &str)]) -> Value {
    let mut c = testkit::tool("curl", "curl");
    c.args(["-sS", "--max-time", "10", "-G"]);
    for (k, v) in query {
        c.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    let out = testkit::run_ok(c.arg(format!("http://127.0.0.1:{port}{path}")));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["status"], "success", "{out}");
    v["data"].clone()
}

/// Every PromQL expression of the dashboard, its Grafana variables given.
fn dashboard_queries() -> Vec<String> {
    let d = swarm_client::grafana::dashboard();
    let mut out = Vec::new();
    let mut stack = vec![&d];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.replace("$__rate_interval", "15s"));
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `promtool check rules` of the expressions as recording rules.
fn promtool_check(dir: &Path, exprs: &[String]) -> std::process::Output {
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    let file = dir.join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    testkit::output(
        testkit::tool("promtool", "prometheus")
            .args(["check", "rules"])
            .arg(&file),
    )
}

#[test]
fn pushed_and_scraped_metrics_answer_every_dashboard_query() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let exprs = dashboard_queries();
    assert!(exprs.len() >= 25, "{exprs:#?}");
    // the queries parse; a broken one would not
    let ok = promtool_check(dir.path(), &exprs);
    assert!(ok.status.success(), "{}", testkit::printed(&ok));
    let bad = promtool_check(
        dir.path(),
        &["sum(rate(hls_swarm_bytes_total[15s])".to_owned()],
    );
    assert!(!bad.status.success(), "promtool checks what it is given");

    // a Low-Latency origin (parts, blocking reloads), its nginx exporter
    let port = free_port();
    let (_origin, ca) = support::ll_origin(port);
    let exporter_port = free_port();
    let _exporter = Captured::spawn(
        testkit::tool("prometheus-nginx-exporter", "prometheus-nginx-exporter")
            .arg(format!(
                "-nginx.scrape-uri=https://127.0.0.1:{port}/nginx_status"
            ))
            .arg(format!("-nginx.ssl-ca-cert={ca}"))
            .arg(format!("-web.listen-address=127.0.0.1:{exporter_port}")),
    );
    // Prometheus scraping the swarm and the exporter every second, and
    // receiving remote writes
    // (two swarms: hls.js-like viewers load parts, classic ones segments)
    let (prom_port, metrics_port, classic_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: swarm\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}', '127.0.0.1:{classic_port}']\n\
             \x20 - job_name: nginx\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        ),
    )
    .unwrap();
    let prometheus = Captured::spawn(
        testkit::tool("prometheus", "prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-remote-write-receiver"),
    );
    let t = Instant::now();
    while !prometheus
        .output()
        .contains("Server is ready to receive web requests")
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{}",
            prometheus.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // the swarms, pushing every second
    let swarm = |metrics: u16| {
        let mut c = Command::new(support::BIN);
        c.args([
            "run",
            &format!("https://127.0.0.1:{port}/video/stream.m3u8"),
        ])
        .arg("--ca-file")
        .arg(&ca)
        .args(["--plain", "--duration", "12s", "--set", "clients=3"])
        .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
        .arg(format!(
            "--remote-write=http://127.0.0.1:{prom_port}/api/v1/write"
        ))
        .args(["--remote-write-every", "1s"]);
        c
    };
    let classic = Captured::spawn(swarm(classic_port).args(["--set", "player=\"classic\""]));
    let json = dir.path().join("run.json");
    let out = testkit::output(swarm(metrics_port).arg("--summary-json").arg(&json));
    let t = Instant::now();
    while !classic.output().contains("remote write: ") {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{}",
            classic.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", testkit::printed(&out));
    let pushes: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("remote write: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no remote write line: {stdout}"));
    assert!(pushes >= 10, "a push a second and one at the end: {stdout}");
    assert!(!stdout.contains("failed)"), "{stdout}");
    let r = support::results(&json);
    // the last push holds the run's final figures, to the byte
    let pushed = api(
        prom_port,
        "/api/v1/query",
        &[(
            "query",
            &format!("hls_swarm_bytes_total{{job=\"hls-swarm\", instance=~\".*:{metrics_port}\"}}"),
        )],
    );
    let value: f64 = pushed["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(value as u64, r.totals.counts.bytes, "{pushed}");
    // every dashboard query has data at the end of the run (a rate needs
    // two samples in its 15 s: pushed and scraped every second)
    let at = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 2
    );
    let mut empty = Vec::new();
    for e in &exprs {
        let data = api(prom_port, "/api/v1/query", &[("query", e), ("time", &at)]);
        let result = data["result"].as_array().cloned().unwrap_or_default();
        if result.is_empty() {
            empty.push(e.clone());
        }
    }
    assert!(empty.is_empty(), "no data for {empty:#?}");
    // and the LL figures are measured ones, not empty histograms
    let hold = api(
        prom_port,
        "/api/v1/query",
        &[
            ("query", "histogram_quantile(0.5, sum by (le) (rate(hls_swarm_reload_hold_seconds_bucket[15s])))"),
            ("time", &at),
        ],
    );
    let v: f64 = hold["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(v.is_finite() && v > 0.0, "{hold}");
}
