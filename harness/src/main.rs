//! `splitbrain`: Jepsen-style linearizability testing.
//!
//! `splitbrain run` starts a local cluster of the system under test, drives
//! concurrent clients against it while a nemesis injects faults, records what
//! every client saw, and checks that history for linearizability. `check`
//! judges a recorded history, `bench` measures the checker and the harness,
//! `cleanup` removes what a crashed run left behind.
//!
//! # Architecture of a run
//!
//! The roles are Jepsen's, as Rust traits and tasks, one per module:
//!
//! - **Client** (the `targets` crate, one module per system): applies
//!   one operation to the system and says whether it took effect (`ok`),
//!   definitely did not (`fail`) or may have (`info`).
//! - **Target** ([`target`]): what differs between systems under test (node
//!   command, leader lookup, client), so they share one runner.
//! - **Generator** ([`generator`]): the seeded stream of operations of the
//!   `register` workload, over keys that rotate so each stays checkable.
//! - **Workers** ([`workers`]): one Tokio task per client, each a logical
//!   process; an `info` outcome makes it continue as a new process.
//! - **Recorder** ([`recorder`]): one thread appends every event to
//!   `history.jsonl` as it happens and keeps the in-memory history.
//! - **Nemesis** ([`schedule`] over the `nemesis` crate): starts and heals
//!   partitions, kills and pauses on a schedule, recorded in the history.
//! - **Checker** (the `checker` crate): decides linearizability per key;
//!   [`summary`] prints its verdict.
//! - **The run** ([`runner`]): setup, main phase, heal, final reads,
//!   teardown, check, in a run directory ([`store`]) with a live progress
//!   line ([`progress`]).

mod bench;
mod check;
mod generator;
mod progress;
mod recorder;
mod runner;
mod schedule;
mod store;
mod summary;
mod target;
mod workers;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes shared by every subcommand.
pub mod exit {
    use checker::Verdict;

    pub const VALID: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const UNKNOWN: u8 = 2;
    /// Bad input, bad usage, or a run that could not be set up.
    pub const BAD_INPUT: u8 = 3;

    pub fn verdict(verdict: Verdict) -> u8 {
        match verdict {
            Verdict::Valid => VALID,
            Verdict::Invalid => INVALID,
            Verdict::Unknown => UNKNOWN,
        }
    }
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
    /// Run a workload against a local cluster under faults, then check it.
    Run(Box<runner::Args>),
    /// Check a recorded history for linearizability.
    Check(check::Args),
    /// Measure the checker or the harness.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Remove the namespaces, interfaces, rules and nodes a crashed run left behind.
    Cleanup,
    /// Serve a web page listing the runs in the store, with their reports and files.
    Serve {
        /// The store of run directories.
        #[arg(long, default_value = "store")]
        store: std::path::PathBuf,
        /// Address to listen on; loopback unless you say otherwise.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
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
        Command::Run(args) => runner::run(*args),
        Command::Check(args) => check::run(args),
        Command::Bench(bench) => bench::run(bench),
        Command::Cleanup => cleanup(),
        Command::Serve { store, listen } => {
            println!("serving {} on http://{listen}/", store.display());
            match results::serve(&store, listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot serve {} on {listen}: {e}", store.display());
                    ExitCode::from(exit::BAD_INPUT)
                }
            }
        }
    }
}

fn cleanup() -> ExitCode {
    match nemesis::cleanup() {
        Ok(removed) if removed.is_empty() => {
            println!("nothing to clean up");
            ExitCode::SUCCESS
        }
        Ok(removed) => {
            for line in removed {
                println!("removed {line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}
