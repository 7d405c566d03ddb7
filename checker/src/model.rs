//! Models: what a correct single-copy object would have answered.
//!
//! A [`Model`] turns each [`Operation`] into its own compact step
//! ([`Model::compile`]) and says, for a state and a step, what state follows if
//! the step takes effect there ([`Model::step`]). The search never looks inside
//! states or steps, so adding a model never touches it.
//!
//! Two models ship:
//! - [`Register`]: read / write / compare-and-set on one value (etcd semantics:
//!   the register starts absent, `nil`). Checked per key, it is the multi-key
//!   KV store made of registers that the harness's `register` workload tests.
//! - [`AppendKv`]: Porcupine's key-value model, get / put / append on strings
//!   that start empty.

use crate::history::{Func, Value};
use crate::op::{Operation, Outcome};
use crate::search::Timed;
use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification. Implementations must be deterministic.
pub trait Model: Send + Sync {
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    type Step: Clone + Eq + Hash + Debug + Send + Sync;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The step an operation stands for, given its outcome, or `None` when it
    /// constrains nothing (a failed write, an indeterminate read). An operation
    /// whose outcome is `Info` compiles to what it would do had it taken effect.
    /// `Err` says why the model cannot take this operation.
    fn compile(&self, op: &Operation) -> Result<Option<Self::Step>, String>;

    /// The state after `step` takes effect in `state`, or `None` if it cannot
    /// (a read that returned something else, a cas whose compare would fail).
    fn step(&self, state: &Self::State, step: &Self::Step) -> Option<Self::State>;

    /// Whether `producer`'s effect may be visible in what `observer` observed.
    /// Must err on the side of `true`: the minimizer keeps every producer an
    /// observer depends on, which is what makes a minimized counterexample a
    /// proof about the full history, and unobserved indeterminate producers are
    /// dropped before the search.
    fn depends(&self, observer: &Self::Step, producer: &Self::Step) -> bool;

    /// Whether a step can change the state (writes, cas, appends).
    fn produces(&self, step: &Self::Step) -> bool;

    /// Whether a step observed something the initial state cannot explain, so
    /// that it can only take effect after a producer it depends on.
    fn needs_producer(&self, step: &Self::Step) -> bool;

    /// A decision procedure faster than search for histories of a special
    /// shape, if this model has one, on a partition's operations as recorded
    /// (`members` index `ops`): `Some(Ok(()))` linearizable, `Some(Err(at))`
    /// not, with the positions in `members` of a small sub-history that is not
    /// linearizable on its own; `None` when it does not apply, or when an
    /// operation does not fit the model (compiling it says why). It runs
    /// before the operations are compiled for the search, so it may compile
    /// them one by one as it reads them.
    fn fast_check(&self, _ops: &[Operation], _members: &[usize]) -> Option<Result<(), Vec<usize>>> {
        None
    }

    fn show_state(&self, state: &Self::State) -> String;
}

/// How a `fail`ed compare-and-set is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailedCas {
    /// Jepsen/Knossos: `fail` means nothing happened and nothing was learned.
    Ignore,
    /// Porcupine's etcd model: a failed cas observed that the value differed
    /// from the expected one. Right when the store reports compare failures as
    /// `fail` and every other error as `info` (etcd, raftkv).
    Observe,
}

/// A register with read, write and cas. With `cas: false`, cas operations are
/// refused as not part of the model.
#[derive(Clone, Debug)]
pub struct Register {
    pub cas: bool,
    pub failed_cas: FailedCas,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterStep {
    Read(Value),
    Write(Value),
    /// Boxed: a cas is two values, and every step of a partition is as large
    /// as its largest kind; unboxed, reads and writes would double in size.
    Cas(Box<Cas>),
    /// A failed cas read as an observation: the value was not `from`.
    CasFailed {
        from: Value,
    },
}

/// A compare-and-set from one value to another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cas {
    pub from: Value,
    pub to: Value,
}

impl Model for Register {
    type State = Value;
    type Step = RegisterStep;

    fn init(&self) -> Value {
        Value::Nil
    }

    fn compile(&self, op: &Operation) -> Result<Option<RegisterStep>, String> {
        let step = match (&op.f, op.outcome) {
            (Func::Read, Outcome::Ok) => RegisterStep::Read(op.output.clone()),
            (Func::Read, _) | (Func::Write, Outcome::Fail) => return Ok(None),
            (Func::Write, _) => RegisterStep::Write(op.input.clone()),
            (Func::Cas, outcome) if self.cas => {
                let Value::List(pair) = &op.input else {
                    return Err(format!("cas takes [from to], found {}", op.input));
                };
                let [from, to] = pair.as_slice() else {
                    return Err(format!("cas takes [from to], found {}", op.input));
                };
                match (outcome, self.failed_cas) {
                    (Outcome::Fail, FailedCas::Ignore) => return Ok(None),
                    (Outcome::Fail, FailedCas::Observe) => {
                        RegisterStep::CasFailed { from: from.clone() }
                    }
                    _ => RegisterStep::Cas(Box::new(Cas {
                        from: from.clone(),
                        to: to.clone(),
                    })),
                }
            }
            (f, _) => {
                let known = if self.cas {
                    "read, write and cas"
                } else {
                    "read and write (use the cas-register model for cas)"
                };
                return Err(format!("the register model knows {known}, not {f}"));
            }
        };
        Ok(Some(step))
    }

    fn step(&self, state: &Value, step: &RegisterStep) -> Option<Value> {
        match step {
            RegisterStep::Read(v) => (v == state).then(|| state.clone()),
            RegisterStep::Write(v) => Some(v.clone()),
            RegisterStep::Cas(cas) => (cas.from == *state).then(|| cas.to.clone()),
            RegisterStep::CasFailed { from } => (from != state).then(|| state.clone()),
        }
    }

    fn depends(&self, observer: &RegisterStep, producer: &RegisterStep) -> bool {
        let written = match producer {
            RegisterStep::Write(v) => v,
            RegisterStep::Cas(cas) => &cas.to,
            RegisterStep::Read(_) | RegisterStep::CasFailed { .. } => return false,
        };
        match observer {
            RegisterStep::Read(v) => v == written,
            RegisterStep::Cas(cas) => cas.from == *written,
            // It saw "not `from`": whichever write came last may matter.
            RegisterStep::CasFailed { .. } => true,
            RegisterStep::Write(_) => false,
        }
    }

    fn produces(&self, step: &RegisterStep) -> bool {
        matches!(step, RegisterStep::Write(_) | RegisterStep::Cas(_))
    }

    fn needs_producer(&self, step: &RegisterStep) -> bool {
        match step {
            RegisterStep::Read(v) => *v != Value::Nil,
            RegisterStep::Cas(cas) => cas.from != Value::Nil,
            RegisterStep::Write(_) | RegisterStep::CasFailed { .. } => false,
        }
    }

    fn fast_check(&self, ops: &[Operation], members: &[usize]) -> Option<Result<(), Vec<usize>>> {
        crate::zones::check(&Uncompiled {
            model: self,
            ops,
            members,
        })
    }

    fn show_state(&self, state: &Value) -> String {
        state.to_string()
    }
}

/// A register partition's operations, compiled as the zones read them.
struct Uncompiled<'a> {
    model: &'a Register,
    ops: &'a [Operation],
    members: &'a [usize],
}

impl crate::zones::Steps for Uncompiled<'_> {
    fn count(&self) -> usize {
        self.members.len()
    }

    fn span(&self, i: usize) -> (u64, u64) {
        let op = &self.ops[self.members[i]];
        (op.call, op.ret_or_inf())
    }

    fn step(&self, i: usize) -> Result<Option<Cow<'_, RegisterStep>>, String> {
        Ok(self
            .model
            .compile(&self.ops[self.members[i]])?
            .map(Cow::Owned))
    }
}

/// Porcupine's KV model for one key: a string that starts empty; `get` returns
/// it, `put` replaces it, `append` adds to its end.
#[derive(Clone, Debug, Default)]
pub struct AppendKv;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvStep {
    Get(String),
    Put(String),
    Append(String),
}

fn text(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::Nil => Ok(String::new()),
        Value::Str(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        Value::List(_) => Err(format!("{what} takes a string, found {value}")),
    }
}

impl Model for AppendKv {
    type State = String;
    type Step = KvStep;

    fn init(&self) -> String {
        String::new()
    }

    fn compile(&self, op: &Operation) -> Result<Option<KvStep>, String> {
        let step = match (&op.f, op.outcome) {
            (Func::Get, Outcome::Ok) => KvStep::Get(text(&op.output, "get")?),
            (Func::Get, _) | (Func::Put | Func::Append, Outcome::Fail) => return Ok(None),
            (Func::Put, _) => KvStep::Put(text(&op.input, "put")?),
            (Func::Append, _) => KvStep::Append(text(&op.input, "append")?),
            (f, _) => return Err(format!("the kv model knows get, put and append, not {f}")),
        };
        Ok(Some(step))
    }

    fn step(&self, state: &String, step: &KvStep) -> Option<String> {
        match step {
            KvStep::Get(v) => (v == state).then(|| state.clone()),
            KvStep::Put(v) => Some(v.clone()),
            KvStep::Append(v) => Some(format!("{state}{v}")),
        }
    }

    fn depends(&self, observer: &KvStep, producer: &KvStep) -> bool {
        match (observer, producer) {
            (KvStep::Get(seen), KvStep::Put(v) | KvStep::Append(v)) => seen.contains(v.as_str()),
            _ => false,
        }
    }

    fn produces(&self, step: &KvStep) -> bool {
        !matches!(step, KvStep::Get(_))
    }

    fn fast_check(&self, ops: &[Operation], members: &[usize]) -> Option<Result<(), Vec<usize>>> {
        // Each step's `op` is its position in `members`.
        let mut steps = Vec::with_capacity(members.len());
        for (at, &i) in members.iter().enumerate() {
            let op = &ops[i];
            if let Some(step) = self.compile(op).ok()? {
                steps.push(Timed {
                    step,
                    call: op.call,
                    ret: op.ret,
                    op: at,
                });
            }
        }
        if steps.is_empty() {
            return None;
        }
        let result = crate::traced::check(&steps)?;
        Some(result.map_err(|witness| witness.into_iter().map(|s| steps[s].op).collect()))
    }

    fn needs_producer(&self, step: &KvStep) -> bool {
        matches!(step, KvStep::Get(seen) if !seen.is_empty())
    }

    fn show_state(&self, state: &String) -> String {
        format!("{state:?}")
    }
}
