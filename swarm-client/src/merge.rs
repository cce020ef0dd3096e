//! `swarm-client merge`: the results of runs on several machines — shards of
//! one test — read from files or from the pods' logs, merged as the results
//! of one run (`results::merge`), the SLOs checked again on the merged
//! figures, and written.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use common::error::UsageError;

use crate::results::{self, merge::Merger, Results};

/// Reads one results file (`--summary-json` of `run`, or a merge), checking
/// its format and version.
pub fn read(path: &Path) -> Result<Results> {
    // an input that cannot be read is bad input (exit 2), as a bad one is
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e}; expected a results file (run --summary-json FILE)",
            path.display()
        ))
    })?;
    results::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())).into())
}

/// The line before a shard's results in its output (`run --print-results`).
pub const BEGIN: &str = "-----BEGIN HLS-SWARM RESULTS-----";
/// The line after them.
pub const END: &str = "-----END HLS-SWARM RESULTS-----";

/// Results as `run --print-results` prints them: the JSON on one line
/// between [`BEGIN`] and [`END`].
pub fn printed(s: &Results) -> Result<String> {
    Ok(format!("{BEGIN}\n{}\n{END}", serde_json::to_string(s)?))
}

/// Every results block in `log` (the output of one or more runs with
/// `--print-results`, e.g. `kubectl logs -l job-name=… --tail=-1`, with or
/// without `--prefix`): a line that ends with [`BEGIN`], the JSON on the next
/// line (after any prefix), a line that ends with [`END`].
pub fn from_logs(log: &str) -> Result<Vec<Results>, String> {
    let mut out = Vec::new();
    each_in_logs(log.as_bytes(), |s| {
        out.push(s);
        Ok(())
    })?;
    Ok(out)
}

/// [`from_logs`] read line by line, each results block handed to `f` in
/// the order of the log as it is read (a merge of many shards holds a few
/// at a time); how many there were. The blocks are parsed on every core.
pub fn each_in_logs(
    log: impl std::io::BufRead + Send,
    mut f: impl FnMut(Results) -> Result<(), String>,
) -> Result<usize, String> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<(usize, usize, String)>(workers);
        let raw_rx = std::sync::Arc::new(std::sync::Mutex::new(raw_rx));
        let (done_tx, done_rx) =
            std::sync::mpsc::sync_channel::<(usize, Result<Results, String>)>(workers);
        let reader = scope.spawn(move || read_blocks(log, &raw_tx));
        for _ in 0..workers {
            let (rx, tx) = (std::sync::Arc::clone(&raw_rx), done_tx.clone());
            scope.spawn(move || loop {
                let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((seq, line, json)) = next else { break };
                let parsed = results::parse(&json).map_err(|e| format!("line {line}: {e}"));
                if tx.send((seq, parsed)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        // hand them on in the order of the log
        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut failed = None;
        for (seq, parsed) in done_rx {
            pending.insert(seq, parsed);
            while let Some(p) = pending.remove(&next) {
                next += 1;
                if failed.is_none() {
                    if let Err(e) = p.and_then(&mut f) {
                        failed = Some(e);
                    }
                }
            }
        }
        let count = reader
            .join()
            .map_err(|_| "the log reader failed".to_owned())??;
        if let Some(e) = failed {
            return Err(e);
        }
        if count == 0 {
            return Err(format!(
                "no results in it: expected blocks between `{BEGIN}` and `{END}` lines, \
                 printed by `swarm-client run --print-results`"
            ));
        }
        Ok(count)
    })
}

/// The results blocks of `log`, sent as (sequence, line, JSON) to `tx`.
fn read_blocks(
    log: impl std::io::BufRead,
    tx: &std::sync::mpsc::SyncSender<(usize, usize, String)>,
) -> Result<usize, String> {
    let mut lines = log.lines().enumerate();
    let mut next = || -> Result<Option<(usize, String)>, String> {
        match lines.next() {
            Some((n, Ok(l))) => Ok(Some((n, l))),
            Some((n, Err(e))) => Err(format!("line {}: {e}", n + 1)),
            None => Ok(None),
        }
    };
    let mut count = 0;
    while let Some((n, line)) = next()? {
        if !line.trim_end().ends_with(BEGIN) {
            continue;
        }
        let (m, mut json) =
            next()?.ok_or_else(|| format!("line {}: the results end after the marker", n + 1))?;
        match next()? {
            Some((_, end)) if end.trim_end().ends_with(END) => {}
            _ => {
                return Err(format!(
                    "line {}: the results are not followed by `{END}` (cut off?)",
                    m + 1
                ))
            }
        }
        // a `kubectl logs --prefix` before the JSON
        if let Some(i) = json.find('{') {
            json.drain(..i);
        }
        if tx.send((count, m + 1, json)).is_err() {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// What `merge` reads and writes besides `-o`.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Results files.
    pub files: Vec<std::path::PathBuf>,
    /// Log output holding shards' results (`-`: stdin).
    pub from_logs: Option<std::path::PathBuf>,
    /// The HTML report to write.
    pub report: Option<std::path::PathBuf>,
}

/// `swarm-client merge FILE… [--from-logs LOG] [-o OUT] [--slo FIGURE=LIMIT…]`:
/// reads the results, merges them, checks the SLOs (the first run's, with
/// `slo` flags replacing or adding objectives), prints the summary and writes
/// the merged results to `out`. Exit status 4 (`SloFailed`) when one fails.
pub fn run(
    inputs: &Inputs,
    out: Option<&Path>,
    slo: &[String],
    log_format: crate::log::Format,
) -> Result<()> {
    crate::log::set(log_format);
    // one run at a time: a merge of a thousand shards holds only the
    // merged figures and the shard being read
    let mut merger = Merger::default();
    let mut runs = 0;
    let mut first_slo = None;
    let mut add = |s: Results, merger: &mut Merger| -> Result<(), String> {
        if first_slo.is_none() {
            first_slo = Some(s.settings.get("slo").cloned().unwrap_or_default());
        }
        runs += 1;
        merger.add(s)
    };
    for f in &inputs.files {
        add(read(f)?, &mut merger).map_err(|e| UsageError(format!("{}: {e}", f.display())))?;
    }
    if let Some(log) = &inputs.from_logs {
        let (name, reader): (String, Box<dyn std::io::BufRead + Send>) = if log.as_os_str() == "-" {
            (
                "stdin".into(),
                Box::new(std::io::BufReader::new(std::io::stdin())),
            )
        } else {
            let f = std::fs::File::open(log).map_err(|e| {
                UsageError(format!(
                    "--from-logs {}: cannot read it: {e}; expected the pods' logs (or - for stdin)",
                    log.display()
                ))
            })?;
            (
                log.display().to_string(),
                Box::new(std::io::BufReader::new(f)),
            )
        };
        each_in_logs(reader, |s| add(s, &mut merger))
            .map_err(|e| UsageError(format!("--from-logs {name}: {e}")))?;
    }
    let mut merged = merger.finish().map_err(UsageError)?;
    let mut objectives: crate::results::slo::Slo =
        serde_json::from_value(first_slo.unwrap_or_default()).unwrap_or_default();
    for flag in slo {
        let (k, v) = crate::results::slo::parse_flag(flag).map_err(UsageError)?;
        objectives.0.insert(k, v);
    }
    let problems = crate::results::slo::check(&objectives, merged.engine == "native");
    if let Some((path, message)) = problems.first() {
        return Err(UsageError(format!("{path}: {message}")).into());
    }
    if let Some(s) = merged.settings.as_object_mut() {
        s.insert("slo".into(), serde_json::to_value(&objectives)?);
    }
    merged.slo = crate::results::slo::evaluate(&objectives, &merged.totals);
    if let Some(c) = &mut merged.capacity {
        c.judge(&objectives);
    }
    crate::log::verdicts(&merged.slo);
    println!(
        "merged {} results: {} viewers, {} seconds",
        runs,
        merged.totals.viewers,
        merged.series.len()
    );
    print!("{}", crate::table::table(&merged));
    if let Some(path) = out {
        let json = serde_json::to_string_pretty(&merged)? + "\n";
        common::artifact::write_atomic(path, json.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("merged results written to {}", path.display());
    }
    if let Some(path) = &inputs.report {
        crate::report::write(&merged, path)?;
        println!("report written to {}", path.display());
    }
    Ok(crate::results::slo::gate(&merged.slo)?)
}
