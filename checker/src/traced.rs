//! The fast path for key-value strings built by put and append (Porcupine's
//! KV model) when every put and append writes its own token.
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
//! It applies when tokens are non-empty, distinct and prefix-free (so a string
//! splits into tokens one way only), and every get splits cleanly, with a put
//! only in first place and each append always after the same token. Anything
//! else goes to the search, which also explains it.

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

/// Decides a partition, or `None` when the tokens do not trace it.
pub fn check(steps: &[Timed<KvStep>]) -> Option<Result<(), Vec<usize>>> {
    let mut token_of: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, t) in steps.iter().enumerate() {
        if let KvStep::Put(v) | KvStep::Append(v) = &t.step {
            if v.is_empty() || token_of.insert(v, i).is_some() {
                return None;
            }
        }
    }
    let mut tokens: Vec<&str> = token_of.keys().copied().collect();
    tokens.sort_unstable();
    if tokens.windows(2).any(|w| w[1].starts_with(w[0])) {
        return None;
    }
    let mut lengths: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();

    // For each append, the step whose token comes right before it, and the
    // get that showed so.
    let mut before: Vec<Option<usize>> = vec![None; steps.len()];
    let mut shown_by: Vec<usize> = vec![INITIAL; steps.len()];
    // Each get's tokens, in order.
    let mut tokens_seen: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    // For each get, the step whose token ends what it saw.
    let mut read = Vec::with_capacity(steps.len());
    for (i, t) in steps.iter().enumerate() {
        let KvStep::Get(seen) = &t.step else {
            read.push(INITIAL);
            continue;
        };
        let (mut at, mut last) = (0, INITIAL);
        while at < seen.len() {
            let (len, next) = lengths
                .iter()
                .filter_map(|&len| Some((len, *token_of.get(seen.get(at..at + len)?)?)))
                .next()?;
            match steps[next].step {
                KvStep::Put(_) if at > 0 => return None,
                KvStep::Append(_) if *before[next].get_or_insert(last) != last => return None,
                _ => {}
            }
            if shown_by[next] == INITIAL {
                shown_by[next] = i;
            }
            tokens_seen[i].push(next);
            at += len;
            last = next;
        }
        read.push(last);
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
    // witness keeps that get, and the producers of all it showed, so that it
    // still fails on its own.
    Some(crate::zones::check(&register)?.map_err(|witness| {
        let mut ops = witness.clone();
        for &op in &witness {
            if before[op].is_some() {
                ops.push(shown_by[op]);
                ops.extend(&tokens_seen[shown_by[op]]);
            }
        }
        ops.sort_unstable();
        ops.dedup();
        ops
    }))
}
