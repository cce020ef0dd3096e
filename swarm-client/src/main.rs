use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::cli::{report, CommonCommand};
use swarm_client::SwarmClient;

/// A swarm of simulated HLS viewers: many `ffmpeg` processes read a live stream,
/// started at a controlled ramp rate, supervised and measured.
#[derive(Parser)]
#[command(name = "swarm-client", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Common(CommonCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    report(match cli.command {
        Command::Common(c) => c.run::<SwarmClient>(&mut std::io::stdout().lock()),
    })
}
