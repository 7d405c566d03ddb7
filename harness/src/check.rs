//! `splitbrain check HISTORY`: judge a recorded history and explain the verdict.

use crate::{exit, summary};
use checker::check::{ModelChoice, Options};
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
    /// Also write plots, `report.html` and `junit.xml` into this directory.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// With --report: draw the plots as SVG instead of PNG.
    #[arg(long, requires = "report")]
    svg: bool,
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
        summary::print(
            &report,
            &format!(
                "checked in {:.1} ms ({:.1} ms with reading)",
                report.elapsed_ms,
                started.elapsed().as_secs_f64() * 1e3
            ),
        );
    }
    if let Some(dir) = &args.report {
        let name = args
            .history
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = results::RunInfo {
            name,
            target: format!("recorded history ({format})"),
            ..Default::default()
        };
        let format = if args.svg {
            results::ImageFormat::Svg
        } else {
            results::ImageFormat::Png
        };
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| results::render_as(dir, &history, &report, &info, format));
        match written {
            Ok(_) => eprintln!("report: {}", dir.join(results::REPORT_HTML).display()),
            Err(e) => {
                return fail(&format!(
                    "cannot write the report into {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    ExitCode::from(exit::verdict(report.verdict))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::BAD_INPUT)
}
