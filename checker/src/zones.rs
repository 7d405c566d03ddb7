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

/// A value's write and what its reads add up to, as step indexes (`NONE`
/// when absent): four words, so a million clusters stay in cache-friendly
/// arrays.
#[derive(Clone, Copy)]
struct Cluster {
    write: u32,
    /// Any read, the read returning first, and the member called last.
    some_read: u32,
    first_read_ret: u32,
    last_call: u32,
}

const NONE: u32 = u32::MAX;

fn some(i: u32) -> Option<usize> {
    (i != NONE).then_some(i as usize)
}

impl Cluster {
    const EMPTY: Cluster = Cluster {
        write: NONE,
        some_read: NONE,
        first_read_ret: NONE,
        last_call: NONE,
    };

    /// Adds step `i`; `None` when it is a second write of the value.
    fn add(&mut self, i: usize, steps: &[Timed<RegisterStep>]) -> Option<()> {
        let ret = |i: u32| steps[i as usize].ret.unwrap_or(u64::MAX);
        let i32 = i as u32;
        if let RegisterStep::Write(_) = steps[i].step {
            if self.write != NONE {
                return None;
            }
            self.write = i32;
        } else {
            if self.some_read == NONE {
                self.some_read = i32;
            }
            if self.first_read_ret == NONE || ret(i32) < ret(self.first_read_ret) {
                self.first_read_ret = i32;
            }
        }
        if self.last_call == NONE || steps[i].call > steps[self.last_call as usize].call {
            self.last_call = i32;
        }
        Some(())
    }
}

/// The clusters, and which one holds the initial value's reads; `None` when
/// the history is not a unique-value read/write register history.
fn clusters(steps: &[Timed<RegisterStep>]) -> Option<(Vec<Cluster>, Option<usize>)> {
    if steps.len() >= NONE as usize {
        return None;
    }
    let mut ints: Vec<(i64, u32)> = Vec::with_capacity(steps.len());
    let mut initial = Cluster::EMPTY;
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
    let (low, high) = ints
        .iter()
        .fold((i64::MAX, i64::MIN), |(l, h), &(n, _)| (l.min(n), h.max(n)));
    let span = (high as i128 - low as i128 + 1) as u128;
    if other {
        // General values: group through a hash table.
        let mut index: FxHashMap<&Value, usize> = FxHashMap::default();
        for (i, t) in steps.iter().enumerate() {
            let (RegisterStep::Write(v) | RegisterStep::Read(v)) = &t.step else {
                unreachable!("checked above")
            };
            if *v != Value::Nil {
                let slot = *index.entry(v).or_insert_with(|| {
                    clusters.push(Cluster::EMPTY);
                    clusters.len() - 1
                });
                clusters[slot].add(i, steps)?;
            }
        }
    } else if !ints.is_empty() && span <= 2 * ints.len() as u128 + 1024 {
        // Integers in a dense range, what test harnesses write: a table
        // indexed by value, filled in one pass.
        clusters = vec![Cluster::EMPTY; span as usize];
        for &(n, i) in &ints {
            clusters[(n - low) as usize].add(i as usize, steps)?;
        }
    } else {
        // Sparse integers: sorting groups them with sequential memory access,
        // where a hash table of a million values misses the cache on every probe.
        ints.sort_unstable();
        for group in ints.chunk_by(|a, b| a.0 == b.0) {
            let mut cluster = Cluster::EMPTY;
            for &(_, i) in group {
                cluster.add(i as usize, steps)?;
            }
            clusters.push(cluster);
        }
    }
    let initial_slot = some(initial.some_read).map(|_| {
        clusters.push(initial);
        clusters.len() - 1
    });
    Some((clusters, initial_slot))
}

/// The operations that define a zone (`NONE` for fewer than three).
type Witness = [u32; 3];

/// Decides a partition, or `None` when it is not a unique-value read/write
/// register history. `Err` carries the indexes of a small sub-history (at most
/// six operations) that is not linearizable on its own.
pub fn check(steps: &[Timed<RegisterStep>]) -> Option<Result<(), Vec<usize>>> {
    let ret = |i: usize| steps[i].ret.unwrap_or(u64::MAX);
    let (clusters, initial) = clusters(steps)?;

    let mut forward: Vec<(u64, u64, Witness)> = Vec::new();
    let mut backward: Vec<(u64, u64, Witness)> = Vec::new();
    for (slot, c) in clusters.iter().enumerate() {
        let Some(first_read) = some(c.first_read_ret) else {
            // Nobody read it, but a definite write still took effect inside its
            // own interval, which must not lie inside another value's forward
            // zone. (An unread indeterminate write may never have happened.)
            if let Some(w) = some(c.write).filter(|&w| steps[w].ret.is_some()) {
                backward.push((steps[w].call, ret(w), [w as u32, NONE, NONE]));
            }
            continue;
        };
        let last = some(c.last_call).expect("a cluster has members");
        let Some(write) = some(c.write) else {
            if Some(slot) == initial {
                // Read the initial value, written "before time": a zone from 0.
                forward.push((0, steps[last].call, [first_read as u32, last as u32, NONE]));
                continue;
            }
            return Some(Err(vec![
                some(c.some_read).expect("a read cluster has a read")
            ]));
        };
        if ret(first_read) < steps[write].call {
            return Some(Err(vec![write, first_read])); // A read ended before its write began.
        }
        let start = ret(first_read).min(ret(write));
        let first = if ret(write) < ret(first_read) {
            write
        } else {
            first_read
        };
        let witness = [write as u32, first as u32, last as u32];
        if start < steps[last].call {
            forward.push((start, steps[last].call, witness));
        } else {
            backward.push((steps[last].call, start, witness));
        }
    }

    forward.sort_unstable_by_key(|z| z.0);
    let conflict = |a: &Witness, b: &Witness| {
        let mut ops: Vec<usize> = a.iter().chain(b).filter_map(|&i| some(i)).collect();
        ops.sort_unstable();
        ops.dedup();
        Some(Err(ops))
    };
    for pair in forward.windows(2) {
        if pair[1].0 < pair[0].1 {
            return conflict(&pair[0].2, &pair[1].2);
        }
    }
    for (start, end, witness) in &backward {
        // The forward zone starting last before this backward zone is the only candidate.
        // `<=`: the initial value's zone "starts" at 0 but before a call at 0.
        let k = forward.partition_point(|z| z.0 <= *start);
        if k > 0 && *end < forward[k - 1].1 {
            return conflict(witness, &forward[k - 1].2);
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

    /// The three grouping paths, dense integers (a table), sparse integers
    /// (sorted) and other values (hashed), give the same answers.
    #[test]
    fn integer_and_general_values_agree() {
        let dense = |n: i64| Value::Int(n);
        let sparse = |n: i64| Value::Int(n * 1_000_000_007);
        let general = |n: i64| Value::Str(format!("v{n}"));
        for value in [dense, sparse, general] {
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
