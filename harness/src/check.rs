//! `splitbrain check HISTORY`: judge a recorded history and explain the verdict.

use crate::exit;
use checker::check::{Counterexample, ModelChoice, Options, Report, Verdict};
use checker::import::{self, Format};
use checker::FailedCas;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The history file.
    history: PathBuf,
    /// Its format: auto, jsonl, edn, porcupine-etcd or porcupine-kv.
    #[arg(long, default_value = "auto")]
    format: Format,
    /// The model: auto, register, cas-register or kv.
    #[arg(long, default_value = "auto")]
    model: ModelChoice,
    /// How a failed cas reads: `observe` (the value differed from the expected
    /// one, as Porcupine's etcd model) or `ignore` (nothing happened, as
    /// Knossos). `auto` observes for porcupine-etcd logs and ignores otherwise.
    #[arg(long, default_value = "auto", value_parser = ["auto", "observe", "ignore"])]
    failed_cas: String,
    /// Give up with `unknown` after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
    /// Give up with `unknown` when the search holds this much memory.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    memory_limit: usize,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Skip shrinking the counterexample.
    #[arg(long)]
    no_minimize: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let (history, format) = match import::read_history(&args.history, args.format) {
        Ok(read) => read,
        Err(e) => return fail(&e.to_string()),
    };
    let source = args.history.display().to_string();
    let ops = match checker::operations(&history, &source) {
        Ok(ops) => ops,
        Err(e) => return fail(&e.to_string()),
    };
    let failed_cas = match (args.failed_cas.as_str(), format) {
        ("observe", _) | ("auto", Format::PorcupineEtcd) => FailedCas::Observe,
        _ => FailedCas::Ignore,
    };
    let model = args.model.resolve(&ops);
    let options = Options {
        time_limit: args.time_limit.map(Duration::from_secs_f64),
        memory_limit: args.memory_limit << 20,
        threads: args.threads,
        minimize: !args.no_minimize,
    };
    let op_count = ops.len();
    let report = match checker::check_with(model, failed_cas, &ops, &options) {
        Ok(report) => report,
        Err(e) => return fail(&format!("{source}: {e}")),
    };
    if args.json {
        let out = serde_json::json!({
            "history": source,
            "format": format.to_string(),
            "events": history.len(),
            "model": model.name(),
            "failed_cas": failed_cas,
            "report": report,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a report serializes")
        );
    } else {
        println!(
            "history: {source} ({format}, {} events, {op_count} operations, {} keys)",
            history.len(),
            report.keys.len()
        );
        println!("model:   {} (failed cas: {failed_cas:?})", model.name());
        print_summary(&report, started.elapsed());
    }
    ExitCode::from(match report.verdict {
        Verdict::Valid => exit::VALID,
        Verdict::Invalid => exit::INVALID,
        Verdict::Unknown => exit::UNKNOWN,
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::BAD_INPUT)
}

fn print_summary(report: &Report, total: Duration) {
    let headline = match report.verdict {
        Verdict::Valid => "VALID: the history is linearizable".to_string(),
        Verdict::Invalid => "INVALID: the history is not linearizable".to_string(),
        Verdict::Unknown => format!(
            "UNKNOWN: {}",
            report
                .reason
                .as_deref()
                .unwrap_or("the check did not finish")
        ),
    };
    println!("verdict: {headline}");
    println!(
        "checked in {:.1} ms ({:.1} ms with reading)",
        report.elapsed_ms,
        total.as_secs_f64() * 1e3
    );
    let undecided: Vec<_> = report
        .keys
        .iter()
        .filter(|k| k.verdict == Verdict::Unknown)
        .collect();
    if report.verdict == Verdict::Unknown {
        for key in undecided.iter().take(5) {
            println!("  {}", key.reason.as_deref().unwrap_or("undecided"));
        }
    }
    if let Some(c) = &report.counterexample {
        print_counterexample(c);
    }
}

fn print_counterexample(c: &Counterexample) {
    const SHOWN: usize = 10;
    let key = c
        .key
        .as_deref()
        .map(|k| format!(" for key {k:?}"))
        .unwrap_or_default();
    println!("\ncounterexample{key}:");
    if let Some(blocked) = &c.blocked {
        println!("  cannot be linearized: {blocked}");
    }
    let skipped = c.partial.len().saturating_sub(SHOWN);
    println!(
        "  longest partial linearization: {} operations{}",
        c.partial.len(),
        if skipped > 0 {
            format!(", the last {SHOWN} shown")
        } else {
            String::new()
        }
    );
    for step in &c.partial[skipped..] {
        println!("    {:<60} state {}", step.op.to_string(), step.state);
    }
    println!(
        "  minimal sub-history: {} operations that cannot be linearized on their own{}:",
        c.minimal.len(),
        if c.minimal_is_one_minimal {
            ""
        } else {
            " (shrinking stopped at its time budget)"
        }
    );
    for op in &c.minimal {
        println!("    {op}");
    }
}
