//! The workers: one Tokio task per client, each a Jepsen process that runs
//! one operation at a time until the phase ends.
//!
//! A worker records the invocation, calls its [`Client`] under the operation
//! timeout, and records the completion. When the outcome is unknown (`info`)
//! the old operation may still take effect at any later time, so the worker
//! goes on as a new process (its number plus the concurrency, as in Jepsen):
//! a process's operations never overlap.

use crate::generator::Generator;
use crate::recorder::Recorder;
use checker::{EventType, Process};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use targets::{Action, Client, Completion, Op};
use tokio::time::Instant;

/// How the workers pace themselves.
#[derive(Clone, Debug)]
pub struct Pace {
    /// Each operation is cut off after this long and recorded as `info`.
    pub op_timeout: Duration,
    /// Overall operations per second; `None` runs every worker flat out.
    pub rate: Option<f64>,
    /// Seeds each worker's stagger.
    pub seed: u64,
}

/// Live counts for the progress line and the results.
#[derive(Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.fail.load(Ordering::Relaxed)
            + self.info.load(Ordering::Relaxed)
    }

    fn count(&self, kind: EventType) {
        let counter = match kind {
            EventType::Ok => &self.ok,
            EventType::Fail => &self.fail,
            _ => &self.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs one worker per client until `until`, then waits for all of them to
/// finish their last operation. Returns the lowest process number no worker
/// used, for clients that come after.
pub async fn run<C: Client>(
    clients: Vec<C>,
    generator: Arc<Mutex<Generator>>,
    recorder: &Recorder,
    pace: &Pace,
    counts: &Arc<Counts>,
    until: Instant,
) -> u64 {
    let concurrency = clients.len() as u64;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            let worker = Worker {
                client,
                process: i as u64,
                concurrency,
                generator: generator.clone(),
                recorder: recorder.clone(),
                counts: counts.clone(),
                pace: pace.clone(),
                // Distinct, fixed streams per worker: the seed decides every delay.
                rng: SmallRng::seed_from_u64(
                    pace.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
            };
            tokio::spawn(worker.run(until))
        })
        .collect();
    let mut next_free = 0;
    for task in tasks {
        next_free = next_free.max(task.await.expect("a worker panicked") + 1);
    }
    next_free
}

struct Worker<C> {
    client: C,
    process: u64,
    concurrency: u64,
    generator: Arc<Mutex<Generator>>,
    recorder: Recorder,
    counts: Arc<Counts>,
    pace: Pace,
    rng: SmallRng,
}

impl<C: Client> Worker<C> {
    /// Returns the process number it ended as.
    async fn run(mut self, until: Instant) -> u64 {
        // Each worker's share of the rate, as the mean gap between its starts.
        let gap = self
            .pace
            .rate
            .map(|rate| Duration::from_secs_f64(self.concurrency as f64 / rate));
        let mut next_start = Instant::now();
        loop {
            if let Some(gap) = gap {
                // Jepsen's stagger: uniformly 0..2×gap, from the last start, so
                // the rate holds when operations are quick and a slow one only
                // delays its own worker.
                next_start =
                    (next_start + gap.mul_f64(self.rng.gen_range(0.0..2.0))).max(Instant::now());
                tokio::time::sleep_until(next_start).await;
            }
            if Instant::now() >= until {
                return self.process;
            }
            self.step().await;
        }
    }

    async fn step(&mut self) {
        let op = self.generator.lock().expect("generator lock").next_op();
        let outcome = perform(
            &mut self.client,
            &op,
            self.process,
            &self.recorder,
            self.pace.op_timeout,
        )
        .await;
        self.counts.count(outcome);
        if outcome == EventType::Info {
            self.process += self.concurrency;
        }
    }
}

/// Records the invocation, runs `op` under `timeout`, records the completion
/// and returns its type.
pub async fn perform<C: Client>(
    client: &mut C,
    op: &Op,
    process: u64,
    recorder: &Recorder,
    timeout: Duration,
) -> EventType {
    let process = Process::Client(process);
    let key = Some(op.key.to_string());
    recorder.record(
        EventType::Invoke,
        process,
        op.func(),
        key.clone(),
        op.input(),
        None,
    );
    let mut done = tokio::time::timeout(timeout, client.invoke(op))
        .await
        .unwrap_or_else(|_| Completion::info("timeout"));
    if op.action == Action::Read && done.kind == EventType::Info {
        // A read changes nothing: not knowing its answer is the same as failing.
        done.kind = EventType::Fail;
    }
    recorder.record(done.kind, process, op.func(), key, done.value, done.error);
    done.kind
}
