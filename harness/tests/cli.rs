//! The `splitbrain check` command as a user meets it: verdicts, exit codes,
//! counterexamples and errors.

mod common;

use common::{splitbrain, text};
use std::path::{Path, PathBuf};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

fn corpus(path: &str) -> String {
    repo(&format!("../shared/testdata/porcupine/{path}"))
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("splitbrain-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("temp file");
    path
}

#[test]
fn the_shipped_example_is_invalid_with_a_readable_counterexample() {
    let out = splitbrain(&["check", &repo("examples/stale-read.jsonl")]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("INVALID"), "{said}");
    assert!(
        said.contains("cannot be linearized: process 1 read \"x\" -> 1"),
        "{said}"
    );
    assert!(said.contains("minimal sub-history: 3 operations"), "{said}");
}

#[test]
fn report_dir_gets_plots_html_and_junit() {
    let dir = std::env::temp_dir().join(format!("splitbrain-cli-report-{}", std::process::id()));
    let out = splitbrain(&[
        "check",
        "--report",
        &dir.display().to_string(),
        &repo("examples/stale-read.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html written");
    assert!(
        html.contains("id=\"counterexample\""),
        "the report shows the counterexample"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml written");
    assert!(junit.contains("<failure"), "{junit}");
    for plot in ["latency-raw.png", "latency-quantiles.png", "rate.png"] {
        assert!(dir.join(plot).is_file(), "{plot} written");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn valid_history_exits_zero() {
    let out = splitbrain(&["check", &corpus("jepsen/etcd_002.log")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("VALID"));
}

#[test]
fn json_report_parses_and_names_the_verdict() {
    let out = splitbrain(&["check", "--json", &corpus("kv/c10-bad.txt")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(report["report"]["verdict"], "invalid");
    assert_eq!(report["model"], "kv");
    assert!(report["report"]["counterexample"]["minimal"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
}

/// A history the fast paths do not decide and whose search takes several
/// slices (about 90,000 steps), so a budget runs out before the verdict.
const SEARCHED: &str = "jepsen/etcd_080.log";

#[test]
fn exhausted_time_budget_is_unknown_not_valid() {
    let out = splitbrain(&["check", "--time-limit", "0.000001", &corpus(SEARCHED)]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("UNKNOWN: time limit reached"), "{said}");
}

#[test]
fn exhausted_memory_budget_is_unknown_not_valid() {
    let out = splitbrain(&["check", "--memory-limit", "0", &corpus(SEARCHED)]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("UNKNOWN: memory budget of 0 MiB exhausted"),
        "{said}"
    );
    assert!(
        said.contains("operations linearized on the current path"),
        "says how far it got: {said}"
    );
}

#[test]
fn malformed_input_names_file_and_line() {
    let path = temp_file(
        "broken.jsonl",
        "{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":1,\"f\":\"read\",\"key\":\"a\"}\n{\"index\":1,\"time\":5,\"type\":\"ok\",\"process\":1,\n",
    );
    let out = splitbrain(&["check", "--format", "jsonl", &path.display().to_string()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains(&format!("{}:2:", path.display())), "{said}");
}

#[test]
fn operations_the_model_does_not_know_are_bad_input() {
    let path = temp_file(
        "append.jsonl",
        "{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":1,\"f\":\"append\",\"key\":\"a\",\"value\":\"x\"}\n",
    );
    let out = splitbrain(&["check", "--model", "register", &path.display().to_string()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("the register model knows read and write"),
        "{said}"
    );
}

#[test]
fn usage_errors_exit_three() {
    let out = splitbrain(&["check", "--model", "queue", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = splitbrain(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out).contains("/nonexistent/history.jsonl"),
        "{}",
        text(&out)
    );
}
