//! The polynomial fast path for read/write registers whose written values are
//! all distinct (Gibbons and Korach's read-mapping check, "zones").
//!
//! With unique values every read names the one write it saw, so reads and
//! their write form a cluster per value. A cluster whose earliest return comes
//! before its latest call must hold the register for the whole gap between the
//! two: a *forward zone*. One whose ops all overlap can take effect at a single
//! instant inside its *backward zone*. The history is linearizable exactly when
//! no read returns before its write is called, no two forward zones overlap,
//! and no backward zone lies inside a forward zone. Sorting the zones makes
//! this O(n log n).

use crate::history::Value;
use crate::model::RegisterStep;
use crate::search::Timed;
use rustc_hash::FxHashMap;

/// Decides a partition, or `None` when it is not a unique-value read/write
/// register history. `Err` carries the indexes of a small sub-history (at most
/// six operations) that is not linearizable on its own.
pub fn check(steps: &[Timed<RegisterStep>]) -> Option<Result<(), Vec<usize>>> {
    // Cluster per written value; `Nil` is the initial value, written "before time".
    #[derive(Default)]
    struct Cluster {
        write: Option<usize>,
        reads: Vec<usize>,
    }
    let mut clusters: FxHashMap<&Value, Cluster> = FxHashMap::default();
    for (i, t) in steps.iter().enumerate() {
        match &t.step {
            RegisterStep::Write(v) => {
                let cluster = clusters.entry(v).or_default();
                if cluster.write.is_some() || *v == Value::Nil {
                    return None;
                }
                cluster.write = Some(i);
            }
            RegisterStep::Read(v) => clusters.entry(v).or_default().reads.push(i),
            RegisterStep::Cas { .. } | RegisterStep::CasFailed { .. } => return None,
        }
    }

    let ret = |i: usize| steps[i].ret.unwrap_or(u64::MAX);
    let mut forward = Vec::new(); // (start, end, defining ops)
    let mut backward = Vec::new();
    for (value, cluster) in &clusters {
        // A read with no write of its value, or one that returned before the write began.
        let write_call = match cluster.write {
            Some(w) => Some(steps[w].call),
            None if **value == Value::Nil => None,
            None => return Some(Err(vec![cluster.reads[0]])),
        };
        if let (Some(w), Some(call)) = (cluster.write, write_call) {
            if let Some(&r) = cluster.reads.iter().find(|&&r| ret(r) < call) {
                return Some(Err(vec![w, r]));
            }
        }
        if cluster.reads.is_empty() {
            // A write nobody read still takes effect somewhere in its own
            // interval, which must not lie inside another value's forward zone.
            // (Unread indeterminate writes are gone by now, or may not happen.)
            if let (Some(w), Some(end)) = (cluster.write, cluster.write.and_then(|w| steps[w].ret)) {
                backward.push((steps[w].call, end, vec![w]));
            }
            continue;
        }
        let members = cluster.write.into_iter().chain(cluster.reads.iter().copied());
        // On a tie (a write whose return was pulled in to a read's), the read:
        // it keeps the witnesses a failing sub-history without the write's pull.
        let first_ret = members.clone().min_by_key(|&i| (ret(i), Some(i) == cluster.write)).expect("a cluster has reads");
        let last_call = members.max_by_key(|&i| steps[i].call).expect("a cluster has reads");
        // The initial value's write happened before everything: its zone starts at 0.
        let start = if cluster.write.is_none() { 0 } else { ret(first_ret) };
        let witnesses: Vec<usize> = cluster.write.into_iter().chain([first_ret, last_call]).collect();
        if start < steps[last_call].call {
            forward.push((start, steps[last_call].call, witnesses));
        } else {
            backward.push((steps[last_call].call, start, witnesses));
        }
    }

    forward.sort_unstable_by_key(|z| z.0);
    let conflict = |a: &Vec<usize>, b: &Vec<usize>| {
        let mut ops: Vec<usize> = a.iter().chain(b).copied().collect();
        ops.sort_unstable();
        ops.dedup();
        Some(Err(ops))
    };
    for pair in forward.windows(2) {
        if pair[1].0 < pair[0].1 {
            return conflict(&pair[0].2, &pair[1].2);
        }
    }
    for (start, end, witnesses) in &backward {
        // The forward zone starting last before this backward zone is the only candidate.
        // `<=`: the initial value's zone starts at 0 but before any call at 0.
        let k = forward.partition_point(|z| z.0 <= *start);
        if k > 0 && *end < forward[k - 1].1 {
            return conflict(witnesses, &forward[k - 1].2);
        }
    }
    Some(Ok(()))
}
