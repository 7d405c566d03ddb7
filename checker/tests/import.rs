//! Importing histories: the Porcupine benchmark logs, Jepsen EDN, sniffing, and
//! property tests that no input — valid, mangled or random — makes a reader panic.

use checker::import::{parse_history, read_history, Format};
use checker::{EventType, History, Process, Value};
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};

const PORCUPINE: &str = "/work/shared/testdata/porcupine";

fn data_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(Path::new(PORCUPINE).join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn non_blank_lines(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn every_etcd_log_reads_with_auto() {
    let files = data_files("jepsen");
    assert_eq!(files.len(), 103);
    for path in files {
        let (history, format) = read_history(&path, Format::Auto).unwrap_or_else(|e| panic!("{e}"));
        let lines = non_blank_lines(&path);
        assert_eq!(history.len(), lines, "{}", path.display());
        if lines == 0 {
            // etcd_095.log is empty: nothing to sniff, and an empty history in any format.
            assert_eq!(format, Format::Jsonl);
            continue;
        }
        assert_eq!(format, Format::PorcupineEtcd, "{}", path.display());
        for (i, e) in history.events.iter().enumerate() {
            assert_eq!(
                (e.index, e.time, e.key.as_deref()),
                (i as u64, i as u64, None)
            );
            assert!(matches!(e.process, Process::Client(_)));
        }
    }
}

#[test]
fn empty_etcd_log_reads_as_etcd_too() {
    let path = Path::new(PORCUPINE).join("jepsen/etcd_095.log");
    let (history, format) = read_history(&path, Format::PorcupineEtcd).unwrap();
    assert!(history.is_empty());
    assert_eq!(format, Format::PorcupineEtcd);
}

#[test]
fn etcd_timeouts_become_errors() {
    let path = Path::new(PORCUPINE).join("jepsen/etcd_100.log");
    let (history, _) = read_history(&path, Format::Auto).unwrap();
    let timed_out: Vec<_> = history
        .events
        .iter()
        .filter(|e| e.error.is_some())
        .collect();
    assert!(
        timed_out.iter().any(|e| e.kind == EventType::Fail),
        "`:fail :read :timed-out` occurs in etcd_100"
    );
    for e in timed_out {
        assert_eq!(
            (e.error.as_deref(), &e.value),
            (Some("timed-out"), &Value::Nil)
        );
        assert_ne!(e.kind, EventType::Invoke);
    }
    // Completions keep their values: `:ok :cas [A B]`.
    let cas = history
        .events
        .iter()
        .find(|e| e.kind == EventType::Ok && e.f.as_str() == "cas")
        .unwrap();
    assert!(matches!(&cas.value, Value::List(pair) if pair.len() == 2));
}

#[test]
fn etcd_error_names_file_and_line() {
    let text = fs::read_to_string(Path::new(PORCUPINE).join("jepsen/etcd_001.log")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let fields: Vec<&str> = lines[16].split('\t').collect();
    lines[16] = [fields[0], ":bogus", fields[2], fields[3]].join("\t");
    let err = parse_history(lines.join("\n").as_bytes(), "etcd_001.log", Format::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcd_001.log:17: expected :invoke, :ok, :fail or :info as the event type, found :bogus"
    );
}

#[test]
fn every_kv_log_reads_with_auto() {
    // (file, operations, clients) from the MANIFEST.
    let expected = [
        ("c01-bad.txt", 38, 1),
        ("c01-ok.txt", 58, 1),
        ("c10-bad.txt", 405, 10),
        ("c10-ok.txt", 337, 10),
        ("c50-bad.txt", 2024, 50),
        ("c50-ok.txt", 1712, 50),
    ];
    let files = data_files("kv");
    assert_eq!(files.len(), expected.len());
    for (path, (name, ops, clients)) in files.iter().zip(expected) {
        assert!(path.ends_with(name), "{}", path.display());
        let (history, format) = read_history(path, Format::Auto).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format, Format::PorcupineKv);
        assert_eq!(history.len(), non_blank_lines(path));
        assert_eq!(
            history
                .events
                .iter()
                .filter(|e| e.kind == EventType::Invoke)
                .count(),
            ops,
            "{name}"
        );
        let processes: std::collections::BTreeSet<_> =
            history.events.iter().map(|e| e.process).collect();
        assert_eq!(processes.len(), clients, "{name}");
        assert!(history
            .events
            .iter()
            .all(|e| e.key.is_some() && matches!(e.value, Value::Nil | Value::Str(_))));
        // The same file named as EDN or as porcupine-kv reads the same.
        for forced in [Format::Edn, Format::PorcupineKv] {
            assert_eq!(
                read_history(path, forced).unwrap(),
                (history.clone(), Format::PorcupineKv),
                "{name}"
            );
        }
    }
}

#[test]
fn jepsen_vector_of_records_with_independent_keys() {
    let text = r#"
[#jepsen.history.Op{:index 0, :time 1200, :type :invoke, :process 3, :f :cas, :value [7 [1 2]]}
 #jepsen.history.Op{:index 1, :time 1500, :type :info, :process :nemesis, :f :start,
                    :value {"n1" #{"n2" "n3"}}}
 #jepsen.history.Op{:index 2, :time 9800, :type :fail, :process 3, :f :cas, :value [7 [1 2]],
                    :error :compare-failed, :node "n1"}
 #jepsen.history.Op{:index 3, :time 9900, :type :invoke, :process 4, :f :read, :value ["x" nil]}
 #jepsen.history.Op{:index 4, :time 9999, :type :ok, :process 4, :f :read, :value ["x" 5]}]
"#;
    let (history, format) = parse_history(text.as_bytes(), "history.edn", Format::Auto).unwrap();
    assert_eq!(format, Format::Edn);
    let e = &history.events;
    assert_eq!(e.len(), 5);
    assert_eq!(
        (e[0].key.as_deref(), &e[0].value),
        (Some("7"), &Value::List(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(
        (e[1].process, e[1].key.as_deref()),
        (Process::Nemesis, None)
    );
    assert_eq!(
        (e[2].kind, e[2].error.as_deref(), e[2].time),
        (EventType::Fail, Some("compare-failed"), 9800)
    );
    assert_eq!(
        (e[4].key.as_deref(), &e[4].value),
        (Some("x"), &Value::Int(5))
    );

    // Errors inside the vector name the line of the broken operation.
    let broken = text.replace(
        ":process 4, :f :read, :value [\"x\" 5]",
        ":f :read, :value [\"x\" 5]",
    );
    let err = parse_history(broken.as_bytes(), "history.edn", Format::Auto).unwrap_err();
    assert_eq!(err.line, 8, "{err}");
    assert!(err.message.contains(":process"), "{err}");
}

#[test]
fn jsonl_sniffed_and_read() {
    let path = Path::new(PORCUPINE).join("kv/c01-ok.txt");
    let (history, _) = read_history(&path, Format::Auto).unwrap();
    let mut jsonl = Vec::new();
    history.write_jsonl(&mut jsonl).unwrap();
    assert_eq!(
        parse_history(&jsonl[..], "h.jsonl", Format::Auto).unwrap(),
        (history, Format::Jsonl)
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = read_history(Path::new("/nonexistent/h.edn"), Format::Auto).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/h.edn: cannot open"),
        "{err}"
    );
}

// ---- Property tests: nothing panics, and errors point inside the input. ----

/// Parses `text` in every format; any result is fine, but an error's line must
/// exist in the input.
fn parse_everywhere(bytes: &[u8]) {
    let lines = bytes.split(|&b| b == b'\n').count();
    for format in Format::ALL {
        if let Err(e) = parse_history(bytes, "fuzz", format) {
            assert!(e.line <= lines, "{format}: line {} of {lines}: {e}", e.line);
        }
    }
}

/// Valid lines of every format, to mangle.
const SAMPLES: &[&str] = &[
    "INFO  jepsen.util - 17\t:invoke\t:cas\t[4 4]\nINFO  jepsen.util - 13\t:info\t:cas\t:timed-out\n",
    "INFO  jepsen.util - 1   :invoke :write  3\nINFO  jepsen.util - 10   :fail :read   :timed-out\n",
    "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n{:process 0, :type :ok, :f :get, :key \"9\", :value \"\"}\n",
    "[#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 0, :f :cas, :value [1 [2 3]]}\n {:type :info, :process :nemesis, :f :start, :value #{\"n1\"}} ; end\n]\n",
    "{:type :fail, :f :cas, :value [1 2], :process 3, :error :compare-failed, :time 9}\n{:type :ok, :f :read, :value \\a, :process 2}\n",
    "{\"index\":0,\"time\":1200,\"type\":\"invoke\",\"process\":3,\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2]}\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to the readers, plus anything at all.
    let byte = prop_oneof![
        3 => prop::sample::select(b"[]{}()#\\\";:, \t\n0123456789-".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), 0..8usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), prop::collection::vec(byte, 1..6))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1..40usize).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let at = |i: usize| i % (bytes.len() + 1);
        match m {
            Mutation::Delete(i, len) => {
                let start = at(*i);
                bytes.drain(start..(start + len).min(bytes.len()));
            }
            Mutation::Insert(i, new) => {
                let start = at(*i);
                bytes.splice(start..start, new.iter().copied());
            }
            Mutation::Duplicate(i, len) => {
                let start = at(*i);
                let copy = bytes[start..(start + len).min(bytes.len())].to_vec();
                bytes.splice(start..start, copy);
            }
        }
    }
    bytes
}

/// One operation, rendered both as an EDN map and as an etcd log line.
#[derive(Debug, Clone)]
struct Op {
    process: Option<u32>,
    kind: &'static str,
    f: &'static str,
    key: u8,
    value: Option<i64>,
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop::option::weighted(0.9, 0..100u32),
        prop::sample::select(vec!["invoke", "ok", "fail", "info"]),
        prop::sample::select(vec!["read", "write", "cas", "start"]),
        any::<u8>(),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(process, kind, f, key, value)| Op {
            process,
            kind,
            f,
            key,
            value,
        })
}

impl Op {
    fn process(&self) -> String {
        self.process.map_or(":nemesis".into(), |p| p.to_string())
    }

    fn value(&self) -> String {
        self.value.map_or("nil".into(), |v| v.to_string())
    }

    fn edn(&self) -> String {
        let (process, kind, f, key, value) =
            (self.process(), self.kind, self.f, self.key, self.value());
        format!("{{:process {process}, :type :{kind}, :f :{f}, :key \"{key}\", :value {value}}}")
    }

    fn check(&self, history: &History, index: usize, keyed: bool) {
        let e = &history.events[index];
        assert_eq!(e.index, index as u64);
        assert_eq!(
            e.process,
            self.process
                .map_or(Process::Nemesis, |p| Process::Client(p.into()))
        );
        assert_eq!(format!("{:?}", e.kind).to_lowercase(), self.kind);
        assert_eq!(e.f.as_str(), self.f);
        assert_eq!(e.key, keyed.then(|| self.key.to_string()));
        assert_eq!(e.value, self.value.map_or(Value::Nil, Value::Int));
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        parse_everywhere(text.as_bytes());
    }

    #[test]
    fn byte_soup_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        parse_everywhere(&bytes);
    }

    #[test]
    fn mutated_valid_lines_never_panic(
        sample in prop::sample::select(SAMPLES),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        parse_everywhere(&mutate(sample, &mutations));
    }

    #[test]
    fn generated_operations_read_back(
        ops in prop::collection::vec(op(), 0..30),
        separators in prop::collection::vec(prop::sample::select(vec![" ", "\n", ",\n  ", "\n\n"]), 30),
    ) {
        // One map per line.
        let lines: String = ops.iter().map(|op| op.edn() + "\n").collect();
        let (history, _) = parse_history(lines.as_bytes(), "ops.edn", Format::PorcupineKv).unwrap();
        prop_assert_eq!(history.len(), ops.len());
        for (i, op) in ops.iter().enumerate() {
            op.check(&history, i, true);
        }

        // One vector, the maps separated however.
        let mut vector = String::from("[");
        for (op, sep) in ops.iter().zip(&separators) {
            vector += &op.edn();
            vector += sep;
        }
        vector += "]";
        let (from_vector, _) = parse_history(vector.as_bytes(), "ops.edn", Format::Auto).unwrap();
        prop_assert_eq!(&from_vector, &history);

        // An etcd log of the client operations.
        let clients: Vec<&Op> = ops.iter().filter(|op| op.process.is_some()).collect();
        let log: String = clients
            .iter()
            .map(|op| format!("INFO  jepsen.util - {}\t:{}\t:{}\t{}\n", op.process(), op.kind, op.f, op.value()))
            .collect();
        let (history, _) = parse_history(log.as_bytes(), "etcd.log", Format::PorcupineEtcd).unwrap();
        prop_assert_eq!(history.len(), clients.len());
        for (i, op) in clients.iter().enumerate() {
            op.check(&history, i, false);
        }
    }
}
