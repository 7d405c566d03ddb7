//! Every artifact `render` writes, for valid and invalid runs.

mod common;

use checker::{ModelChoice, Verdict};
use common::*;
use results::{plots, render, render_as, ImageFormat, RunInfo};
use std::time::Instant;

#[test]
fn valid_run_renders_plots_report_and_a_passing_junit() {
    let history = big_valid(5_000);
    let report = check(&history, ModelChoice::CasRegister);
    assert_eq!(report.verdict, Verdict::Valid);
    let dir = tempfile::tempdir().unwrap();
    let written = render(dir.path(), &history, &report, &info("valid")).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "latency-raw.png",
            "latency-quantiles.png",
            "rate.png",
            "report.html",
            "junit.xml"
        ]
    );
    for name in plots::NAMES {
        assert_eq!(
            png_size(&dir.path().join(format!("{name}.png"))),
            plots::SIZE,
            "{name}"
        );
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains(r#"<span class="verdict valid">valid</span>"#));
    assert!(
        !html.contains("id=\"counterexample\""),
        "a valid run has no counterexample"
    );
    // Three embedded plots, no external resource.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 3);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    // The summary and the nemesis timeline.
    for text in [
        "raftkv",
        "<th>seed</th><td>42</td>",
        "majorities-ring",
        "start-partition",
        "node 4",
    ] {
        assert!(html.contains(text), "report.html lacks {text:?}");
    }
    assert_eq!(report.keys.len(), 10);
    assert_eq!(
        html.matches("<tr><td><code>").count(),
        10,
        "one row per key"
    );
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert_eq!(junit_counts(&junit), (1, 0, 0));
}

#[test]
fn stale_read_shows_the_counterexample_and_fails_junit() {
    let history = stale_read();
    let report = check(&history, ModelChoice::Auto);
    assert_eq!(report.verdict, Verdict::Invalid);
    let cx = report.counterexample.as_ref().unwrap();
    let blocked = cx.blocked.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    render(dir.path(), &history, &report, &info("stale-read")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains(r#"<section id="counterexample">"#));
    assert!(
        html.contains(r#"<g class="op blocked""#),
        "the blocked operation is highlighted"
    );
    for op in cx.minimal.iter().chain([blocked]) {
        let text = results_escape(&op.to_string());
        assert!(html.contains(&text), "report.html lacks {text}");
    }
    // Every step of the partial linearization is numbered, with its state on hover.
    for (n, step) in cx.partial.iter().enumerate() {
        assert!(html.contains(&format!("#{} ", n + 1)), "step {}", n + 1);
        assert!(html.contains(&format!("state after: {}", results_escape(&step.state))));
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    // The run and key "x" fail; both name the blocked operation.
    assert_eq!(junit_counts(&junit), (2, 1 + 1, 0));
    let doc = roxmltree::Document::parse(&junit).unwrap();
    for failure in doc.descendants().filter(|n| n.has_tag_name("failure")) {
        let message = failure.attribute("message").unwrap();
        assert_eq!(message, format!("not linearizable: cannot place {blocked}"));
    }
}

#[test]
fn porcupine_kv_counterexample_renders() {
    let history = kv_bad();
    let report = check(&history, ModelChoice::Kv);
    assert_eq!(report.verdict, Verdict::Invalid);
    let dir = tempfile::tempdir().unwrap();
    render(dir.path(), &history, &report, &RunInfo::default()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let cx = report.counterexample.as_ref().unwrap();
    assert!(html.contains("id=\"counterexample\""));
    assert!(html.contains(&results_escape(&cx.blocked.as_ref().unwrap().to_string())));
    assert!(html.contains("No faults were injected."));
    for name in plots::NAMES {
        assert_eq!(
            png_size(&dir.path().join(format!("{name}.png"))),
            plots::SIZE
        );
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let (tests, failures, errors) = junit_counts(&junit);
    assert_eq!(
        (failures, errors),
        (tests, 0),
        "every case fails: the run and its invalid keys"
    );
}

#[test]
fn hundred_thousand_operations_give_a_small_fast_report() {
    let history = big_invalid(100_000);
    // Shrinking this history's counterexample cannot remove anything (every
    // read depends on every write) and would spend its whole 10 s budget.
    let ops = checker::operations(&history, "big").unwrap();
    let options = checker::Options {
        minimize: false,
        ..Default::default()
    };
    let report = checker::check_with(
        ModelChoice::CasRegister,
        checker::FailedCas::Ignore,
        &ops,
        &options,
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let cx = report.counterexample.as_ref().unwrap();
    assert!(
        cx.partial.len() > 1_000,
        "a long partial linearization: {}",
        cx.partial.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    render(dir.path(), &history, &report, &info("big")).unwrap();
    let elapsed = started.elapsed();
    let size = std::fs::metadata(dir.path().join("report.html"))
        .unwrap()
        .len();
    eprintln!("100k ops: rendered in {elapsed:?}, report.html {size} bytes");
    assert!(size < 2_000_000, "report.html is {size} bytes");
    assert!(elapsed.as_secs_f64() < 3.0, "rendering took {elapsed:?}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // The window: the last 200 steps, not the whole partial linearization.
    let last = cx.partial.len();
    assert!(html.contains(&format!("#{last} ")));
    assert!(!html.contains(&format!("#{} ", last - 200)));
    assert!(
        html.matches("<g class=\"op").count() <= 2 * 200 + 1,
        "at most two windows and the blocked op"
    );
}

#[test]
fn svg_plots_are_inlined() {
    let history = stale_read();
    let report = check(&history, ModelChoice::Auto);
    let dir = tempfile::tempdir().unwrap();
    let written = render_as(
        dir.path(),
        &history,
        &report,
        &info("svg"),
        ImageFormat::Svg,
    )
    .unwrap();
    assert!(written.iter().any(|p| p.ends_with("rate.svg")));
    let svg = std::fs::read_to_string(dir.path().join("latency-raw.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Latency of every operation"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<div class=\"plot\"").count(), 3);
    assert!(!html.contains("data:image/png"));
}

#[test]
fn run_info_reads_the_harness_test_json() {
    let test = serde_json::json!({
        "name": "register", "seed": 9, "raftkv_binary": "/bin/raftkv", "splitbrain_version": "0.1.0",
        "options": {"target": "raftkv", "nodes": 3, "workload": "register", "time_limit": 30.0,
                    "nemesis": ["partition", "kill"]}
    });
    let info = RunInfo::from_test_json(&test);
    assert_eq!(info.name, "register");
    assert_eq!(
        (info.target.as_str(), info.nodes, info.seed),
        ("raftkv", 3, Some(9))
    );
    assert_eq!(info.duration, Some(std::time::Duration::from_secs(30)));
    assert_eq!(info.nemesis, ["partition", "kill"]);
    let dir = tempfile::tempdir().unwrap();
    let err = RunInfo::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// How the report writes text (the crate's escaping is private).
fn results_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
