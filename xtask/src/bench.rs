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

/// One line of the results table: (area, figure, value).
type Figure = (String, String, String);

/// The parts of the benchmark run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// criterion benchmarks of the generators
    Generators,
    /// the swarm engines side by side, and 10 000 native viewers
    Swarm,
    /// the generated nginx config against a stock one, with wrk
    Origin,
    /// the LL-HLS origin: 2 000 viewers in blocking reloads, parts, TLS
    Ll,
    /// native viewers over HTTP/2 against HTTP/1.1 on one TLS origin
    Http,
    /// `swarm-client merge` of 1000 shards
    Merge,
    /// `swarm-client capacity` on this machine against the local origin
    Capacity,
    /// the packaging side by side: images against tar | gzip, build-all,
    /// a microVM's boot, a push to a registry
    Artifacts,
    /// `cargo xtask soak` for 60 minutes with 300 viewers (release)
    Soak,
}

/// The part a results row belongs to, by its area.
fn part_of(area: &str) -> Part {
    if area == "artifacts" || area.ends_with(" image") || area == "build-all" {
        Part::Artifacts
    } else if area.starts_with("swarm HTTP/2") {
        Part::Http
    } else if area.starts_with("swarm") {
        Part::Swarm
    } else if area.starts_with("origin LL-HLS") {
        Part::Ll
    } else if area.starts_with("origin") {
        Part::Origin
    } else if area.starts_with("merge") {
        Part::Merge
    } else if area.starts_with("capacity") {
        Part::Capacity
    } else if area == "soak" {
        Part::Soak
    } else {
        Part::Generators
    }
}

/// The rows of the results table in an existing docs/BENCHMARKS.md.
fn existing_rows(doc: &str) -> Vec<Figure> {
    doc.lines()
        .skip_while(|l| !l.starts_with("| area |"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .filter_map(|l| {
            let cells = table_cells(l);
            (cells.len() == 3).then(|| (cells[0].clone(), cells[1].clone(), cells[2].clone()))
        })
        .collect()
}

/// A cell of a Markdown table: a `|` in it escaped, as GitHub's tables
/// want even in code.
fn table_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The cells of a Markdown table row, `\|` read back as `|`.
fn table_cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().expect("a cell").push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells.iter().map(|c| c.trim().to_owned()).collect()
}

pub fn run(root: &Path, only: Option<Part>) -> Result<bool> {
    let wanted = |p: Part| only.is_none_or(|o| o == p);
    let mut figures: Vec<Figure> = Vec::new();
    if wanted(Part::Generators) {
        if !crate::run("cargo", &["bench", "--workspace"])? {
            return Ok(false);
        }
        let rows = read_criterion(&crate::lab::target_dir(root).join("criterion"))?;
        figures.extend(rows.iter().map(|r| {
            (
                "generators".to_owned(),
                format!("`{}` (criterion mean, 95 % interval)", r.name),
                format!(
                    "{} ({} – {})",
                    human(r.mean_ns),
                    human(r.low_ns),
                    human(r.high_ns)
                ),
            )
        }));
    }
    if wanted(Part::Swarm) {
        eprintln!("== swarm engines: 200 native, then 200 FFmpeg viewers (about 2 minutes)");
        figures.extend(crate::bench_swarm::engines(root)?);
        eprintln!("== swarm scale: 10 000 native viewers (about 2 minutes)");
        figures.extend(crate::bench_swarm::scale(root)?);
        eprintln!("== swarm LL-HLS: 2 000 hls.js-profile viewers (about 2 minutes)");
        figures.extend(crate::bench_swarm::low_latency(root)?);
    }
    if wanted(Part::Http) {
        eprintln!(
            "== swarm HTTP/2 vs HTTP/1.1: 500 LL viewers each on one TLS origin (about 2 minutes)"
        );
        figures.extend(crate::bench_swarm::http_versions(root)?);
    }
    if wanted(Part::Origin) {
        eprintln!("== origin: generated and stock nginx configs side by side (about 20 minutes)");
        figures.extend(crate::bench_origin::bench(root)?);
    }
    if wanted(Part::Ll) {
        eprintln!("== LL-HLS origin: 2 000 held viewers, parts, TLS (about 4 minutes)");
        figures.extend(crate::bench_ll::bench(root)?);
    }
    if wanted(Part::Merge) {
        eprintln!("== merge: 1000 shards of a 10 000 000-viewer run (about 2 minutes)");
        figures.extend(crate::bench_merge::bench(root)?);
    }
    if wanted(Part::Capacity) {
        eprintln!("== capacity: steps of 4000 native viewers until one fails (up to 8 minutes)");
        figures.extend(crate::bench_capacity::bench(root)?);
    }
    if wanted(Part::Artifacts) {
        eprintln!("== artifacts: images, build-all, a microVM's boot, a push (about 5 minutes)");
        figures.extend(crate::bench_artifacts::bench(root)?);
    }
    if wanted(Part::Soak) {
        eprintln!("== soak: 300 native viewers for 60 minutes (about 65 minutes)");
        let r = crate::soak::soak(
            root,
            &crate::soak::Options {
                minutes: 60,
                viewers: 300,
                release: true,
                dir: None,
            },
        )?;
        figures.extend(crate::soak::rows(&r));
    }
    if let Some(part) = only {
        // keep the other parts' rows, in the order of the parts
        let old = std::fs::read_to_string(root.join("docs/BENCHMARKS.md")).unwrap_or_default();
        let mut all: Vec<Figure> = existing_rows(&old)
            .into_iter()
            .filter(|r| part_of(&r.0) != part)
            .collect();
        all.extend(figures);
        let order = [
            Part::Generators,
            Part::Swarm,
            Part::Origin,
            Part::Merge,
            Part::Capacity,
            Part::Artifacts,
            Part::Soak,
        ];
        all.sort_by_key(|r| order.iter().position(|p| *p == part_of(&r.0)));
        figures = all;
    }
    let mut table = String::from("| area | figure | value |\n|---|---|---|\n");
    for (area, figure, value) in &figures {
        let [area, figure, value] = [area, figure, value].map(|c| table_cell(c));
        writeln!(table, "| {area} | {figure} | {value} |")?;
    }
    println!("\n{table}");
    let doc = format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench`.\n\n\
         ## Machine\n\n{}\n\n## Results\n\n{table}\n\
         ## What is measured\n\n\
         - `test-origin/generate-all-profiles`: every text artifact (FFmpeg arguments, nginx \
         config in both flavours, cache policy, sysctl file) of every test-origin profile, from \
         already validated configs. Target: under 50 ms in all.\n\
         - `test-origin/load-and-generate-all-profiles`: the same, plus merging and validating \
         each profile's config (JSON Schema compilation dominates).\n\
         - Swarm engines: release builds; one local test origin (320x180, 10 fps, 350 kbit/s \
         video, ultrafast) and `swarm-client run` with 200 viewers (ramp 50/s), first \
         `--engine native`, then `--engine ffmpeg`. CPU is the exact run time of the swarm \
         and of everything it starts (FFmpeg viewers, the `ss` the FFmpeg engine runs once a \
         second to count bytes) over 25 s after the ramp: each swarm runs in a control group of \
         its own and the figure is the group's CPU accounting (cgroup v1 `cpuacct.usage` or v2 \
         `cpu.stat`), which also counts processes that exited within the window. Where no \
         control group can be made (not root), the scheduler's run time of the process tree \
         is sampled instead (/proc/PID/task/*/schedstat), which misses such short-lived \
         helpers; the table says which was used. utime+stime are not used: they are sampled \
         at the clock tick and miss much of the FFmpeg viewers. Native memory is the \
         swarm process's peak RSS divided by the viewers (runtime and histograms included, so \
         an upper bound); FFmpeg memory is the viewers' summed PSS plus the supervisor's RSS. \
         Targets: native at most 1/10 of the CPU and 1/100 of the memory per viewer.\n\
         - Swarm scale: 10 000 native viewers (ramp 400/s, ±1 s jitter) of a 160x90 stream \
         (48 kbit/s video + 16 kbit/s audio, 2 s segments) from a local origin for 80 s; CPU \
         of the swarm and of the origin (nginx + FFmpeg) over 40 s after the ramp; figures \
         from the run's summary. Targets: all 10 000 active, ≥ 99 % of segments faster than \
         real time (download ratio p99 < 1), no rebuffers, RSS under 1 GB.\n\
         - Origin: the generated local nginx config (`test-origin nginx-config --flavour \
         local`, `worker_processes` set to 1, then `auto`) against a minimal stock config \
         (Debian's `sendfile on; tcp_nopush on;`, nginx's defaults otherwise, no access log, \
         as the generated one), loaded in turn by wrk (1 thread, 50 connections, \
         `--latency`) on this machine. Hot: the same 100 KB segment, 6 MB segment and \
         10-entry playlist from the page cache; every config under test runs at once and \
         they take turns, 4 s each, in 5 rounds, so that the machine's drift touches them \
         alike; the medians. Directives: each tuning directive the generated config keeps, \
         taken out, and each it dropped, put back, with one worker, in the same rounds, as \
         a ratio to the generated config as it is. Live: a local test origin (640x360, 800 kbit/s, FFmpeg \
         rewriting the playlist every segment) served by its own generated config and by \
         the stock config from the same directory: wrk on the playlist for 10 s, then 1000 \
         native viewers (ramp 200/s) for 120 s on each, with the listed segments that \
         answered 404, TTFB from the swarm's results and nginx's CPU (its process tree). \
         Cold: 10 000 files of 100 KB on disk, the page cache dropped before each config, wrk \
         asking for each file in turn for 1 s (skipped where the cache cannot be dropped).\n\
         - Swarm LL-HLS: a release `test-origin run -p ll-hls` with a light stream (320x180, \
         30 fps, 300 kbit/s, 2 s segments of 333 ms parts, plain HTTP) and 2 000 native \
         viewers of the `hlsjs` profile (ramp 200/s) for 70 s: blocking reloads, parts; CPU \
         of the swarm and of the origin (encoder, nginx, LL server) over 30 s after the ramp, \
         the swarm's peak RSS per viewer, and the run's summary. Targets: all active, ≥ 99 % \
         of parts faster than real time (part download ratio p99 < 1), no rebuffers, ≤ 100 KB \
         per viewer.\n\
         - Merge: 1000 shard results of a 10 000 000-viewer run as the pods of an Indexed \
         Job print them (`run --print-results --no-viewer-details`): each with the \
         histograms of 10 000 viewers (60 000 requests and 6000 player figures drawn at \
         random over two decades, which fills the buckets a long run fills) and a 600-second \
         series with a segment-TTFB histogram of 2500 requests per second; `swarm-client \
         merge --from-logs FILE -o OUT` (release), wall time and the peak RSS the kernel \
         reports for it (VmHWM, read every 5 ms while it runs). Targets: under 5 s and 500 MB.\n\
         - Capacity: a release `swarm-client capacity` against a local test origin with the \
         scale benchmark's light stream: steps of 4000 native viewers from 4000 up to 40 000 \
         (ramp 1000/s), 45 s each, judged from 20 s into each on segment TTFB p99 ≤ 1 s, \
         error rate ≤ 0.001, rebuffer ratio ≤ 0.01 and the fewest viewers active ≥ 0.99; for \
         each step its figures and the share of the machine's cores busy in its window \
         (/proc/stat every second), and the swarm's open-file limit and warnings, which say \
         what limited it. The results and the report are written to \
         target/capacity-bench.json and .html.\n\
         - Artifacts, side by side in one run (release binaries): the test origin's image \
         (`container`, default profile) with a fresh layer cache (cold), gzip and zstd, \
         again with nothing changed (warm; target under 1 s), and another profile (only its \
         config layer is compressed), against the same files (the image's layers unpacked) \
         packed with `tar -c | gzip -6` (target: gzip cold at most 0.6 of it on 2 cores); \
         `cargo xtask build-all` into an empty directory with an empty layer cache (cold; \
         target ≤ 30 s), its size as the sum of the files `out/index.json` lists (a blob \
         shared by hard link counted at each place) and as `du` counts the disk (target \
         < 1 GB), and again with nothing changed; the origin microVM (default profile, \
         `ACCEL` auto: TCG here) from `microvm-run` to its return when `/health` answered \
         (target ≤ 15 s); a push of the origin image to a local docker-registry with TLS \
         and htpasswd, then of another profile (only the changed layer and the config go \
         up).\n\
         - Soak: `cargo xtask soak --minutes 60 --viewers 300 --release`: a local test origin \
         (640x360, 800 kbit/s, 2 s segments) logging every request, and 300 native viewers \
         on it for an hour. Listed segments that answered 404 (must be 0); the swarm's body \
         bytes against the sum of `$body_bytes_sent` in nginx's access log (within 0.5 %); \
         the swarm's RSS and open files every 10 s, growth from minute 2 to the end (median \
         of the last three samples; under 5 %); restarts. CI runs the same for 2 minutes \
         with 40 viewers (`xtask/tests/soak.rs`).\n\
         - LL-HLS: a release `test-origin run -p ll-hls` (720p30 ultrafast, 2 s segments of 200 ms parts; plain HTTP in front so that the load generator speaks it) and 2 000 viewers on one kept-alive connection each, in two event loops (a thread per core: no viewer waits for a thread of its own to be scheduled), asking for the part after the last it was given (`_HLS_msn`/`_HLS_part`), for 30 s after 5 s of warm-up, on the same 2 cores: directly on the LL server's Unix socket (as nginx reaches it), responses/s, the LL server's CPU (schedstat), overshoot = response time − the moment the part was whole in the encoder's file (read every millisecond), counted for requests sent before their part was; the LL server's RSS idle and with 2 000 held. The same through nginx as generated, with `proxy_cache_lock` collapsing blocking reloads, and without a cache. A complete part and a whole segment from a second LL server on a TCP port (wrk speaks TCP) against nginx serving the same bytes as a file, and the origin as generated (nginx caching the LL server's immutable answers) against the same file (wrk, 1 thread, 50 connections, median of 3 alternated rounds of 5 s). TLS + HTTP/2 against plain HTTP/1.1: the generated config of the default profile, 1 worker, a hot 100 KB segment, h2load with 50 clients for 5 s (10 streams each on HTTP/2). Targets: overshoot p99 under 50 ms; parts at least 0.8× nginx.\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `|` in a cell (a shell pipe in code) is escaped when written and
    /// read back whole, so a bench of one part keeps the other parts' rows.
    #[test]
    fn a_pipe_in_a_cell_survives_a_rewrite() {
        let row = (
            "artifacts".to_owned(),
            "origin image (against `tar -c | gzip -6`)".to_owned(),
            "3.2 s".to_owned(),
        );
        let [a, f, v] = [&row.0, &row.1, &row.2].map(|c| table_cell(c));
        let line = format!("| {a} | {f} | {v} |");
        assert_eq!(
            line,
            "| artifacts | origin image (against `tar -c \\| gzip -6`) | 3.2 s |"
        );
        let doc = format!("| area | figure | value |\n|---|---|---|\n{line}\n| x | y | z |\n");
        assert_eq!(
            existing_rows(&doc),
            vec![row, ("x".into(), "y".into(), "z".into())]
        );
    }
}
