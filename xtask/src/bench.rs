//! `cargo xtask bench`: run the criterion benchmarks and write docs/BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// One measured figure.
struct Row {
    name: String,
    mean_ns: f64,
    low_ns: f64,
    high_ns: f64,
}

pub fn run(root: &Path) -> Result<bool> {
    if !crate::run("cargo", &["bench", "--workspace"])? {
        return Ok(false);
    }
    let rows = read_criterion(&root.join("target/criterion"))?;
    let mut table = String::from("| benchmark | mean | 95 % interval |\n|---|---|---|\n");
    for r in &rows {
        writeln!(
            table,
            "| `{}` | {} | {} – {} |",
            r.name,
            human(r.mean_ns),
            human(r.low_ns),
            human(r.high_ns)
        )?;
    }
    println!("\n{table}");
    let doc = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench` (criterion; mean of 100 samples).\n\n\
         ## Machine\n\n{}\n\n## Results\n\n{table}\n\
         ## What is measured\n\n\
         - `test-origin/generate-all-profiles`: every text artifact (FFmpeg arguments, nginx \
         config in both flavours, cache policy, sysctl file) of every test-origin profile, from \
         already validated configs. Target: under 50 ms in all.\n\
         - `test-origin/load-and-generate-all-profiles`: the same, plus merging and validating \
         each profile's config (JSON Schema compilation dominates).\n",
        machine()
    );
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/BENCHMARKS.md"), doc)?;
    println!("wrote docs/BENCHMARKS.md");
    Ok(true)
}

fn read_criterion(dir: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("no benchmark results in {}", dir.display()))?;
    for entry in entries {
        let new = entry?.path().join("new");
        let (Ok(b), Ok(e)) = (
            std::fs::read_to_string(new.join("benchmark.json")),
            std::fs::read_to_string(new.join("estimates.json")),
        ) else {
            continue;
        };
        let b: serde_json::Value = serde_json::from_str(&b)?;
        let e: serde_json::Value = serde_json::from_str(&e)?;
        let mean = &e["mean"];
        rows.push(Row {
            name: b["full_id"].as_str().unwrap_or("?").to_owned(),
            mean_ns: mean["point_estimate"].as_f64().unwrap_or(f64::NAN),
            low_ns: mean["confidence_interval"]["lower_bound"]
                .as_f64()
                .unwrap_or(f64::NAN),
            high_ns: mean["confidence_interval"]["upper_bound"]
                .as_f64()
                .unwrap_or(f64::NAN),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// CPU model, cores and memory of this machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "- CPU: {model}\n- cores: {cores}\n- memory: {:.1} GiB",
        mem_kb as f64 / 1048576.0
    )
}
