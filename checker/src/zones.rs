//! The polynomial fast path for registers whose written values are all
//! distinct: Gibbons and Korach's read-mapping check ("zones"), extended from
//! read/write to compare-and-set.
//!
//! With unique values every read names the one operation that produced the
//! value it saw, so the *versions* of the register are known. A cas from `a`
//! to `b` ends `a`'s lifetime exactly where `b`'s begins, so versions linked by
//! cas form *chains* that must be alive back to back, while a plain write
//! starts a new chain whose place among the others is free.
//!
//! A chain must be alive from the earliest return among its operations to the
//! latest call: if the first comes before the second, that span is its
//! *forward zone*; otherwise all its operations can take effect at one instant
//! inside its *backward zone*. Then the history is linearizable exactly when
//! each chain can be scheduled on its own (checked greedily, earliest point
//! first), no two forward zones overlap, and no backward zone lies inside a
//! forward zone. For read/write registers every chain is one version and this
//! is Gibbons and Korach's theorem; the brute-force agreement tests cover the
//! cas case. Sorting the zones makes it O(n log n).

use crate::history::Value;
use crate::model::RegisterStep;
use crate::search::Timed;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

const NONE: u32 = u32::MAX;

fn some(i: u32) -> Option<usize> {
    (i != NONE).then_some(i as usize)
}

/// One version: its producer (write or cas) and what its readers add up to,
/// as step indexes, `NONE` when absent.
#[derive(Clone, Copy)]
struct Version {
    producer: u32,
    /// Any reader, the reader returning first, and the member called last.
    some_read: u32,
    first_read_ret: u32,
    last_call: u32,
    /// The cas that moved the register from this version to the next.
    next: u32,
}

impl Version {
    const EMPTY: Version = Version {
        producer: NONE,
        some_read: NONE,
        first_read_ret: NONE,
        last_call: NONE,
        next: NONE,
    };
}

/// A step's call and return, `u64::MAX` when indeterminate. Copied out of the
/// steps in the first pass: later passes jump around by index, and 16 bytes a
/// step stay in cache far better than whole steps.
#[derive(Clone, Copy)]
struct Span {
    call: u64,
    ret: u64,
}

impl Span {
    fn indeterminate(self) -> bool {
        self.ret == u64::MAX
    }
}

/// The steps the zones read, by index: compiled already, or compiled one by
/// one as they are read, so that a long history never holds all its steps at
/// once (for a million operations, holding them costs more than checking
/// them).
pub trait Steps: Sync {
    /// How many steps there are.
    fn count(&self) -> usize;
    /// When step `i` was called and when it returned, `u64::MAX` when
    /// indeterminate.
    fn span(&self, i: usize) -> (u64, u64);
    /// Step `i`, `None` when it constrains nothing, `Err` when the model
    /// cannot take it.
    fn step(&self, i: usize) -> Result<Option<Cow<'_, RegisterStep>>, String>;
}

impl Steps for [Timed<RegisterStep>] {
    fn count(&self) -> usize {
        self.len()
    }

    fn span(&self, i: usize) -> (u64, u64) {
        (self[i].call, self[i].ret.unwrap_or(u64::MAX))
    }

    fn step(&self, i: usize) -> Result<Option<Cow<'_, RegisterStep>>, String> {
        Ok(Some(Cow::Borrowed(&self[i].step)))
    }
}

/// What a step does to the version of one value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Produce,
    Read,
    CasFrom,
}

/// The versions, indexed by value, with for each step the version it
/// produced and the one it observed.
struct Versions {
    all: Vec<Version>,
    spans: Vec<Span>,
    produced: Vec<u32>,
    observed: Vec<u32>,
    /// Two cas from one version: (version, first cas, second cas).
    fork: Option<(usize, usize, usize)>,
}

impl Versions {
    /// No versions yet: only the steps' spans.
    fn new<S: Steps + ?Sized>(steps: &S) -> Versions {
        Versions {
            all: Vec::new(),
            spans: (0..steps.count())
                .map(|i| {
                    let (call, ret) = steps.span(i);
                    Span { call, ret }
                })
                .collect(),
            produced: vec![NONE; steps.count()],
            observed: vec![NONE; steps.count()],
            fork: None,
        }
    }

    fn add(&mut self, slot: usize, step: usize, role: Role) -> Option<()> {
        let spans = &self.spans;
        let ret = |i: u32| spans[i as usize].ret;
        let v = &mut self.all[slot];
        let s = step as u32;
        match role {
            Role::Produce => {
                if v.producer != NONE {
                    return None; // Not unique: the read-mapping is ambiguous.
                }
                v.producer = s;
                self.produced[step] = slot as u32;
            }
            Role::Read => {
                if v.some_read == NONE {
                    v.some_read = s;
                }
                if v.first_read_ret == NONE || ret(s) < ret(v.first_read_ret) {
                    v.first_read_ret = s;
                }
                self.observed[step] = slot as u32;
            }
            Role::CasFrom => {
                if v.next != NONE {
                    self.fork.get_or_insert((slot, v.next as usize, step));
                } else {
                    v.next = s;
                }
                self.observed[step] = slot as u32;
                return Some(()); // Its call belongs to the version it produces.
            }
        }
        if v.last_call == NONE || spans[step].call > spans[v.last_call as usize].call {
            v.last_call = s;
        }
        Some(())
    }
}

/// The values a step touches and how: at most two (a cas produces `to` and
/// observes `from`).
fn touches(step: &RegisterStep) -> [Option<(&Value, Role)>; 2] {
    match step {
        RegisterStep::Write(v) => [Some((v, Role::Produce)), None],
        RegisterStep::Read(v) => [Some((v, Role::Read)), None],
        RegisterStep::Cas(cas) => [
            Some((&cas.to, Role::Produce)),
            Some((&cas.from, Role::CasFrom)),
        ],
        RegisterStep::CasFailed { .. } => [None, None], // Refused before grouping.
    }
}

/// The values the steps touch: (value, step, role) for integers, (step, role)
/// for `Nil` (the initial version), and whether any other value occurs.
type Touched = (Vec<(i64, u32, Role)>, Vec<(u32, Role)>, bool);

/// `None` when the history is not a unique-value register history (or has
/// failed-cas observations).
fn touched<S: Steps + ?Sized>(steps: &S) -> Option<Touched> {
    let mut ints = Vec::with_capacity(steps.count() + steps.count() / 2);
    let mut nil = Vec::new();
    let mut other = false;
    for i in 0..steps.count() {
        let Some(step) = steps.step(i).ok()? else {
            continue;
        };
        match &*step {
            RegisterStep::CasFailed { .. } => return None, // "Not this value" does not name a version.
            RegisterStep::Cas(cas) if cas.from == cas.to => return None, // Not a new version.
            _ => {}
        }
        for (value, role) in touches(&step).into_iter().flatten() {
            match value {
                Value::Nil if role == Role::Produce => return None, // Ambiguous with the initial value.
                Value::Nil => nil.push((i as u32, role)),
                Value::Int(n) => ints.push((*n, i as u32, role)),
                _ => other = true,
            }
        }
    }
    Some((ints, nil, other))
}

/// Groups steps by value. `None` when the history is not a unique-value
/// register history (or has failed-cas observations, or nothing to check).
fn versions<S: Steps + ?Sized>(steps: &S) -> Option<(Versions, usize)> {
    if steps.count() >= NONE as usize {
        return None;
    }
    // Both passes stream through all the steps: on long histories, run them on
    // two cores (handing work to the thread pool costs more than a short pass).
    let (touched, mut versions) = if steps.count() < 1 << 14 {
        (touched(steps), Versions::new(steps))
    } else {
        rayon::join(|| touched(steps), || Versions::new(steps))
    };
    let (mut ints, nil, other) = touched?;
    if ints.is_empty() && nil.is_empty() && !other {
        return None; // Nothing constrains anything: not worth a procedure.
    }
    let (low, high) = ints.iter().fold((i64::MAX, i64::MIN), |(l, h), &(n, ..)| {
        (l.min(n), h.max(n))
    });
    let span = (high as i128 - low as i128 + 1).max(0) as u128;
    if other {
        // General values: group through a hash table.
        let mut index: FxHashMap<Value, usize> = FxHashMap::default();
        for i in 0..steps.count() {
            let Some(step) = steps.step(i).ok()? else {
                continue;
            };
            for (value, role) in touches(&step)
                .into_iter()
                .flatten()
                .filter(|(v, _)| **v != Value::Nil)
            {
                let slot = *index.entry(value.clone()).or_insert_with(|| {
                    versions.all.push(Version::EMPTY);
                    versions.all.len() - 1
                });
                versions.add(slot, i, role)?;
            }
        }
    } else if !ints.is_empty() && span <= 2 * ints.len() as u128 + 1024 {
        // Integers in a dense range, what test harnesses write: a table
        // indexed by value, filled in one pass.
        // With room for the initial version pushed below: growing would
        // copy the whole table.
        versions.all = Vec::with_capacity(span as usize + 1);
        versions.all.resize(span as usize, Version::EMPTY);
        for &(n, i, role) in &ints {
            versions.add((n - low) as usize, i as usize, role)?;
        }
    } else {
        // Sparse integers: sorting groups them with sequential memory access,
        // where a hash table of a million values misses the cache on every probe.
        ints.sort_unstable();
        for group in ints.chunk_by(|a, b| a.0 == b.0) {
            versions.all.push(Version::EMPTY);
            let slot = versions.all.len() - 1;
            for &(_, i, role) in group {
                versions.add(slot, i as usize, role)?;
            }
        }
    }
    if steps.count() >= FREE_LATER {
        free_later(ints);
    }
    versions.all.push(Version::EMPTY);
    let initial = versions.all.len() - 1;
    for (i, role) in nil {
        versions.add(initial, i as usize, role)?;
    }
    Some((versions, initial))
}

/// Decides a partition, or `None` when it is not a unique-value register
/// history. `Err` carries the indexes of a sub-history that is not
/// linearizable on its own and keeps every producer its observers need.
pub fn check<S: Steps + ?Sized>(steps: &S) -> Option<Result<(), Vec<usize>>> {
    let (versions, initial) = versions(steps)?;
    let all = &versions.all;
    let spans = &versions.spans;

    // The producers from a chain's root up to `slot`, following each cas back
    // to its `from`; `None` if that leads round a cycle of cas.
    let lineage = |mut slot: usize| -> Option<Vec<usize>> {
        let mut out = Vec::new();
        while let Some(p) = some(all[slot].producer) {
            out.push(p);
            if out.len() > all.len() {
                return None;
            }
            // A producer that observed a version is a cas.
            match versions.observed[p] {
                NONE => break,
                from => slot = from as usize,
            }
        }
        Some(out)
    };

    // An observed value nobody produced. (An indeterminate cas from it may
    // never have happened; if something saw its result, the walk below finds
    // that result unreachable.)
    let definite = |op: u32| some(op).filter(|&p| !spans[p].indeterminate());
    for (slot, v) in all.iter().enumerate() {
        if slot != initial && v.producer == NONE {
            if let Some(op) = some(v.some_read).or(definite(v.next)) {
                return Some(Err(vec![op]));
            }
        }
    }
    if let Some((slot, a, b)) = versions.fork {
        // Two cas from one version: both cannot have taken effect.
        if spans[a].indeterminate() || spans[b].indeterminate() {
            return None;
        }
        let mut witness = lineage(slot)?;
        witness.extend([a, b]);
        return Some(Err(sorted(witness)));
    }

    // Walk the chains from their roots: the initial version and every written
    // one. (A producer that observed nothing is a write: a cas observes its
    // `from`.) Chains are disjoint: runs of roots are walked on all cores.
    let reached: Vec<AtomicBool> = (0..all.len()).map(|_| AtomicBool::new(false)).collect();
    let walk = |roots: &mut dyn Iterator<Item = usize>| -> Result<Vec<Zone>, Unschedulable> {
        let mut zones = Vec::with_capacity(roots.size_hint().1.unwrap_or(0));
        let mut chain = Vec::new();
        for root in roots {
            chain.clear();
            chain.push(root);
            while let Some(next) = some(all[*chain.last().expect("a chain has a root")].next) {
                chain.push(versions.produced[next] as usize);
            }
            // An indeterminate producer nobody observed may never have happened.
            while let Some(&last) = chain.last() {
                let v = all[last];
                // (Its `next`, if any, is a version popped before it.)
                if v.some_read == NONE && some(v.producer).is_none_or(|p| spans[p].indeterminate())
                {
                    chain.pop();
                } else {
                    break;
                }
            }
            for &slot in &chain {
                reached[slot].store(true, Ordering::Relaxed);
            }
            if chain.is_empty() {
                continue;
            }
            if let Some(failed) = schedule(&chain, all, spans) {
                return Err(Unschedulable { chain, failed });
            }
            zones.push(Zone::of(&chain, all, spans, root == initial));
        }
        Ok(zones)
    };
    let written = |s: &usize| some(all[*s].producer).is_some_and(|p| versions.observed[p] == NONE);
    let mut walked = vec![walk(&mut std::iter::once(initial))];
    if all.len() < 1 << 14 {
        walked.push(walk(&mut (0..all.len()).filter(written)));
    } else {
        use rayon::prelude::*;
        const RUN: usize = 1 << 16;
        walked.par_extend(
            (0..all.len().div_ceil(RUN))
                .into_par_iter()
                .map(|k| walk(&mut (k * RUN..((k + 1) * RUN).min(all.len())).filter(written))),
        );
    }
    // In root order, so the counterexample does not depend on the threads.
    let mut zones = Vec::with_capacity(walked.len());
    for run in walked {
        match run {
            Ok(run) => zones.push(run),
            Err(Unschedulable { chain, failed }) => {
                let mut witness = lineage(chain[failed])?;
                for &slot in &chain[..=failed] {
                    witness.extend(
                        [all[slot].last_call, all[slot].first_read_ret]
                            .into_iter()
                            .filter_map(some),
                    );
                }
                return Some(Err(sorted(witness)));
            }
        }
    }
    // Versions no root reaches but that must exist: a cycle of cas. Rare;
    // let the search explain it.
    let must_exist = |v: &Version| {
        v.some_read != NONE || definite(v.next).is_some() || definite(v.producer).is_some()
    };
    if all
        .iter()
        .enumerate()
        .any(|(s, v)| !reached[s].load(Ordering::Relaxed) && s != initial && must_exist(v))
    {
        return None;
    }

    // A zone's defining operations with the producers they depend on, and,
    // for an indeterminate producer, what saw its result: without that it
    // need not have happened at all.
    let witness = |z: &Zone| -> Option<Vec<usize>> {
        let mut ops = Vec::new();
        for op in [z.first, z.last].into_iter().filter(|&op| op != usize::MAX) {
            ops.push(op);
            let slot = if versions.produced[op] != NONE {
                versions.produced[op]
            } else {
                versions.observed[op]
            };
            ops.extend(lineage(slot as usize)?);
            let mut producer = op;
            while spans[producer].indeterminate() && versions.produced[producer] != NONE {
                let v = all[versions.produced[producer] as usize];
                if let Some(read) = some(v.first_read_ret) {
                    ops.push(read);
                    break;
                }
                // Untrimmed, so something observed it: the next cas.
                let Some(next) = some(v.next) else { break };
                ops.push(next);
                producer = next;
            }
        }
        Some(ops)
    };
    // Copied out (start, end, zone) so the searches below read one
    // contiguous array instead of chasing a pointer per probe.
    let mut forward: Vec<(u64, u64, &Zone)> = zones
        .iter()
        .flatten()
        .filter(|z| z.start < z.end)
        .map(|z| (z.start, z.end, z))
        .collect();
    forward.sort_unstable_by_key(|&(start, end, _)| (start, end));
    for pair in forward.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Some(Err(sorted(
                [witness(pair[0].2)?, witness(pair[1].2)?].concat(),
            )));
        }
    }
    let mut k = 0;
    for b in zones.iter().flatten().filter(|z| z.start >= z.end) {
        // Backward: alive somewhere in [end, start]. The forward zone starting
        // last before it is the only candidate to contain it. `<=`: the
        // initial chain's zone starts at 0, before a call at 0.
        k = starting_by(&forward, b.end, k);
        if k > 0 && b.start < forward[k - 1].1 {
            return Some(Err(sorted(
                [witness(b)?, witness(forward[k - 1].2)?].concat(),
            )));
        }
    }
    drop(forward);
    if steps.count() >= FREE_LATER {
        free_later((versions, reached, zones));
    }
    Some(Ok(()))
}

/// Why a chain cannot be scheduled on its own: the version at `failed`
/// cannot be placed.
struct Unschedulable {
    chain: Vec<usize>,
    failed: usize,
}

/// How many of the sorted `forward` zones start at or before `t`, searched
/// outwards from `near`, the answer for a nearby time: chains are walked
/// roughly in time order, so it is usually a step or two away.
fn starting_by<Z>(forward: &[(u64, u64, Z)], t: u64, near: usize) -> usize {
    let starts_by = |z: &(u64, u64, Z)| z.0 <= t;
    // Widen [lo, hi) around `near` until it holds the answer, then bisect.
    let (mut lo, mut hi) = (near.min(forward.len()), near.min(forward.len()));
    let mut width = 1;
    while lo > 0 && !starts_by(&forward[lo - 1]) {
        lo = lo.saturating_sub(width);
        width *= 2;
    }
    while hi < forward.len() && starts_by(&forward[hi]) {
        hi = (hi + width).min(forward.len());
        width *= 2;
    }
    lo + forward[lo..hi].partition_point(starts_by)
}

/// Histories from this many steps free their big buffers on another thread.
const FREE_LATER: usize = 1 << 16;

/// Frees buffers on another thread: for a million steps, giving the memory
/// back takes a good part of a check, and the verdict need not wait for it.
/// (If no thread can be started, they are freed here.)
fn free_later<T: Send + 'static>(buffers: T) {
    let _ = std::thread::Builder::new().spawn(move || drop(buffers));
}

fn sorted(mut ops: Vec<usize>) -> Vec<usize> {
    ops.sort_unstable();
    ops.dedup();
    ops
}

/// A chain's zone: from the earliest return (`first` returns then) to the
/// latest call (`last` is called then). Forward when `start < end`.
struct Zone {
    start: u64,
    end: u64,
    first: usize,
    last: usize,
}

impl Zone {
    fn of(chain: &[usize], all: &[Version], spans: &[Span], initial: bool) -> Zone {
        let ret = |i: usize| spans[i].ret;
        let members = chain
            .iter()
            .flat_map(|&s| [all[s].producer, all[s].first_read_ret])
            .filter_map(some);
        let first = members.min_by_key(|&i| ret(i)).unwrap_or(usize::MAX);
        let last = chain
            .iter()
            .filter_map(|&s| some(all[s].last_call))
            .max_by_key(|&i| spans[i].call)
            .expect("a chain has a member");
        // The initial version was written "before time": its chain starts at 0.
        let start = if initial || first == usize::MAX {
            0
        } else {
            ret(first)
        };
        Zone {
            start,
            end: spans[last].call,
            first,
            last,
        }
    }
}

/// Schedules a chain on its own, each operation as early as it can go:
/// a version's producer, then its readers, then the next version's producer.
/// Returns the position in the chain of the version that cannot be placed.
fn schedule(chain: &[usize], all: &[Version], spans: &[Span]) -> Option<usize> {
    let ret = |i: u32| spans[i as usize].ret;
    let mut t = 0u64;
    for (k, &slot) in chain.iter().enumerate() {
        let v = all[slot];
        if let Some(p) = some(v.producer) {
            t = t.max(spans[p].call);
            if t > ret(p as u32) {
                return Some(k);
            }
        }
        if v.first_read_ret != NONE {
            // Every reader can go at max(t, its call) if t is before the first return.
            if t > ret(v.first_read_ret) {
                return Some(k);
            }
            t = t.max(spans[v.last_call as usize].call);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cas;

    fn timed(step: RegisterStep, call: u64, ret: u64) -> Timed<RegisterStep> {
        Timed {
            step,
            call,
            ret: Some(ret),
            op: call as usize,
        }
    }

    /// Long histories are read in runs of steps and walked in runs of roots,
    /// on all cores: a stale read in the middle is still found, and its
    /// witness fails on its own.
    #[test]
    fn long_histories_are_checked_in_runs() {
        use crate::check::{check, Options, Verdict};
        use crate::history::Func;
        use crate::model::{FailedCas, Model, Register};
        use crate::synth::{register_history, Spec};
        let spec = Spec {
            seed: 3,
            clients: 20,
            ops: 300_000,
            read_ratio: 0.5,
            crash_ratio: 0.01,
            keys: 1,
        };
        let mut ops = crate::op::operations(&register_history(&spec), "long").unwrap();
        let model = Register {
            cas: false,
            failed_cas: FailedCas::Ignore,
        };
        let members: Vec<usize> = (0..ops.len()).collect();
        assert_eq!(model.fast_check(&ops, &members), Some(Ok(())));
        // A read well into the history returns the first value written.
        let first = ops
            .iter()
            .find(|o| o.f == Func::Write)
            .unwrap()
            .input
            .clone();
        let stale = (ops.len() / 2..)
            .find(|&i| ops[i].f == Func::Read && ops[i].ret.is_some())
            .unwrap();
        ops[stale].output = first;
        let Some(Err(witness)) = model.fast_check(&ops, &members) else {
            panic!("the stale read is not found");
        };
        assert!(witness.contains(&stale), "{witness:?}");
        let sub: Vec<_> = witness.iter().map(|&i| ops[i].clone()).collect();
        let options = Options {
            minimize: false,
            ..Options::default()
        };
        assert_eq!(
            check(&model, &sub, &options).unwrap().verdict,
            Verdict::Invalid
        );
    }

    /// The search from a nearby answer finds what a binary search finds.
    #[test]
    fn starting_by_agrees_with_a_binary_search() {
        let forward: Vec<(u64, u64, usize)> = [1, 3, 3, 4, 8, 9, 9, 9, 15, 20, 21, 40]
            .iter()
            .map(|&s| (s, s + 1, 0))
            .collect();
        for len in 0..=forward.len() {
            let forward = &forward[..len];
            for t in 0..45 {
                let expected = forward.partition_point(|z| z.0 <= t);
                for near in 0..=len + 2 {
                    assert_eq!(starting_by(forward, t, near), expected, "t {t} near {near}");
                }
            }
        }
    }

    /// The three grouping paths, dense integers (a table), sparse integers
    /// (sorted) and other values (hashed), give the same answers.
    #[test]
    fn integer_and_general_values_agree() {
        let check = |steps: &[Timed<RegisterStep>]| check(steps);
        let dense = |n: i64| Value::Int(n);
        let sparse = |n: i64| Value::Int(n * 1_000_000_007);
        let general = |n: i64| Value::Str(format!("v{n}"));
        for value in [dense, sparse, general] {
            let w = |n, call, ret| timed(RegisterStep::Write(value(n)), call, ret);
            let r = |n, call, ret| timed(RegisterStep::Read(value(n)), call, ret);
            let cas = |a, b, call, ret| {
                timed(
                    RegisterStep::Cas(Box::new(Cas {
                        from: value(a),
                        to: value(b),
                    })),
                    call,
                    ret,
                )
            };
            // w1, then w2, then a read of 1: stale.
            let stale = [w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)];
            assert_eq!(check(&stale), Some(Err(vec![0, 1, 2])));
            // The read overlaps w2: it may come first.
            let fine = [w(1, 0, 1), w(2, 2, 5), r(1, 3, 4)];
            assert_eq!(check(&fine), Some(Ok(())));
            // A read of a value nobody wrote.
            assert_eq!(check(&[w(1, 0, 1), r(7, 2, 3)]), Some(Err(vec![1])));
            // Two writes of one value: not for this procedure.
            assert_eq!(check(&[w(1, 0, 1), w(1, 2, 3)]), None);
            // A chain: w1, cas 1->2, read 2.
            assert_eq!(
                check(&[w(1, 0, 1), cas(1, 2, 2, 3), r(2, 4, 5)]),
                Some(Ok(()))
            );
            // A read of 1 after the cas to 2 completed: stale.
            assert_eq!(
                check(&[w(1, 0, 1), cas(1, 2, 2, 3), r(1, 4, 5)]),
                Some(Err(vec![0, 1, 2]))
            );
            // Two cas from 1 both succeeded.
            assert_eq!(
                check(&[w(1, 0, 1), cas(1, 2, 2, 3), cas(1, 3, 4, 5)]),
                Some(Err(vec![0, 1, 2]))
            );
        }
    }
}
