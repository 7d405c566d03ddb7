//! Splitting EDN text into the forms that hold operations, with their lines.
//!
//! A Jepsen history is either a stream of top-level operation maps or one
//! top-level vector of them. Either way each operation is cut out as text —
//! found by bracket depth, minding strings, character literals and comments —
//! and given to `edn_format` on its own. That keeps memory to one operation at a
//! time, puts the right line number on every error, and lets us refuse what
//! `edn_format` 3.3 would crash on before it sees it: deeply nested input
//! overflows its stack, and a `\u` literal followed by non-ASCII text panics.

use super::{for_each_line, snippet};
use crate::history::ParseError;
use edn_format::{ParserError, Value as Edn};
use std::io::BufRead;
use std::mem;

/// How deeply brackets and tags may nest. Operations need a handful of levels;
/// a few hundred overflow a 2 MiB thread stack in `edn_format` debug builds.
const MAX_NESTING: usize = 64;

/// Calls `each(line, form)` with every operation form in `reader` and the line
/// it starts on. The elements of a top-level vector count as top-level forms.
pub(super) fn for_each_form(
    reader: impl BufRead,
    path: &str,
    mut each: impl FnMut(usize, Edn) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut splitter = Splitter::default();
    let mut emit = |line, text: String| match parse_form(path, line, &text) {
        Some(form) => each(line, form?),
        None => Ok(()),
    };
    for_each_line(reader, path, |number, line| {
        splitter.feed(path, number, line, &mut emit)
    })?;
    if splitter.vector_line != 0 {
        let message = "expected `]` to close this vector, found the end of the input";
        return Err(ParseError::new(path, splitter.vector_line, message));
    }
    // Whatever is left is unfinished (`{:type`) or not bracketed (`nil`); either
    // way parsing it gives the right complaint.
    emit(splitter.form_line, splitter.form)
}

/// Checks that `text` is safe to give `edn_format` (see [`Lexer`]).
pub(super) fn check_safe(text: &str) -> Result<(), String> {
    let mut lexer = Lexer::default();
    text.chars().try_for_each(|c| {
        lexer.step(c);
        lexer.check()
    })
}

/// Parses the text of one form starting on `line`; `None` if it holds no form
/// (blank, or discarded with `#_`).
fn parse_form(path: &str, line: usize, text: &str) -> Option<Result<Edn, ParseError>> {
    if text.trim().is_empty() {
        return None;
    }
    match edn_format::parse_str(text) {
        Ok(form) => Some(Ok(form)),
        Err(e) if e.error == ParserError::EmptyInput => None,
        // Forms are cut where their brackets balance, so only the end of the
        // input can leave one unfinished: point at where it starts.
        Err(e) if e.error == ParserError::UnexpectedEndOfInput => Some(Err(ParseError::new(
            path,
            line,
            format!(
                "expected `{}` to be finished, found the end of the input",
                snippet(text.trim())
            ),
        ))),
        // edn_format 3.3 swaps its fields: `col` counts lines from 1, `row` columns.
        Err(e) => Some(Err(ParseError::new(
            path,
            line + e.col.saturating_sub(1),
            format!(
                "expected an EDN operation map, but the EDN reader found: {} (in `{}`)",
                e.error,
                snippet(text.trim())
            ),
        ))),
    }
}

/// Cuts operation forms out of EDN text fed to it line by line.
#[derive(Default)]
struct Splitter {
    lexer: Lexer,
    /// The line of the `[` of the top-level vector we are inside, 0 outside.
    vector_line: usize,
    /// The text of the form being read and the line it starts on (0: none yet).
    form: String,
    form_line: usize,
}

impl Splitter {
    /// Feeds one line, calling `emit(line, text)` for each form it completes.
    fn feed(
        &mut self,
        path: &str,
        number: usize,
        line: &str,
        emit: &mut impl FnMut(usize, String) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        for c in line.chars() {
            // Forms are the elements of the vector when inside it, else top-level forms.
            let base = usize::from(self.vector_line != 0);
            let depth = self.lexer.depth;
            match self.lexer.step(c) {
                Lexeme::Comment => {
                    // Keep the newline, so that edn_format counts lines as we do.
                    if self.form_line != 0 && line.ends_with('\n') {
                        self.form.push('\n');
                    }
                    return Ok(());
                }
                Lexeme::Space if self.form_line == 0 => {}
                Lexeme::Open if c == '[' && depth == 0 && self.form_line == 0 => {
                    self.vector_line = number
                }
                Lexeme::Close if depth == base => {
                    if base == 0 || c != ']' {
                        let message =
                            format!("expected an operation map, found an unmatched `{c}`");
                        return Err(ParseError::new(path, number, message));
                    }
                    // A bare atom before the `]` is a form, if not a map.
                    self.flush(emit)?;
                    self.vector_line = 0;
                }
                lexeme => {
                    if self.form_line == 0 {
                        self.form_line = number;
                    }
                    self.form.push(c);
                    self.lexer
                        .check()
                        .map_err(|message| ParseError::new(path, number, message))?;
                    if lexeme == Lexeme::Close && self.lexer.depth == base {
                        self.flush(emit)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(
        &mut self,
        emit: &mut impl FnMut(usize, String) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        self.lexer.tags.clear();
        let line = mem::take(&mut self.form_line);
        emit(line, mem::take(&mut self.form))
    }
}

/// What a character is to the splitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lexeme {
    Space,
    Comment,
    Open,
    Close,
    Other,
}

/// Just enough EDN lexing to find forms — whether we are in a string or after
/// a `\` (where brackets are text) and the bracket depth — and to spot what
/// `edn_format` cannot safely parse: deep nesting (each bracket, and each tag
/// (`#`) whose form is still open, costs it a level of recursion), and
/// non-ASCII text right after a `\u` character literal, which it slices
/// through the middle of a character and panics.
#[derive(Default)]
struct Lexer {
    depth: usize,
    /// The depth each open tag was read at; its form ends when we return there.
    tags: Vec<usize>,
    in_string: bool,
    escaped: bool,
    /// How many more characters must be ASCII, after a `\u` outside strings.
    ascii_wanted: usize,
    non_ascii_literal: bool,
}

impl Lexer {
    fn step(&mut self, c: char) -> Lexeme {
        if self.ascii_wanted > 0 {
            self.ascii_wanted -= 1;
            self.non_ascii_literal |= !c.is_ascii();
        }
        if self.escaped {
            self.escaped = false;
            if c == 'u' && !self.in_string {
                self.ascii_wanted = 4;
            }
            return Lexeme::Other;
        }
        if self.in_string {
            match c {
                '\\' => self.escaped = true,
                '"' => self.in_string = false,
                _ => {}
            }
            return Lexeme::Other;
        }
        match c {
            ';' => Lexeme::Comment,
            ',' => Lexeme::Space,
            c if c.is_whitespace() => Lexeme::Space,
            '(' | '[' | '{' => {
                self.depth += 1;
                Lexeme::Open
            }
            ')' | ']' | '}' => {
                self.depth = self.depth.saturating_sub(1);
                while self.tags.last().is_some_and(|&depth| depth >= self.depth) {
                    self.tags.pop();
                }
                Lexeme::Close
            }
            '"' => {
                self.in_string = true;
                Lexeme::Other
            }
            // A character literal: the next character is text, even `"` or `[`.
            '\\' => {
                self.escaped = true;
                Lexeme::Other
            }
            '#' => {
                self.tags.push(self.depth);
                Lexeme::Other
            }
            _ => Lexeme::Other,
        }
    }

    /// Whether the text so far is safe to give `edn_format`.
    fn check(&self) -> Result<(), String> {
        if self.depth + self.tags.len() > MAX_NESTING {
            return Err(format!("expected brackets and tags nested at most {MAX_NESTING} deep, found deeper nesting"));
        }
        if self.non_ascii_literal {
            return Err("expected a character literal such as \\u00e9 or \\a, found `\\u` followed by non-ASCII text".into());
        }
        Ok(())
    }
}
