//! The nemesis schedule: a fault every `--nemesis-interval` seconds (with
//! jitter), each healed before the next one, lasting about half the interval.
//!
//! Faults are chosen to give each known bug its chance: isolating the leader
//! lets an old leader serve stale reads and acknowledge writes a new leader
//! never sees; killing or pausing the leader forces elections mid-write. Every
//! start and stop goes into the history as a `nemesis` event: `invoke` when
//! the nemesis begins, `info` once it is done (with the error if it failed).

use crate::recorder::Recorder;
use crate::target::Target;
use checker::EventType;
use nemesis::{Fault, Grudge, LocalCluster};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The fault families `--nemesis` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Network partitions: random halves, majorities ring, bridge, isolate
    /// one node, isolate the leader.
    Partition,
    /// SIGKILL one node, the leader or a minority; restart on heal.
    Kill,
    /// SIGSTOP one node, the leader or a minority; SIGCONT on heal.
    Pause,
}

pub type Cluster = Arc<Mutex<LocalCluster>>;

/// What the schedule needs to run.
pub struct Nemesis {
    pub cluster: Cluster,
    /// Finds the leader for "the leader" faults.
    pub target: Target,
    pub addrs: Vec<SocketAddr>,
    pub http: reqwest::Client,
    pub kinds: Vec<Kind>,
    pub interval: Duration,
    pub recorder: Recorder,
    /// What is broken right now, for the progress line.
    pub now: Arc<Mutex<String>>,
}

/// How many faults of each variant were injected, e.g. `partition/isolate-leader`.
pub type FaultCounts = BTreeMap<String, u64>;

impl Nemesis {
    /// Injects faults until `until`, healing the last one by then.
    pub async fn run(self, seed: u64, until: Instant) -> Result<FaultCounts, String> {
        let mut counts = FaultCounts::new();
        if self.kinds.is_empty() {
            return Ok(counts);
        }
        // Its own stream, so that the workers' pace cannot shift the faults.
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973); // "nemesis"
        let half = self.interval / 2;
        loop {
            tokio::time::sleep_until(Instant::now() + half.mul_f64(rng.gen_range(0.5..1.5))).await;
            if Instant::now() >= until {
                return Ok(counts);
            }
            let kind = *self.kinds.choose(&mut rng).expect("not empty");
            let leader = self.target.leader(&self.http, &self.addrs).await;
            let (fault, variant) = choose(kind, self.addrs.len(), leader, &mut rng);
            *counts
                .entry(format!("{}/{variant}", fault.kind()))
                .or_default() += 1;
            let what = format!("{variant}: {}", fault.describe());
            let (start, stop) = names(kind);
            let applied = self
                .blocking(start, what.clone(), move |c| c.apply(&fault))
                .await?;
            *self.now.lock().expect("lock") = format!("fault: {what}");
            let end = Instant::now() + half.mul_f64(rng.gen_range(0.5..1.5));
            tokio::time::sleep_until(end.min(until)).await;
            self.blocking(stop, what, move |c| c.heal(&applied)).await?;
            self.now.lock().expect("lock").clear();
        }
    }

    /// Runs a blocking cluster call off the async workers, recording it.
    async fn blocking<T: Send + 'static>(
        &self,
        f: &str,
        what: String,
        call: impl FnOnce(&mut LocalCluster) -> Result<T, nemesis::Error> + Send + 'static,
    ) -> Result<T, String> {
        self.recorder
            .nemesis(EventType::Invoke, f, what.clone(), None);
        let cluster = self.cluster.clone();
        let result = tokio::task::spawn_blocking(move || call(&mut cluster.lock().expect("lock")))
            .await
            .map_err(|e| format!("the nemesis panicked: {e}"))?;
        let error = result.as_ref().err().map(ToString::to_string);
        self.recorder
            .nemesis(EventType::Info, f, what.clone(), error);
        result.map_err(|e| format!("nemesis {f} ({what}): {e}"))
    }
}

/// The history's names for starting and stopping a fault of this kind.
fn names(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Partition => ("start-partition", "stop-partition"),
        Kind::Kill => ("kill", "restart"),
        Kind::Pause => ("pause", "resume"),
    }
}

/// Picks one fault of `kind` among its variants; "the leader" falls back to
/// a random node while there is none.
fn choose(
    kind: Kind,
    n: usize,
    leader: Option<usize>,
    rng: &mut SmallRng,
) -> (Fault, &'static str) {
    let one = |rng: &mut SmallRng| rng.gen_range(0..n);
    match kind {
        Kind::Partition => {
            let variants = [
                "random-halves",
                "majorities-ring",
                "bridge",
                "isolate-one",
                "isolate-leader",
            ];
            let variant = *variants.choose(rng).expect("not empty");
            let grudge = match (variant, leader) {
                ("random-halves", _) => Grudge::random_halves(n, rng),
                ("majorities-ring", _) => Grudge::majorities_ring(n, rng),
                ("bridge", _) => Grudge::bridge(n, rng),
                ("isolate-leader", Some(leader)) => Grudge::isolate(n, leader),
                _ => Grudge::isolate(n, one(rng)),
            };
            (Fault::Partition(grudge), variant)
        }
        Kind::Kill | Kind::Pause => {
            let (variant, nodes) = match (rng.gen_range(0..3), leader) {
                (0, Some(leader)) => ("leader", vec![leader]),
                (1, _) => ("minority", nemesis::minority(n, rng)),
                _ => ("one", vec![one(rng)]),
            };
            let fault = if kind == Kind::Kill {
                Fault::Kill(nodes)
            } else {
                Fault::Pause(nodes)
            };
            (fault, variant)
        }
    }
}
