//! Reading histories recorded elsewhere: Jepsen's EDN and the Porcupine
//! benchmark logs, besides Splitbrain's own JSON Lines.
//!
//! [`read_history`] and [`parse_history`] turn any of these into a
//! [`History`]. Given [`Format::Auto`] they tell the format from the first
//! non-blank line and report which one they used. Every reader goes through
//! its input once, a line (or, for EDN, a form) at a time, and never panics:
//! whatever is wrong comes back as a [`ParseError`] naming the file, the line,
//! what was expected and what was found.
//!
//! | `--format` | example line |
//! |---|---|
//! | `jsonl` | `{"index":0,"time":1200,"type":"invoke","process":3,"f":"cas","value":[1,2]}` |
//! | `edn` | `{:type :invoke, :f :cas, :value [1 2], :process 3, :time 1200, :index 0}` |
//! | `porcupine-etcd` | `INFO  jepsen.util - 3    :invoke    :cas    [1 2]` |
//! | `porcupine-kv` | `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}` |

mod edn;
mod forms;
mod op;
mod porcupine;

use crate::history::{History, ParseError};
use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::str::FromStr;

/// The on-disk formats `splitbrain check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tell the format from the first non-blank line: `{"` starts JSON Lines, a
    /// line containing `jepsen.util -` is a Porcupine etcd log, and any other
    /// `{`, or `[`, `#` or `;`, starts EDN — reported as
    /// [`PorcupineKv`](Format::PorcupineKv) when its operations carry a `:key`.
    /// An empty input is an empty JSON Lines history. Anything else is an error
    /// that suggests `--format`.
    Auto,
    /// Splitbrain's own JSON Lines, one event per line (see [`crate::history`]):
    ///
    /// ```text
    /// {"index":0,"time":1200,"type":"invoke","process":3,"f":"cas","key":"k1","value":[1,2]}
    /// ```
    Jsonl,
    /// A Jepsen history: EDN operation maps, one per line or all inside one
    /// top-level vector, optionally tagged as records (`#jepsen.history.Op{…}`):
    ///
    /// ```text
    /// {:type :invoke, :f :cas, :value [1 2], :process 3, :time 1200, :index 7}
    /// ```
    ///
    /// `:process` is a number or `:nemesis`; `:time` (nanoseconds) and `:index`
    /// default to the operation's position. A client completion whose value is a
    /// bare keyword (`:timed-out`) gets that keyword as its `error` and a nil
    /// value. An operation's `:key` is its key (and makes the history
    /// [`PorcupineKv`](Format::PorcupineKv)); without any, a history written by
    /// `jepsen.independent`, where every client operation's value is a
    /// `[key value]` pair, is split into keys and values (see the `edn` module
    /// for the exact rule).
    Edn,
    /// A Porcupine etcd log: one register, read/write/cas, one event per line,
    /// the fields separated by tabs or runs of spaces:
    ///
    /// ```text
    /// INFO  jepsen.util - 17    :invoke    :cas    [4 4]
    /// INFO  jepsen.util - 13    :info    :cas    :timed-out
    /// ```
    PorcupineEtcd,
    /// A Porcupine key-value log: EDN maps, one per line, each naming its key.
    /// Read like [`Edn`](Format::Edn), except that every client operation must
    /// carry a `:key`:
    ///
    /// ```text
    /// {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
    /// ```
    PorcupineKv,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::Jsonl,
        Format::Edn,
        Format::PorcupineEtcd,
        Format::PorcupineKv,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown history format `{name}`: expected one of {}",
                    format_names()
                )
            })
    }
}

fn format_names() -> String {
    Format::ALL.map(Format::name).join(", ")
}

/// Reads the history in the file at `path`, returning it with the format used.
pub fn read_history(path: &Path, format: Format) -> Result<(History, Format), ParseError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| ParseError::new(&name, 0, format!("cannot open: {e}")))?;
    parse_history(io::BufReader::new(file), &name, format)
}

/// Reads a history from `reader`, returning it with the format used (for
/// [`Format::Auto`], the one detected). `path_name` only names the source in
/// error messages.
pub fn parse_history(
    reader: impl BufRead,
    path_name: &str,
    format: Format,
) -> Result<(History, Format), ParseError> {
    match format {
        Format::Auto => {
            let (detected, reader) = sniff(reader, path_name)?;
            read_known(reader, path_name, detected)
        }
        known => read_known(reader, path_name, known),
    }
}

/// Reads a history whose format is known. (Not part of `parse_history`, whose
/// type would recurse through the replaying reader `sniff` returns.)
fn read_known(
    reader: impl BufRead,
    path: &str,
    format: Format,
) -> Result<(History, Format), ParseError> {
    match format {
        Format::Edn => edn::read(reader, path, false),
        Format::PorcupineKv => edn::read(reader, path, true),
        Format::PorcupineEtcd => {
            porcupine::read_etcd(reader, path).map(|history| (history, Format::PorcupineEtcd))
        }
        // Sniffing never yields `Auto`; JSON Lines is what it falls back to anyway.
        Format::Jsonl | Format::Auto => {
            History::read_jsonl(reader, path).map(|history| (history, Format::Jsonl))
        }
    }
}

/// A reader that replays the lines sniffing read, then goes on with the rest.
type Replay<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Reads up to the first non-blank line to tell the format, and hands back a
/// reader that replays what was read, so that the input is read only once.
fn sniff<R: BufRead>(mut reader: R, path: &str) -> Result<(Format, Replay<R>), ParseError> {
    let mut head = String::new();
    let mut number = 0;
    let format = loop {
        number += 1;
        let start = head.len();
        match reader.read_line(&mut head) {
            // Blank input is an empty history in every format.
            Ok(0) => break Format::Jsonl,
            Ok(_) => {}
            Err(e) => return Err(ParseError::new(path, number, format!("cannot read: {e}"))),
        }
        let line = head[start..].trim();
        if !line.is_empty() {
            break detect(line).ok_or_else(|| unknown_format(path, number, line))?;
        }
    };
    Ok((format, io::Cursor::new(head.into_bytes()).chain(reader)))
}

/// The format a history whose first non-blank line is `line` is in, if any.
fn detect(line: &str) -> Option<Format> {
    if line.contains("jepsen.util -") {
        return Some(Format::PorcupineEtcd);
    }
    match line.chars().next()? {
        // A JSON object's first key is a string; an EDN map's is usually a keyword.
        '{' if line[1..].trim_start().starts_with('"') => Some(Format::Jsonl),
        '{' | '[' | '#' | ';' => Some(Format::Edn),
        _ => None,
    }
}

fn unknown_format(path: &str, number: usize, line: &str) -> ParseError {
    ParseError::new(
        path,
        number,
        format!(
            "expected a history — JSON Lines (`{{\"type\":\"invoke\",…}}`), Jepsen EDN (`{{:type :invoke, …}}` \
             or a vector of them) or a Porcupine etcd log (`INFO  jepsen.util - …`) — found `{}`; \
             name the format with --format ({})",
            snippet(line),
            format_names()
        ),
    )
}

/// Calls `each` with every line of `reader` and its 1-based number.
fn for_each_line(
    mut reader: impl BufRead,
    path: &str,
    mut each: impl FnMut(usize, &str) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut line = String::new();
    let mut number = 0;
    loop {
        number += 1;
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => each(number, &line)?,
            Err(e) => return Err(ParseError::new(path, number, format!("cannot read: {e}"))),
        }
    }
}

/// The start of `text`, short enough to quote in an error message.
fn snippet(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
        let err = "yaml".parse::<Format>().unwrap_err();
        assert!(err.contains("porcupine-etcd"), "{err}");
    }

    #[test]
    fn detect_by_first_line() {
        assert_eq!(
            detect(r#"{"index":0,"type":"invoke"}"#),
            Some(Format::Jsonl)
        );
        assert_eq!(
            detect("INFO  jepsen.util - 0\t:invoke\t:read\tnil"),
            Some(Format::PorcupineEtcd)
        );
        assert_eq!(detect("{:type :invoke}"), Some(Format::Edn));
        assert_eq!(detect("[{:type :invoke}"), Some(Format::Edn));
        assert_eq!(
            detect("#jepsen.history.Op{:type :invoke}"),
            Some(Format::Edn)
        );
        assert_eq!(detect("hello"), None);
    }

    #[test]
    fn sniffing_skips_blank_lines_and_replays_them() {
        let text = "\n  \n{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :bogus, :f :read}\n";
        let err = parse_history(text.as_bytes(), "h.edn", Format::Auto).unwrap_err();
        assert_eq!(err.line, 4, "{err}");
    }

    #[test]
    fn empty_input_is_an_empty_history() {
        for text in ["", "\n \n"] {
            let (history, format) = parse_history(text.as_bytes(), "empty", Format::Auto).unwrap();
            assert!(history.is_empty());
            assert_eq!(format, Format::Jsonl);
        }
    }

    #[test]
    fn unknown_format_names_the_flag() {
        let err = parse_history("\nhello world\n".as_bytes(), "h.txt", Format::Auto).unwrap_err();
        assert_eq!(err.line, 2);
        let text = err.to_string();
        assert!(text.starts_with("h.txt:2: "), "{text}");
        assert!(
            text.contains("--format")
                && text.contains("porcupine-kv")
                && text.contains("hello world"),
            "{text}"
        );
    }

    #[test]
    fn unreadable_input_names_the_line() {
        let err = parse_history(&b"\n\xff\xfe\n"[..], "bin", Format::Auto).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn snippet_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(100);
        assert_eq!(snippet(&long).chars().count(), 61);
        assert_eq!(snippet("short"), "short");
    }
}
