//! Turning the fields of one operation, read as EDN, into an [`Event`]: the
//! part the EDN and Porcupine etcd readers share.

use super::snippet;
use crate::history::{Event, EventType, Func, Process, Value};
use edn_format::{Keyword, Value as Edn};
use std::collections::BTreeMap;

/// The fields of one operation, as found, before they are checked.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub process: Option<&'a Edn>,
    pub kind: Option<&'a Edn>,
    pub f: Option<&'a Edn>,
    pub value: Option<&'a Edn>,
    pub key: Option<&'a Edn>,
    pub error: Option<&'a Edn>,
    pub time: Option<&'a Edn>,
    pub index: Option<&'a Edn>,
}

impl<'a> Fields<'a> {
    /// The fields of a Jepsen operation map. Other keys (`:node`, …) are ignored.
    pub fn from_map(map: &'a BTreeMap<Edn, Edn>) -> Self {
        let mut fields = Fields::default();
        for (name, value) in map {
            let Edn::Keyword(name) = name else { continue };
            let slot = match (name.namespace(), name.name()) {
                (None, "process") => &mut fields.process,
                (None, "type") => &mut fields.kind,
                (None, "f") => &mut fields.f,
                (None, "value") => &mut fields.value,
                (None, "key") => &mut fields.key,
                (None, "error") => &mut fields.error,
                (None, "time") => &mut fields.time,
                (None, "index") => &mut fields.index,
                _ => continue,
            };
            *slot = Some(value);
        }
        fields
    }

    /// Checks the fields and builds the event found at `position` in its
    /// history; the error says what was expected and what was found.
    pub fn into_event(self, position: u64) -> Result<Event, String> {
        let process = match self.process {
            Some(Edn::Keyword(k)) if name(k) == "nemesis" => Process::Nemesis,
            Some(&Edn::Integer(n)) if n >= 0 => Process::Client(n as u64),
            other => return Err(expected("a process number or :nemesis as :process", other)),
        };
        let kind = match self.kind {
            Some(Edn::Keyword(k)) if k.namespace().is_none() => match k.name() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                _ => return Err(expected(TYPES, self.kind)),
            },
            other => return Err(expected(TYPES, other)),
        };
        let f = match self.f {
            Some(Edn::Keyword(k)) => Func::parse(&name(k)),
            Some(Edn::String(s)) => Func::parse(s),
            other => return Err(expected("a function keyword such as :read as :f", other)),
        };
        let index = count("index", self.index)?.unwrap_or(position);
        let time = count("time", self.time)?.unwrap_or(index);
        let mut value = self.value.map_or(Value::Nil, value);
        let mut error = self.error.map(text);
        // Jepsen clients complete an operation whose result is unknown with a
        // bare keyword instead of a value: `:info :cas :timed-out`.
        if let (
            Some(Edn::Keyword(k)),
            EventType::Ok | EventType::Fail | EventType::Info,
            Process::Client(_),
        ) = (self.value, kind, process)
        {
            error.get_or_insert_with(|| name(k));
            value = Value::Nil;
        }
        Ok(Event {
            index,
            time,
            kind,
            process,
            f,
            key: self.key.map(text),
            value,
            error,
        })
    }
}

const TYPES: &str = ":invoke, :ok, :fail or :info as the event type";

fn expected(what: &str, found: Option<&Edn>) -> String {
    match found {
        Some(found) => format!("expected {what}, found {}", shown(found)),
        None => format!("expected {what}, found nothing"),
    }
}

/// A non-negative integer field (`:time`, `:index`), if present.
fn count(field: &str, found: Option<&Edn>) -> Result<Option<u64>, String> {
    match found {
        None => Ok(None),
        Some(&Edn::Integer(n)) if n >= 0 => Ok(Some(n as u64)),
        other => Err(expected(
            &format!("a non-negative integer as :{field}"),
            other,
        )),
    }
}

/// A value in our model: nil, integers, strings and lists (from vectors, lists
/// and sets) are themselves; anything else — keywords, maps, floats, booleans,
/// big integers — keeps its EDN text as a string, so that it still compares.
fn value(edn: &Edn) -> Value {
    match edn {
        Edn::Nil => Value::Nil,
        &Edn::Integer(n) => Value::Int(n),
        Edn::String(s) => Value::Str(s.clone()),
        Edn::Vector(items) | Edn::List(items) => Value::List(items.iter().map(value).collect()),
        Edn::Set(items) => Value::List(items.iter().map(value).collect()),
        other => Value::Str(other.to_string()),
    }
}

/// A key or error message as text: strings as they are, keywords without their
/// colon, anything else as EDN.
fn text(edn: &Edn) -> String {
    match edn {
        Edn::String(s) => s.clone(),
        Edn::Keyword(k) => name(k),
        other => other.to_string(),
    }
}

/// A keyword without its colon: `timed-out`, `jepsen/op`.
fn name(keyword: &Keyword) -> String {
    match keyword.namespace() {
        Some(namespace) => format!("{namespace}/{}", keyword.name()),
        None => keyword.name().to_string(),
    }
}

/// An EDN value as quoted in an error message.
pub(super) fn shown(edn: &Edn) -> String {
    snippet(&edn.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> Result<Event, String> {
        let Ok(Edn::Map(map)) = edn_format::parse_str(text) else {
            panic!("not a map: {text}")
        };
        Fields::from_map(&map).into_event(7)
    }

    #[test]
    fn reads_a_jepsen_operation() {
        let e = event(
            "{:type :invoke, :f :cas, :value [1 2], :process 3, :time 123, :index 9, :node \"n1\"}",
        )
        .unwrap();
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(e.process, Process::Client(3));
        assert_eq!(e.f, Func::Cas);
        assert_eq!(e.value, Value::List(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!((e.index, e.time), (9, 123));
        assert_eq!((e.key, e.error), (None, None));
    }

    #[test]
    fn index_and_time_default_to_the_position() {
        let e = event("{:type :ok, :f :read, :value nil, :process :nemesis}").unwrap();
        assert_eq!((e.index, e.time, e.process), (7, 7, Process::Nemesis));
        assert_eq!(
            event("{:type :ok, :f :read, :process 1, :index 3}")
                .unwrap()
                .time,
            3
        );
    }

    #[test]
    fn keyword_completion_is_an_error() {
        let e = event("{:type :info, :f :cas, :value :timed-out, :process 1}").unwrap();
        assert_eq!(
            (e.value, e.error.as_deref()),
            (Value::Nil, Some("timed-out"))
        );
        // An explicit :error wins; an invocation's keyword stays a value.
        let e =
            event("{:type :fail, :f :cas, :value :x, :error [:conflict 2], :process 1}").unwrap();
        assert_eq!(e.error.as_deref(), Some("[:conflict 2]"));
        let e = event("{:type :invoke, :f :cas, :value :x, :process 1}").unwrap();
        assert_eq!(e.value, Value::Str(":x".into()));
    }

    #[test]
    fn unusual_values_keep_their_edn_text() {
        let e = event("{:type :ok, :f :read, :value [#{1} {:a 1.5} true], :process 1, :key :k}")
            .unwrap();
        let items = vec![
            Value::List(vec![Value::Int(1)]),
            Value::Str("{:a 1.5}".into()),
            Value::Str("true".into()),
        ];
        assert_eq!(e.value, Value::List(items));
        assert_eq!(e.key.as_deref(), Some("k"));
    }

    #[test]
    fn broken_operations_say_what_was_expected() {
        let cases = [
            (
                "{:type :bogus, :f :read, :process 1}",
                "expected :invoke, :ok, :fail or :info as the event type, found :bogus",
            ),
            (
                "{:f :read, :process 1}",
                "expected :invoke, :ok, :fail or :info as the event type, found nothing",
            ),
            (
                "{:type :ok, :f :read}",
                "expected a process number or :nemesis as :process, found nothing",
            ),
            ("{:type :ok, :f :read, :process -1}", "found -1"),
            (
                "{:type :ok, :process 1}",
                "expected a function keyword such as :read as :f, found nothing",
            ),
            (
                "{:type :ok, :f :read, :process 1, :time \"x\"}",
                "expected a non-negative integer as :time, found \"x\"",
            ),
        ];
        for (text, message) in cases {
            let err = event(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
    }
}
