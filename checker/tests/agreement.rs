//! Reference agreement: the checker against a brute-force linearizability
//! checker written from the definitions, on many small random histories.
//!
//! The reference shares no code with the checker beyond the history types: it
//! pairs events itself, implements the sequential semantics itself, and tries
//! every order consistent with real time (each indeterminate operation placed
//! anywhere after its invocation, or nowhere). It is only fit for tiny
//! histories, which is all the generator makes.
//!
//! On a disagreement the test panics with the history as JSON Lines (and a
//! greedily shrunk version of it), so it can be replayed with the CLI or pasted
//! into a unit test.

use checker::check::Method;
use checker::{
    AppendKv, Event, EventType, FailedCas, Func, History, Model, Operation, Options, Outcome,
    Process, Register, Report, Value, Verdict,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};

// ---------------------------------------------------------------------------
// The reference checker.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefModel {
    /// Register with read, write, cas; `observe`: a failed cas saw value != from.
    Register { observe: bool },
    /// Strings starting empty with get, put, append.
    Kv,
}

/// What placing an operation does to (and requires of) its key's value.
#[derive(Clone, Debug)]
enum Effect {
    Read(Value),
    Write(Value),
    Cas(Value, Value),
    NotFrom(Value),
    Get(String),
    Put(String),
    Append(String),
}

#[derive(Clone, Debug)]
struct RefOp {
    key: usize,
    effect: Effect,
    call: usize,
    /// Completion position of a required op; `None` for an optional one.
    ret: Option<usize>,
    /// Must be placed (ok ops, and failed cas observations). Otherwise the op is
    /// indeterminate: placed anywhere after its call, or not at all.
    required: bool,
}

/// One invocation and its completion as positions in the history.
#[derive(Clone, Debug)]
struct Paired {
    invoke: usize,
    completion: Option<usize>,
}

/// Pairs each client invoke with the same process's next completion. An invoke
/// while the process still has an open operation leaves that one open forever.
fn pair(history: &History) -> Vec<Paired> {
    let mut pairs: Vec<Paired> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (pos, e) in history.events.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, pairs.len());
            pairs.push(Paired {
                invoke: pos,
                completion: None,
            });
        } else {
            let i = open
                .remove(&p)
                .expect("generated histories are well formed");
            pairs[i].completion = Some(pos);
        }
    }
    pairs
}

fn text(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::Str(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::List(_) => panic!("not a string: {v}"),
    }
}

fn reference_ops(history: &History, model: RefModel) -> (Vec<RefOp>, usize) {
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut ops = Vec::new();
    for p in pair(history) {
        let inv = &history.events[p.invoke];
        let done = p.completion.map(|c| &history.events[c]);
        let kind = done.map_or(EventType::Info, |e| e.kind);
        let input = inv.value.clone();
        let output = done.map_or(Value::Nil, |e| e.value.clone());
        let cas_pair = || match &input {
            Value::List(v) if v.len() == 2 => (v[0].clone(), v[1].clone()),
            _ => panic!("bad cas {input}"),
        };
        // (effect, required); None: constrains nothing.
        let what = match (model, &inv.f, kind) {
            (_, Func::Read | Func::Get, EventType::Info) => None,
            (_, _, EventType::Fail) => match (model, &inv.f) {
                (RefModel::Register { observe: true }, Func::Cas) => {
                    Some((Effect::NotFrom(cas_pair().0), true))
                }
                _ => None,
            },
            (RefModel::Register { .. }, Func::Read, _) => Some((Effect::Read(output), true)),
            (RefModel::Register { .. }, Func::Write, k) => {
                Some((Effect::Write(input.clone()), k == EventType::Ok))
            }
            (RefModel::Register { .. }, Func::Cas, k) => {
                let (from, to) = cas_pair();
                Some((Effect::Cas(from, to), k == EventType::Ok))
            }
            (RefModel::Kv, Func::Get, _) => Some((Effect::Get(text(&output)), true)),
            (RefModel::Kv, Func::Put, k) => Some((Effect::Put(text(&input)), k == EventType::Ok)),
            (RefModel::Kv, Func::Append, k) => {
                Some((Effect::Append(text(&input)), k == EventType::Ok))
            }
            (m, f, _) => panic!("{m:?} has no {f}"),
        };
        let Some((effect, required)) = what else {
            continue;
        };
        let key = match keys.iter().position(|k| *k == inv.key) {
            Some(k) => k,
            None => {
                keys.push(inv.key.clone());
                keys.len() - 1
            }
        };
        let ret = if required { p.completion } else { None };
        ops.push(RefOp {
            key,
            effect,
            call: p.invoke,
            ret,
            required,
        });
    }
    (ops, keys.len())
}

/// The value after `effect` in `value`, or `None` when it cannot happen there.
fn apply(effect: &Effect, value: &Value) -> Option<Value> {
    match effect {
        Effect::Read(v) => (v == value).then(|| value.clone()),
        Effect::Write(v) => Some(v.clone()),
        Effect::Cas(from, to) => (from == value).then(|| to.clone()),
        Effect::NotFrom(from) => (from != value).then(|| value.clone()),
        Effect::Get(s) => (*s == text(value)).then(|| value.clone()),
        Effect::Put(s) => Some(Value::Str(s.clone())),
        Effect::Append(s) => Some(Value::Str(text(value) + s)),
    }
}

/// Whether the history is linearizable, by trying every admissible order.
fn reference_valid(history: &History, model: RefModel) -> bool {
    let (ops, keys) = reference_ops(history, model);
    assert!(ops.len() <= 16, "the reference is for tiny histories");
    let required: u32 = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.required)
        .map(|(i, _)| 1 << i)
        .sum();
    let mut dead: HashSet<(u32, Vec<Value>)> = HashSet::new();
    let mut state = vec![Value::Nil; keys];
    search(&ops, required, 0, &mut state, &mut dead)
}

fn search(
    ops: &[RefOp],
    required: u32,
    placed: u32,
    state: &mut Vec<Value>,
    dead: &mut HashSet<(u32, Vec<Value>)>,
) -> bool {
    if placed & required == required {
        return true;
    }
    if dead.contains(&(placed, state.clone())) {
        return false;
    }
    for (x, op) in ops.iter().enumerate() {
        if placed & (1 << x) != 0 {
            continue;
        }
        // Real time: every required op that returned before x was called must be in already.
        let blocked = ops.iter().enumerate().any(|(y, o)| {
            placed & (1 << y) == 0 && o.required && o.ret.expect("required ops return") < op.call
        });
        if blocked {
            continue;
        }
        let Some(next) = apply(&op.effect, &state[op.key]) else {
            continue;
        };
        let before = std::mem::replace(&mut state[op.key], next);
        let found = search(ops, required, placed | (1 << x), state, dead);
        state[op.key] = before;
        if found {
            return true;
        }
    }
    dead.insert((placed, state.clone()));
    false
}

// ---------------------------------------------------------------------------
// The generator: simulate a store, record what clients saw, add some lies.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// Read/write register, tiny value domain (with nil writes), 1 or 2 keys.
    Rw,
    /// Read/write/cas register, tiny value domain.
    Cas,
    /// Read/write register, every write a distinct value (the zones fast path).
    Unique,
    /// Read/write/cas register, every written or swapped-in value distinct
    /// (version chains in the fast path).
    UniqueCas,
    /// Get/put/append strings.
    Kv,
    /// Get/put/append with a distinct token per put and append (the traced fast path).
    UniqueKv,
    /// Get/put/append whose tokens repeat now and then, as when clients
    /// restart their sequence numbers (the traced fast path tells the writers
    /// apart by real time).
    RepeatedKv,
}

struct Flight {
    f: Func,
    key: Option<String>,
    input: Value,
    /// Took effect in the simulated store.
    effected: bool,
    /// What a read saw when it took effect; whether a cas's compare held.
    seen: Value,
    cas_ok: bool,
}

struct Gen {
    flavor: Flavor,
    /// Probability that a completion lies (wrong read value, flipped cas outcome, lost write reported ok).
    noise: f64,
}

const SMALL: [Value; 4] = [Value::Nil, Value::Int(1), Value::Int(2), Value::Int(3)];

impl Gen {
    fn small_written(rng: &mut SmallRng, nil: bool) -> Value {
        if nil && rng.gen_bool(0.1) {
            Value::Nil
        } else {
            Value::Int(rng.gen_range(1..=3))
        }
    }

    fn random_string(rng: &mut SmallRng) -> String {
        let len = rng.gen_range(0..=3);
        (0..len)
            .map(|_| ['a', 'b', 'c'][rng.gen_range(0..3)])
            .collect()
    }

    /// A plausible but possibly wrong read result.
    fn random_read(&self, rng: &mut SmallRng, next_unique: i64) -> Value {
        match self.flavor {
            Flavor::Rw | Flavor::Cas => SMALL[rng.gen_range(0..4)].clone(),
            Flavor::Unique | Flavor::UniqueCas => match rng.gen_range(0..=next_unique) {
                0 => Value::Nil,
                n => Value::Int(n),
            },
            Flavor::Kv => Value::Str(Self::random_string(rng)),
            // A few tokens, written or not, in any order: often a real state, often not.
            Flavor::UniqueKv | Flavor::RepeatedKv => Value::Str(
                (0..rng.gen_range(0..=3))
                    .map(|_| format!("{};", rng.gen_range(1..=next_unique.max(1))))
                    .collect(),
            ),
        }
    }

    fn history(&self, rng: &mut SmallRng) -> History {
        let procs = rng.gen_range(1..=4usize);
        let nops = rng.gen_range(1..=8usize);
        let keys: Vec<Option<String>> = if self.flavor == Flavor::Rw && rng.gen_bool(0.25) {
            vec![Some("k".into()), Some("j".into())]
        } else if rng.gen_bool(0.2) {
            vec![None]
        } else {
            vec![Some("k".into())]
        };
        let mut store: HashMap<Option<String>, Value> = HashMap::new();
        let mut flights: Vec<Option<Flight>> = (0..procs).map(|_| None).collect();
        let mut invoked = 0;
        let mut next_unique = 1i64;
        let mut h = History::new();
        let event =
            |kind, p: usize, f: &Func, key: &Option<String>, value: Value, h: &mut History| {
                let time = h.len() as u64 * 1000;
                h.push(Event {
                    index: 0,
                    time,
                    kind,
                    process: Process::Client(p as u64),
                    f: f.clone(),
                    key: key.clone(),
                    value,
                    error: None,
                });
            };
        #[derive(Clone, Copy)]
        enum Act {
            Invoke(usize),
            Effect(usize),
            Complete(usize),
            Crash(usize),
        }
        loop {
            let mut acts: Vec<(Act, u32)> = Vec::new();
            for (p, flight) in flights.iter().enumerate() {
                match flight {
                    None if invoked < nops => acts.push((Act::Invoke(p), 2)),
                    None => {}
                    Some(fl) if fl.effected => acts.push((Act::Complete(p), 2)),
                    Some(_) => {
                        acts.push((Act::Effect(p), 3));
                        acts.push((Act::Crash(p), 1));
                    }
                }
            }
            if acts.is_empty() {
                break;
            }
            let total: u32 = acts.iter().map(|a| a.1).sum();
            let mut roll = rng.gen_range(0..total);
            let act = acts
                .iter()
                .find(|a| {
                    if roll < a.1 {
                        true
                    } else {
                        roll -= a.1;
                        false
                    }
                })
                .expect("a weighted pick")
                .0;
            match act {
                Act::Invoke(p) => {
                    invoked += 1;
                    let key = keys[rng.gen_range(0..keys.len())].clone();
                    let current = store.get(&key).cloned().unwrap_or_default();
                    let roll = rng.gen_range(0..100);
                    let (f, input) = match self.flavor {
                        Flavor::Rw if roll < 50 => (Func::Read, Value::Nil),
                        Flavor::Rw => (Func::Write, Self::small_written(rng, true)),
                        Flavor::Cas if roll < 40 => (Func::Read, Value::Nil),
                        Flavor::Cas if roll < 65 => (Func::Write, Self::small_written(rng, true)),
                        Flavor::Cas => {
                            let from = if rng.gen_bool(0.5) {
                                current
                            } else {
                                SMALL[rng.gen_range(0..4)].clone()
                            };
                            (
                                Func::Cas,
                                Value::List(vec![from, Self::small_written(rng, false)]),
                            )
                        }
                        Flavor::Unique | Flavor::UniqueCas if roll < 45 => (Func::Read, Value::Nil),
                        Flavor::UniqueCas if roll < 75 => {
                            // From the current value, or one read or written before.
                            let from = if rng.gen_bool(0.6) {
                                current
                            } else {
                                self.random_read(rng, next_unique)
                            };
                            next_unique += 1;
                            (
                                Func::Cas,
                                Value::List(vec![from, Value::Int(next_unique - 1)]),
                            )
                        }
                        Flavor::Unique | Flavor::UniqueCas => {
                            next_unique += 1;
                            (Func::Write, Value::Int(next_unique - 1))
                        }
                        Flavor::Kv | Flavor::UniqueKv | Flavor::RepeatedKv if roll < 40 => {
                            (Func::Get, Value::Nil)
                        }
                        Flavor::UniqueKv | Flavor::RepeatedKv => {
                            let token = if self.flavor == Flavor::RepeatedKv
                                && next_unique > 1
                                && rng.gen_bool(0.4)
                            {
                                rng.gen_range(1..next_unique)
                            } else {
                                next_unique += 1;
                                next_unique - 1
                            };
                            let f = if roll < 55 { Func::Put } else { Func::Append };
                            (f, Value::Str(format!("{token};")))
                        }
                        Flavor::Kv if roll < 60 => (
                            Func::Put,
                            Value::Str(["", "a", "ba"][rng.gen_range(0..3)].to_string()),
                        ),
                        Flavor::Kv => (
                            Func::Append,
                            Value::Str(["a", "b", "c"][rng.gen_range(0..3)].to_string()),
                        ),
                    };
                    event(EventType::Invoke, p, &f, &key, input.clone(), &mut h);
                    flights[p] = Some(Flight {
                        f,
                        key,
                        input,
                        effected: false,
                        seen: Value::Nil,
                        cas_ok: false,
                    });
                }
                Act::Effect(p) => {
                    let fl = flights[p].as_mut().expect("in flight");
                    fl.effected = true;
                    let value = store.entry(fl.key.clone()).or_default();
                    match &fl.f {
                        Func::Read | Func::Get => fl.seen = value.clone(),
                        Func::Write | Func::Put => *value = fl.input.clone(),
                        Func::Append => *value = Value::Str(text(value) + &text(&fl.input)),
                        Func::Cas => {
                            let Value::List(pair) = &fl.input else {
                                unreachable!()
                            };
                            fl.cas_ok = *value == pair[0];
                            if fl.cas_ok {
                                *value = pair[1].clone();
                            }
                        }
                        Func::Other(_) => unreachable!(),
                    }
                }
                Act::Complete(p) => {
                    let fl = flights[p].take().expect("in flight");
                    let roll = rng.gen_range(0..100);
                    if roll < 10 {
                        event(EventType::Info, p, &fl.f, &fl.key, fl.input.clone(), &mut h);
                    } else if roll < 18 {
                        // Never completes: the process moves on with its operation open.
                    } else {
                        let lie = rng.gen_bool(self.noise);
                        match &fl.f {
                            Func::Read | Func::Get => {
                                let value = if lie {
                                    self.random_read(rng, next_unique)
                                } else {
                                    fl.seen
                                };
                                event(EventType::Ok, p, &fl.f, &fl.key, value, &mut h);
                            }
                            Func::Cas => {
                                let kind = if fl.cas_ok != lie {
                                    EventType::Ok
                                } else {
                                    EventType::Fail
                                };
                                event(kind, p, &fl.f, &fl.key, fl.input.clone(), &mut h);
                            }
                            _ => event(EventType::Ok, p, &fl.f, &fl.key, fl.input.clone(), &mut h),
                        }
                    }
                }
                Act::Crash(p) => {
                    // Completes without having taken effect.
                    let fl = flights[p].take().expect("in flight");
                    if rng.gen_bool(self.noise / 2.0) {
                        let value = match &fl.f {
                            Func::Read | Func::Get => self.random_read(rng, next_unique),
                            _ => fl.input.clone(),
                        };
                        event(EventType::Ok, p, &fl.f, &fl.key, value, &mut h);
                    } else {
                        match rng.gen_range(0..10) {
                            0..=3 => {
                                event(EventType::Fail, p, &fl.f, &fl.key, fl.input.clone(), &mut h)
                            }
                            4..=6 => {
                                event(EventType::Info, p, &fl.f, &fl.key, fl.input.clone(), &mut h)
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        h
    }
}

// ---------------------------------------------------------------------------
// Comparing the two.
// ---------------------------------------------------------------------------

fn run_checker<M: Model>(model: &M, history: &History) -> Report {
    let ops = checker::operations(history, "agreement").expect("generated histories pair up");
    checker::check(
        model,
        &ops,
        &Options {
            threads: 1,
            ..Default::default()
        },
    )
    .expect("the model takes these ops")
}

fn jsonl(history: &History) -> String {
    let mut out = Vec::new();
    history.write_jsonl(&mut out).expect("writes to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The history without operation number `op` (in invocation order).
fn without_op(history: &History, op: usize) -> History {
    let p = &pair(history)[op];
    let mut out = History::new();
    for (pos, e) in history.events.iter().enumerate() {
        if pos != p.invoke && Some(pos) != p.completion {
            out.push(e.clone());
        }
    }
    out
}

/// Removes operations one at a time while `bad` still holds.
fn shrink(history: &History, bad: impl Fn(&History) -> bool) -> History {
    let mut h = history.clone();
    let mut i = 0;
    while i < pair(&h).len() {
        let candidate = without_op(&h, i);
        if bad(&candidate) {
            h = candidate;
        } else {
            i += 1;
        }
    }
    h
}

/// A history made of a counterexample's operations, events ordered by their
/// positions. Each operation gets a process of its own; real-time order, which
/// is all that matters, is kept.
fn history_of(ops: &[Operation]) -> History {
    let mut events: Vec<(u64, Event)> = Vec::new();
    for (j, op) in ops.iter().enumerate() {
        let base = Event {
            index: 0,
            time: op.call_time,
            kind: EventType::Invoke,
            process: Process::Client(j as u64),
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.input.clone(),
            error: None,
        };
        if let Some(ret) = op.ret {
            let (kind, value) = match op.outcome {
                Outcome::Ok => (EventType::Ok, op.output.clone()),
                Outcome::Fail => (EventType::Fail, op.input.clone()),
                Outcome::Info => (EventType::Info, op.input.clone()),
            };
            events.push((
                ret,
                Event {
                    kind,
                    value,
                    time: op.ret_time.unwrap_or(op.call_time),
                    ..base.clone()
                },
            ));
        }
        events.push((op.call, base));
    }
    events.sort_by_key(|(at, _)| *at);
    let mut h = History::new();
    for (_, e) in events {
        h.push(e);
    }
    h
}

fn verdict_of(valid: bool) -> Verdict {
    if valid {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

struct Tally {
    valid: usize,
    invalid: usize,
    fast_path: usize,
    largest_minimal: usize,
}

fn agree<M: Model>(
    name: &str,
    gen: Gen,
    model: &M,
    reference: RefModel,
    seed: u64,
    count: usize,
) -> Tally {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut tally = Tally {
        valid: 0,
        invalid: 0,
        fast_path: 0,
        largest_minimal: 0,
    };
    let disagrees =
        |h: &History| verdict_of(reference_valid(h, reference)) != run_checker(model, h).verdict;
    for n in 0..count {
        let history = gen.history(&mut rng);
        let expected = verdict_of(reference_valid(&history, reference));
        let report = run_checker(model, &history);
        if report.verdict != expected {
            let small = shrink(&history, disagrees);
            let small_report = run_checker(model, &small);
            panic!(
                "{name}: history #{n} (seed {seed}): reference says {expected:?}, checker says {:?} ({:?})\n\
                 --- history ---\n{}--- shrunk: reference {:?}, checker {:?} ---\n{}--- checker keys ---\n{:#?}",
                report.verdict,
                report.reason,
                jsonl(&history),
                verdict_of(reference_valid(&small, reference)),
                small_report.verdict,
                jsonl(&small),
                small_report.keys,
            );
        }
        if report.keys.iter().any(|k| k.method == Method::FastPath) {
            tally.fast_path += 1;
        }
        let ops = pair(&history).len();
        match expected {
            Verdict::Valid => tally.valid += 1,
            _ => {
                tally.invalid += 1;
                let Some(cx) = &report.counterexample else {
                    panic!(
                        "{name}: history #{n}: invalid without a counterexample\n{}",
                        jsonl(&history)
                    );
                };
                let sub = history_of(&cx.minimal);
                let problem = if cx.minimal.is_empty() {
                    Some("the minimal sub-history is empty")
                } else if cx.minimal.len() > ops {
                    Some("the minimal sub-history is longer than the history")
                } else if reference_valid(&sub, reference) {
                    Some("the minimal sub-history is linearizable on its own")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    panic!(
                        "{name}: history #{n} (seed {seed}): {problem}\n--- history ---\n{}--- minimal ({} ops) ---\n{}",
                        jsonl(&history),
                        cx.minimal.len(),
                        jsonl(&sub)
                    );
                }
                tally.largest_minimal = tally.largest_minimal.max(cx.minimal.len());
            }
        }
    }
    eprintln!(
        "{name}: {count} histories, {} valid, {} invalid, {} decided by the fast path, largest minimal counterexample {} ops",
        tally.valid, tally.invalid, tally.fast_path, tally.largest_minimal
    );
    for (what, n) in [("valid", tally.valid), ("invalid", tally.invalid)] {
        assert!(
            n * 5 >= count,
            "{name}: only {n} of {count} histories are {what}: the test would be close to vacuous"
        );
    }
    tally
}

/// Histories per test; `AGREEMENT_HISTORIES` overrides it for a longer hunt
/// (`AGREEMENT_SEED` then varies the seeds).
fn count() -> usize {
    std::env::var("AGREEMENT_HISTORIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn seed(base: u64) -> u64 {
    let extra: u64 = std::env::var("AGREEMENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    base ^ (extra << 32)
}

#[test]
fn register_read_write_agrees_with_brute_force() {
    let model = Register {
        cas: true,
        failed_cas: FailedCas::Ignore,
    };
    let gen = Gen {
        flavor: Flavor::Rw,
        noise: 0.45,
    };
    agree(
        "register",
        gen,
        &model,
        RefModel::Register { observe: false },
        seed(0x5eed_0001),
        count(),
    );
}

#[test]
fn cas_register_ignoring_failed_cas_agrees_with_brute_force() {
    let model = Register {
        cas: true,
        failed_cas: FailedCas::Ignore,
    };
    let gen = Gen {
        flavor: Flavor::Cas,
        noise: 0.45,
    };
    agree(
        "cas-register/ignore",
        gen,
        &model,
        RefModel::Register { observe: false },
        seed(0x5eed_0002),
        count(),
    );
}

#[test]
fn cas_register_observing_failed_cas_agrees_with_brute_force() {
    let model = Register {
        cas: true,
        failed_cas: FailedCas::Observe,
    };
    let gen = Gen {
        flavor: Flavor::Cas,
        noise: 0.45,
    };
    agree(
        "cas-register/observe",
        gen,
        &model,
        RefModel::Register { observe: true },
        seed(0x5eed_0003),
        count(),
    );
}

/// Agreement on histories made for a fast path, which must decide most of them.
fn agree_on_fast_path<M: Model>(
    name: &str,
    flavor: Flavor,
    model: &M,
    reference: RefModel,
    seed_base: u64,
) {
    let gen = Gen {
        flavor,
        noise: 0.45,
    };
    let tally = agree(name, gen, model, reference, seed(seed_base), count());
    assert!(
        tally.fast_path * 2 >= tally.valid + tally.invalid,
        "{name}: only {} histories took the fast path",
        tally.fast_path
    );
}

#[test]
fn unique_value_register_fast_path_agrees_with_brute_force() {
    let model = Register {
        cas: false,
        failed_cas: FailedCas::Ignore,
    };
    agree_on_fast_path(
        "unique-register",
        Flavor::Unique,
        &model,
        RefModel::Register { observe: false },
        0x5eed_0004,
    );
}

#[test]
fn unique_value_cas_register_fast_path_agrees_with_brute_force() {
    let model = Register {
        cas: true,
        failed_cas: FailedCas::Ignore,
    };
    agree_on_fast_path(
        "unique-cas-register",
        Flavor::UniqueCas,
        &model,
        RefModel::Register { observe: false },
        0x5eed_0006,
    );
}

#[test]
fn unique_token_kv_fast_path_agrees_with_brute_force() {
    agree_on_fast_path(
        "unique-kv",
        Flavor::UniqueKv,
        &AppendKv,
        RefModel::Kv,
        0x5eed_0007,
    );
}

#[test]
fn append_kv_agrees_with_brute_force() {
    let gen = Gen {
        flavor: Flavor::Kv,
        noise: 0.45,
    };
    agree(
        "append-kv",
        gen,
        &AppendKv,
        RefModel::Kv,
        seed(0x5eed_0005),
        count(),
    );
}

#[test]
fn repeated_token_kv_fast_path_agrees_with_brute_force() {
    agree_on_fast_path(
        "repeated-kv",
        Flavor::RepeatedKv,
        &AppendKv,
        RefModel::Kv,
        0x5eed_0008,
    );
}
