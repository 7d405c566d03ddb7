//! Reading histories recorded elsewhere (placeholder, being written).
use crate::history::{History, ParseError};
use std::path::Path;

/// The on-disk formats `splitbrain check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Auto,
    Jsonl,
    Edn,
    PorcupineEtcd,
    PorcupineKv,
}

pub fn read_history(path: &Path, format: Format) -> Result<(History, Format), ParseError> {
    let _ = format;
    History::read_jsonl_file(path).map(|h| (h, Format::Jsonl))
}
