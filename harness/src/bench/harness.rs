//! `splitbrain bench harness`: how many operations per second the harness
//! itself can drive and record, against a target that answers at once.
//!
//! It runs the same workers, generator and recorder as `splitbrain run`, so
//! the figure is the ceiling the harness puts on any real target.

use crate::generator::{Generator, Mix};
use crate::workers::{self, Counts, Pace};
use crate::{exit, recorder};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use targets::{Client, Completion, Op};

#[derive(clap::Args)]
pub struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Workers.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Where to write the recorded history (deleted afterwards).
    #[arg(long, default_value_t = std::env::temp_dir().display().to_string())]
    dir: String,
}

/// A target that answers every operation at once: writes and cas succeed,
/// reads find nothing.
struct Noop;

impl Client for Noop {
    async fn invoke(&mut self, op: &Op) -> Completion {
        Completion::ok(op.input())
    }
}

pub fn run(args: Args) -> ExitCode {
    match measure(&args) {
        Ok((ops, events, elapsed)) => {
            println!(
                "harness: {ops} operations ({events} events recorded) in {:.2} s = {:.0} ops/s \
                 with {} workers against a no-op target",
                elapsed.as_secs_f64(),
                ops as f64 / elapsed.as_secs_f64(),
                args.concurrency
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

fn measure(args: &Args) -> Result<(u64, usize, Duration), String> {
    let path =
        PathBuf::from(&args.dir).join(format!("splitbrain-bench-{}.jsonl", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let (recorder, recording) =
        recorder::start(&path).map_err(|e| format!("{}: {e}; pass --dir DIR", path.display()))?;
    let counts = Arc::new(Counts::default());
    let generator = Arc::new(Mutex::new(Generator::new(42, 8, 200, Mix::DEFAULT)));
    let pace = Pace {
        op_timeout: Duration::from_secs(1),
        rate: None,
        seed: 42,
    };
    let started = Instant::now();
    runtime.block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_secs_f64(args.seconds);
        let clients = (0..args.concurrency.max(1)).map(|_| Noop).collect();
        workers::run(clients, generator, &recorder, &pace, &counts, until).await;
    });
    drop(recorder);
    // The figure includes writing out what was still queued.
    let history = recording
        .finish()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    Ok((counts.total(), history.len(), elapsed))
}
