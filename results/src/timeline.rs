//! The counterexample drawn as a timeline, in the spirit of Porcupine's
//! visualization: one lane per process, each operation a bar from invocation
//! to completion (open-ended when indeterminate), the order the search placed
//! operations in written on them, the operation that cannot be placed in red,
//! and the model state after each step on hover.
//!
//! Only a window around the failure is drawn — the last [`TAIL`] steps of the
//! partial linearization, the last [`TAIL`] operations of the minimal
//! sub-history (shrinking cannot always make it small: when every read
//! depends on every write it keeps them all) and the blocked operation — so
//! the page stays small however long the history. The horizontal axis is
//! the order of events, not time: the window's invocations and completions are
//! ranked and laid out left to right, each at least [`STEP_PX`] after the
//! previous one and far enough for the bars ending there to hold their labels.
//! Order is all linearizability depends on, and it keeps short operations
//! readable next to long ones.

use crate::escape;
use checker::{Counterexample, Operation};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Steps of the partial linearization, and operations of the minimal
/// sub-history, drawn before the failure.
pub const TAIL: usize = 200;

const STEP_PX: usize = 24;
/// Width of a character of the bars' 11 px monospace labels.
const CHAR_PX: usize = 7;
const LANE_PX: usize = 34;
/// Width of the lane names, which stay put while the lanes scroll.
const NAMES_PX: usize = 90;
const TOP_PX: usize = 24;

struct Bar<'a> {
    op: &'a Operation,
    /// 1-based position in the partial linearization, and the state after it.
    step: Option<(usize, &'a str)>,
    minimal: bool,
    blocked: bool,
}

impl<'a> Bar<'a> {
    fn new(op: &'a Operation) -> Self {
        Bar {
            op,
            step: None,
            minimal: false,
            blocked: false,
        }
    }
}

/// The `<section id="counterexample">` of the report.
pub fn section(cx: &Counterexample) -> String {
    let tail_from = cx.partial.len().saturating_sub(TAIL);
    let minimal_from = cx.minimal.len().saturating_sub(TAIL);
    let minimal = &cx.minimal[minimal_from..];
    let mut bars: BTreeMap<usize, Bar> = BTreeMap::new();
    for (n, step) in cx.partial.iter().enumerate().skip(tail_from) {
        bars.insert(
            step.op.id,
            Bar {
                step: Some((n + 1, &step.state)),
                ..Bar::new(&step.op)
            },
        );
    }
    for op in minimal {
        bars.entry(op.id).or_insert_with(|| Bar::new(op)).minimal = true;
    }
    if let Some(op) = &cx.blocked {
        bars.entry(op.id).or_insert_with(|| Bar::new(op)).blocked = true;
    }

    let mut out = String::new();
    let key = cx.key.as_deref().map_or(String::new(), |k| {
        format!(" on key {}", escape(&format!("{k:?}")))
    });
    let _ = write!(
        out,
        "<section id=\"counterexample\"><h2>Counterexample{key}</h2>"
    );
    match &cx.blocked {
        Some(op) => {
            let _ = write!(
                out,
                "<p class=\"blocked\">Cannot be placed after the {} operations linearized before it: <code>{}</code></p>",
                cx.partial.len(),
                escape(&op.to_string())
            );
        }
        None => out.push_str("<p>The search reached no single operation it could not place.</p>"),
    }
    let _ = write!(
        out,
        "<p>Showing {} operations: the last {} of {} linearized steps (numbered in the order they were placed), \
         the last {} of {} operations of the minimal failing sub-history{} (thick outline), and the blocked \
         operation (red). Hover an operation for the model state after it. The rest is in <code>results.json</code>.</p>",
        bars.len(),
        cx.partial.len() - tail_from,
        cx.partial.len(),
        minimal.len(),
        cx.minimal.len(),
        if cx.minimal_is_one_minimal { ", which cannot be shrunk further" } else { "" },
    );
    out.push_str(&svg(&bars));
    out.push_str("<p id=\"cx-state\" class=\"state\">&nbsp;</p>");
    steps_table(&mut out, cx, tail_from);
    let _ = write!(
        out,
        "<h3>Minimal failing sub-history: operations {}–{} of {}</h3><ol class=\"ops\" start=\"{}\">",
        minimal_from + 1,
        cx.minimal.len(),
        cx.minimal.len(),
        minimal_from + 1
    );
    for op in minimal {
        let _ = write!(out, "<li><code>{}</code></li>", escape(&op.to_string()));
    }
    out.push_str("</ol></section>");
    out
}

fn svg(bars: &BTreeMap<usize, Bar>) -> String {
    // Rank every invocation and completion in the window; open operations end
    // one rank past the last completion.
    let mut points: Vec<u64> = bars
        .values()
        .flat_map(|b| std::iter::once(b.op.call).chain(b.op.ret))
        .collect();
    points.sort_unstable();
    points.dedup();
    let rank = |position: u64| points.partition_point(|&p| p < position);
    let labels: Vec<(&Bar, String, usize, usize)> = bars
        .values()
        .map(|b| {
            let label = match b.step {
                Some((n, _)) => format!("#{n} {}", short(b.op)),
                None => short(b.op),
            };
            (
                b,
                label,
                rank(b.op.call),
                b.op.ret.map_or(points.len(), rank),
            )
        })
        .collect();
    let mut ending: Vec<Vec<(usize, usize)>> = vec![Vec::new(); points.len() + 1];
    for (_, label, start, end) in &labels {
        ending[*end].push((*start, label.chars().count() * CHAR_PX + 10));
    }
    let mut xs: Vec<usize> = Vec::with_capacity(points.len() + 1);
    for bars_ending in &ending {
        let after = xs.last().map_or(STEP_PX, |x| x + STEP_PX);
        let x = bars_ending
            .iter()
            .fold(after, |x, &(start, px)| x.max(xs[start] + px));
        xs.push(x);
    }
    let mut lanes: Vec<_> = bars.values().map(|b| b.op.process).collect();
    lanes.sort_unstable();
    lanes.dedup();
    let width = xs.last().copied().unwrap_or(0) + STEP_PX;
    let height = TOP_PX + LANE_PX * lanes.len() + 10;

    let mut out =
        format!("<div class=\"cx\"><svg class=\"names\" width=\"{NAMES_PX}\" height=\"{height}\">");
    for (lane, process) in lanes.iter().enumerate() {
        let y = TOP_PX + LANE_PX * lane + 19;
        let _ = write!(
            out,
            "<text class=\"lane\" x=\"4\" y=\"{y}\">process {process}</text>"
        );
    }
    let _ = write!(
        out,
        "</svg><div class=\"lanes\" id=\"cx-lanes\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">"
    );
    // Event positions along the top, every tenth rank, to relate bars to the history.
    for (rank, position) in points.iter().enumerate().step_by(10) {
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"14\">event {position}</text>",
            xs[rank]
        );
    }
    for lane in 0..lanes.len() {
        let y = TOP_PX + LANE_PX * (lane + 1) - 2;
        let _ = write!(
            out,
            "<line class=\"lane\" x1=\"0\" x2=\"{width}\" y1=\"{y}\" y2=\"{y}\"/>"
        );
    }
    for (b, label, start, end) in labels {
        let lane = lanes
            .binary_search(&b.op.process)
            .expect("every process has a lane");
        let y = TOP_PX + LANE_PX * lane + 4;
        let (x0, x1) = (xs[start], xs[end]);
        let class = match (b.blocked, b.step.is_some(), b.minimal) {
            (true, _, _) => "op blocked",
            (_, true, true) => "op placed minimal",
            (_, true, false) => "op placed",
            _ => "op minimal",
        };
        let open = if b.op.ret.is_none() { " open" } else { "" };
        let info = match b.step {
            Some((n, state)) => format!("step {n}: {} — state after: {state}", b.op),
            None if b.blocked => format!("cannot be placed: {}", b.op),
            None => format!("not placed: {}", b.op),
        };
        let _ = write!(
            out,
            "<g class=\"{class}{open}\" data-info=\"{info}\"><title>{info}</title>\
             <rect x=\"{x0}\" y=\"{y}\" width=\"{}\" height=\"22\" rx=\"3\"/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>",
            x1 - x0,
            x0 + 4,
            y + 15,
            escape(&label),
            info = escape(&info),
        );
    }
    out.push_str("</svg></div></div>");
    out
}

/// `w 3`, `r 2`, `cas 1→2`: what fits on a bar.
fn short(op: &Operation) -> String {
    use checker::{Outcome, Value};
    let mut label = op.f.to_string();
    match (&op.input, &op.output) {
        (Value::List(pair), _) if pair.len() == 2 => {
            let _ = write!(label, " {}→{}", pair[0], pair[1]);
        }
        (Value::Nil, Value::Nil) => {}
        (Value::Nil, out) => {
            let _ = write!(label, " → {out}");
        }
        (input, _) => {
            let _ = write!(label, " {input}");
        }
    }
    match op.outcome {
        Outcome::Fail => label + " ✗",
        Outcome::Info => label + " ?",
        Outcome::Ok => label,
    }
}

fn steps_table(out: &mut String, cx: &Counterexample, from: usize) {
    let _ = write!(
        out,
        "<details><summary>Partial linearization: steps {}–{} of {}</summary>\
         <table><tr><th>step</th><th>operation</th><th>state after</th></tr>",
        from + 1,
        cx.partial.len(),
        cx.partial.len()
    );
    for (n, step) in cx.partial.iter().enumerate().skip(from) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            n + 1,
            escape(&step.op.to_string()),
            escape(&step.state)
        );
    }
    out.push_str("</table></details>");
}
