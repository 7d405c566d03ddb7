//! Histories, models and the linearizability checker.
pub mod history;
pub mod import;

pub use history::{Event, EventType, Func, History, JsonlWriter, ParseError, Process, Value};
