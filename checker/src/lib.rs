//! Histories, models and the linearizability checker.
pub mod check;
pub mod history;
pub mod import;
pub mod model;
pub mod op;
pub mod search;
pub mod synth;
pub mod zones;

pub use check::{check, check_with, Counterexample, KeyResult, ModelChoice, Options, Report, Verdict};
pub use history::{Event, EventType, Func, History, JsonlWriter, ParseError, Process, Value};
pub use model::{AppendKv, FailedCas, Model, Register};
pub use op::{operations, Operation, Outcome};
