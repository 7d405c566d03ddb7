//! The `register` workload's generator: reads, writes and compare-and-sets
//! over a few keys at a time, seeded so a run can be repeated.
//!
//! Two choices keep the history cheap to check, as in Jepsen's independent
//! keys:
//! - every written value (a write's, a cas's new one) is unique, so each read
//!   names the write it saw and the checker's O(n log n) fast path applies;
//! - each of the `keys` slots retires its key after `ops_per_key` operations
//!   and takes a fresh one (`k0`, `k1`, ...), so no key's history grows past
//!   what a search could handle if the fast path did not apply.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use targets::{Action, Op};

/// How often each function is picked, in percent; they add up to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Mix {
    /// 50% reads, 30% writes, 20% cas.
    pub const DEFAULT: Mix = Mix {
        read: 50,
        write: 30,
        cas: 20,
    };
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// `READ,WRITE,CAS` in percent, e.g. `50,30,20`.
    fn from_str(s: &str) -> Result<Mix, String> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{s:?} is not READ,WRITE,CAS in percent, e.g. 50,30,20"))?;
        let [read, write, cas] = parts[..] else {
            return Err(format!("{s:?}: give three percentages, READ,WRITE,CAS"));
        };
        if read + write + cas != 100 {
            return Err(format!("{s:?} adds up to {}, not 100", read + write + cas));
        }
        Ok(Mix { read, write, cas })
    }
}

/// One active key: its name, how many operations it has had, and the value
/// most recently handed out for it (what a cas expects to find).
struct Slot {
    key: Arc<str>,
    ops: u64,
    last: Option<i64>,
}

pub struct Generator {
    rng: SmallRng,
    mix: Mix,
    ops_per_key: u64,
    slots: Vec<Slot>,
    next_key: u64,
    next_value: i64,
}

impl Generator {
    pub fn new(seed: u64, keys: usize, ops_per_key: u64, mix: Mix) -> Self {
        let mut g = Generator {
            rng: SmallRng::seed_from_u64(seed),
            mix,
            ops_per_key: ops_per_key.max(1),
            slots: Vec::with_capacity(keys),
            next_key: 0,
            next_value: 1,
        };
        for _ in 0..keys.max(1) {
            let slot = g.fresh_slot();
            g.slots.push(slot);
        }
        g
    }

    fn fresh_slot(&mut self) -> Slot {
        let key = format!("k{}", self.next_key).into();
        self.next_key += 1;
        Slot {
            key,
            ops: 0,
            last: None,
        }
    }

    /// The next operation, on a random active key.
    pub fn next_op(&mut self) -> Op {
        let i = self.rng.gen_range(0..self.slots.len());
        if self.slots[i].ops >= self.ops_per_key {
            self.slots[i] = self.fresh_slot();
        }
        let roll = self.rng.gen_range(0..100);
        // Half the cases leave the expected value in place, so that concurrent
        // cases race on one value (a correct store lets only one win), while
        // the other half chain on each other.
        let chain = self.rng.gen_bool(0.5);
        let value = self.next_value;
        let slot = &mut self.slots[i];
        slot.ops += 1;
        let action = match slot.last {
            _ if roll < self.mix.read => Action::Read,
            // A cas on a key nobody wrote yet could only fail: write instead.
            Some(from) if roll >= self.mix.read + self.mix.write => Action::Cas { from, to: value },
            _ => Action::Write(value),
        };
        match action {
            Action::Read => {}
            Action::Cas { .. } if !chain => self.next_value += 1,
            _ => {
                slot.last = Some(value);
                self.next_value += 1;
            }
        }
        Op {
            key: slot.key.clone(),
            action,
        }
    }

    /// Every key that was ever handed out, for the final reads.
    pub fn keys(&self) -> impl Iterator<Item = String> {
        (0..self.next_key).map(|n| format!("k{n}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(g: &mut Generator, n: usize) -> Vec<Op> {
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn same_seed_same_operations() {
        let mix = "50,30,20".parse().unwrap();
        let a = take(&mut Generator::new(7, 4, 10, mix), 500);
        let b = take(&mut Generator::new(7, 4, 10, mix), 500);
        assert_eq!(a, b);
        let c = take(&mut Generator::new(8, 4, 10, mix), 500);
        assert_ne!(a, c);
    }

    #[test]
    fn written_values_are_unique_and_keys_rotate() {
        let mut g = Generator::new(1, 3, 20, "20,40,40".parse().unwrap());
        let ops = take(&mut g, 3000);
        let mut written: Vec<i64> = ops
            .iter()
            .filter_map(|op| match op.action {
                Action::Write(v) | Action::Cas { to: v, .. } => Some(v),
                Action::Read => None,
            })
            .collect();
        let n = written.len();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), n, "a value was written twice");
        let mut per_key = std::collections::HashMap::new();
        for op in &ops {
            *per_key.entry(op.key.clone()).or_insert(0) += 1;
        }
        assert!(per_key.values().all(|&n| n <= 20), "{per_key:?}");
        assert!(per_key.len() >= 3000 / 20);
        assert_eq!(g.keys().count(), per_key.len());
        assert!(ops.iter().any(|op| matches!(op.action, Action::Cas { .. })));
    }

    #[test]
    fn mix_must_add_up() {
        assert!("50,30,20".parse::<Mix>().is_ok());
        assert!("50,30".parse::<Mix>().unwrap_err().contains("three"));
        assert!("50,30,30".parse::<Mix>().unwrap_err().contains("110"));
    }
}
