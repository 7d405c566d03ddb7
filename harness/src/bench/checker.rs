//! `splitbrain bench checker`: the checker's speed on the shared Porcupine corpus and
//! on synthetic million-operation histories, as a table with the targets.

use checker::check::{check_with, ModelChoice, Options, Verdict};
use checker::import::{self, Format};
use checker::synth::{self, Spec};
use checker::{FailedCas, Operation};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The Porcupine test data (`jepsen/` and `kv/` inside).
    #[arg(long, default_value = "../shared/testdata/porcupine")]
    data: PathBuf,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Operations in each synthetic register history.
    #[arg(long, default_value_t = 1_000_000)]
    synthetic_ops: usize,
}

struct Row {
    name: String,
    ops: usize,
    total_ms: f64,
    worst: Option<(f64, String)>,
    target: &'static str,
    met: bool,
}

pub fn run(args: Args) -> ExitCode {
    match measure(&args) {
        Ok(rows) => {
            print_table(&rows);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(crate::exit::BAD_INPUT)
        }
    }
}

/// Median check time in milliseconds; the history is read beforehand.
///
/// Verdicts only: shrinking a counterexample is extra work that Porcupine's
/// figures do not include either; the `minimized` row measures it separately.
fn time_check(
    ops: &[Operation],
    model: ModelChoice,
    failed_cas: FailedCas,
    runs: usize,
) -> (f64, Verdict) {
    let options = Options {
        minimize: false,
        ..Options::default()
    };
    let mut times = Vec::with_capacity(runs);
    let mut verdict = Verdict::Unknown;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        verdict = check_with(model, failed_cas, ops, &options)
            .expect("corpus operations fit the model")
            .verdict;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], verdict)
}

fn read_ops(path: &Path) -> Result<Vec<Operation>, String> {
    let (history, _) = import::read_history(path, Format::Auto).map_err(|e| e.to_string())?;
    checker::operations(&history, &path.display().to_string()).map_err(|e| e.to_string())
}

fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: {e} (pass --data DIR)", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    Ok(files)
}

fn measure(args: &Args) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();

    let mut total = 0.0;
    let mut ops_total = 0;
    let mut worst = (0.0, String::new());
    let etcd = files(&args.data.join("jepsen"), "log")?;
    for path in &etcd {
        let ops = read_ops(path)?;
        ops_total += ops.len();
        let (ms, _) = time_check(
            &ops,
            ModelChoice::CasRegister,
            FailedCas::Observe,
            args.runs,
        );
        total += ms;
        if ms > worst.0 {
            worst = (
                ms,
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    rows.push(Row {
        name: format!("etcd corpus ({} files)", etcd.len()),
        ops: ops_total,
        total_ms: total,
        met: total <= 25.0 && worst.0 <= 10.0,
        worst: Some(worst),
        target: "≤ 25 ms total, worst ≤ 10 ms",
    });

    for path in files(&args.data.join("kv"), "txt")? {
        let ops = read_ops(&path)?;
        let (ms, _) = time_check(&ops, ModelChoice::Kv, FailedCas::Ignore, args.runs);
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let is_c50_ok = name == "c50-ok";
        rows.push(Row {
            name: format!("kv {name}"),
            ops: ops.len(),
            total_ms: ms,
            worst: None,
            target: if is_c50_ok { "≤ 20 ms" } else { "" },
            met: !is_c50_ok || ms <= 20.0,
        });
    }

    for clients in [10, 50] {
        let spec = Spec {
            seed: 42,
            clients,
            ops: args.synthetic_ops,
            read_ratio: 0.5,
            crash_ratio: 0.01,
            keys: 1,
        };
        let history = synth::register_history(&spec);
        let ops = checker::operations(&history, "synthetic").map_err(|e| e.to_string())?;
        let (ms, verdict) = time_check(
            &ops,
            ModelChoice::Register,
            FailedCas::Ignore,
            args.runs.min(3),
        );
        if verdict != Verdict::Valid {
            return Err(format!(
                "the synthetic history at {clients} clients should be valid, got {verdict:?}"
            ));
        }
        rows.push(Row {
            name: format!("unique-value register, {clients} clients"),
            ops: ops.len(),
            total_ms: ms,
            worst: None,
            target: "≤ 150 ms",
            met: ms <= 150.0,
        });
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!("| workload | ops | check time (ms) | worst file | target | met |");
    println!("|---|---:|---:|---|---|---|");
    for row in rows {
        let worst = row
            .worst
            .as_ref()
            .map(|(ms, file)| format!("{ms:.2} ms ({file})"))
            .unwrap_or_default();
        let met = if row.target.is_empty() {
            ""
        } else if row.met {
            "yes"
        } else {
            "NO"
        };
        println!(
            "| {} | {} | {:.2} | {worst} | {} | {met} |",
            row.name, row.ops, row.total_ms, row.target
        );
    }
}
