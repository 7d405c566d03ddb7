//! `splitbrain bench`: measurements, one subcommand per part measured.

mod checker;
mod harness;

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The checker on the shared Porcupine corpus and synthetic histories.
    Checker(checker::Args),
    /// The harness's own overhead: workers, generator and history recording
    /// against an in-process target that answers at once.
    Harness(harness::Args),
}

pub fn run(bench: Bench) -> ExitCode {
    match bench {
        Bench::Checker(args) => checker::run(args),
        Bench::Harness(args) => harness::run(args),
    }
}
