//! `junit.xml`: the verdict in the format CI systems read.
//!
//! One test case for the run, plus one per invalid key so a CI page names the
//! keys that failed. Valid passes; invalid is a `<failure>` naming the
//! operation that cannot be placed; unknown is an `<error>` with the reason —
//! not a pass, since the check did not finish, but not a proven bug either.

use crate::{escape, RunInfo};
use checker::{KeyResult, Report, Verdict};
use std::fmt::Write;

/// The JUnit XML document for a run.
pub fn xml(report: &Report, info: &RunInfo) -> String {
    let suite = if info.name.is_empty() {
        "splitbrain"
    } else {
        &info.name
    };
    let mut cases = vec![run_case(report, suite)];
    cases.extend(
        report
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Invalid)
            .map(|k| key_case(report, k, suite)),
    );
    let failures = cases.iter().filter(|c| c.contains("<failure")).count();
    let errors = cases.iter().filter(|c| c.contains("<error")).count();
    let seconds = report.elapsed_ms / 1e3;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"splitbrain\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">\n\
         <testsuite name=\"{name}\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{seconds:.3}\">",
        n = cases.len(),
        name = escape(suite),
    );
    if let Some(seed) = info.seed {
        let _ = writeln!(
            out,
            "<properties><property name=\"seed\" value=\"{seed}\"/></properties>"
        );
    }
    for case in cases {
        out.push_str(&case);
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

fn run_case(report: &Report, suite: &str) -> String {
    let body = match report.verdict {
        Verdict::Valid => String::new(),
        Verdict::Invalid => failure(report, None),
        Verdict::Unknown => error(report.reason.as_deref()),
    };
    case(suite, "linearizable", report.elapsed_ms, &body)
}

fn key_case(report: &Report, key: &KeyResult, suite: &str) -> String {
    let name = format!("key {}", key.key.as_deref().unwrap_or("(none)"));
    case(suite, &name, 0.0, &failure(report, Some(key)))
}

fn case(suite: &str, name: &str, ms: f64, body: &str) -> String {
    format!(
        "<testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">{body}</testcase>\n",
        escape(suite),
        escape(name),
        ms / 1e3
    )
}

/// A failure naming the blocked operation, when the counterexample is about
/// this key (or about the run).
fn failure(report: &Report, key: Option<&KeyResult>) -> String {
    let cx = report.counterexample.as_ref().filter(|cx| match key {
        Some(k) => k.key == cx.key,
        None => true,
    });
    let message = match cx.and_then(|cx| cx.blocked.as_ref()) {
        Some(op) => format!("not linearizable: cannot place {op}"),
        None => "not linearizable".to_string(),
    };
    let details = cx.map_or(String::new(), |cx| {
        let mut text = format!(
            "{message}\nminimal failing sub-history ({} operations):\n",
            cx.minimal.len()
        );
        // CI pages show this text whole: a few lines, the rest is in the report.
        for op in cx.minimal.iter().take(SHOWN) {
            let _ = writeln!(text, "  {op}");
        }
        if cx.minimal.len() > SHOWN {
            let _ = writeln!(text, "  … {} more", cx.minimal.len() - SHOWN);
        }
        text + "see report.html for the partial linearization"
    });
    format!(
        "<failure type=\"not-linearizable\" message=\"{}\">{}</failure>",
        escape(&message),
        escape(&details)
    )
}

/// Operations of the minimal sub-history listed in a failure.
const SHOWN: usize = 20;

fn error(reason: Option<&str>) -> String {
    let message = format!(
        "undecided: {}; raise --check-time-limit or the memory budget and re-check",
        reason.unwrap_or("the check did not finish")
    );
    format!("<error type=\"unknown\" message=\"{}\"/>", escape(&message))
}
