//! Synthetic register histories, linearizable by construction, for
//! benchmarks and tests.
//!
//! A simulated register and `clients` processes: at each tick one random
//! client either invokes an operation, lets its pending operation take effect
//! on the register (its linearization point), or completes it. Every
//! operation takes effect between its invocation and completion, so the
//! history is linearizable. Written values are unique.

use crate::history::{Event, EventType, Func, History, Process, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Shape of a synthetic history.
#[derive(Clone, Debug)]
pub struct Spec {
    pub seed: u64,
    pub clients: usize,
    pub ops: usize,
    /// Fraction of operations that are reads (the rest are writes).
    pub read_ratio: f64,
    /// Fraction of writes whose completion is lost (`info`).
    pub crash_ratio: f64,
    /// Number of keys the operations spread over.
    pub keys: usize,
}

struct Pending {
    process: u64,
    f: Func,
    key: usize,
    value: Value,
    applied: bool,
}

/// Generates a history to `spec`.
pub fn register_history(spec: &Spec) -> History {
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    let mut registers = vec![Value::Nil; spec.keys.max(1)];
    let mut clients: Vec<Option<Pending>> = (0..spec.clients).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..spec.clients as u64).collect();
    let mut next_process = spec.clients as u64;
    let mut history = History::new();
    history.events.reserve(spec.ops * 2);
    let (mut invoked, mut next_value) = (0, 1i64);
    let emit = |history: &mut History, kind, p: &Pending, value: Value| {
        let time = history.len() as u64;
        history.push(Event {
            index: 0,
            time,
            kind,
            process: Process::Client(p.process),
            f: p.f.clone(),
            key: Some(p.key.to_string()),
            value,
            error: None,
        });
    };
    while invoked < spec.ops || clients.iter().any(Option::is_some) {
        let c = rng.gen_range(0..spec.clients);
        match clients[c].take() {
            None if invoked < spec.ops => {
                invoked += 1;
                let read = rng.gen_bool(spec.read_ratio);
                let key = rng.gen_range(0..registers.len());
                let (f, value) = if read {
                    (Func::Read, Value::Nil)
                } else {
                    (Func::Write, Value::Int(next_value))
                };
                next_value += 1;
                let p = Pending {
                    process: process_of[c],
                    f,
                    key,
                    value,
                    applied: false,
                };
                emit(&mut history, EventType::Invoke, &p, p.value.clone());
                clients[c] = Some(p);
            }
            None => {}
            Some(mut p) if !p.applied => {
                if p.f == Func::Read {
                    p.value = registers[p.key].clone();
                } else {
                    registers[p.key] = p.value.clone();
                }
                p.applied = true;
                clients[c] = Some(p);
            }
            Some(p) => {
                if p.f == Func::Write && rng.gen_bool(spec.crash_ratio) {
                    emit(&mut history, EventType::Info, &p, p.value.clone());
                    process_of[c] = next_process;
                    next_process += 1;
                } else {
                    emit(&mut history, EventType::Ok, &p, p.value.clone());
                }
            }
        }
    }
    history
}
