//! The run directory (`store/<test>/<timestamp>/`) and what is rendered into it.
//!
//! A run directory holds `history.jsonl`, `test.json` and `results.json`
//! (written by the harness). From a run's [`History`], the checker's
//! [`Report`] and a [`RunInfo`], [`render`] adds:
//!
//! - `latency-raw.png`, `latency-quantiles.png`, `rate.png` ([`plots`]): the
//!   Jepsen plots, fault intervals shaded as translucent bands;
//! - `report.html` ([`report`]): one self-contained page with the summary, the
//!   plots, the per-key verdicts, the nemesis timeline and, for an invalid run,
//!   the counterexample drawn as lanes of operations;
//! - `junit.xml` ([`junit`]): for CI.
//!
//! [`serve`](serve::serve) lists the runs of a store and serves their files.

pub mod faults;
pub mod junit;
pub mod plots;
pub mod report;
pub mod serve;
mod timeline;

use checker::{History, Operation, Report};
use serde_json::Value as Json;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use plots::ImageFormat;
pub use serve::serve;

/// What a run was: the summary at the top of the report and the name of the
/// JUnit suite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    /// The test's name (`store/<name>/...`).
    pub name: String,
    pub target: String,
    pub nodes: usize,
    pub workload: String,
    pub seed: Option<u64>,
    /// How long the main phase was asked to run.
    pub duration: Option<Duration>,
    /// Fault kinds the nemesis was allowed to inject.
    pub nemesis: Vec<String>,
}

impl RunInfo {
    /// Reads the harness's `test.json` (`{name, seed, options: {target, nodes,
    /// workload, time_limit, nemesis, ...}}`). Missing fields stay empty, so a
    /// `test.json` from an older or newer harness still gives a report.
    pub fn from_test_json(test: &Json) -> RunInfo {
        let options = &test["options"];
        let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
        RunInfo {
            name: text(&test["name"]),
            target: text(&options["target"]),
            nodes: options["nodes"].as_u64().unwrap_or(0) as usize,
            workload: text(&options["workload"]),
            seed: test["seed"].as_u64(),
            duration: options["time_limit"]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
            nemesis: options["nemesis"]
                .as_array()
                .map(|kinds| kinds.iter().map(text).collect())
                .unwrap_or_default(),
        }
    }

    /// Reads `test.json` in the run directory `dir`.
    pub fn read(dir: &Path) -> io::Result<RunInfo> {
        Ok(RunInfo::from_test_json(&read_json(&dir.join("test.json"))?))
    }
}

/// Reads a JSON file, saying which file in errors.
pub(crate) fn read_json(path: &Path) -> io::Result<Json> {
    let text = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not valid JSON ({e}); re-run the check to rewrite it",
                path.display()
            ),
        )
    })
}

/// File names [`render`] writes, so callers and the index page agree.
pub const REPORT_HTML: &str = "report.html";
pub const JUNIT_XML: &str = "junit.xml";

/// Writes the plots (PNG), `report.html` and `junit.xml` into `dir`; returns
/// the paths written.
pub fn render(
    dir: &Path,
    history: &History,
    report: &Report,
    info: &RunInfo,
) -> io::Result<Vec<PathBuf>> {
    render_as(dir, history, report, info, ImageFormat::Png)
}

/// [`render`] with the plots in `format`. SVG plots are inlined into the
/// report; PNG ones are embedded as data URIs.
pub fn render_as(
    dir: &Path,
    history: &History,
    report: &Report,
    info: &RunInfo,
    format: ImageFormat,
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create the run directory {}: {e}", dir.display()),
        )
    })?;
    let ops = operations(history)?;
    let faults = faults::intervals(history);
    let mut written = plots::draw_all(dir, &ops, &faults, format)?;
    let html = dir.join(REPORT_HTML);
    let page = report::html(history, &ops, report, info, &faults, &written)?;
    write(&html, page.as_bytes())?;
    let junit = dir.join(JUNIT_XML);
    write(&junit, junit::xml(report, info).as_bytes())?;
    written.extend([html, junit]);
    Ok(written)
}

fn operations(history: &History) -> io::Result<Vec<Operation>> {
    checker::operations(history, "history").map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot pair the history's operations: {e}; check history.jsonl"),
        )
    })
}

/// Writes a file, naming it in the error.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

/// Escapes text for HTML and XML bodies and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
