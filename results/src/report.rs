//! `report.html`: one self-contained page per run.
//!
//! Everything is inside the file — styles, the plots (PNG as base64 data URIs,
//! SVG inline), a few lines of script — so it can be mailed, attached to a CI
//! job or opened from a laptop with no network. Long lists are capped (the full
//! data is in `results.json` and `history.jsonl` next to it) and the
//! counterexample only shows a window around the failure, so the page stays
//! small for histories of millions of operations.

use crate::faults::{self, Fault};
use crate::{escape, timeline, RunInfo};
use base64::Engine;
use checker::{History, Operation, Outcome, Report, Verdict};
use std::fmt::Write;
use std::io;
use std::path::PathBuf;

/// Rows shown in the per-key and nemesis tables.
const ROWS: usize = 500;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1300px; }
h1 .verdict { padding: 0 .3em; border-radius: 4px; color: #fff; }
.valid { background: #2c7a2c; } .invalid { background: #c62828; } .unknown { background: #b26a00; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
img.plot, .plot svg { max-width: 100%; height: auto; display: block; margin: .5em 0; }
code { font-size: 13px; }
.blocked { color: #c62828; font-weight: bold; }
.cx { display: flex; border: 1px solid #ccc; background: #fcfcfc; }
.cx svg.names { flex: none; border-right: 1px solid #ccc; }
.lanes { overflow-x: auto; flex: 1; }
.cx text { font: 11px monospace; pointer-events: none; }
.cx text.lane, .cx text.tick { fill: #777; }
.lanes line.lane { stroke: #eee; }
.op rect { fill: #9ecae1; stroke: #3182bd; }
.op.minimal rect { stroke: #08306b; stroke-width: 3; }
.op.minimal:not(.placed) rect { fill: #fdd98a; }
.op.blocked rect { fill: #ef5350; stroke: #8e0000; stroke-width: 3; }
.op.open rect { stroke-dasharray: 4 3; fill-opacity: .5; }
.op:hover rect { stroke: #000; stroke-width: 3; }
.state { font-family: monospace; min-height: 1.4em; background: #fffbe6; padding: 2px 6px; }
.faultlane { font: 11px sans-serif; }
"#;

/// Shows the hovered operation's state below the lanes (starting with the
/// blocked operation), and scrolls the lanes to the blocked operation, which is
/// at the right end of a long window.
const SCRIPT: &str = r#"
(function () {
  var lanes = document.getElementById('cx-lanes');
  if (!lanes) return;
  var state = document.getElementById('cx-state');
  var show = function (g) { if (g) state.textContent = g.getAttribute('data-info'); };
  lanes.addEventListener('mouseover', function (e) { show(e.target.closest && e.target.closest('g.op')); });
  var blocked = lanes.querySelector('g.blocked');
  show(blocked);
  if (blocked) lanes.scrollLeft = Math.max(0, blocked.querySelector('rect').x.baseVal.value - lanes.clientWidth / 2);
})();
"#;

/// The page for a run. `plots` are the files [`crate::plots::draw_all`] wrote.
pub fn html(
    history: &History,
    ops: &[Operation],
    report: &Report,
    info: &RunInfo,
    faults: &[Fault],
    plots: &[PathBuf],
) -> io::Result<String> {
    let verdict = verdict_name(report.verdict);
    let title = if info.name.is_empty() {
        "Splitbrain run"
    } else {
        &info.name
    };
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {verdict}</title><style>{STYLE}</style></head><body>\
         <h1>{} <span class=\"verdict {verdict}\">{verdict}</span></h1>",
        escape(title),
        escape(title)
    );
    summary(&mut out, history, ops, report, info);
    if let Some(cx) = &report.counterexample {
        out.push_str(&timeline::section(cx));
    }
    out.push_str("<h2>Plots</h2>");
    for path in plots {
        out.push_str(&embed(path)?);
    }
    keys(&mut out, report);
    nemesis(&mut out, history, faults);
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    Ok(out)
}

pub(crate) fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

fn summary(
    out: &mut String,
    history: &History,
    ops: &[Operation],
    report: &Report,
    info: &RunInfo,
) {
    let count = |o: Outcome| ops.iter().filter(|op| op.outcome == o).count();
    let span = history.events.last().map_or(0.0, |e| e.time as f64 / 1e9);
    let or_dash = |s: &str| {
        if s.is_empty() {
            "—".to_string()
        } else {
            escape(s)
        }
    };
    let rows = [
        ("target", or_dash(&info.target)),
        (
            "nodes",
            if info.nodes == 0 {
                "—".into()
            } else {
                info.nodes.to_string()
            },
        ),
        ("workload", or_dash(&info.workload)),
        ("nemesis", or_dash(&info.nemesis.join(", "))),
        ("seed", info.seed.map_or("—".into(), |s| s.to_string())),
        (
            "duration",
            match info.duration {
                Some(d) => format!(
                    "{:.1} s requested, history spans {span:.1} s",
                    d.as_secs_f64()
                ),
                None => format!("history spans {span:.1} s"),
            },
        ),
        (
            "operations",
            format!(
                "{} ({} ok, {} failed, {} indeterminate), {} events",
                ops.len(),
                count(Outcome::Ok),
                count(Outcome::Fail),
                count(Outcome::Info),
                history.len()
            ),
        ),
        (
            "verdict",
            format!(
                "<b>{}</b>{} (checked in {:.0} ms)",
                verdict_name(report.verdict),
                report
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {}", escape(r))),
                report.elapsed_ms
            ),
        ),
    ];
    out.push_str("<table class=\"summary\">");
    for (name, value) in rows {
        let _ = write!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>");
}

/// A plot as an `<img>` with a data URI (PNG) or inline (SVG).
fn embed(path: &std::path::Path) -> io::Result<String> {
    let bytes = std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the plot {}: {e}", path.display()),
        )
    })?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plot");
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => format!("<div class=\"plot\" id=\"{name}\">{}</div>", String::from_utf8_lossy(&bytes)),
        _ => format!(
            "<img class=\"plot\" id=\"{name}\" alt=\"{name}\" width=\"{}\" height=\"{}\" src=\"data:image/png;base64,{}\">",
            crate::plots::SIZE.0,
            crate::plots::SIZE.1,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    })
}

fn keys(out: &mut String, report: &Report) {
    // Undecided and failing keys first: they are what a reader looks for.
    let mut keys: Vec<_> = report.keys.iter().collect();
    keys.sort_by_key(|k| (k.verdict == Verdict::Valid, k.key.clone()));
    let _ = write!(out, "<h2>Keys ({})</h2><table><tr><th>key</th><th>verdict</th><th>ops</th><th>method</th><th>note</th></tr>", keys.len());
    for k in keys.iter().take(ROWS) {
        let verdict = verdict_name(k.verdict);
        let method = serde_json::to_value(k.method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><span class=\"verdict {verdict}\">&nbsp;</span> {verdict}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(k.key.as_deref().unwrap_or("(none)")),
            k.ops,
            method.unwrap_or_default(),
            escape(k.reason.as_deref().unwrap_or_default())
        );
    }
    out.push_str("</table>");
    capped(out, keys.len(), "keys", "results.json");
}

fn capped(out: &mut String, total: usize, what: &str, file: &str) {
    if total > ROWS {
        let _ = write!(
            out,
            "<p>{} more {what} in <code>{file}</code>.</p>",
            total - ROWS
        );
    }
}

/// Fault intervals as one lane per kind, then the nemesis events.
fn nemesis(out: &mut String, history: &History, faults: &[Fault]) {
    out.push_str("<h2>Nemesis</h2>");
    let events: Vec<_> = faults::events(history).collect();
    if events.is_empty() {
        out.push_str("<p>No faults were injected.</p>");
        return;
    }
    let span = history.events.last().map_or(1, |e| e.time.max(1)) as f64;
    let mut kinds: Vec<&str> = faults.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let (width, lane) = (1100.0, 22);
    let _ = write!(
        out,
        "<svg class=\"faultlane\" width=\"{}\" height=\"{}\">",
        width + 90.0,
        lane * kinds.len() + 4
    );
    for (i, kind) in kinds.iter().enumerate() {
        let y = i * lane;
        let color = css_color(kind);
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 15,
            escape(kind)
        );
        for f in faults.iter().filter(|f| f.kind == *kind) {
            let x0 = 90.0 + width * f.start as f64 / span;
            let x1 = 90.0 + width * f.end.map_or(span, |e| e as f64) / span;
            let _ = write!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"0.5\"><title>{} {}: {:.2} s – {}</title></rect>",
                (x1 - x0).max(1.0),
                lane - 4,
                escape(kind),
                escape(&f.description),
                f.start as f64 / 1e9,
                f.end.map_or("end of run".to_string(), |e| format!("{:.2} s", e as f64 / 1e9)),
            );
        }
    }
    out.push_str("</svg><table><tr><th>time (s)</th><th>type</th><th>action</th><th>what</th><th>error</th></tr>");
    for e in events.iter().take(ROWS) {
        let _ = write!(
            out,
            "<tr><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.time as f64 / 1e9,
            format!("{:?}", e.kind).to_lowercase(),
            escape(e.f.as_str()),
            escape(e.value.to_string().trim_matches('"')),
            escape(e.error.as_deref().unwrap_or_default())
        );
    }
    out.push_str("</table>");
    capped(out, events.len(), "nemesis events", "history.jsonl");
}

/// A fault kind's plot color as CSS, so the lanes match the plots' bands.
fn css_color(kind: &str) -> String {
    let c = crate::plots::fault_color(kind);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}
