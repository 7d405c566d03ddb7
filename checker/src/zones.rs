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

impl Cluster {
    fn new() -> Self {
        Cluster {
            write: None,
            some_read: None,
            first_read_ret: None,
            last_call: None,
        }
    }

    /// Adds step `i`; `None` when it is a second write of the value.
    fn add(&mut self, i: usize, steps: &[Timed<RegisterStep>]) -> Option<()> {
        let ret = |i: usize| steps[i].ret.unwrap_or(u64::MAX);
        if let RegisterStep::Write(_) = steps[i].step {
            if self.write.replace(i).is_some() {
                return None;
            }
        } else {
            self.some_read.get_or_insert(i);
            if self.first_read_ret.is_none_or(|r| ret(i) < ret(r)) {
                self.first_read_ret = Some(i);
            }
        }
        if self.last_call.is_none_or(|l| steps[i].call > steps[l].call) {
            self.last_call = Some(i);
        }
        Some(())
    }
}

/// The clusters, and which one holds the initial value's reads; `None` when
/// the history is not a unique-value read/write register history.
fn clusters(steps: &[Timed<RegisterStep>]) -> Option<(Vec<Cluster>, Option<usize>)> {
    let mut ints: Vec<(i64, u32)> = Vec::with_capacity(steps.len());
    let mut initial = Cluster::new();
    let mut other = false;
    for (i, t) in steps.iter().enumerate() {
        match &t.step {
            RegisterStep::Write(Value::Nil) => return None, // Ambiguous with the initial value.
            RegisterStep::Read(Value::Nil) => initial.add(i, steps)?,
            RegisterStep::Write(Value::Int(n)) | RegisterStep::Read(Value::Int(n)) => {
                ints.push((*n, i as u32))
            }
            RegisterStep::Write(_) | RegisterStep::Read(_) => other = true,
            RegisterStep::Cas { .. } | RegisterStep::CasFailed { .. } => return None,
        }
    }
    let mut clusters = Vec::new();
    if other {
        // General values: group through a hash table.
        let mut index: FxHashMap<&Value, usize> = FxHashMap::default();
        for (i, t) in steps.iter().enumerate() {
            let (RegisterStep::Write(v) | RegisterStep::Read(v)) = &t.step else {
                unreachable!("checked above")
            };
            if *v != Value::Nil {
                let slot = *index.entry(v).or_insert_with(|| {
                    clusters.push(Cluster::new());
                    clusters.len() - 1
                });
                clusters[slot].add(i, steps)?;
            }
        }
    } else {
        // Integers, the common case: sorting groups them with sequential
        // memory access, where a hash table of a million values misses the
        // cache on every probe. Histories' values mostly rise with time, so
        // the sort is nearly linear.
        ints.sort_unstable();
        for group in ints.chunk_by(|a, b| a.0 == b.0) {
            let mut cluster = Cluster::new();
            for &(_, i) in group {
                cluster.add(i as usize, steps)?;
            }
            clusters.push(cluster);
        }
    }
    let initial_slot = initial.some_read.map(|_| {
        clusters.push(initial);
        clusters.len() - 1
    });
    Some((clusters, initial_slot))
}

/// Decides a partition, or `None` when it is not a unique-value read/write
/// register history. `Err` carries the indexes of a small sub-history (at most
/// six operations) that is not linearizable on its own.
pub fn check(steps: &[Timed<RegisterStep>]) -> Option<Result<(), Vec<usize>>> {
    let ret = |i: usize| steps[i].ret.unwrap_or(u64::MAX);
    let (clusters, initial) = clusters(steps)?;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(step: RegisterStep, call: u64, ret: u64) -> Timed<RegisterStep> {
        Timed {
            step,
            call,
            ret: Some(ret),
            op: call as usize,
        }
    }

    /// Both grouping paths, integers (sorted) and other values (hashed), give
    /// the same answers.
    #[test]
    fn integer_and_general_values_agree() {
        for value in [|n: i64| Value::Int(n), |n: i64| Value::Str(format!("v{n}"))] {
            let w = |n, call, ret| timed(RegisterStep::Write(value(n)), call, ret);
            let r = |n, call, ret| timed(RegisterStep::Read(value(n)), call, ret);
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
        }
    }
}
