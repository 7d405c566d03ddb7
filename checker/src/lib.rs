//! Histories, models and the linearizability checker of Splitbrain.
//!
//! A history ([`History`]) is what a test recorded: invocations and
//! completions of client operations, in order. The checker answers one
//! question about it: is there a single order of the operations, each taking
//! effect at one instant between its invocation and its completion, in which
//! every result is what a [`Model`] — a sequential specification such as a
//! register — would have returned? If so the history is *linearizable*.
//!
//! # How a check goes
//!
//! 1. **Operations.** [`operations`] pairs each invocation with its
//!    completion. `fail` means the operation did not happen; `info`, or no
//!    completion at all, means it may have happened at any point after its
//!    invocation, or never: its return is at infinity.
//! 2. **Partitions.** Linearizability is compositional: a history is
//!    linearizable exactly when each key's sub-history is (Herlihy and Wing's
//!    locality; Horn and Kroening's P-compositionality). Keys are checked
//!    independently, on all cores, largest first.
//! 3. **Simplification.** A model compiles each operation to a small step and
//!    drops what constrains nothing (a failed write, an indeterminate read).
//!    An indeterminate write whose value nobody observed is dropped too: it
//!    may as well never have happened. When an observation can only be
//!    explained by one operation, that operation must have taken effect before
//!    the observer returned, and its return is pulled in to there — which turns
//!    many indeterminate operations into ordinary ones.
//! 4. **Fast path.** For a register whose written values are all distinct,
//!    every read names its write, and Gibbons and Korach's zone conditions
//!    decide linearizability in O(n log n) ([`zones`]); compare-and-set links
//!    versions into chains that the same conditions handle. Key-value strings
//!    built by put and append reduce to such a register, since a get reveals
//!    every version before it, as long as real time tells which operation
//!    wrote each token it shows ([`traced`]). The fast path runs first, on
//!    the operations as recorded and compiling them as it reads them: a
//!    partition it finds valid is never compiled as a whole.
//! 5. **Search.** Otherwise, the Wing–Gong algorithm with Lowe's memoization
//!    ([`search`]): keep calls and returns in one time-ordered list; any call
//!    before the first return may take effect next; try it on the model and
//!    recurse; when a return reaches the front, that operation should already
//!    have been placed, so backtrack. A configuration — the set of linearized
//!    operations (a bitset with an incremental Zobrist hash) plus the model
//!    state (interned to an integer) — is never explored twice. Indeterminate
//!    operations are tried last, never placed where they would not change the
//!    state, identical ones are interchangeable, and none has to be placed:
//!    the search succeeds once every definite operation is in.
//! 6. **Segments.** Where nothing is pending, a partition is cut: the search
//!    runs segment after segment, each starting from a state in which the
//!    previous one can end, so long histories do not carry one huge bitset.
//! 7. **Scheduling and budgets.** Searches run in slices of steps, round robin
//!    over a shared queue, so an easy invalid key is found while hard keys
//!    are still being searched; the first invalid key stops the rest. A time
//!    limit and a memory budget turn an unfinished check into
//!    [`Verdict::Unknown`] with the reason and how far it got — never valid.
//! 8. **Counterexample.** An invalid key comes with the operation that could
//!    not be placed, the longest partial linearization the search reached,
//!    and a sub-history shrunk by delta debugging to a few operations that
//!    still cannot be linearized. Shrinking removes an operation only together
//!    with every operation that observed its effect ([`Model::depends`]), so
//!    the small sub-history failing proves the whole history fails.
//!
//! The modules follow that order: [`history`] and [`import`] (reading),
//! [`op`], [`model`], [`zones`] and [`traced`], [`search`], [`check`](mod@check). [`synth`] generates
//! linearizable histories for tests and benchmarks.

pub mod check;
pub mod history;
pub mod import;
pub mod model;
pub mod op;
pub mod search;
pub mod synth;
pub mod traced;
pub mod zones;

pub use check::{
    check, check_with, Counterexample, KeyResult, ModelChoice, Options, Report, Verdict,
};
pub use history::{Event, EventType, Func, History, JsonlWriter, ParseError, Process, Value};
pub use model::{AppendKv, FailedCas, Model, Register};
pub use op::{operations, Operation, Outcome};
