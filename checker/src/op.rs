//! Operations: a history's invocations paired with their completions.
//!
//! The checker never looks at raw events. It pairs each client's `invoke` with
//! the process's next completion and keeps, per operation, when it was called
//! and when it returned, both as positions in the history. An `info`
//! completion, or none at all, leaves the return open (`ret = None`): the
//! operation may take effect at any later point, or never.

use crate::history::{EventType, Func, History, ParseError, Process, Value};
use rustc_hash::FxHashMap;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// One client operation from invocation to completion.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Operation {
    /// Position among the history's operations, in invocation order.
    pub id: usize,
    pub process: Process,
    pub f: Func,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invocation's value: what to write, `[from, to]` for cas.
    pub input: Value,
    /// The completion's value: what a read returned. `Nil` unless `ok`.
    pub output: Value,
    pub outcome: Outcome,
    /// Index of the invoke event.
    pub call: u64,
    /// Index of the completion event; `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// Time of the invoke and completion events (ns), for reports.
    pub call_time: u64,
    pub ret_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Operation {
    /// The return position with an open return as +infinity.
    pub fn ret_or_inf(&self) -> u64 {
        self.ret.unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} {}", self.process, self.f)?;
        if let Some(key) = &self.key {
            write!(f, " {key:?}")?;
        }
        if self.input != Value::Nil {
            write!(f, " {}", self.input)?;
        }
        match self.outcome {
            Outcome::Ok if self.output != Value::Nil && self.output != self.input => {
                write!(f, " -> {}", self.output)?
            }
            Outcome::Ok if self.f == Func::Read || self.f == Func::Get => {
                write!(f, " -> {}", self.output)?
            }
            Outcome::Ok => f.write_str(" ok")?,
            Outcome::Fail => f.write_str(" failed")?,
            Outcome::Info => f.write_str(" (indeterminate)")?,
        }
        match self.ret {
            Some(ret) => write!(f, " [events {}..{}]", self.call, ret),
            None => write!(f, " [events {}..]", self.call),
        }
    }
}

/// Pairs invocations with completions. Nemesis events are skipped. `source`
/// names the history in errors.
pub fn operations(history: &History, source: &str) -> Result<Vec<Operation>, ParseError> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut pending: FxHashMap<u64, usize> = FxHashMap::default();
    for (position, event) in history.events.iter().enumerate() {
        let Process::Client(process) = event.process else {
            continue;
        };
        let at = position as u64;
        let problem = |message: String| {
            ParseError::new(
                source,
                0,
                format!("event {} (process {process}): {message}", event.index),
            )
        };
        match event.kind {
            EventType::Invoke => {
                // A process whose last operation is still open crashed (Jepsen
                // processes never overlap); its operation stays indeterminate.
                pending.insert(process, ops.len());
                ops.push(Operation {
                    id: ops.len(),
                    process: event.process,
                    f: event.f.clone(),
                    key: event.key.clone(),
                    input: event.value.clone(),
                    output: Value::Nil,
                    outcome: Outcome::Info,
                    call: at,
                    ret: None,
                    call_time: event.time,
                    ret_time: None,
                    error: None,
                });
            }
            kind => {
                let Some(id) = pending.remove(&process) else {
                    let article = if kind == EventType::Fail { "a" } else { "an" };
                    return Err(problem(format!(
                        "{article} `{}` completion with no invocation before it",
                        format!("{kind:?}").to_lowercase()
                    )));
                };
                let op = &mut ops[id];
                if op.f != event.f {
                    return Err(problem(format!(
                        "completes {} but the process invoked {}",
                        event.f, op.f
                    )));
                }
                if op.key != event.key && event.key.is_some() {
                    return Err(problem(format!(
                        "completes key {:?} but the process invoked key {:?}",
                        event.key, op.key
                    )));
                }
                op.error = event.error.clone();
                op.ret_time = Some(event.time);
                match kind {
                    EventType::Ok => {
                        op.outcome = Outcome::Ok;
                        op.output = event.value.clone();
                        op.ret = Some(at);
                    }
                    EventType::Fail => {
                        op.outcome = Outcome::Fail;
                        op.ret = Some(at);
                    }
                    EventType::Info | EventType::Invoke => op.outcome = Outcome::Info,
                }
            }
        }
    }
    Ok(ops)
}

/// Groups operations by key: one list of operation indexes per key, each in
/// invocation order. Operations without a key form one group (key `None`).
pub fn partition_by_key(ops: &[Operation]) -> Vec<(Option<&str>, Vec<usize>)> {
    use rayon::prelude::*;
    // One key throughout, as a single-register test records it: on a long
    // history, compare the keys on all cores (each is a string of its own
    // elsewhere in memory) and skip the hashing. A history with several keys
    // shows one early, and that costs nothing.
    if let Some(first) = ops.first().filter(|_| ops.len() >= 1 << 14) {
        if ops.par_iter().all(|op| op.key == first.key) {
            return vec![(
                first.key.as_deref(),
                (0..ops.len()).into_par_iter().collect(),
            )];
        }
    }
    let mut index: FxHashMap<Option<&str>, usize> = FxHashMap::default();
    let mut parts: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    let mut last: Option<(Option<&str>, usize)> = None;
    for (i, op) in ops.iter().enumerate() {
        let key = op.key.as_deref();
        // Runs of one key are common: skip the hash for them.
        let slot = match last {
            Some((k, slot)) if k == key => slot,
            _ => *index.entry(key).or_insert_with(|| {
                parts.push((key, Vec::new()));
                parts.len() - 1
            }),
        };
        last = Some((key, slot));
        parts[slot].1.push(i);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    fn history(events: &[(EventType, u64, Func, Value)]) -> History {
        let mut h = History::new();
        for (kind, process, f, value) in events {
            h.push(Event {
                index: 0,
                time: h.len() as u64 * 10,
                kind: *kind,
                process: Process::Client(*process),
                f: f.clone(),
                key: None,
                value: value.clone(),
                error: None,
            });
        }
        h
    }

    #[test]
    fn pairs_completions_and_leaves_the_unfinished_open() {
        use EventType::*;
        let h = history(&[
            (Invoke, 1, Func::Write, Value::Int(1)),
            (Invoke, 2, Func::Read, Value::Nil),
            (Ok, 2, Func::Read, Value::Int(1)),
            (Info, 1, Func::Write, Value::Int(1)),
            (Invoke, 3, Func::Write, Value::Int(2)),
            // Process 3 invokes again without completing: the first stays open.
            (Invoke, 3, Func::Write, Value::Int(3)),
            (Fail, 3, Func::Write, Value::Int(3)),
        ]);
        let ops = operations(&h, "h").unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!((ops[0].outcome, ops[0].ret), (Outcome::Info, None));
        assert_eq!(
            (ops[1].outcome, ops[1].output.clone(), ops[1].ret),
            (Outcome::Ok, Value::Int(1), Some(2))
        );
        assert_eq!((ops[2].outcome, ops[2].ret), (Outcome::Info, None));
        assert_eq!((ops[3].outcome, ops[3].ret), (Outcome::Fail, Some(6)));
    }

    #[test]
    fn broken_pairings_are_errors() {
        use EventType::*;
        let orphan = history(&[(Ok, 4, Func::Read, Value::Int(1))]);
        let e = operations(&orphan, "h.jsonl").unwrap_err();
        assert_eq!(
            e.to_string(),
            "h.jsonl: event 0 (process 4): an `ok` completion with no invocation before it"
        );
        let mismatch = history(&[
            (Invoke, 1, Func::Read, Value::Nil),
            (Ok, 1, Func::Write, Value::Int(1)),
        ]);
        let e = operations(&mismatch, "h.jsonl").unwrap_err();
        assert!(
            e.message
                .contains("completes write but the process invoked read"),
            "{e}"
        );
    }
}
