//! The history: what clients and the nemesis did, as a flat list of events.
//!
//! One [`Event`] per invocation or completion, in the order they happened, with
//! Jepsen's meaning of the four event types:
//!
//! - `invoke`: a process started an operation;
//! - `ok`: it took effect, and `value` is what it returned;
//! - `fail`: it definitely did not take effect;
//! - `info`: indeterminate — it may take effect at any point after its
//!   invocation, or never. An invocation with no completion counts as `info`.
//!
//! # On disk: JSON Lines
//!
//! The native format is one JSON object per line, written as events happen and
//! read back one line at a time (a history of millions of events never needs the
//! whole file in memory as text):
//!
//! ```text
//! {"index":0,"time":1200,"type":"invoke","process":3,"f":"cas","key":"k1","value":[1,2]}
//! {"index":1,"time":9800,"type":"fail","process":3,"f":"cas","key":"k1","value":[1,2],"error":"compare-failed"}
//! {"index":2,"time":10100,"type":"info","process":"nemesis","f":"partition","value":"majorities-ring"}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `index` | position in the history, from 0 |
//! | `time` | nanoseconds since the test started (monotonic clock) |
//! | `type` | `invoke`, `ok`, `fail` or `info` |
//! | `process` | a client's logical process number, or `"nemesis"` |
//! | `f` | the function: `read`, `write`, `cas`, `get`, `put`, `append`, or any other name |
//! | `key` | optional: the key the operation is about (histories are checked per key) |
//! | `value` | `null`, an integer, a string or a list: a write's value, a read's result, `[from, to]` for cas |
//! | `error` | optional: why an operation failed or is indeterminate |

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;

/// What an event says about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who performed an operation: a client's logical process, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

/// The function an operation applies. Models say which ones they understand.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Read,
    Write,
    Cas,
    Get,
    Put,
    Append,
    /// Anything else: nemesis operations (`partition`, `kill`…) or a workload's own.
    Other(Box<str>),
}

/// A value in a history: what was written, read, or compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Nil,
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub process: Process,
    pub f: Func,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    /// A nemesis event (`f` such as `start-partition`, `value` saying what);
    /// its index is set when it is pushed onto a history.
    pub fn nemesis(time: u64, kind: EventType, f: &str, what: &str) -> Event {
        Event {
            index: 0,
            time,
            kind,
            process: Process::Nemesis,
            f: Func::parse(f),
            key: None,
            value: Value::Str(what.into()),
            error: None,
        }
    }
}

/// A whole history in memory, in event order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub events: Vec<Event>,
}

/// Input that could not be read as a history: which file, which line, what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub path: String,
    /// 1-based line number; 0 when the problem is not tied to one line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    pub fn new(path: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        ParseError {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

impl History {
    pub fn new() -> Self {
        History::default()
    }

    /// Appends an event, numbering it with the next index.
    pub fn push(&mut self, mut event: Event) {
        event.index = self.events.len() as u64;
        self.events.push(event);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Reads a JSON Lines history, one line at a time. `path` only names the
    /// source in error messages. Blank lines are skipped.
    pub fn read_jsonl(reader: impl BufRead, path: &str) -> Result<History, ParseError> {
        let mut history = History::new();
        let mut line = String::new();
        let mut reader = reader;
        let mut number = 0;
        loop {
            line.clear();
            number += 1;
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(ParseError::new(path, number, format!("cannot read: {e}"))),
            }
            if line.trim().is_empty() {
                continue;
            }
            let event: Event = serde_json::from_str(&line).map_err(|e| {
                ParseError::new(
                    path,
                    number,
                    format!("expected a history event as a JSON object: {e}"),
                )
            })?;
            history.events.push(event);
        }
        Ok(history)
    }

    /// Reads a JSON Lines history from a file.
    pub fn read_jsonl_file(path: &Path) -> Result<History, ParseError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| ParseError::new(&name, 0, format!("cannot open: {e}")))?;
        History::read_jsonl(io::BufReader::new(file), &name)
    }

    /// Writes the whole history as JSON Lines.
    pub fn write_jsonl(&self, out: impl Write) -> io::Result<()> {
        let mut writer = JsonlWriter::new(io::BufWriter::new(out));
        for event in &self.events {
            writer.append(event)?;
        }
        writer.flush()
    }
}

/// Appends events to a JSON Lines sink one at a time — the crash-safe way a
/// running test records its history. Call [`flush`](JsonlWriter::flush) (or
/// [`append_flushed`](JsonlWriter::append_flushed)) to push events to the OS.
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            buf: Vec::with_capacity(256),
        }
    }

    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, event).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    pub fn append_flushed(&mut self, event: &Event) -> io::Result<()> {
        self.append(event)?;
        self.flush()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl Func {
    pub fn as_str(&self) -> &str {
        match self {
            Func::Read => "read",
            Func::Write => "write",
            Func::Cas => "cas",
            Func::Get => "get",
            Func::Put => "put",
            Func::Append => "append",
            Func::Other(name) => name,
        }
    }

    pub fn parse(name: &str) -> Func {
        match name {
            "read" => Func::Read,
            "write" => Func::Write,
            "cas" => Func::Cas,
            "get" => Func::Get,
            "put" => Func::Put,
            "append" => Func::Append,
            other => Func::Other(other.into()),
        }
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Func {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Func {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Func::parse(&name))
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a process number or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Process, E> {
                Ok(Process::Client(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Process, E> {
                u64::try_from(n)
                    .map(Process::Client)
                    .map_err(|_| E::custom("a process number cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Process, E> {
                match s {
                    "nemesis" => Ok(Process::Nemesis),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(Visit)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, process: Process, f: Func, value: Value) -> Event {
        Event {
            index: 0,
            time: 0,
            kind,
            process,
            f,
            key: Some("k".into()),
            value,
            error: None,
        }
    }

    #[test]
    fn jsonl_round_trip() {
        let mut h = History::new();
        h.push(event(
            EventType::Invoke,
            Process::Client(3),
            Func::Cas,
            Value::List(vec![Value::Int(1), Value::Int(2)]),
        ));
        h.push(event(
            EventType::Info,
            Process::Nemesis,
            Func::Other("partition".into()),
            Value::Str("ring".into()),
        ));
        let mut fail = event(EventType::Fail, Process::Client(3), Func::Cas, Value::Nil);
        fail.error = Some("compare-failed".into());
        h.push(fail);
        let mut out = Vec::new();
        h.write_jsonl(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains(r#""process":"nemesis""#), "{text}");
        let back = History::read_jsonl(text.as_bytes(), "mem").unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn jsonl_error_names_line() {
        let text = "{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":1,\"f\":\"read\"}\n\n{\"index\":1,\"time\":0,\"type\":\"bogus\",\"process\":1,\"f\":\"read\"}\n";
        let err = History::read_jsonl(text.as_bytes(), "h.jsonl").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("h.jsonl:3: "), "{err}");
        assert!(err.message.contains("bogus"), "{err}");
    }
}
