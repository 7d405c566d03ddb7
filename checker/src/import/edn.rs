//! Jepsen EDN histories, and Porcupine's kv logs, which are EDN too.
//!
//! Operations are maps, one per line or all inside one top-level vector
//! (possibly spanning lines), plain or tagged as records:
//!
//! ```text
//! {:type :invoke, :f :cas, :value [1 2], :process 3, :time 1200, :index 7}
//! #jepsen.history.Op{:index 8, :time 9800, :type :fail, :process 3, :f :cas, :value [1 2], :error :compare-failed}
//! ```
//!
//! # Keys
//!
//! An operation's `:key` field, as Porcupine's kv logs have, is its key; its
//! `:value` is kept as is. Histories from `jepsen.independent` instead put a
//! `[key value]` pair in `:value`. Which reading is meant cannot be told from
//! one operation — `[1 2]` is also a cas — so the whole history decides: when
//! no operation has a `:key`, at least one client operation exists, and every
//! client operation's value is a two-element vector, each is split into key
//! (its first element as text: `3` and `"3"` both become the key `3`) and value
//! (the second). Nemesis operations are never split.

use super::{forms, op::shown, op::Fields, Format};
use crate::history::{Event, History, ParseError, Process, Value};
use edn_format::Value as Edn;
use std::io::BufRead;
use std::mem;

/// Reads an EDN history. With `require_keys` (the `porcupine-kv` format) every
/// client operation must have a `:key`. Reports [`Format::PorcupineKv`] when
/// operations carry keys, else [`Format::Edn`].
pub(super) fn read(
    reader: impl BufRead,
    path: &str,
    require_keys: bool,
) -> Result<(History, Format), ParseError> {
    let mut history = History::new();
    let mut keyed = false;
    forms::for_each_form(reader, path, |line, form| {
        let event = event(&form, history.len() as u64)
            .map_err(|message| ParseError::new(path, line, message))?;
        if require_keys && event.key.is_none() && is_client(&event) {
            let message =
                "expected a :key in every client operation of a porcupine-kv history, found none";
            return Err(ParseError::new(path, line, message));
        }
        keyed |= event.key.is_some();
        history.events.push(event);
        Ok(())
    })?;
    if keyed || require_keys {
        return Ok((history, Format::PorcupineKv));
    }
    split_independent(&mut history.events);
    Ok((history, Format::Edn))
}

/// The event an operation form describes, tagged (`#jepsen.history.Op{…}`) or not.
fn event(form: &Edn, position: u64) -> Result<Event, String> {
    let map = match form {
        Edn::Map(map) => map,
        Edn::TaggedElement(_, tagged) => match &**tagged {
            Edn::Map(map) => map,
            _ => return Err(not_a_map(form)),
        },
        _ => return Err(not_a_map(form)),
    };
    Fields::from_map(map).into_event(position)
}

fn not_a_map(form: &Edn) -> String {
    format!(
        "expected an operation map such as {{:type :invoke, :f :read, :process 0}}, found {}",
        shown(form)
    )
}

fn is_client(event: &Event) -> bool {
    matches!(event.process, Process::Client(_))
}

/// Applies the `jepsen.independent` rule of the module documentation.
fn split_independent(events: &mut [Event]) {
    let pair = |e: &Event| matches!(&e.value, Value::List(items) if items.len() == 2);
    let mut clients = events.iter().filter(|e| is_client(e)).peekable();
    if clients.peek().is_none() || !clients.all(pair) {
        return;
    }
    for event in events.iter_mut().filter(|e| is_client(e)) {
        if let Value::List(items) = &mut event.value {
            if let [key, value] = &mut items[..] {
                let (key, value) = (mem::take(key), mem::take(value));
                event.key = Some(match key {
                    Value::Int(n) => n.to_string(),
                    Value::Str(s) => s,
                    other => other.to_string(),
                });
                event.value = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Func};

    fn read_str(text: &str) -> Result<(History, Format), ParseError> {
        read(text.as_bytes(), "h.edn", false)
    }

    #[test]
    fn one_map_per_line() {
        let text = "{:type :invoke, :f :write, :value 3, :process 0}\n\n{:type :ok, :f :write, :value 3, :process 0}\n";
        let (history, format) = read_str(text).unwrap();
        assert_eq!(format, Format::Edn);
        assert_eq!(history.len(), 2);
        assert_eq!(
            (history.events[1].index, history.events[1].kind),
            (1, EventType::Ok)
        );
    }

    #[test]
    fn vector_of_records_across_lines() {
        let text = "[#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 0, :f :read, :value nil}\n \
                    #jepsen.history.Op {:index 1, :time 9,\n  :type :ok, :process 0, :f :read, :value 4}\n\
                    {:type :info, :f :start, :value \"cut [n1]\", :process :nemesis} ; a comment ]\n]\n";
        let (history, _) = read_str(text).unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(
            (history.events[1].time, &history.events[1].value),
            (9, &Value::Int(4))
        );
        assert_eq!(history.events[2].process, Process::Nemesis);
    }

    #[test]
    fn errors_name_the_line_of_the_operation() {
        let text = "[{:type :invoke, :f :read, :process 0}\n {:type :ok, :f :read, :process 0}\n {:type :bogus, :f :read, :process 0}]";
        let err = read_str(text).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("found :bogus"), "{err}");
        // A syntax error on the second line of a map spanning lines.
        let err = read_str("{:type :ok, :f :read, :process 0}\n{:type :ok,\n :f :read :process}\n")
            .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = read_str("[{:type :ok, :f :read, :process 0}\n").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        assert!(err.message.contains("`]`"), "{err}");
        let err = read_str("{:type :ok, :f :read, :process 0}}\n").unwrap_err();
        assert!(err.message.contains("unmatched `}`"), "{err}");
        let err = read_str("{:type :ok, :f :read, :process 0}\nnil\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("found nil"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!(
            "{{:type :ok, :f :read, :process 0, :value {}}}",
            "[".repeat(10_000)
        );
        let err = read_str(&deep).unwrap_err();
        assert!(err.message.contains("nested"), "{err}");
        let tags = format!(
            "{{:type :ok, :f :read, :process 0, :value {} 1}}",
            "#a ".repeat(10_000)
        );
        assert!(read_str(&tags).is_err());
        // Many sibling sets are fine: each tag ends with its set.
        let sets = format!(
            "{{:type :ok, :f :read, :process 0, :value [{}]}}",
            "#{1} ".repeat(200)
        );
        assert_eq!(read_str(&sets).unwrap().0.len(), 1);
    }

    #[test]
    fn what_would_crash_edn_format_is_an_error() {
        for text in [
            "{:value \\u\u{a47}\u{1d540}}",
            "[\\u é\u{e9}]",
            "\\u\u{a47}𝕀",
        ] {
            let err = read_str(text).unwrap_err();
            assert!(err.message.contains("non-ASCII"), "{text}: {err}");
        }
        let (history, _) =
            read_str("{:type :ok, :f :read, :process 0, :value [\\u00e9 \"\\u00e9 é\" 1]}")
                .unwrap();
        let value = vec![
            Value::Str("\\é".into()),
            Value::Str("é é".into()),
            Value::Int(1),
        ];
        assert_eq!(history.events[0].value, Value::List(value));
    }

    #[test]
    fn independent_pairs_are_split() {
        let text = "{:type :invoke, :f :cas, :value [3 [1 2]], :process 0}\n\
                    {:type :info, :f :start, :value nil, :process :nemesis}\n\
                    {:type :ok, :f :read, :value [\"k\" 4], :process 1}\n";
        let (history, format) = read_str(text).unwrap();
        assert_eq!(format, Format::Edn);
        let e = &history.events;
        assert_eq!(
            (e[0].key.as_deref(), &e[0].value),
            (Some("3"), &Value::List(vec![Value::Int(1), Value::Int(2)]))
        );
        assert_eq!((e[1].key.as_deref(), &e[1].value), (None, &Value::Nil));
        assert_eq!(
            (e[2].key.as_deref(), &e[2].value),
            (Some("k"), &Value::Int(4))
        );
    }

    #[test]
    fn a_register_history_is_not_split() {
        let text = "{:type :invoke, :f :cas, :value [1 2], :process 0}\n{:type :invoke, :f :read, :value nil, :process 1}\n";
        let (history, _) = read_str(text).unwrap();
        assert!(history.events.iter().all(|e| e.key.is_none()));
        assert_eq!(history.events[0].f, Func::Cas);
    }

    #[test]
    fn explicit_keys_are_porcupine_kv() {
        let text = "{:process 0, :type :invoke, :f :put, :key \"1\", :value [1 2]}\n";
        let (history, format) = read_str(text).unwrap();
        assert_eq!(format, Format::PorcupineKv);
        assert_eq!(
            history.events[0].value,
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        let err = read(
            "{:process 0, :type :invoke, :f :get, :value nil}".as_bytes(),
            "kv",
            true,
        )
        .unwrap_err();
        assert!(err.message.contains(":key"), "{err}");
    }
}
