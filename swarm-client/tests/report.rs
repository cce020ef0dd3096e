//! The HTML report of a real run, in a real browser: headless Chromium loads
//! it with no console message, and every chart is drawn.

use std::process::Command;

use testkit::origin::TestOrigin;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-client");

/// Headless Chromium, its log on stderr.
fn chromium(profile: &std::path::Path) -> Command {
    let mut c = testkit::chromium(profile);
    c.args(["--enable-logging=stderr", "--v=0"]);
    c
}

#[test]
fn the_report_of_a_real_run_opens_in_chromium_with_every_chart_drawn() {
    let _g = testkit::serial();
    let origin = TestOrigin::start(&[], 3);
    let tmp = tempfile::tempdir().unwrap();
    let (json, report) = (tmp.path().join("run.json"), tmp.path().join("report.html"));
    testkit::run_ok(
        Command::new(BIN)
            .args([
                "run",
                &origin.url(),
                "--set",
                "clients=3",
                "--set",
                "rampRate=10",
            ])
            .args(["--duration", "6s", "--metrics-addr", "127.0.0.1:0"])
            .args(["--slo", "errorRate=0.01", "--slo", "segmentTtfbP99=30s"])
            .arg("--summary-json")
            .arg(&json)
            .arg("--report")
            .arg(&report),
    );
    // `report` makes the same bytes from the results file
    let again = tmp.path().join("again.html");
    testkit::run_ok(
        Command::new(BIN)
            .arg("report")
            .arg(&json)
            .arg("-o")
            .arg(&again),
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html, std::fs::read_to_string(&again).unwrap());
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing is loaded from the network"
    );
    assert!(!html.contains("<script"), "a static page");

    let url = format!("file://{}", report.display());
    let out = chromium(&tmp.path().join("profile"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains(":CONSOLE"), "console messages:\n{log}");
    // as the browser parsed it: six charts, each with a drawn line
    let charts: Vec<&str> = dom.split("<figure class=\"chart\"").skip(1).collect();
    assert_eq!(charts.len(), 6, "{dom}");
    for c in &charts {
        let id = c.split('"').nth(1).unwrap_or("?");
        let d = c
            .split("class=\"line\" d=\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{id}: no line drawn"));
        assert!(d.starts_with('M') && d.contains(" L"), "{id}: {d}");
    }
    assert!(dom.contains("SLOs: 2 of 2 passed"), "{dom}");
    assert!(dom.contains("<th>TTFB</th>"));

    let png = tmp.path().join("report.png");
    testkit::run_ok(
        chromium(&tmp.path().join("profile"))
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1280,2000")
            .arg(&url),
    );
    let shot = std::fs::read(&png).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "{} bytes",
        shot.len()
    );
}
