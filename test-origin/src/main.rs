use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::cli::{report, CommonCommand};
use test_origin::TestOrigin;

/// A live HLS test origin: FFmpeg encodes a synthetic stream, nginx serves it
/// with cache headers tuned to the segment duration.
#[derive(Parser)]
#[command(name = "test-origin", version, about, long_about = None)]
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
        Command::Common(c) => c.run::<TestOrigin>(&mut std::io::stdout().lock()),
    })
}
