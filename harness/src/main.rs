//! `splitbrain`: Jepsen-style linearizability testing.
//!
//! A thin command line over the workspace's libraries: `check` judges a
//! recorded history, `bench` measures the checker.

mod bench;
mod check;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes shared by every subcommand.
pub mod exit {
    pub const VALID: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const UNKNOWN: u8 = 2;
    pub const BAD_INPUT: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "splitbrain",
    version,
    about = "Linearizability testing for replicated stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a recorded history for linearizability.
    Check(check::Args),
    /// Measure the checker on the shared Porcupine corpus and synthetic histories.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; everything else is bad usage.
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::VALID
            });
        }
    };
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
