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

/// A value's write and what its reads add up to, as step indexes.
struct Cluster {
    write: Option<usize>,
    /// Any read, the read returning first, and the member called last.
    some_read: Option<usize>,
    first_read_ret: Option<usize>,
    last_call: Option<usize>,
}

/// Decides a partition, or `None` when it is not a unique-value read/write
/// register history. `Err` carries the indexes of a small sub-history (at most
/// six operations) that is not linearizable on its own.
pub fn check(steps: &[Timed<RegisterStep>]) -> Option<Result<(), Vec<usize>>> {
    let ret = |i: usize| steps[i].ret.unwrap_or(u64::MAX);
    // Sized up front: growing tables of a million entries costs more than the check.
    let mut index: FxHashMap<&Value, usize> =
        FxHashMap::with_capacity_and_hasher(steps.len(), Default::default());
    let mut clusters: Vec<Cluster> = Vec::with_capacity(steps.len());
    for (i, t) in steps.iter().enumerate() {
        let value = match &t.step {
            RegisterStep::Write(v) | RegisterStep::Read(v) => v,
            RegisterStep::Cas { .. } | RegisterStep::CasFailed { .. } => return None,
        };
        let slot = *index.entry(value).or_insert_with(|| {
            clusters.push(Cluster {
                write: None,
                some_read: None,
                first_read_ret: None,
                last_call: None,
            });
            clusters.len() - 1
        });
        let c = &mut clusters[slot];
        if let RegisterStep::Write(v) = &t.step {
            if c.write.is_some() || *v == Value::Nil {
                return None; // Not unique: the read-mapping is ambiguous.
            }
            c.write = Some(i);
        } else {
            c.some_read.get_or_insert(i);
            if c.first_read_ret.is_none_or(|r| ret(i) < ret(r)) {
                c.first_read_ret = Some(i);
            }
        }
        if c.last_call.is_none_or(|l| t.call > steps[l].call) {
            c.last_call = Some(i);
        }
    }
    let initial = index.get(&Value::Nil).copied();

    let mut forward = Vec::new(); // (start, end, the ops that define it)
    let mut backward = Vec::new();
    for (slot, c) in clusters.iter().enumerate() {
        let Some(first_read) = c.first_read_ret else {
            // Nobody read it, but a definite write still took effect inside its
            // own interval, which must not lie inside another value's forward
            // zone. (An unread indeterminate write may never have happened.)
            if let Some(w) = c.write.filter(|&w| steps[w].ret.is_some()) {
                backward.push((steps[w].call, ret(w), vec![w]));
            }
            continue;
        };
        let Some(write) = c.write else {
            if Some(slot) == initial {
                // Read the initial value, written "before time": a zone from 0.
                let last = c.last_call.expect("a cluster has members");
                forward.push((0, steps[last].call, vec![first_read, last]));
                continue;
            }
            return Some(Err(vec![c.some_read.expect("a read cluster has a read")]));
        };
        if ret(first_read) < steps[write].call {
            return Some(Err(vec![write, first_read])); // A read ended before its write began.
        }
        let last = c.last_call.expect("a cluster has members");
        let start = ret(first_read).min(ret(write));
        let first = if ret(write) < ret(first_read) {
            write
        } else {
            first_read
        };
        let mut witnesses = vec![write, first, last];
        witnesses.sort_unstable();
        witnesses.dedup();
        if start < steps[last].call {
            forward.push((start, steps[last].call, witnesses));
        } else {
            backward.push((steps[last].call, start, witnesses));
        }
    }

    forward.sort_unstable_by_key(|z| z.0);
    let conflict = |a: &[usize], b: &[usize]| {
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
        // `<=`: the initial value's zone "starts" at 0 but before a call at 0.
        let k = forward.partition_point(|z| z.0 <= *start);
        if k > 0 && *end < forward[k - 1].1 {
            return conflict(witnesses, &forward[k - 1].2);
        }
    }
    Some(Ok(()))
}
