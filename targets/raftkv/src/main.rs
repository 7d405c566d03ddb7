//! # raftkv — Splitbrain's bundled system under test
//!
//! A small replicated key-value store: [openraft] 0.9 for consensus, [redb] for durable storage,
//! an axum HTTP/JSON API. It is correct by default (linearizable reads, writes and CAS) and has
//! switches that turn on known bugs, so that the harness can show it catches each anomaly.
//!
//! ## Running a node
//!
//! ```text
//! raftkv --id 1 --listen 127.0.0.1:7001 \
//!        --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//!        --data-dir /var/lib/raftkv/1 [--log-file FILE] [--election-timeout-ms 300-600] \
//!        [--heartbeat-ms 50] [--request-timeout-ms 3000] [--bug NAME]... [--acl-token T] \
//!        [--worker-threads 1]
//! ```
//!
//! The client API and the Raft RPCs share the `--listen` port. On the first start of a fresh
//! cluster the member with the lowest id writes the initial membership (from `--cluster`); every
//! later start recovers from `--data-dir` and never initializes again. Logs go to `--log-file`
//! (default `DATA_DIR/raftkv.log`; filter with `RUST_LOG`). SIGTERM or SIGINT shut down cleanly.
//! A bad flag, an unusable data directory or a port in use exit with status 1 and a message
//! saying what to fix.
//!
//! `raftkv bench` runs the load benchmark (see `raftkv bench --help`).
//!
//! ## Design
//!
//! - `store.rs`: the log (entries, vote, committed index) and the state machine in two redb files.
//!   Followers fsync entries before openraft is told they are stored, and votes are fsynced
//!   before they count; one writer thread owns the log file, so queued appends and committed
//!   indexes share one fsync while openraft keeps working. The leader's own entries are
//!   replicated before its fsync and written together with their committed index, and a batch
//!   is applied only once the committed index covering it is durable, so nothing is
//!   acknowledged or read before a quorum, the leader included, has it on disk (openraft #1511).
//!   A node that led starts in the next term, so a term's log ids are never reused. The state
//!   machine commits each batch without an fsync (crash-consistent: `last_applied` is in the
//!   same redb transaction as the data) and fsyncs at most once a second, at snapshots, before
//!   log purges and at shutdown; after a crash openraft re-applies the committed entries past
//!   its durable `last_applied`. The module docs of `store.rs` give the full argument.
//!   openraft's storage conformance suite runs against the store as a unit test.
//! - `network.rs`: Raft RPCs as JSON over HTTP (reqwest); a leader announces only the commits
//!   its own disk backs.
//! - `api.rs`: the HTTP server. Writes and CAS are ops in log entries applied by the state
//!   machine; the writes that arrive while the leader's previous entry is in flight share the
//!   next entry (one append, one fsync per node, one commit for all of them). Reads use
//!   openraft's `ensure_linearizable` (ReadIndex: a heartbeat round to a quorum, then wait until
//!   that index is applied); concurrent reads share one such round, each round serving only
//!   reads that arrived before it started. Any node accepts any request and proxies it to the
//!   leader once; while there is no leader, a request waits for one until its deadline.
//! - `consul.rs`: the subset of Consul's KV HTTP API raftkv also serves (`/v1/kv/{key}` with
//!   `?cas`, `?consistent`, `?stale`; `--acl-token`), documented there; Splitbrain tests its
//!   Consul client against it.
//! - `bench.rs`: the load generator behind `raftkv bench`.
//!
//! ## HTTP API
//!
//! Keys are one URL path segment; values are any JSON value (integers, strings, ...). Every
//! response carries the serving node's id in the `x-raftkv-node` header, and success bodies in a
//! `node` field.
//!
//! | Request | Body | Success | Other answers |
//! |---|---|---|---|
//! | `GET /kv/{key}` | – | 200 `{"value": V, "node": id}` | 404 `not-found` |
//! | `PUT /kv/{key}` | `{"value": V}` | 200 `{"node": id}` once committed and applied | |
//! | `POST /kv/{key}/cas` | `{"from": A, "to": B}` | 200 `{"node": id}` when swapped | 409 `compare-failed` with the current value in `value`; 404 `not-found` |
//! | `GET /status` | – | 200 `{"id", "role", "term", "leader", "last_log_index", "commit_index", "applied_index"}` | |
//!
//! `POST /raft/append`, `/raft/vote` and `/raft/snapshot` are the internal Raft RPCs; `/v1/...`
//! is the Consul KV subset (`consul.rs`).
//!
//! ## Errors
//!
//! Errors are JSON `{"code": "...", "message": "...", "node": id}`. Clients should branch on
//! `code` (stable), not on the HTTP status or the message. Every request has a server-side deadline
//! (`--request-timeout-ms`, default 3000).
//!
//! | `code` | HTTP | Outcome | Meaning |
//! |---|---|---|---|
//! | `bad-request` | 400 | not applied | malformed body |
//! | `not-found` | 404 | not applied | the key does not exist (GET, CAS) |
//! | `compare-failed` | 409 | not applied | CAS: the current value (in `value`) differs from `from` |
//! | `not-leader` | 421 | not applied | a forwarded request reached a node that is not the leader (requests are forwarded at most once) |
//! | `no-leader` | 503 | not applied | no leader (or, for reads, no quorum) before the deadline; nothing was sent |
//! | `leader-unreachable` | 502 | not applied | the leader refused the forwarding connection |
//! | `timeout` | 504 | **unknown** | the deadline passed after the entry was proposed or forwarded |
//! | `leader-lost` | 503 | **unknown** | this node proposed the entry as leader, then lost the leadership before it committed |
//! | `forward-failed` | 502 | **unknown** | the request was forwarded to the leader but no answer came back |
//! | `internal` | 500 | **unknown** | storage failure or shutdown; see the node's log |
//!
//! Reads never change state, so any failed read can be recorded as failed.
//!
//! ## Bug switches (`--bug NAME`, repeatable, all off by default)
//!
//! | Name | What it does | Anomaly it produces |
//! |---|---|---|
//! | `stale-read` | every GET (also through `/v1/kv`) is served from the local state machine of whichever node receives it, without the read barrier and without forwarding | stale reads: a partitioned or lagging node (or an isolated old leader) returns values older than writes that were already acknowledged |
//! | `lost-write` | the leader answers a PUT once the entry is in its **own** log, before a quorum (or even its own disk) has it | lost writes: if that leader dies or is cut off, a new leader is elected without the entry and the acknowledged write disappears |
//! | `racy-cas` | CAS (and Consul's `PUT ?cas=`) is done by the leader's HTTP layer as read-local / compare / plain PUT instead of one state-machine operation; `--racy-cas-delay-ms` (default 0) sleeps between the read and the write to widen the window | lost updates: two concurrent CASes from the same `from` value both succeed |
//!
//! Apart from the bug switches and error codes above, nothing here is tuned for the harness.

mod api;
mod bench;
mod consul;
mod network;
mod store;

// mimalloc rather than glibc's malloc: in `raftkv bench` at one client the three nodes took 6%
// less CPU per operation (811 and 802 µs against 854 and 864), which on a small machine is
// latency the nodes do not spend waiting for a core.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::serve::ListenerExt;
use clap::{Parser, ValueEnum};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::api::Bugs;
use crate::store::NodeId;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Raft key-value store with known-bug switches (Splitbrain's system under test)",
    after_help = "`raftkv bench --help` describes the load benchmark."
)]
struct Cli {
    /// This node's id; must appear in --cluster.
    #[arg(long)]
    id: NodeId,
    /// Address for the client API and Raft RPCs, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: SocketAddr,
    /// Initial cluster: ID=HOST:PORT,... (the addresses other nodes use to reach each member).
    #[arg(long, value_parser = parse_cluster)]
    cluster: Cluster,
    /// Directory for the log and state machine (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Log file (default: DATA_DIR/raftkv.log).
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Election timeout in ms: MIN-MAX, or a base B meaning B-2B.
    #[arg(long, default_value = "300-600", value_parser = parse_election)]
    election_timeout_ms: (u64, u64),
    /// Leader heartbeat interval in ms; must be well below the election timeout.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Server-side deadline of every client request, in ms.
    #[arg(long, default_value_t = 3000)]
    request_timeout_ms: u64,
    /// Turn on a known bug (repeatable); see the crate docs for the anomaly each produces.
    #[arg(long = "bug", value_enum)]
    bugs: Vec<Bug>,
    /// With --bug racy-cas: pause between the CAS's read and its write, in ms.
    #[arg(long, default_value_t = 0)]
    racy_cas_delay_ms: u64,
    /// Require this token (header X-Consul-Token) on the Consul KV API (`/v1/kv`).
    #[arg(long)]
    acl_token: Option<String>,
    /// Async worker threads. One suits nodes that share a machine, as in a local cluster: with
    /// more, a request hops between cores more often (measured in BENCHMARKS.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: u16,
}

#[derive(Clone, Debug)]
struct Cluster(BTreeMap<NodeId, String>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Bug {
    /// Reads from the local state machine, no read barrier, no forwarding.
    StaleRead,
    /// The leader acknowledges a write once it is in its own log.
    LostWrite,
    /// CAS as read-then-write at the HTTP layer.
    RacyCas,
}

fn parse_cluster(s: &str) -> Result<Cluster, String> {
    let mut map = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("{id:?} in {part:?} is not a numeric node id"))?;
        if !addr.contains(':') {
            return Err(format!("{addr:?} in {part:?} is not HOST:PORT"));
        }
        if map.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("node id {id} appears twice"));
        }
    }
    if map.is_empty() {
        return Err("expected ID=HOST:PORT,... with at least one member".into());
    }
    Ok(Cluster(map))
}

fn parse_election(s: &str) -> Result<(u64, u64), String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("{x:?} is not a number of milliseconds"))
    };
    let (min, max) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let base = num(s)?;
            (base, base * 2)
        }
    };
    if min == 0 || max <= min {
        return Err(format!("need 0 < MIN < MAX, got {min}-{max}"));
    }
    Ok((min, max))
}

fn main() -> ExitCode {
    // `raftkv bench ...` is the load generator; everything else starts a node.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "bench") {
        return bench::main(args);
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads.into())
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => fail(msg),
    }
}

fn fail(msg: String) -> ExitCode {
    tracing::error!("{msg}");
    eprintln!("raftkv: {msg}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), String> {
    let peers = cli.cluster.0;
    if !peers.contains_key(&cli.id) {
        return Err(format!(
            "--id {} is not in --cluster (members: {:?}); add it or fix the id",
            cli.id,
            peers.keys().collect::<Vec<_>>()
        ));
    }
    if cli.heartbeat_ms * 2 > cli.election_timeout_ms.0 {
        return Err(format!(
            "--heartbeat-ms {} must be at most half the minimum election timeout ({} ms)",
            cli.heartbeat_ms, cli.election_timeout_ms.0
        ));
    }
    std::fs::create_dir_all(&cli.data_dir).map_err(|e| {
        format!(
            "cannot create --data-dir {}: {e}; choose a writable directory",
            cli.data_dir.display()
        )
    })?;
    let log_file = cli
        .log_file
        .clone()
        .unwrap_or_else(|| cli.data_dir.join("raftkv.log"));
    init_logging(&log_file)?;

    // Bind before opening storage so that a port in use is reported without touching the data.
    let listener = TcpListener::bind(cli.listen).await.map_err(|e| {
        format!(
            "cannot listen on {}: {e}; is another process using the port?",
            cli.listen
        )
    })?;
    let (log_store, sm) = store::open(&cli.data_dir, cli.id).map_err(|e| {
        format!(
            "cannot open the data in {}: {e}; check the directory is writable and not used by \
             another raftkv process",
            cli.data_dir.display()
        )
    })?;
    let waiters = log_store.append_waiters();

    let config = Config {
        cluster_name: "raftkv".into(),
        heartbeat_interval: cli.heartbeat_ms,
        election_timeout_min: cli.election_timeout_ms.0,
        election_timeout_max: cli.election_timeout_ms.1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
        snapshot_max_chunk_size: 1 << 20,
        ..Default::default()
    }
    .validate()
    .map_err(|e| format!("invalid Raft timing flags: {e}"))?;

    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        // Nothing in raftkv answers with a redirect, and a proxy relays answers as they are.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let network = network::Network::new(client.clone(), log_store.durable_log());
    let raft = Raft::new(cli.id, Arc::new(config), network, log_store, sm.clone())
        .await
        .map_err(|e| format!("cannot start Raft: {e}"))?;

    let lowest = peers.keys().next().copied();
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| format!("cannot read the Raft state: {e}"))?;
    if lowest == Some(cli.id) && !initialized {
        let members: BTreeMap<NodeId, BasicNode> = peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        tracing::info!(?members, "fresh cluster: writing the initial membership");
        raft.initialize(members)
            .await
            .map_err(|e| format!("cannot initialize the cluster: {e}"))?;
    }

    let bugs = Bugs {
        stale_read: cli.bugs.contains(&Bug::StaleRead),
        lost_write: cli.bugs.contains(&Bug::LostWrite),
        racy_cas: cli.bugs.contains(&Bug::RacyCas),
    };
    if cli.bugs.is_empty() {
        tracing::info!(id = cli.id, listen = %cli.listen, "raftkv node starting");
    } else {
        tracing::warn!(id = cli.id, listen = %cli.listen, ?bugs, "raftkv node starting WITH BUGS");
    }
    let sm_handle = sm.clone();
    let app = Arc::new(api::Node {
        id: cli.id,
        raft: raft.clone(),
        sm,
        peers,
        client,
        bugs,
        request_timeout: Duration::from_millis(cli.request_timeout_ms),
        racy_cas_delay: Duration::from_millis(cli.racy_cas_delay_ms),
        waiters,
        reads: api::Rounds::default(),
        writes: api::Rounds::default(),
        acl_token: cli.acl_token,
    });
    // Answers are small single writes: without TCP_NODELAY one could wait for the peer's ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on an incoming connection: {e}");
        }
    });
    let served = axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Err(e) = raft.shutdown().await {
        tracing::error!("Raft shutdown: {e}");
    }
    // Not needed for safety (a restart re-applies from the log), only to restart faster.
    if let Err(e) = sm_handle.sync() {
        tracing::error!("cannot make the state machine durable at shutdown: {e}");
    }
    tracing::info!("raftkv node stopped");
    served.map_err(|e| format!("HTTP server failed: {e}"))
}

fn init_logging(path: &PathBuf) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open --log-file {}: {e}; choose a writable path",
                path.display()
            )
        })?;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("raftkv=info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .init();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop this node with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
