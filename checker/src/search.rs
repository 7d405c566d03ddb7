//! The Wing–Gong–Lowe search for one segment of one partition.
//!
//! Calls and returns sit in one doubly linked list in time order. Any call
//! that comes before the first return is a candidate to take effect next: we
//! try it on the model, and if the resulting configuration — the set of
//! operations linearized so far plus the state — is new, we *lift* the call
//! and its return out of the list and go on from the head. When a return
//! reaches the head, that operation had to be linearized already and was not:
//! we backtrack, put the last operation back, and try the next candidate.
//!
//! What keeps it small:
//! - configurations already visited are never explored twice (Lowe); the set
//!   of linearized operations is a bitset with an incrementally kept
//!   Zobrist hash, and states are interned as integers with a memoized
//!   transition table, so a visit costs a few word operations;
//! - indeterminate operations (no return) are tried only after every definite
//!   candidate, never placed where they would not change the state, identical
//!   ones are placed in invocation order only, and they need not be placed at
//!   all: the search succeeds once every definite operation is in;
//! - the search is an explicit stack, so it can pause after a step budget and
//!   resume, and after a success it can resume to look for a linearization
//!   ending in a *different* state (segments chain on that).

use crate::model::Model;
use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::Hash;

/// A compiled step with its place in time: `call` and `ret` are event
/// positions; `ret == None` means indeterminate. `op` indexes the partition's
/// operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed<S> {
    pub step: S,
    pub call: u64,
    pub ret: Option<u64>,
    pub op: usize,
}

const NO_STATE: u32 = u32::MAX;

/// States interned as integers, with the model's transitions memoized. Shared
/// by all segments of a partition, so states compare across them.
pub struct Interner<'m, M: Model> {
    model: &'m M,
    pub states: Vec<M::State>,
    ids: FxHashMap<M::State, u32>,
    transitions: FxHashMap<u64, u32>,
}

impl<'m, M: Model> Interner<'m, M> {
    pub fn new(model: &'m M) -> Self {
        Interner {
            model,
            states: Vec::new(),
            ids: FxHashMap::default(),
            transitions: FxHashMap::default(),
        }
    }

    pub fn intern(&mut self, state: M::State) -> u32 {
        if let Some(&id) = self.ids.get(&state) {
            return id;
        }
        let id = self.states.len() as u32;
        self.states.push(state.clone());
        self.ids.insert(state, id);
        id
    }

    /// The state after step number `index` (within the partition) in `state`.
    fn apply(&mut self, state: u32, index: usize, step: &M::Step) -> Option<u32> {
        let key = (u64::from(state) << 32) | index as u64;
        if let Some(&next) = self.transitions.get(&key) {
            return (next != NO_STATE).then_some(next);
        }
        let next = self
            .model
            .step(&self.states[state as usize], step)
            .map(|s| self.intern(s));
        self.transitions.insert(key, next.unwrap_or(NO_STATE));
        next
    }

    pub fn bytes(&self) -> usize {
        self.states.len() * (2 * std::mem::size_of::<M::State>() + 16) + self.transitions.len() * 24
    }
}

/// A visited configuration: which operations are linearized (a bitset stored
/// in the search's arena at `at`), and the state.
struct Config {
    hash: u64,
    state: u32,
    at: usize,
}

/// The table key of a configuration: the bitset's Zobrist hash mixed with the state.
fn config_hash(bits_hash: u64, state: u32) -> u64 {
    bits_hash ^ u64::from(state).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

struct Frame {
    node: u32,
    state: u32,
    pass: u8,
}

/// What a slice of search ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every definite operation is linearized; the segment ends in this state.
    Found(u32),
    /// No (further) linearization exists.
    Exhausted,
    /// The step budget ran out; call `run` again.
    Paused,
}

/// The deepest point a search reached: the operations linearized there, in
/// order (indexes into the segment), and the operation that could not follow.
#[derive(Clone, Debug, Default)]
pub struct Deepest {
    pub path: Vec<usize>,
    pub blocked: Option<usize>,
}

pub struct Search {
    /// Which steps have a return (are definite), by segment index.
    definite: Vec<bool>,
    /// Partition index of `steps[0]`, for the interner's transition keys.
    offset: usize,
    pub start: u32,
    // Nodes: 0 head, 1..=n calls, n+1..=2n returns, 2n+1 tail.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For an indeterminate step, the previous identical indeterminate step.
    twin: Vec<Option<u32>>,
    zobrist: Vec<u64>,
    bits: Vec<u64>,
    /// The bitsets of visited configurations, back to back: one allocation
    /// for all of them instead of one each.
    arena: Vec<u64>,
    hash: u64,
    /// Looked up by hash and compared in place, so a repeat visit allocates nothing.
    visited: hashbrown::HashTable<Config>,
    stack: Vec<Frame>,
    state: u32,
    cur: u32,
    pass: u8,
    remaining: usize,
    /// Indeterminate steps not placed: when none are, the second pass over a
    /// window has nothing to find.
    open_indeterminate: usize,
    ends: FxHashSet<u32>,
    resume: bool,
    pub steps_taken: u64,
    pub deepest: Deepest,
}

impl Search {
    pub fn new<S: Eq + Hash>(steps: &[Timed<S>], offset: usize, start: u32) -> Self {
        let n = steps.len();
        let tail = (2 * n + 1) as u32;
        let mut events: Vec<(u64, u32)> = Vec::with_capacity(2 * n);
        for (i, t) in steps.iter().enumerate() {
            events.push((t.call, i as u32 + 1));
            if let Some(ret) = t.ret {
                events.push((ret, (n + i) as u32 + 1));
            }
        }
        // At equal positions (only possible in hand-made histories) calls go first.
        events.sort_unstable_by_key(|&(at, node)| (at, node > n as u32));
        let mut next = vec![tail; 2 * n + 2];
        let mut prev = vec![0; 2 * n + 2];
        let mut last = 0u32;
        for &(_, node) in &events {
            next[last as usize] = node;
            prev[node as usize] = last;
            last = node;
        }
        next[last as usize] = tail;
        prev[tail as usize] = last;

        let mut twin = vec![None; n];
        let mut latest: FxHashMap<&S, u32> = FxHashMap::default();
        for (i, t) in steps.iter().enumerate() {
            if t.ret.is_none() {
                twin[i] = latest.insert(&t.step, i as u32);
            }
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ n as u64;
        let zobrist = (0..n)
            .map(|_| {
                // xorshift64*: fixed seed, so runs are repeatable.
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
            })
            .collect();
        let remaining = steps.iter().filter(|t| t.ret.is_some()).count();
        Search {
            definite: steps.iter().map(|t| t.ret.is_some()).collect(),
            offset,
            start,
            next,
            prev,
            twin,
            zobrist,
            bits: vec![0; n.div_ceil(64)],
            arena: Vec::new(),
            hash: 0,
            visited: hashbrown::HashTable::new(),
            stack: Vec::new(),
            state: start,
            cur: next_of_head(&events, tail),
            pass: 1,
            remaining,
            open_indeterminate: n - remaining,
            ends: FxHashSet::default(),
            resume: false,
            steps_taken: 0,
            deepest: Deepest::default(),
        }
    }

    pub fn bytes(&self) -> usize {
        self.arena.capacity() * 8 + self.visited.capacity() * 24 + self.next.len() * 8
    }

    fn is_set(&self, i: usize) -> bool {
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.bits[i / 64] ^= 1 << (i % 64);
        self.hash ^= self.zobrist[i];
    }

    fn lift(&mut self, call: u32, ret: Option<u32>) {
        for node in std::iter::once(call).chain(ret) {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = n;
            self.prev[n as usize] = p;
        }
    }

    fn unlift(&mut self, call: u32, ret: Option<u32>) {
        for node in ret.into_iter().chain(std::iter::once(call)) {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = node;
            self.prev[n as usize] = node;
        }
    }

    fn return_node(&self, i: usize) -> Option<u32> {
        self.definite[i].then(|| (self.definite.len() + i) as u32 + 1)
    }

    /// Searches for up to `budget` steps.
    /// `steps` is the segment this search was made for.
    pub fn run<M: Model>(
        &mut self,
        steps: &[Timed<M::Step>],
        interner: &mut Interner<'_, M>,
        budget: u64,
    ) -> Progress {
        let n = steps.len() as u32;
        if std::mem::take(&mut self.resume) && !self.backtrack() {
            return Progress::Exhausted;
        }
        for _ in 0..budget {
            self.steps_taken += 1;
            if self.remaining == 0 {
                if self.ends.insert(self.state) {
                    self.resume = true;
                    return Progress::Found(self.state);
                }
                // Ends where an earlier linearization ended: nothing new here.
                if !self.backtrack() {
                    return Progress::Exhausted;
                }
                continue;
            }
            let node = self.cur;
            if node == 0 || node > n {
                // A return (or the end) closes the window of candidates.
                if self.pass == 1 && self.open_indeterminate > 0 {
                    self.pass = 2;
                    self.cur = self.next[0];
                } else if !self.backtrack() {
                    return Progress::Exhausted;
                }
                continue;
            }
            let i = (node - 1) as usize;
            self.cur = self.next[node as usize];
            let indeterminate = !self.definite[i];
            if indeterminate != (self.pass == 2)
                || indeterminate && self.twin[i].is_some_and(|t| !self.is_set(t as usize))
            {
                continue;
            }
            let Some(state) = interner.apply(self.state, self.offset + i, &steps[i].step) else {
                continue;
            };
            if indeterminate && state == self.state {
                continue;
            }
            self.flip(i);
            let hash = config_hash(self.hash, state);
            let (bits, arena) = (&self.bits, &mut self.arena);
            let same = |c: &Config| {
                c.hash == hash && c.state == state && arena[c.at..c.at + bits.len()] == bits[..]
            };
            match self.visited.entry(hash, same, |c| c.hash) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    self.flip(i);
                    continue;
                }
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(Config {
                        hash,
                        state,
                        at: arena.len(),
                    });
                    arena.extend_from_slice(bits);
                }
            }
            self.stack.push(Frame {
                node,
                state: self.state,
                pass: self.pass,
            });
            self.state = state;
            self.lift(node, self.return_node(i));
            self.remaining -= usize::from(!indeterminate);
            self.open_indeterminate -= usize::from(indeterminate);
            self.cur = self.next[0];
            self.pass = 1;
        }
        Progress::Paused
    }

    /// Undoes the last placement; false when there is none left.
    fn backtrack(&mut self) -> bool {
        // Leaving a complete linearization (to look for another end state) is
        // not getting stuck.
        let deeper = self.stack.len() > self.deepest.path.len() || self.deepest.blocked.is_none();
        if self.remaining > 0 && deeper {
            self.record_deepest();
        }
        let Some(frame) = self.stack.pop() else {
            return false;
        };
        let i = (frame.node - 1) as usize;
        self.unlift(frame.node, self.return_node(i));
        self.flip(i);
        self.remaining += usize::from(self.definite[i]);
        self.open_indeterminate += usize::from(!self.definite[i]);
        self.state = frame.state;
        self.pass = frame.pass;
        self.cur = self.next[frame.node as usize];
        true
    }

    /// The steps linearized so far, in order (segment indexes).
    pub fn path(&self) -> Vec<usize> {
        self.stack.iter().map(|f| (f.node - 1) as usize).collect()
    }

    fn record_deepest(&mut self) {
        let n = self.definite.len() as u32;
        self.deepest.path = self.path();
        let mut node = self.next[0];
        while node != 0 && node <= n {
            node = self.next[node as usize];
        }
        self.deepest.blocked = (node > n && node <= 2 * n).then(|| (node - n - 1) as usize);
    }
}

fn next_of_head(events: &[(u64, u32)], tail: u32) -> u32 {
    events.first().map_or(tail, |&(_, node)| node)
}
