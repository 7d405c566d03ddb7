//! Checking a whole history: per-key partitions, scheduled in slices across
//! threads, within a time and a memory budget, ending in a [`Report`].
//!
//! Each partition goes through the same pipeline:
//! 1. try the model's fast path on the operations as recorded (a valid
//!    partition decided there is never compiled: for a million operations,
//!    holding their steps costs more than checking them);
//! 2. compile its operations with the model, dropping those that constrain
//!    nothing;
//! 3. drop indeterminate producers nobody observed (they may as well never
//!    have happened), and pull an operation's return in to the earliest
//!    return of an observer that can only be explained by it;
//! 4. cut it into segments at quiescent points and search them in order,
//!    each segment starting from a state the previous one can end in.
//!
//! Searches run in slices of steps, round robin over a shared queue, so that an
//! easy invalid key is found while hard keys are still being searched; the
//! first invalid key stops all others.

use crate::model::Model;
use crate::op::Operation;
use crate::search::{Interner, Progress, Search, Timed};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits and knobs of a check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Give up with `unknown` after this long.
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` once the search structures hold this many bytes.
    pub memory_limit: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Shrink an invalid partition to a small sub-history that still fails.
    pub minimize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_limit: None,
            memory_limit: 4 << 30,
            threads: 0,
            minimize: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

/// How a partition was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Nothing left to check once operations that constrain nothing are gone.
    Trivial,
    /// The model's polynomial decision procedure.
    FastPath,
    /// The Wing–Gong–Lowe search.
    Search,
    /// Not decided.
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyResult {
    pub key: Option<String>,
    pub verdict: Verdict,
    pub ops: usize,
    pub method: Method,
    pub segments: usize,
    pub search_steps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One step of a linearization and the state it left.
#[derive(Clone, Debug, Serialize)]
pub struct Linearized {
    pub op: Operation,
    pub state: String,
}

/// Why a partition is not linearizable, for a person to read.
#[derive(Clone, Debug, Serialize)]
pub struct Counterexample {
    pub key: Option<String>,
    /// The operation that could not be linearized at the deepest point reached.
    pub blocked: Option<Operation>,
    /// The longest partial linearization the search reached.
    pub partial: Vec<Linearized>,
    /// A small sub-history that is still not linearizable on its own. It keeps
    /// every operation that its operations' observations depend on, so it is a
    /// proof about the whole history.
    pub minimal: Vec<Operation>,
    /// Whether `minimal` could not be shrunk further within the budget.
    pub minimal_is_one_minimal: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ops: usize,
    pub elapsed_ms: f64,
    pub keys: Vec<KeyResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// An operation the model could not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// Boxed: an error is rare, and every `Result` carrying one is as large
    /// as it.
    pub op: Box<Operation>,
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for ModelError {}

/// Checks `ops` (from [`crate::op::operations`]) against `model`, per key.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation],
    options: &Options,
) -> Result<Report, ModelError> {
    let started = Instant::now();
    let deadline = options.time_limit.map(|limit| started + limit);
    let total_ops = ops.len();
    let mut partitions = Vec::new();
    for (key, members) in crate::op::partition_by_key(ops) {
        partitions.push(Partition::of(model, ops, key.map(str::to_string), members)?);
    }
    // Decided ones first, so that a key the fast path found invalid stops the
    // check before any search starts (the one with the smallest witness, the
    // easiest counterexample to read); then largest first, so the long ones
    // start early and the short ones fill in.
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&i| {
        let p = &partitions[i];
        (
            p.outcome.is_none(),
            p.fast_witness.as_ref().map_or(usize::MAX, Vec::len),
            std::cmp::Reverse(p.steps.len()),
        )
    });

    // Workers add and subtract each slice's change, so start from what the
    // partitions already hold: a partition can shrink below its first size.
    let initial_bytes: usize = partitions.iter().map(Partition::bytes).sum();
    let shared = Shared {
        queue: Mutex::new(order.into_iter().map(|i| (i, 20_000)).collect()),
        cells: partitions.into_iter().map(Mutex::new).collect(),
        stop: AtomicBool::new(false),
        bytes: AtomicUsize::new(initial_bytes),
        first_invalid: Mutex::new(None),
        budget_reason: Mutex::new(None),
        deadline,
        memory_limit: options.memory_limit,
    };
    let threads = if options.threads == 0 {
        rayon::current_num_threads()
    } else {
        options.threads
    };
    let threads = threads.min(shared.cells.len());
    if threads <= 1 {
        shared.work(); // Handing one partition to another thread only adds latency.
    } else {
        rayon::scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| shared.work());
            }
        });
    }

    let budget_reason = shared
        .budget_reason
        .into_inner()
        .expect("no worker panicked");
    let first_invalid = shared
        .first_invalid
        .into_inner()
        .expect("no worker panicked");
    let mut partitions: Vec<Partition<M>> = shared
        .cells
        .into_iter()
        .map(|c| c.into_inner().expect("no worker panicked"))
        .collect();
    let counterexample = first_invalid.map(|i| {
        let minimize_deadline = Instant::now() + Duration::from_secs(10);
        let deadline = deadline.map_or(minimize_deadline, |d| {
            d.max(Instant::now()).min(minimize_deadline)
        });
        partitions[i].counterexample(model, ops, options.minimize, deadline)
    });
    let keys: Vec<KeyResult> = partitions
        .iter()
        .map(|p| {
            let (verdict, reason) = match p.outcome {
                Some(true) => (Verdict::Valid, None),
                Some(false) => (Verdict::Invalid, None),
                None if first_invalid.is_some() => (
                    Verdict::Unknown,
                    Some("not finished: another key was found not linearizable first".to_string()),
                ),
                None => (
                    Verdict::Unknown,
                    budget_reason
                        .as_ref()
                        .map(|r| format!("{r}; {}", p.progress())),
                ),
            };
            KeyResult {
                key: p.key.clone(),
                verdict,
                ops: p.members.len(),
                method: p.method,
                segments: p.segments.len(),
                search_steps: p.search_steps,
                reason,
            }
        })
        .collect();
    let verdict = if first_invalid.is_some() {
        Verdict::Invalid
    } else if keys.iter().all(|k| k.verdict == Verdict::Valid) {
        Verdict::Valid
    } else {
        Verdict::Unknown
    };
    let reason = (verdict == Verdict::Unknown).then(|| {
        let open = keys
            .iter()
            .filter(|k| k.verdict == Verdict::Unknown)
            .count();
        format!(
            "{} ({open} of {} keys undecided)",
            budget_reason.unwrap_or_default(),
            keys.len()
        )
    });
    Ok(Report {
        verdict,
        reason,
        ops: total_ops,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        keys,
        counterexample,
    })
}

/// Compiles a partition's operations (`members` index `ops`), in invocation
/// order. A step's `op` is the operation's index in `ops`.
fn compile<M: Model>(
    model: &M,
    ops: &[Operation],
    members: &[usize],
) -> Result<Vec<Timed<M::Step>>, ModelError> {
    use rayon::prelude::*;
    // In parallel: for a million operations this is most of a check's time.
    // An indexed map writes each step straight to its place (a filtered one
    // would gather pieces and copy them all again); the few operations that
    // compile to nothing are then squeezed out in place.
    let failed = AtomicBool::new(false);
    let mut steps: Vec<Option<Timed<M::Step>>> = members
        .par_iter()
        .with_min_len(4096)
        .map(|&i| {
            let op = &ops[i];
            let step = model.compile(op).unwrap_or_else(|_| {
                failed.store(true, Ordering::Relaxed);
                None
            })?;
            Some(Timed {
                step,
                call: op.call,
                ret: op.ret,
                op: i,
            })
        })
        .collect();
    if failed.into_inner() {
        // Report the first operation the model refuses, as a serial pass would.
        let error = members.iter().find_map(|&i| {
            let op = &ops[i];
            model.compile(op).err().map(|message| ModelError {
                op: Box::new(op.clone()),
                message,
            })
        });
        return Err(error.expect("an operation failed to compile"));
    }
    steps.retain(Option::is_some);
    // In place: a step and an optional step have the same size, so the
    // standard library reuses the buffer (`flatten` would copy it).
    Ok(steps.into_iter().map(|t| t.expect("kept")).collect())
}

/// Step 2 of the pipeline. Both rules need, per observer, the producers it
/// depends on; past this many pairs the rules are skipped (they only speed the
/// search up).
const SIMPLIFY_PAIRS: usize = 20_000_000;

fn simplify<M: Model>(model: &M, steps: &mut Vec<Timed<M::Step>>) {
    let producers: Vec<usize> = (0..steps.len())
        .filter(|&i| model.produces(&steps[i].step))
        .collect();
    if producers.len().saturating_mul(steps.len()) > SIMPLIFY_PAIRS {
        return;
    }
    let mut observed = vec![false; steps.len()];
    for o in 0..steps.len() {
        let mut only = None;
        let mut count = 0;
        for &p in &producers {
            if p != o && model.depends(&steps[o].step, &steps[p].step) {
                observed[p] = true;
                only = Some(p);
                count += 1;
            }
        }
        // `o` can only be explained by `p`: p took effect before o returned.
        if let (1, Some(p), Some(o_ret)) = (count, only, steps[o].ret) {
            if model.needs_producer(&steps[o].step) && steps[p].call < o_ret {
                steps[p].ret = Some(steps[p].ret.map_or(o_ret, |r| r.min(o_ret)));
            }
        }
    }
    let mut i = 0;
    steps.retain(|t| {
        let keep = t.ret.is_some() || observed[i] || !model.produces(&t.step);
        i += 1;
        keep
    });
}

/// Splits steps (in call order) where nothing is pending.
fn segments<S>(steps: &[Timed<S>]) -> Vec<(usize, usize)> {
    let mut segments = Vec::new();
    let mut start = 0;
    let mut horizon = 0u64;
    for (i, t) in steps.iter().enumerate() {
        if i > start && horizon < t.call {
            segments.push((start, i));
            start = i;
        }
        horizon = horizon.max(t.ret.unwrap_or(u64::MAX));
    }
    if start < steps.len() {
        segments.push((start, steps.len()));
    }
    segments
}

struct Partition<'m, M: Model> {
    key: Option<String>,
    /// The partition's operations, as indexes into the checked operations.
    members: Vec<usize>,
    steps: Vec<Timed<M::Step>>,
    segments: Vec<(usize, usize)>,
    interner: Interner<'m, M>,
    chain: Vec<Search>,
    /// (segment, start state) pairs known to have no linearization.
    dead: FxHashSet<(usize, u32)>,
    outcome: Option<bool>,
    method: Method,
    search_steps: u64,
    /// The deepest point: linearized steps (partition indexes) and the blocked one.
    deepest: (Vec<usize>, Option<usize>),
    /// Indexes into `steps` of a small failing sub-history found by the fast path.
    fast_witness: Option<Vec<usize>>,
}

impl<'m, M: Model> Partition<'m, M> {
    /// The partition of `ops` made of `members`, through the fast path if it
    /// applies. Its operations are compiled unless the fast path found it
    /// valid: to search them, or to explain why they fail.
    fn of(
        model: &'m M,
        ops: &[Operation],
        key: Option<String>,
        members: Vec<usize>,
    ) -> Result<Self, ModelError> {
        let fast = model.fast_check(ops, &members);
        let steps = match fast {
            Some(Ok(())) => Vec::new(),
            _ => compile(model, ops, &members)?,
        };
        let mut p = Partition::new(model, key, members, steps, fast.as_ref().map(Result::is_ok));
        if let Some(Err(witness)) = fast {
            // From positions in `members` to positions in the steps, which
            // keep their order.
            let at = |i: usize| {
                p.steps
                    .binary_search_by_key(&p.members[i], |t| t.op)
                    .expect("a witness constrains something, so it compiles to a step")
            };
            p.fast_witness = Some(witness.into_iter().map(at).collect());
        }
        Ok(p)
    }

    /// `fast`: what the model's fast path decided (valid or not), if it did.
    fn new(
        model: &'m M,
        key: Option<String>,
        members: Vec<usize>,
        steps: Vec<Timed<M::Step>>,
        fast: Option<bool>,
    ) -> Self {
        let mut p = Partition {
            key,
            members,
            steps,
            segments: Vec::new(),
            interner: Interner::new(model),
            chain: Vec::new(),
            dead: FxHashSet::default(),
            outcome: None,
            method: Method::None,
            search_steps: 0,
            deepest: (Vec::new(), None),
            fast_witness: None,
        };
        p.prepare(model, fast);
        p
    }

    /// Decides a partition with nothing left to check; false otherwise.
    fn trivially_valid(&mut self) -> bool {
        if self.steps.is_empty() {
            self.outcome = Some(true);
            self.method = Method::Trivial;
        }
        self.steps.is_empty()
    }

    fn prepare(&mut self, model: &M, fast: Option<bool>) {
        if let Some(valid) = fast {
            self.method = Method::FastPath;
            self.outcome = Some(valid);
            return;
        }
        if self.trivially_valid() {
            return;
        }
        simplify(model, &mut self.steps);
        if self.trivially_valid() {
            return;
        }
        self.method = Method::Search;
        self.segments = segments(&self.steps);
        let init = self.interner.intern(model.init());
        let (lo, hi) = self.segments[0];
        self.chain.push(Search::new(&self.steps[lo..hi], lo, init));
    }

    fn bytes(&self) -> usize {
        self.interner.bytes() + self.chain.iter().map(Search::bytes).sum::<usize>()
    }

    /// Searches for about `budget` steps; `Some` once decided.
    fn advance(&mut self, budget: u64) -> Option<bool> {
        if self.outcome.is_some() {
            return self.outcome;
        }
        let mut left = budget;
        while left > 0 {
            let seg = self.chain.len() - 1;
            let (lo, hi) = self.segments[seg];
            let search = self.chain.last_mut().expect("a search is under way");
            let before = search.steps_taken;
            let progress = search.run(&self.steps[lo..hi], &mut self.interner, left);
            let used = search.steps_taken - before;
            self.search_steps += used;
            left = left.saturating_sub(used.max(1));
            match progress {
                Progress::Paused => return None,
                Progress::Found(_) if seg + 1 == self.segments.len() => {
                    self.outcome = Some(true);
                    return self.outcome;
                }
                Progress::Found(end) => {
                    if !self.dead.contains(&(seg + 1, end)) {
                        let (lo, hi) = self.segments[seg + 1];
                        self.chain.push(Search::new(&self.steps[lo..hi], lo, end));
                    }
                }
                Progress::Exhausted => {
                    self.note_deepest(seg);
                    let search = self.chain.pop().expect("a search is under way");
                    self.dead.insert((seg, search.start));
                    if self.chain.is_empty() {
                        self.outcome = Some(false);
                        self.chain.clear();
                        return self.outcome;
                    }
                }
            }
        }
        None
    }

    /// Keeps the deepest point over all segments: earlier segments' current
    /// linearizations followed by this segment's deepest one.
    fn note_deepest(&mut self, seg: usize) {
        let search = &self.chain[seg];
        let earlier: usize = self.chain[..seg].iter().map(|s| s.path().len()).sum();
        if search.deepest.blocked.is_none()
            || earlier + search.deepest.path.len() <= self.deepest.0.len()
                && self.deepest.1.is_some()
        {
            return;
        }
        let mut path: Vec<usize> = Vec::with_capacity(earlier + search.deepest.path.len());
        for (s, (lo, _)) in self.chain[..seg].iter().zip(&self.segments) {
            path.extend(s.path().into_iter().map(|i| lo + i));
        }
        let lo = self.segments[seg].0;
        path.extend(search.deepest.path.iter().map(|i| lo + i));
        self.deepest = (path, search.deepest.blocked.map(|i| lo + i));
    }

    fn progress(&self) -> String {
        let total = self.steps.iter().filter(|t| t.ret.is_some()).count();
        let done: usize = self.chain.iter().map(|s| s.path().len()).sum();
        format!(
            "key {}: searched {} steps, {} of {} segments entered, {done} of {total} operations linearized on the current path",
            self.key.as_deref().unwrap_or("(none)"),
            self.search_steps,
            self.chain.len(),
            self.segments.len()
        )
    }

    fn counterexample(
        &mut self,
        model: &M,
        ops: &[Operation],
        minimize: bool,
        deadline: Instant,
    ) -> Counterexample {
        let all: Vec<usize> = match &self.fast_witness {
            Some(witness) => witness.clone(),
            None => (0..self.steps.len()).collect(),
        };
        let (minimal, one_minimal) = if minimize || self.fast_witness.is_some() {
            let cut = self.deepest.1.and_then(|b| self.steps[b].ret);
            // Shrink with the returns the history has: a return `simplify`
            // pulled in holds only while its observer is kept, and every
            // candidate is simplified again on its own.
            let raw: Vec<Timed<M::Step>> = self
                .steps
                .iter()
                .map(|t| Timed {
                    ret: ops[t.op].ret,
                    ..t.clone()
                })
                .collect();
            shrink(model, ops, &raw, all, cut, deadline)
        } else {
            (all, false)
        };
        if self.fast_witness.is_some() || self.deepest.1.is_none() {
            // The fast path found no search path: take it from the small sub-history.
            let subset: Vec<Timed<M::Step>> =
                minimal.iter().map(|&i| self.steps[i].clone()).collect();
            if let Some((path, blocked)) = deepest_of(model, &subset, CHECK_BUDGET) {
                self.deepest = (
                    path.into_iter().map(|i| minimal[i]).collect(),
                    blocked.map(|i| minimal[i]),
                );
            }
        }
        let mut state = model.init();
        let mut partial = Vec::new();
        for &i in &self.deepest.0 {
            let t = &self.steps[i];
            state = model.step(&state, &t.step).unwrap_or(state);
            partial.push(Linearized {
                op: ops[t.op].clone(),
                state: model.show_state(&state),
            });
        }
        Counterexample {
            key: self.key.clone(),
            blocked: self.deepest.1.map(|i| ops[self.steps[i].op].clone()),
            partial,
            minimal: minimal
                .iter()
                .map(|&i| ops[self.steps[i].op].clone())
                .collect(),
            minimal_is_one_minimal: one_minimal,
        }
    }
}

/// Search steps for deciding a small sub-history while shrinking or
/// explaining a counterexample.
const CHECK_BUDGET: u64 = 200_000;

/// Searches a small set of steps on its own for the deepest point a
/// linearization reaches; `None` when it is linearizable. A search that takes
/// more than `budget` steps (concurrent appends can have factorially many
/// orders) stops at the deepest point reached so far.
fn deepest_of<M: Model>(
    model: &M,
    steps: &[Timed<M::Step>],
    budget: u64,
) -> Option<(Vec<usize>, Option<usize>)> {
    let mut p = Partition::new(model, None, Vec::new(), steps.to_vec(), None);
    match p.advance(budget) {
        Some(true) => return None,
        Some(false) => {}
        None => p.note_deepest(p.chain.len() - 1),
    }
    // `prepare` may have dropped steps: map back by operation.
    let back = |i: usize| steps.iter().position(|t| t.op == p.steps[i].op);
    Some((
        p.deepest.0.iter().filter_map(|&i| back(i)).collect(),
        p.deepest.1.and_then(back),
    ))
}

/// Delta debugging over a failing set of steps: removes chunks (and whatever
/// depended on them) while what is left still fails. Returns the smallest set
/// found and whether it is 1-minimal.
///
/// `cut`, when known, is where the search got stuck: everything invoked after
/// it is tried away first, in one check.
fn shrink<M: Model>(
    model: &M,
    ops: &[Operation],
    steps: &[Timed<M::Step>],
    mut keep: Vec<usize>,
    cut: Option<u64>,
    deadline: Instant,
) -> (Vec<usize>, bool) {
    let fails = |set: &[usize]| {
        let members: Vec<usize> = set.iter().map(|&i| steps[i].op).collect();
        let fast = model.fast_check(ops, &members).map(|result| result.is_ok());
        let subset: Vec<Timed<M::Step>> = set.iter().map(|&i| steps[i].clone()).collect();
        Partition::new(model, None, members, subset, fast).advance(CHECK_BUDGET) == Some(false)
    };
    let mut dependents = Dependents {
        model,
        steps,
        among: keep.clone(),
        known: FxHashMap::default(),
    };
    if let Some(cut) = cut {
        let late: Vec<usize> = keep
            .iter()
            .copied()
            .filter(|&i| steps[i].call > cut)
            .collect();
        let candidate = dependents.without(&keep, &late);
        if !late.is_empty() && !candidate.is_empty() && fails(&candidate) {
            keep = candidate;
        }
    }
    let mut granularity = 2usize;
    while keep.len() > 1 {
        if Instant::now() > deadline {
            return (keep, false);
        }
        let chunk_len = keep.len().div_ceil(granularity);
        let mut shrunk = false;
        for start in (0..keep.len()).step_by(chunk_len) {
            let chunk = &keep[start..(start + chunk_len).min(keep.len())];
            let candidate = dependents.without(&keep, chunk);
            if candidate.len() < keep.len() && !candidate.is_empty() && fails(&candidate) {
                keep = candidate;
                granularity = (granularity - 1).max(2);
                shrunk = true;
                break;
            }
            if Instant::now() > deadline {
                return (keep, false);
            }
        }
        if !shrunk {
            if chunk_len == 1 {
                return (keep, true);
            }
            granularity = (granularity * 2).min(keep.len());
        }
    }
    (keep, true)
}

/// Who depends on each step, among the steps shrinking starts from, found
/// once per step when first needed: asking the model about every pair again
/// on every removal made shrinking a long witness quadratic.
struct Dependents<'a, M: Model> {
    model: &'a M,
    steps: &'a [Timed<M::Step>],
    among: Vec<usize>,
    known: FxHashMap<usize, Vec<usize>>,
}

impl<M: Model> Dependents<'_, M> {
    fn of(&mut self, producer: usize) -> &[usize] {
        let (model, steps, among) = (self.model, self.steps, &self.among);
        self.known.entry(producer).or_insert_with(|| {
            let produced = &steps[producer].step;
            if !model.produces(produced) {
                return Vec::new();
            }
            among
                .iter()
                .copied()
                .filter(|&i| i != producer && model.depends(&steps[i].step, produced))
                .collect()
        })
    }

    /// `set` without `chunk` and, transitively, every step in `set` that
    /// depends on what is removed.
    fn without(&mut self, set: &[usize], chunk: &[usize]) -> Vec<usize> {
        let in_set: FxHashSet<usize> = set.iter().copied().collect();
        let mut gone: FxHashSet<usize> = chunk.iter().copied().collect();
        let mut todo = chunk.to_vec();
        while let Some(g) = todo.pop() {
            for &i in self.of(g) {
                if in_set.contains(&i) && gone.insert(i) {
                    todo.push(i);
                }
            }
        }
        set.iter().copied().filter(|i| !gone.contains(i)).collect()
    }
}

struct Shared<'m, M: Model> {
    /// Partition index and the step budget of its next slice.
    queue: Mutex<VecDeque<(usize, u64)>>,
    cells: Vec<Mutex<Partition<'m, M>>>,
    stop: AtomicBool,
    bytes: AtomicUsize,
    first_invalid: Mutex<Option<usize>>,
    budget_reason: Mutex<Option<String>>,
    deadline: Option<Instant>,
    memory_limit: usize,
}

impl<M: Model> Shared<'_, M> {
    fn work(&self) {
        const MAX_SLICE: u64 = 400_000;
        while !self.stop.load(Ordering::Relaxed) {
            let Some((i, slice)) = self.queue.lock().expect("queue lock").pop_front() else {
                return;
            };
            let mut p = self.cells[i].lock().expect("partition lock");
            let before = p.bytes();
            let outcome = p.advance(slice);
            let after = p.bytes();
            let total = if after >= before {
                self.bytes.fetch_add(after - before, Ordering::Relaxed) + (after - before)
            } else {
                self.bytes.fetch_sub(before - after, Ordering::Relaxed) - (before - after)
            };
            match outcome {
                Some(false) => {
                    self.first_invalid.lock().expect("lock").get_or_insert(i);
                    self.stop.store(true, Ordering::Relaxed);
                }
                Some(true) => {}
                None => {
                    if self.deadline.is_some_and(|d| Instant::now() > d) {
                        self.give_up("time limit reached");
                    } else if total > self.memory_limit {
                        self.give_up(&format!(
                            "memory budget of {} MiB exhausted",
                            self.memory_limit >> 20
                        ));
                    } else {
                        self.queue
                            .lock()
                            .expect("queue lock")
                            .push_back((i, (slice * 2).min(MAX_SLICE)));
                    }
                }
            }
        }
    }

    fn give_up(&self, reason: &str) {
        self.budget_reason
            .lock()
            .expect("lock")
            .get_or_insert_with(|| reason.to_string());
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The models a user can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// `kv` when the history has get/put/append, else `cas-register`.
    Auto,
    Register,
    CasRegister,
    Kv,
}

impl std::str::FromStr for ModelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ModelChoice::Auto),
            "register" => Ok(ModelChoice::Register),
            "cas-register" => Ok(ModelChoice::CasRegister),
            "kv" => Ok(ModelChoice::Kv),
            _ => Err(format!(
                "unknown model {s:?}: expected auto, register, cas-register or kv"
            )),
        }
    }
}

impl ModelChoice {
    /// Resolves `Auto` from the operations' functions.
    pub fn resolve(self, ops: &[Operation]) -> ModelChoice {
        use crate::history::Func;
        match self {
            ModelChoice::Auto
                if ops
                    .iter()
                    .any(|o| matches!(o.f, Func::Get | Func::Put | Func::Append)) =>
            {
                ModelChoice::Kv
            }
            ModelChoice::Auto => ModelChoice::CasRegister,
            chosen => chosen,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelChoice::Auto => "auto",
            ModelChoice::Register => "register",
            ModelChoice::CasRegister => "cas-register",
            ModelChoice::Kv => "kv",
        }
    }
}

/// Checks with a model chosen by name (after [`ModelChoice::resolve`]).
pub fn check_with(
    choice: ModelChoice,
    failed_cas: crate::model::FailedCas,
    ops: &[Operation],
    options: &Options,
) -> Result<Report, ModelError> {
    use crate::model::{AppendKv, Register};
    match choice.resolve(ops) {
        ModelChoice::Kv => check(&AppendKv, ops, options),
        ModelChoice::Register => check(
            &Register {
                cas: false,
                failed_cas,
            },
            ops,
            options,
        ),
        _ => check(
            &Register {
                cas: true,
                failed_cas,
            },
            ops,
            options,
        ),
    }
}
