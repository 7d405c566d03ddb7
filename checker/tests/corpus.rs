//! Every history in the shared Porcupine corpus gets the verdict its
//! MANIFEST.md lists. The corpus is read from `../shared/testdata/porcupine`.

use checker::check::{check_with, ModelChoice, Options, Verdict};
use checker::import::{read_history, Format};
use checker::FailedCas;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/porcupine")
}

/// (file, expected verdict) rows of the manifest's tables.
fn manifest() -> Vec<(String, Verdict)> {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.md"))
        .expect("the corpus manifest is readable");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1)?;
            if !(file.ends_with(".log") || file.ends_with(".txt")) {
                return None;
            }
            let verdict = cells[2..].iter().find_map(|c| match *c {
                "linearizable" => Some(Verdict::Valid),
                "NOT linearizable" => Some(Verdict::Invalid),
                c if c.starts_with("empty file") => Some(Verdict::Valid),
                _ => None,
            })?;
            Some((file.to_string(), verdict))
        })
        .collect()
}

#[test]
fn every_corpus_history_gets_its_manifest_verdict() {
    let rows = manifest();
    assert_eq!(
        rows.len(),
        103 + 6,
        "the manifest lists 103 etcd logs and 6 kv logs"
    );
    let mut wrong = Vec::new();
    for (file, expected) in &rows {
        let path = corpus().join(file);
        let (history, format) = read_history(&path, Format::Auto).unwrap_or_else(|e| panic!("{e}"));
        let ops = checker::operations(&history, file).unwrap_or_else(|e| panic!("{e}"));
        let failed_cas = if format == Format::PorcupineEtcd {
            FailedCas::Observe
        } else {
            FailedCas::Ignore
        };
        let report = check_with(ModelChoice::Auto, failed_cas, &ops, &Options::default())
            .expect("fits the model");
        if report.verdict != *expected {
            wrong.push(format!(
                "{file}: expected {expected:?}, got {:?} ({:?})",
                report.verdict, report.reason
            ));
            continue;
        }
        if report.verdict == Verdict::Invalid {
            match &report.counterexample {
                None => wrong.push(format!("{file}: invalid without a counterexample")),
                Some(c)
                    if c.minimal.is_empty()
                        || c.blocked.is_none()
                        || c.partial.is_empty() && c.minimal.len() > 1 =>
                {
                    wrong.push(format!("{file}: incomplete counterexample {c:?}"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}
