//! Porcupine's etcd logs: Jepsen's 2014 etcd test, as logged by `jepsen.util`.
//!
//! ```text
//! INFO  jepsen.util - 2    :invoke    :write    4
//! INFO  jepsen.util - 17    :ok    :cas    [4 4]
//! INFO  jepsen.util - 13    :info    :cas    :timed-out
//! ```
//!
//! After `jepsen.util -` come four EDN fields — process, type, function, value —
//! separated by tabs or runs of spaces. The log has no keys and no times: an
//! event's index and time are its position.

use super::{for_each_line, forms, op::Fields, snippet};
use crate::history::{Event, History, ParseError};
use std::io::BufRead;

/// Reads an etcd log; blank lines are skipped and an empty log is an empty history.
pub(super) fn read_etcd(reader: impl BufRead, path: &str) -> Result<History, ParseError> {
    let mut history = History::new();
    for_each_line(reader, path, |number, line| {
        if !line.trim().is_empty() {
            let event = event(line.trim_end(), history.len() as u64)
                .map_err(|m| ParseError::new(path, number, m))?;
            history.events.push(event);
        }
        Ok(())
    })?;
    Ok(history)
}

fn event(line: &str, position: u64) -> Result<Event, String> {
    let Some((_, fields)) = line.split_once("jepsen.util -") else {
        return Err(format!(
            "expected a line like `INFO  jepsen.util - 3 :invoke :read nil`, found `{}`",
            snippet(line)
        ));
    };
    forms::check_safe(fields)?;
    let fields = edn_format::Parser::from_str(fields, Default::default())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!("expected EDN fields after `jepsen.util -`, but the EDN reader found: {e}")
        })?;
    let [process, kind, f, value] = &fields[..] else {
        return Err(format!(
            "expected four fields (process, type, function, value), found {}",
            fields.len()
        ));
    };
    Fields {
        process: Some(process),
        kind: Some(kind),
        f: Some(f),
        value: Some(value),
        ..Fields::default()
    }
    .into_event(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Func, Process, Value};

    #[test]
    fn tabs_and_spaces_separate_fields() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[4 4]\n\nINFO  jepsen.util - 10   :fail :read   :timed-out\n";
        let history = read_etcd(text.as_bytes(), "etcd.log").unwrap();
        let e = &history.events;
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].process, e[0].kind, &e[0].f),
            (Process::Client(2), EventType::Invoke, &Func::Cas)
        );
        assert_eq!(e[0].value, Value::List(vec![Value::Int(4), Value::Int(4)]));
        assert_eq!((e[1].index, e[1].time, e[1].key.as_deref()), (1, 1, None));
        assert_eq!(
            (e[1].kind, &e[1].value, e[1].error.as_deref()),
            (EventType::Fail, &Value::Nil, Some("timed-out"))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:bogus\t:read\tnil\n";
        let err = read_etcd(text.as_bytes(), "etcd_001.log").unwrap_err();
        assert_eq!(
            err.to_string(),
            "etcd_001.log:2: expected :invoke, :ok, :fail or :info as the event type, found :bogus"
        );
        for (line, expected) in [
            ("hello", "expected a line like"),
            ("INFO  jepsen.util - 0\t:ok\t:read", "found 3"),
            ("INFO  jepsen.util - 0\t:ok\t:read\t[1", "EDN reader"),
            ("INFO  jepsen.util - 0 :ok :read [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "nested"),
        ] {
            let err = read_etcd(line.as_bytes(), "etcd.log").unwrap_err();
            assert!(err.message.contains(expected), "{line}: {err}");
        }
    }
}
