use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use common::cli::{Command as Cmd, ProfileArgs};
use common::error::exit_status;
use swarm_client::config::VariantMode;
use swarm_client::ffmpeg_args::{viewer_args, Capabilities, StreamMap, ViewerOptions, PROGRESS_FD};
use swarm_client::results::slo::SloFailed;
use swarm_client::run::{check_url, parse_header, NothingPlayed, RequestFlags, RunArgs};
use swarm_client::SwarmClient;

type Cli = common::cli::Cli<Own, swarm_client::targets::KubernetesRun>;

/// The subcommands of this component of its own.
// parsed once per process: the size of `run`'s flags does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Own {
    /// Put a swarm of viewers on a stream
    ///
    /// Starts `clients` viewers at `rampRate` per second (each delayed by up to
    /// `rampJitter` ms), restarts a viewer that exits with backoff, prints a
    /// status line every second, serves Prometheus metrics, and at the end
    /// (--duration, Ctrl-C or SIGTERM) stops every viewer and prints a summary.
    /// On a terminal a live view shows the figures as they come (`--plain`:
    /// a status line a second instead, as when the output is not a terminal).
    /// The native engine (the default) plays the stream in an async task per
    /// viewer and times every request; `--engine ffmpeg` runs an FFmpeg
    /// process per viewer instead. `--check` plays it with one viewer for 10 s
    /// and prints every request as it happens.
    ///
    /// `--slo FIGURE=LIMIT` (or the config's `slo` table) sets service-level
    /// objectives, e.g. `--slo segmentTtfbP99=300ms --slo errorRate=0.001`;
    /// the summary shows each with its measured value and PASS or FAIL.
    ///
    /// Exit status: 0 done, 1 failure, 2 bad input, 3 stream never reachable,
    /// 4 an SLO failed.
    Run(RunArgs),

    /// Find how many viewers the origin holds: steps of viewers, each
    /// judged by the objectives, until one fails
    ///
    /// Starts `--start` viewers, then adds `--step` more at a time up to
    /// `--max`; each step lasts `--step-time`, and its objectives (`--slo
    /// FIGURE=LIMIT`, or the config's `slo` table — at least one) are judged
    /// on what came in from `--settle` into it to its end. The search stops
    /// at the first step that fails, and says the highest step that held and
    /// the first that failed, with the figure that failed it and its value —
    /// in the summary, the results (`capacity`, each step's verdicts and
    /// figures; shards' steps merge) and the report's capacity charts. The
    /// config's `capacity` table holds the same settings as the flags.
    ///
    /// Exit status: 0 a capacity was found (a step held), 1 failure, 2 bad
    /// input, 3 stream never reachable, 4 even the first step failed.
    Capacity {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        search: swarm_client::run::SearchFlags,
    },

    /// Merge the results of runs on several machines into one run's results
    ///
    /// Each FILE is a results file (`run --summary-json FILE`, or an earlier
    /// merge) of the same engine. Counters add up, the histograms merge (so the
    /// percentiles are those of every sample together, as one big machine
    /// would have measured them), the per-second series merge by wall-clock
    /// second, and the SLOs — the first run's, and --slo — are checked again on
    /// the merged figures.
    ///
    /// With --from-logs, the results come from the output of shards run
    /// with `--print-results` (e.g. `kubectl logs -l job-name=NAME
    /// --tail=-1`): every shard 0..COUNT must be there exactly once.
    ///
    /// Exit status: 0 merged, 2 bad input (a missing or doubled shard too),
    /// 4 an SLO failed.
    Merge {
        /// The results files
        #[arg(required_unless_present = "from_logs", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Read the shards' results from this log output (`-`: stdin)
        #[arg(long, value_name = "FILE")]
        from_logs: Option<PathBuf>,
        /// Also write the HTML report of the merged run to FILE
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the merged results (JSON) to FILE
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// An objective to check, FIGURE=LIMIT (replaces the runs' own of
        /// that figure); repeatable
        #[arg(long, value_name = "FIGURE=LIMIT")]
        slo: Vec<String>,
        /// The log lines on stderr: `text`, or `json`, one object a line
        #[arg(long, value_enum, default_value = "text")]
        log_format: swarm_client::log::Format,
    },

    /// Compare two runs figure by figure, flagging regressions
    ///
    /// Every figure of BASE and NEW (results files of `run --summary-json`
    /// or `merge -o`): the SLO figures, what viewers felt, throughput and
    /// requests per second, and each network class's segment TTFB, startup,
    /// rebuffer ratio and error rate — each with its change and whether
    /// that is better or worse. A change for the worse by more than the
    /// figure's tolerance (10 % unless --tolerance says otherwise) and more
    /// than a floor (2 ms, 0.001 of a share, 0.02 of a ratio) is a
    /// regression. Throughput and requests per second follow the load and
    /// are shown only.
    ///
    /// Exit status: 0 no regression, 2 bad input, 4 a regression (a gate on
    /// an origin or CDN change).
    Compare {
        /// The results to compare against
        #[arg(value_name = "BASE")]
        base: PathBuf,
        /// The results of the change
        #[arg(value_name = "NEW")]
        new: PathBuf,
        /// FIGURE=PERCENT: how much worse a figure may get (`all=PERCENT`
        /// for every figure without its own); repeatable
        #[arg(long, value_name = "FIGURE=PERCENT")]
        tolerance: Vec<String>,
        /// Also write the comparison as JSON to FILE
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also write an HTML page of it, both runs' charts overlaid, to FILE
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },

    /// Write a run's results as one self-contained HTML report
    ///
    /// Charts over time (viewers, throughput, requests/s, segment TTFB p50 and
    /// p99, errors, stalled viewers), the SLO verdicts, percentile tables by
    /// request kind, what viewers felt (startup, rebuffers, live latency) and
    /// the settings. Nothing is loaded from the network when it is viewed.
    Report {
        /// A results file (`run --summary-json`, or `merge -o`)
        #[arg(value_name = "RESULTS")]
        results: PathBuf,
        /// The HTML file to write
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
    },

    /// Print (or write) a run's per-second series as CSV, for spreadsheets
    ///
    /// A header, then one row a second: its Unix time, the second's number,
    /// the viewers aimed at, active and stalled, the bytes, requests and
    /// failed requests within it, the segment TTFB p50 and p99 (native
    /// viewers), and the origin's connections, requests per second and CPU
    /// (`run --origin-status`, `--origin-node`). A figure not measured is an
    /// empty cell.
    Series {
        /// A results file (`run --summary-json`, or `merge -o`)
        #[arg(value_name = "RESULTS")]
        results: PathBuf,
        /// Write it to FILE instead of printing it
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Print (or write) a Grafana dashboard for the swarm's metrics
    ///
    /// The report's panels over the `hls_swarm_*` metrics, summed over every
    /// swarm Prometheus scrapes, and a row for the origin's nginx exporter
    /// (port 9113 of the NixOS module). Import it in Grafana and pick the
    /// Prometheus data source.
    GrafanaDashboard {
        /// Write it to FILE instead of printing it
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Print the FFmpeg arguments of one viewer (one per line)
    ViewerArgs {
        /// The stream URL
        url: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Viewer number (for the user agent)
        #[arg(long, default_value_t = 0)]
        id: u32,
        /// For `highest`/`lowest`: the program to map (else the master playlist is probed)
        #[arg(long)]
        program: Option<u32>,
        #[command(flatten)]
        viewer: RequestFlags,
    },
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse::<Cli, SwarmClient>();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // a reader that closed stdout (`… | head -1`) had what it wanted
        Err(e) if common::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let status = if e.is::<NothingPlayed>() {
                3
            } else if e.is::<SloFailed>() || e.is::<swarm_client::compare::Regressed>() {
                4
            } else {
                exit_status(&e)
            };
            swarm_client::log::emit(
                swarm_client::log::Level::Error,
                "error",
                &format!("{e:#}"),
                serde_json::json!({ "exitStatus": status }),
            );
            ExitCode::from(status)
        }
    }
}

fn run(command: Cmd<Own, swarm_client::targets::KubernetesRun>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Cmd::Common(c) => c.run::<Cli, SwarmClient>(&mut out),
        Cmd::Targets(t) => t.run::<SwarmClient>(&mut out),
        Cmd::Own(Own::Run(args)) => {
            drop(out);
            swarm_client::run::run(args)
        }
        Cmd::Own(Own::Compare {
            base,
            new,
            tolerance,
            json,
            report,
        }) => {
            drop(out);
            swarm_client::compare::run(&swarm_client::compare::Inputs {
                base,
                new,
                tolerances: tolerance,
                json,
                report,
            })
        }
        Cmd::Own(Own::Capacity { run, search }) => {
            drop(out);
            swarm_client::run::capacity(run, search)
        }
        Cmd::Own(Own::Merge {
            files,
            from_logs,
            report,
            out: merged,
            slo,
            log_format,
        }) => {
            drop(out);
            swarm_client::merge::run(
                &swarm_client::merge::Inputs {
                    files,
                    from_logs,
                    report,
                },
                merged.as_deref(),
                &slo,
                log_format,
            )
        }
        Cmd::Own(Own::GrafanaDashboard { out: file }) => {
            let text = serde_json::to_string_pretty(&swarm_client::grafana::dashboard())? + "\n";
            match file {
                Some(path) => {
                    common::artifact::write_atomic(&path, text.as_bytes())?;
                    drop(out);
                    println!("dashboard written to {}", path.display());
                }
                None => out.write_all(text.as_bytes())?,
            }
            Ok(())
        }
        Cmd::Own(Own::Report { results, out: html }) => {
            drop(out);
            let summary = swarm_client::merge::read(&results)?;
            swarm_client::report::write(&summary, &html)?;
            println!("report written to {}", html.display());
            Ok(())
        }
        Cmd::Own(Own::Series { results, out: file }) => {
            drop(out);
            let summary = swarm_client::merge::read(&results)?;
            let table = swarm_client::results::series_csv::write(&summary)?;
            match file {
                Some(f) => {
                    common::artifact::write_atomic(&f, &table)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", f.display()))?;
                    println!("series written to {}", f.display());
                }
                None => std::io::Write::write_all(&mut std::io::stdout(), &table)?,
            }
            Ok(())
        }
        Cmd::Own(Own::ViewerArgs {
            url,
            mut profile,
            id,
            program,
            viewer,
        }) => {
            check_url(&url)?;
            if viewer.no_cache {
                profile.set.push("noCache=true".into());
            }
            let l = profile.load::<SwarmClient>()?;
            let map = match (l.config.variant, program) {
                (VariantMode::All, _) => StreamMap::All,
                // as `run` does: FFmpeg viewers have no ABR
                (VariantMode::First | VariantMode::Abr, _) => StreamMap::First,
                (_, Some(p)) => StreamMap::Program(p),
                (mode, None) => {
                    let ffprobe = common::host::find_program("ffprobe", "ffmpeg")?;
                    let t = Duration::from_secs(u64::from(l.config.timeout));
                    StreamMap::Program(
                        swarm_client::run::variant_program(&ffprobe, &url, mode, t).map_err(
                            |e| {
                                anyhow::anyhow!(
                                    "cannot pick the {} variant: {e}; pass --program",
                                    mode.as_str()
                                )
                            },
                        )?,
                    )
                }
            };
            let headers = viewer
                .headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<Vec<_>, _>>()?;
            let opts = ViewerOptions {
                map,
                progress_fd: Some(PROGRESS_FD),
                resolve: viewer.resolve,
                headers,
                // the options this host's FFmpeg has, as `run` gives them
                caps: match common::host::find_program("ffmpeg", "ffmpeg") {
                    Ok(ffmpeg) => swarm_client::run::ffmpeg_capabilities(&ffmpeg),
                    Err(_) => {
                        swarm_client::log::note(
                            "ffmpeg-capability",
                            "no ffmpeg on PATH; printing the options of FFmpeg 6.1+",
                        );
                        Capabilities::FULL
                    }
                },
            };
            for a in viewer_args(&l.config, &url, id, &opts) {
                writeln!(out, "{a}")?;
            }
            Ok(())
        }
    }
}
