//! Histories, reports and artifact readers shared by the tests.
#![allow(dead_code)] // Each test binary uses a different part of this module.

use checker::import::{read_history, Format};
use checker::synth::{register_history, Spec};
use checker::{
    check_with, Event, EventType, FailedCas, Func, History, ModelChoice, Options, Process, Report,
    Value,
};
use results::RunInfo;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn check(history: &History, model: ModelChoice) -> Report {
    let ops = checker::operations(history, "test").expect("well-formed history");
    check_with(model, FailedCas::Ignore, &ops, &Options::default())
        .expect("the model takes every operation")
}

pub fn info(name: &str) -> RunInfo {
    RunInfo {
        name: name.to_string(),
        target: "raftkv".into(),
        nodes: 5,
        workload: "register".into(),
        seed: Some(42),
        duration: Some(Duration::from_secs(10)),
        nemesis: vec!["partition".into(), "kill".into(), "pause".into()],
    }
}

/// The repository's small invalid example: a stale read on key "x".
pub fn stale_read() -> History {
    History::read_jsonl_file(&repo().join("examples/stale-read.jsonl")).expect("the example parses")
}

/// Porcupine's invalid key-value log with ten clients.
pub fn kv_bad() -> History {
    let path = repo().join("../shared/testdata/porcupine/kv/c10-bad.txt");
    read_history(&path, Format::PorcupineKv)
        .expect("the Porcupine log parses")
        .0
}

/// A linearizable register history of `ops` operations over ten keys, spread
/// over ten seconds, with a partition, a kill and a pause (left unhealed).
pub fn big_valid(ops: usize) -> History {
    let synth = register_history(&Spec {
        seed: 7,
        clients: 10,
        ops,
        read_ratio: 0.5,
        crash_ratio: 0.01,
        keys: 10,
    });
    let n = synth.len() as u64;
    let step = 10_000_000_000 / n.max(1); // ten seconds in nanoseconds
    let faults = [
        (0.20, "start-partition", "majorities-ring"),
        (0.40, "stop-partition", "majorities-ring"),
        (0.50, "kill", "node 2"),
        (0.65, "restart", "node 2"),
        (0.80, "pause", "node 4"),
    ];
    let mut history = History::new();
    let mut next = faults.iter().peekable();
    for mut event in synth.events {
        event.time *= step;
        while let Some((at, f, what)) = next.next_if(|(at, _, _)| event.time as f64 >= at * 1e10) {
            let time = (at * 1e10) as u64;
            for (kind, dt) in [(EventType::Invoke, 0), (EventType::Info, 50_000_000)] {
                history.push(Event::nemesis(time + dt, kind, f, what));
            }
        }
        history.push(event);
    }
    history
}

/// [`big_valid`] with values taken modulo 5 (still linearizable, but values
/// repeat, so the checker searches instead of taking its fast path and
/// reaches a long partial linearization), followed by a stale read of key
/// "0": a fresh write, then a read returning the key's first value. The
/// synthetic `info` writes did take effect, so they become `ok`: otherwise
/// one of them could explain the stale read.
pub fn big_invalid(ops: usize) -> History {
    let mut history = big_valid(ops);
    for event in history
        .events
        .iter_mut()
        .filter(|e| e.process != Process::Nemesis)
    {
        if let Value::Int(v) = &mut event.value {
            *v %= 5;
        }
        if event.kind == EventType::Info {
            event.kind = EventType::Ok;
        }
    }
    let first = history
        .events
        .iter()
        .find(|e| e.f == Func::Write && e.key.as_deref() == Some("0"))
        .expect("key 0 was written")
        .value
        .clone();
    let time = history.events.last().map_or(0, |e| e.time);
    let process = Process::Client(1_000);
    let mut push = |dt: u64, kind, f: Func, value: Value| {
        history.push(Event {
            index: 0,
            time: time + dt,
            kind,
            process,
            f,
            key: Some("0".into()),
            value,
            error: None,
        })
    };
    push(1_000_000, EventType::Invoke, Func::Write, Value::Int(-1));
    push(2_000_000, EventType::Ok, Func::Write, Value::Int(-1));
    push(3_000_000, EventType::Invoke, Func::Read, Value::Nil);
    push(4_000_000, EventType::Ok, Func::Read, first);
    history
}

/// Width and height of a PNG file.
pub fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = png::Decoder::new(file).read_info().expect("a valid PNG");
    (reader.info().width, reader.info().height)
}

/// (tests, failures, errors) of a JUnit document, counted from its test cases.
pub fn junit_counts(xml: &str) -> (usize, usize, usize) {
    let doc = roxmltree::Document::parse(xml).expect("junit.xml is well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let with = |tag: &str| {
        cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name(tag)))
            .count()
    };
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(
        suite.attribute("tests"),
        Some(cases.len().to_string().as_str())
    );
    assert_eq!(
        suite.attribute("failures"),
        Some(with("failure").to_string().as_str())
    );
    (cases.len(), with("failure"), with("error"))
}
