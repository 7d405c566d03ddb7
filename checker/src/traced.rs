//! The fast path for key-value strings built by put and append (Porcupine's
//! KV model) when a get's string tells which operations built it.
//!
//! A get then reveals its whole past: read left to right, the string it
//! returned names the put that started it (or the empty initial value) and
//! every append since, in order. So each version of the string is known, and
//! an observed append is a compare-and-set from the version before it to its
//! own. A put is a write. An append nobody saw is a write of a version nobody
//! reads: whatever it was appended to, no get can follow it before the next
//! put. That is a register with unique values, which [`crate::zones`] decides
//! in O(n log n) — as Elle traces list-append histories instead of searching.
//!
//! Tokens must be non-empty and prefix-free, so a string splits into tokens
//! one way only. They need not be distinct: clients that restart their
//! sequence numbers write the same token again, usually long after. A token
//! with several writers is traced to the one real time allows, by rules
//! every linearization obeys: its writer was called before the get returned;
//! it did not return before the get's *barrier* was called (the last put
//! that returned before the get was called: it started the string over); it
//! did not return before the writer of an earlier token was called; no
//! writer shows twice; and a writer that returned before the get was called,
//! with no put that can come in between, is in the string. When exactly one
//! choice fits, every linearization makes it, so the reduction stays exact;
//! when none fits, the get cannot be explained and the history is not
//! linearizable. A witness keeps the barriers it relied on, so the same rules
//! hold in the witness alone.
//!
//! Every get must trace, with a put only in first place and each append
//! always after the same operation. Anything else goes to the search, which
//! also explains it.

use crate::history::Value;
use crate::model::{Cas, KvStep, RegisterStep};
use crate::search::Timed;
use rustc_hash::FxHashMap;

/// The empty initial string, as a predecessor.
const INITIAL: usize = usize::MAX;

fn version(step: usize) -> Value {
    if step == INITIAL {
        Value::Nil
    } else {
        Value::Int(step as i64)
    }
}

/// The tokens of a partition and who wrote each.
struct Tokens<'a> {
    /// The puts and appends writing each token, in invocation order.
    writers: FxHashMap<&'a str, Vec<usize>>,
    /// The distinct token lengths.
    lengths: Vec<usize>,
}

impl<'a> Tokens<'a> {
    /// `None` when some token is empty or a prefix of another.
    fn new(steps: &'a [Timed<KvStep>]) -> Option<Self> {
        let mut writers: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        for (i, t) in steps.iter().enumerate() {
            if let KvStep::Put(v) | KvStep::Append(v) = &t.step {
                if v.is_empty() {
                    return None;
                }
                writers.entry(v).or_default().push(i);
            }
        }
        let mut tokens: Vec<&str> = writers.keys().copied().collect();
        tokens.sort_unstable();
        if tokens.windows(2).any(|w| w[1].starts_with(w[0])) {
            return None;
        }
        let mut lengths: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Some(Tokens { writers, lengths })
    }

    /// The token starting at byte `at` of `seen` and its writers.
    fn at(&self, seen: &str, at: usize) -> Option<(usize, &[usize])> {
        self.lengths.iter().find_map(|&len| {
            let writers = self.writers.get(seen.get(at..at + len)?)?;
            Some((len, writers.as_slice()))
        })
    }
}

/// What real time says about puts, which start the string over.
struct Puts {
    /// (return, the definite put called last among those returned by then).
    by_return: Vec<(u64, usize)>,
    /// (call, the latest return among puts called by then), `u64::MAX` for
    /// an indeterminate one.
    by_call: Vec<(u64, u64)>,
}

impl Puts {
    fn new(steps: &[Timed<KvStep>]) -> Puts {
        let puts = || {
            steps
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t.step, KvStep::Put(_)))
        };
        let mut by_return: Vec<(u64, usize)> =
            puts().filter_map(|(i, t)| Some((t.ret?, i))).collect();
        by_return.sort_unstable();
        for k in 1..by_return.len() {
            if steps[by_return[k - 1].1].call > steps[by_return[k].1].call {
                by_return[k].1 = by_return[k - 1].1;
            }
        }
        let mut by_call: Vec<(u64, u64)> = puts()
            .map(|(_, t)| (t.call, t.ret.unwrap_or(u64::MAX)))
            .collect();
        by_call.sort_unstable();
        for k in 1..by_call.len() {
            by_call[k].1 = by_call[k].1.max(by_call[k - 1].1);
        }
        Puts { by_return, by_call }
    }

    /// The barrier of a get called at `call`: the definite put called last
    /// among those that returned before. Whatever returned before the barrier
    /// was called took effect before the string started over, so it is not
    /// in the get's string.
    fn barrier(&self, call: u64) -> Option<usize> {
        let k = self.by_return.partition_point(|&(ret, _)| ret < call);
        k.checked_sub(1).map(|k| self.by_return[k].1)
    }

    /// Whether no put can take effect between a step called at `call` and a
    /// get returning at `ret`: then, if the step returned before the get was
    /// called, the get's string must show it.
    fn none_between(&self, call: u64, ret: u64) -> bool {
        let k = self.by_call.partition_point(|&(c, _)| c < ret);
        k == 0 || self.by_call[k - 1].1 < call
    }
}

/// What real time says about who wrote a get's string.
enum Traced {
    /// One writer for each token.
    One(Vec<usize>),
    /// No writers can have written it: the get is wrong.
    Impossible,
    /// Several assignments fit, or finding out took too long.
    Unclear,
}

/// A get whose string shows a token with several writers.
struct Get<'s> {
    steps: &'s [Timed<KvStep>],
    /// The writers of each token it shows, in order.
    shown: Vec<&'s [usize]>,
    ret: u64,
    barrier: Option<usize>,
    /// When its barrier was called (0 without one).
    barrier_call: u64,
    /// The writers of repeated tokens that must be in its string.
    required: Vec<usize>,
}

impl<'s> Get<'s> {
    fn new(
        steps: &'s [Timed<KvStep>],
        get: &Timed<KvStep>,
        shown: Vec<&'s [usize]>,
        puts: &Puts,
    ) -> Self {
        let ret = get.ret.unwrap_or(u64::MAX);
        let barrier = puts.barrier(get.call);
        let required = shown
            .iter()
            .filter(|w| w.len() > 1)
            .flat_map(|w| w.iter().copied())
            .filter(|&w| {
                steps[w].ret.is_some_and(|r| r < get.call) && puts.none_between(steps[w].call, ret)
            })
            .collect();
        Get {
            steps,
            shown,
            ret,
            barrier,
            barrier_call: barrier.map_or(0, |p| steps[p].call),
            required,
        }
    }

    /// Whether writer `w` can have written the token at `pos` of the string,
    /// after the writers chosen for the tokens before it, all of which were
    /// called before `after`.
    fn can_write(&self, w: usize, pos: usize, chosen: &[usize], after: u64) -> bool {
        let t = &self.steps[w];
        let ret = t.ret.unwrap_or(u64::MAX);
        t.call < self.ret
            // A put starts the string over: only in first place.
            && (pos == 0 || matches!(t.step, KvStep::Append(_)))
            && ret >= after
            && ret >= self.barrier_call
            && !chosen.contains(&w)
    }

    /// The writer of each token, as far as real time tells. A token with one
    /// writer is that writer's; the others are chosen by backtracking, and
    /// every writer that must be in the string (`required`) must be chosen.
    fn trace(&self) -> Traced {
        let n = self.shown.len();
        let mut budget = 64 + 4 * n;
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        // after[pos]: one past the latest call among the writers chosen
        // before `pos`; its writer must return after that.
        let mut after = vec![0u64; n + 1];
        let mut tried = vec![0usize; n];
        let mut found = None;
        loop {
            let pos = chosen.len();
            if pos == n {
                if self.required.iter().all(|w| chosen.contains(w))
                    && found.replace(chosen.clone()).is_some()
                {
                    return Traced::Unclear;
                }
            } else {
                let writers = self.shown[pos];
                let next = (tried[pos]..writers.len()).find(|&k| {
                    writers.len() == 1 || self.can_write(writers[k], pos, &chosen, after[pos])
                });
                if let Some(k) = next {
                    tried[pos] = k + 1;
                    let w = writers[k];
                    chosen.push(w);
                    after[pos + 1] = after[pos].max(self.steps[w].call + 1);
                    if pos + 1 < n {
                        tried[pos + 1] = 0;
                    }
                    continue;
                }
            }
            budget -= 1;
            if budget == 0 {
                return Traced::Unclear;
            }
            if chosen.pop().is_none() {
                return found.map_or(Traced::Impossible, Traced::One);
            }
        }
    }
}

/// Decides a partition, or `None` when the tokens do not trace it.
pub fn check(steps: &[Timed<KvStep>]) -> Option<Result<(), Vec<usize>>> {
    let tokens = Tokens::new(steps)?;
    let puts = Puts::new(steps);

    // For each append, the step whose token comes right before it, and the
    // get that showed so.
    let mut before: Vec<Option<usize>> = vec![None; steps.len()];
    let mut shown_by: Vec<usize> = vec![INITIAL; steps.len()];
    // Each get's writers, in order.
    let mut tokens_seen: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    // The barrier of each get traced through one: a witness keeps it.
    let mut barrier_of: Vec<Option<usize>> = vec![None; steps.len()];
    // For each get, the step whose token ends what it saw.
    let mut read = Vec::with_capacity(steps.len());
    for (i, t) in steps.iter().enumerate() {
        let KvStep::Get(seen) = &t.step else {
            read.push(INITIAL);
            continue;
        };
        let mut shown = Vec::new();
        let mut at = 0;
        while at < seen.len() {
            let (len, writers) = tokens.at(seen, at)?;
            shown.push(writers);
            at += len;
        }
        let writers: Vec<usize> = if shown.iter().all(|w| w.len() == 1) {
            shown.iter().map(|w| w[0]).collect()
        } else {
            let get = Get::new(steps, t, shown, &puts);
            barrier_of[i] = get.barrier;
            match get.trace() {
                Traced::One(writers) => writers,
                Traced::Unclear => return None,
                // Whoever wrote its tokens, real time rules each of them out
                // — also in the sub-history of the get, its barrier and every
                // writer of its tokens.
                Traced::Impossible => {
                    let mut witness: Vec<usize> = get.shown.concat();
                    witness.extend([i].into_iter().chain(get.barrier));
                    witness.sort_unstable();
                    witness.dedup();
                    return Some(Err(witness));
                }
            }
        };
        let mut last = INITIAL;
        for (pos, &w) in writers.iter().enumerate() {
            match steps[w].step {
                KvStep::Put(_) if pos > 0 => return None,
                KvStep::Append(_) if *before[w].get_or_insert(last) != last => return None,
                _ => {}
            }
            if shown_by[w] == INITIAL {
                shown_by[w] = i;
            }
            last = w;
        }
        read.push(last);
        tokens_seen[i] = writers;
    }

    let register: Vec<Timed<RegisterStep>> = steps
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let step = match &t.step {
                KvStep::Get(_) => RegisterStep::Read(version(read[i])),
                KvStep::Append(_) if before[i].is_some() => RegisterStep::Cas(Box::new(Cas {
                    from: version(before[i].expect("checked")),
                    to: version(i),
                })),
                KvStep::Put(_) | KvStep::Append(_) => RegisterStep::Write(version(i)),
            };
            Timed {
                step,
                call: t.call,
                ret: t.ret,
                op: t.op,
            }
        })
        .collect();
    // In the register, a cas "observes" the version before it; here an
    // append observes nothing, and only a get showed what came before it. A
    // witness keeps that get, and the writers of all it showed, so that it
    // still fails on its own; and, for each get traced through a barrier,
    // that put, so that the tracing still holds in the witness alone (a put
    // nobody in the witness reads cannot make it linearizable).
    Some(
        crate::zones::check(register.as_slice())?.map_err(|witness| {
            let mut ops = witness.clone();
            for &op in &witness {
                if before[op].is_some() {
                    ops.push(shown_by[op]);
                    ops.extend(&tokens_seen[shown_by[op]]);
                }
            }
            let barriers: Vec<usize> = ops.iter().filter_map(|&op| barrier_of[op]).collect();
            ops.extend(barriers);
            ops.sort_unstable();
            ops.dedup();
            ops
        }),
    )
}
