//! Durable storage for openraft in two redb files: `log.redb` (log entries, vote, committed index)
//! and `sm.redb` (the key-value state machine, its `last_applied`, membership and snapshot).
//!
//! Two files rather than one so that appending to the log and applying to the state machine, which
//! openraft runs in different tasks, never wait for each other (redb has one writer per file).
//!
//! ## What is durable when
//!
//! - **Log entries, vote, truncation, purge** are redb commits with `Durability::Immediate` (one
//!   fdatasync) before the call returns or the flush callback fires. One writer thread owns
//!   `log.redb` and executes these writes in the order openraft issued them.
//! - **The committed index** goes through the same writer queue and is fsynced before the writer
//!   publishes it as *durably committed*. It shares a commit with the appends queued with it. On
//!   its own, a committed index of entries this node proposed (it is the leader, clients wait) is
//!   written at once; one of another node's entries (a follower's, nobody waits for it) waits up
//!   to [`LONE_COMMIT_DELAY`] for the next append to share that one's commit, so a follower
//!   fsyncs once per append rather than twice.
//! - **The state machine** applies each batch in a redb commit with `Durability::None` (no fsync),
//!   and makes it durable with an `Immediate` commit at most once per
//!   [`SM_DURABLE_INTERVAL`], when building or installing a snapshot, before a log purge that
//!   needs it, and at shutdown. A `None` commit is crash-consistent: after a crash redb reverts to
//!   the last durable commit, and since `last_applied` is written in the same transaction as the
//!   data it covers, the state machine is never half-applied — it is only older.
//!
//! ## Why acknowledged state survives a crash (openraft #1511)
//!
//! openraft lets a leader that restarts quickly keep its leadership without a new election (and
//! without a new no-op entry), so a linearizable read right after a restart only waits for the
//! state machine to reach the committed index the node *recovered*. If that recovered index were
//! older than what clients had already seen, the restarted leader would serve a state older than
//! an acknowledged write or an earlier read (#1511). raftkv rules this out by ordering:
//!
//! 1. `apply` of a batch first waits until the committed index covering the whole batch is
//!    fsynced (the [`CommitGate`]). Every state a client can observe — a write's or CAS's answer
//!    is sent after its entry is applied, a read looks at applied state — is therefore covered by
//!    a committed index that is already on disk.
//! 2. At start-up openraft reads that committed index (`read_committed`), reads `last_applied`
//!    from the state machine's last durable commit, and re-applies the log entries in between
//!    before the node serves anything (`Raft::new` does it). So the recovered state machine is at
//!    least as new as anything acknowledged or read before the crash.
//! 3. Re-applying needs the entries: the log is only purged up to the last snapshot, which is
//!    built with an `Immediate` commit, and `purge` additionally makes the state machine durable
//!    first whenever its durable `last_applied` is below the purge point. So entries above the
//!    durable `last_applied` are never deleted.
//! 4. The committed index written is never ahead of the log on disk: openraft only commits
//!    entries it has already submitted to `append`, the writer executes the queue in order, and
//!    the committed index is written in the same or a later redb commit than those entries.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftLogReader,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{oneshot, watch};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of raftkv.
    pub TypeConfig:
        D = Request,
        R = Vec<Response>,
        Node = BasicNode,
);

/// State-machine commands replicated as one log entry: the leader batches the writes that arrive
/// while the previous entry is in flight, so that they share one round of fsyncs and RPCs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Unique per proposing node; lets the `lost-write` bug recognise its own entry when it is
    /// appended locally.
    pub id: u64,
    /// Applied in order, in the same transaction; the entry's response has one element per op.
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: Value,
    },
    /// Swap when the current value equals `from`.
    Cas {
        key: String,
        from: Value,
        to: Value,
    },
    /// Consul's `PUT ?cas=INDEX`: write when the key's `modify` index is `index`, or, for
    /// `index` 0, when the key is absent.
    CasIndex {
        key: String,
        value: Value,
        index: u64,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Cas { key, .. } | Op::CasIndex { key, .. } => key,
        }
    }

    /// What applying this op to a key holding `current` writes, with its response; `Err` with
    /// the response when it writes nothing.
    pub fn decide(&self, current: Option<&Stored>) -> Result<(&Value, Response), Response> {
        match (self, current) {
            (Op::Put { value, .. }, _) => Ok((value, Response::Done)),
            (Op::Cas { .. }, None) => Err(Response::NotFound),
            (Op::Cas { from, to, .. }, Some(cur)) if cur.value == *from => {
                Ok((to, Response::Swapped))
            }
            (Op::Cas { .. }, Some(cur)) => Err(Response::CompareFailed {
                current: cur.value.clone(),
            }),
            (Op::CasIndex { value, index, .. }, cur) if cur.map_or(0, |c| c.modify) == *index => {
                Ok((value, Response::Done))
            }
            (Op::CasIndex { .. }, _) => Err(Response::IndexChanged),
        }
    }
}

/// A key's value with Consul's indexes: the log indexes of the entries that created it and
/// that last changed it. Writing the value a key already has changes nothing, as in Consul.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub value: Value,
    pub create: u64,
    pub modify: u64,
}

/// The result of applying one [`Op`]. An entry's response lists them in the order of its ops
/// (none for a blank or membership entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Response {
    /// A put.
    Done,
    Swapped,
    CompareFailed {
        current: Value,
    },
    NotFound,
    /// A `CasIndex` whose index did not match: nothing was written.
    IndexChanged,
}

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";
const SNAPSHOT: &str = "snapshot";

type SError = StorageError<NodeId>;

/// Any failure inside a storage closure (redb, serde_json, a panicked blocking task).
#[derive(Debug)]
pub struct DbError(AnyError);

impl<E: std::error::Error + 'static> From<E> for DbError {
    fn from(e: E) -> Self {
        DbError(AnyError::new(&e))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

fn storage_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> impl FnOnce(DbError) -> SError {
    move |e| StorageIOError::new(subject, verb, e.0).into()
}

/// Runs redb writes (which fsync) off the async worker threads: with two cores, a blocked worker
/// would stall the HTTP and Raft RPC handlers for the duration of the fsync.
async fn blocking<T, F>(subject: ErrorSubject<NodeId>, verb: ErrorVerb, f: F) -> Result<T, SError>
where
    F: FnOnce() -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(DbError::from)
        .and_then(|r| r)
        .map_err(storage_err(subject, verb))
}

fn get_json<T: for<'de> Deserialize<'de>>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, DbError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match table.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

/// How often, at most, the state machine's non-durable applies are made durable (one fsync).
pub const SM_DURABLE_INTERVAL: Duration = Duration::from_secs(1);

/// How long, at most, a follower's committed index queued without an append waits for one to
/// share its commit (module docs).
pub const LONE_COMMIT_DELAY: Duration = Duration::from_millis(100);

/// The highest log index whose commit is durable in `log.redb` (`None`: none yet). The writer
/// thread publishes it after the fsync; `apply` waits on it (see the module docs).
pub type CommitGate = watch::Receiver<Option<u64>>;

/// Waiters of the `lost-write` bug: request id → notified once the entry is durable in the local
/// log, regardless of whether any follower has it.
pub type AppendWaiters = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// Opens (creating if needed) both databases in `dir` for node `id`.
pub fn open(dir: &Path, id: NodeId) -> Result<(LogStore, StateMachine), DbError> {
    let log_db = Arc::new(Database::create(dir.join("log.redb"))?);
    let sm_db = Arc::new(Database::create(dir.join("sm.redb"))?);
    // Create the tables up front so that read transactions never see them missing.
    let txn = log_db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(LOG_META)?;
    txn.commit()?;
    // An `Immediate` commit: whatever is in sm.redb now is durable from here on.
    let txn = sm_db.begin_write()?;
    txn.open_table(KV)?;
    txn.open_table(SM_META)?;
    txn.commit()?;
    let durable_applied: Option<LogId<NodeId>> = get_json(&sm_db, SM_META, APPLIED)?;
    let sm_shared = Arc::new(SmShared {
        db: sm_db,
        durable_applied: Mutex::new(durable_applied.map(|l| l.index)),
        last_durable: Mutex::new(Instant::now()),
    });
    let committed: Option<Option<LogId<NodeId>>> = get_json(&log_db, LOG_META, COMMITTED)?;
    let (gate_tx, gate) = watch::channel(committed.flatten().map(|c| c.index));
    let pending = Pending::default();
    let waiters = AppendWaiters::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = Writer {
        db: log_db.clone(),
        pending: pending.clone(),
        waiters: waiters.clone(),
        gate: gate_tx,
    };
    std::thread::Builder::new()
        .name("raftkv-log-writer".into())
        .spawn(move || writer.run(rx))?;
    let log = LogStore {
        id,
        db: log_db,
        pending,
        waiters,
        writer: tx,
        sm: sm_shared.clone(),
    };
    let sm = StateMachine {
        shared: sm_shared,
        gate: Some(gate),
    };
    Ok((log, sm))
}

/// Entries handed to `append` whose redb commit has not finished yet. `append` returns once the
/// write is queued, and openraft may ask for what it appended (log state, entry reads) before the
/// fsync is done, so readers look here first.
type Pending = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

/// A write to `log.redb` other than an append (or a read that must see every queued write); it
/// reports its own result.
type LogWrite = Box<dyn FnOnce(&Database) + Send>;

/// `last_applied` and the membership, as openraft's `applied_state` returns them.
type AppliedState = (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>);

/// A log write, executed in submission order by the writer thread.
enum WriteOp {
    Append {
        entries: Vec<Entry<TypeConfig>>,
        callback: LogFlushed<TypeConfig>,
    },
    /// `save_committed`: written in the same commit as the appends queued around it.
    Committed {
        committed: Option<LogId<NodeId>>,
        /// The leader's: written at once even without an append (module docs).
        urgent: bool,
    },
    Other(LogWrite),
}

/// The only thread that writes `log.redb`. `append` and `save_committed` return as soon as their
/// write is queued, and appends and committed indexes queued behind one another share one commit
/// (one fsync). Everything else (vote, truncate, purge) waits for its turn in the same queue, which
/// keeps all log writes in the order openraft issued them.
struct Writer {
    db: Arc<Database>,
    pending: Pending,
    waiters: AppendWaiters,
    /// Publishes the durable committed index.
    gate: watch::Sender<Option<u64>>,
}

impl Writer {
    fn run(self, rx: std::sync::mpsc::Receiver<WriteOp>) {
        let mut next = rx.recv().ok();
        while let Some(op) = next.take() {
            match op {
                WriteOp::Other(write) => {
                    write(&self.db);
                    next = rx.recv().ok();
                }
                first => {
                    let mut batch = Vec::new();
                    let mut committed = None;
                    let mut urgent = false;
                    let mut op = Some(first);
                    loop {
                        match op.take() {
                            Some(WriteOp::Append { entries, callback }) => {
                                batch.push((entries, callback))
                            }
                            // openraft's committed index only grows: the last one queued wins.
                            Some(WriteOp::Committed {
                                committed: c,
                                urgent: u,
                            }) => {
                                committed = Some(c);
                                urgent |= u;
                            }
                            Some(other) => {
                                next = Some(other);
                                break;
                            }
                            // A follower's lone committed index waits for an append.
                            None if batch.is_empty() && !urgent => {
                                match rx.recv_timeout(LONE_COMMIT_DELAY) {
                                    Ok(o) => {
                                        op = Some(o);
                                        continue;
                                    }
                                    Err(_) => break,
                                }
                            }
                            None => break,
                        }
                        op = rx.try_recv().ok();
                    }
                    self.append(batch, committed);
                    if next.is_none() {
                        next = rx.recv().ok();
                    }
                }
            }
        }
    }

    /// One `Immediate` commit (one fsync) of the batched entries and the latest queued committed
    /// index (`Some(c)` when one was queued).
    fn append(
        &self,
        batch: Vec<(Vec<Entry<TypeConfig>>, LogFlushed<TypeConfig>)>,
        committed: Option<Option<LogId<NodeId>>>,
    ) {
        let write = || -> Result<(), DbError> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for e in batch.iter().flat_map(|(entries, _)| entries) {
                    table.insert(e.log_id.index, serde_json::to_vec(e)?.as_slice())?;
                }
            }
            if let Some(c) = &committed {
                txn.open_table(LOG_META)?
                    .insert(COMMITTED, serde_json::to_vec(c)?.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        };
        let result = write();
        match (&result, committed) {
            (Ok(()), Some(Some(c))) => {
                // Durable now: let `apply` through up to this index.
                self.gate.send_if_modified(|d| {
                    let newer = *d < Some(c.index);
                    if newer {
                        *d = Some(c.index);
                    }
                    newer
                });
            }
            (Err(e), Some(_)) => {
                // Nothing past the old durable index is applied (or acknowledged); requests
                // waiting for it time out with an unknown outcome.
                tracing::error!("cannot persist the committed index: {e}");
            }
            _ => {}
        }
        // Only after the commit: a reader that misses an entry in `pending` finds it in redb.
        let mut ids = Vec::new();
        {
            let mut pending = lock(&self.pending);
            for e in batch.iter().flat_map(|(entries, _)| entries) {
                if pending.get(&e.log_id.index).map(|p| p.log_id) == Some(e.log_id) {
                    pending.remove(&e.log_id.index);
                }
                if let EntryPayload::Normal(req) = &e.payload {
                    ids.push(req.id);
                }
            }
        }
        for (_, callback) in batch {
            callback.log_io_completed(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
        }
        if result.is_ok() {
            let mut waiters = lock(&self.waiters);
            for id in ids {
                if let Some(tx) = waiters.remove(&id) {
                    let _ = tx.send(());
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone)]
pub struct LogStore {
    /// This node.
    id: NodeId,
    db: Arc<Database>,
    pending: Pending,
    waiters: AppendWaiters,
    writer: std::sync::mpsc::Sender<WriteOp>,
    /// The state machine, to make it durable before a purge that would need it.
    sm: Arc<SmShared>,
}

impl LogStore {
    pub fn append_waiters(&self) -> AppendWaiters {
        self.waiters.clone()
    }

    /// Runs `write` on the writer thread after every write queued before it, and waits for its
    /// result.
    async fn write<T: Send + 'static>(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        write: impl FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, SError> {
        let (done, rx) = oneshot::channel();
        let op = WriteOp::Other(Box::new(move |db: &Database| {
            let _ = done.send(write(db));
        }));
        let result = match self.writer.send(op) {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err(DbError(AnyError::error("log writer stopped")))),
            Err(_) => Err(DbError(AnyError::error("log writer stopped"))),
        };
        result.map_err(storage_err(subject, verb))
    }

    async fn put_meta<T: Serialize>(
        &self,
        subject: ErrorSubject<NodeId>,
        key: &'static str,
        value: &T,
    ) -> Result<(), SError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| storage_err(subject.clone(), ErrorVerb::Write)(e.into()))?;
        self.write(subject, ErrorVerb::Write, move |db| {
            // Default durability: fsynced before `commit` returns.
            let txn = db.begin_write()?;
            txn.open_table(LOG_META)?.insert(key, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        // `pending` before redb: see `Writer::append`.
        let mut entries: BTreeMap<u64, Entry<TypeConfig>> = lock(&self.pending)
            .range(bounds)
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        let mut read = || -> Result<(), DbError> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            for row in table.range(bounds)? {
                let (k, v) = row?;
                if let std::collections::btree_map::Entry::Vacant(slot) = entries.entry(k.value()) {
                    slot.insert(serde_json::from_slice(v.value())?);
                }
            }
            Ok(())
        };
        read().map_err(storage_err(ErrorSubject::Logs, ErrorVerb::Read))?;
        Ok(entries.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SError> {
        let pending_last = lock(&self.pending).values().next_back().map(|e| e.log_id);
        let read = || -> Result<LogState<TypeConfig>, DbError> {
            let purged: Option<LogId<NodeId>> = get_json(&self.db, LOG_META, PURGED)?;
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let stored = match table.last()? {
                Some((_, v)) => {
                    let e: Entry<TypeConfig> = serde_json::from_slice(v.value())?;
                    Some(e.log_id)
                }
                None => None,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: pending_last.max(stored).or(purged),
            })
        };
        read().map_err(storage_err(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SError> {
        self.put_meta(ErrorSubject::Vote, VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SError> {
        get_json(&self.db, LOG_META, VOTE).map_err(storage_err(ErrorSubject::Vote, ErrorVerb::Read))
    }

    /// Queued to the writer thread and returns at once (RaftCore awaits this on every commit and
    /// would otherwise stall for an fsync). The writer fsyncs it together with the appends queued
    /// around it (a follower's waits for the next append, see the module docs) and then opens the
    /// [`CommitGate`]: `apply` waits for that, so nothing is applied, read or acknowledged before
    /// the committed index covering it is durable.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SError> {
        // Entries this node proposed: it leads, and clients wait for them to be applied.
        let urgent = committed.is_some_and(|c| c.leader_id.node_id == self.id);
        self.writer
            .send(WriteOp::Committed { committed, urgent })
            .map_err(|_| {
                storage_err(ErrorSubject::Store, ErrorVerb::Write)(DbError(AnyError::error(
                    "log writer stopped",
                )))
            })
    }

    /// Read on the writer thread, behind every queued write, so that it sees the last
    /// `save_committed` even while that one waits for an append.
    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SError> {
        let c: Option<Option<LogId<NodeId>>> = self
            .write(ErrorSubject::Store, ErrorVerb::Read, |db| {
                get_json(db, LOG_META, COMMITTED)
            })
            .await?;
        Ok(c.flatten())
    }

    /// Queues the entries and returns; `callback` fires once they are fsynced.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), SError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        {
            let mut pending = lock(&self.pending);
            for e in &entries {
                pending.insert(e.log_id.index, e.clone());
            }
        }
        self.writer
            .send(WriteOp::Append { entries, callback })
            .map_err(|_| {
                storage_err(ErrorSubject::Logs, ErrorVerb::Write)(DbError(AnyError::error(
                    "log writer stopped",
                )))
            })
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SError> {
        let pending = self.pending.clone();
        self.write(ErrorSubject::Logs, ErrorVerb::Delete, move |db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in(log_id.index.., |_, _| false)?;
            txn.commit()?;
            lock(&pending).retain(|i, _| *i < log_id.index);
            Ok(())
        })
        .await
    }

    /// Never deletes an entry the state machine might have to re-apply after a crash: openraft
    /// purges only up to its last snapshot (built with a durable commit), and if the durable
    /// `last_applied` is still below `log_id`, the state machine is made durable first.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SError> {
        if *lock(&self.sm.durable_applied) < Some(log_id.index) {
            let sm = self.sm.clone();
            blocking(ErrorSubject::StateMachine, ErrorVerb::Write, move || {
                sm.make_durable()
            })
            .await?;
        }
        let bytes = serde_json::to_vec(&log_id)
            .map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete)(e.into()))?;
        self.write(ErrorSubject::Logs, ErrorVerb::Delete, move |db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG_META)?.insert(PURGED, bytes.as_slice())?;
            txn.open_table(LOG)?
                .retain_in(..=log_id.index, |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// `sm.redb` and how far it is durable.
struct SmShared {
    db: Arc<Database>,
    /// `last_applied` index as of the last `Immediate` commit.
    durable_applied: Mutex<Option<u64>>,
    last_durable: Mutex<Instant>,
}

impl SmShared {
    /// One `Immediate` commit, which also makes every earlier `Durability::None` commit durable.
    fn make_durable(&self) -> Result<(), DbError> {
        let txn = self.db.begin_write()?;
        let applied: Option<LogId<NodeId>> = match txn.open_table(SM_META)?.get(APPLIED)? {
            Some(v) => serde_json::from_slice(v.value())?,
            None => None,
        };
        txn.commit()?;
        self.durable(applied.map(|l| l.index));
        Ok(())
    }

    /// Applies `entries` (ending with `last`) in one redb transaction; `Durability::None` unless
    /// `durable`.
    fn apply_batch(
        &self,
        entries: &[Entry<TypeConfig>],
        last: LogId<NodeId>,
        durable: bool,
    ) -> Result<Vec<Vec<Response>>, DbError> {
        let mut txn = self.db.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None)?;
        }
        let mut out = Vec::with_capacity(entries.len());
        {
            let mut kv = txn.open_table(KV)?;
            let mut meta = txn.open_table(SM_META)?;
            for e in entries {
                out.push(match &e.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(req) => req
                        .ops
                        .iter()
                        .map(|op| apply_op(&mut kv, op, e.log_id.index))
                        .collect::<Result<_, _>>()?,
                    EntryPayload::Membership(m) => {
                        let sm = StoredMembership::new(Some(e.log_id), m.clone());
                        meta.insert(MEMBERSHIP, serde_json::to_vec(&sm)?.as_slice())?;
                        Vec::new()
                    }
                });
            }
            // Same transaction as the data: last_applied can never run ahead of (or behind) the
            // data, whichever commit is the last durable one after a crash.
            meta.insert(APPLIED, serde_json::to_vec(&Some(last))?.as_slice())?;
        }
        txn.commit()?;
        if durable {
            self.durable(Some(last.index));
        }
        Ok(out)
    }

    fn durable(&self, applied: Option<u64>) {
        *lock(&self.durable_applied) = applied;
        *lock(&self.last_durable) = Instant::now();
    }
}

/// The key-value state machine. Clones share the database: the HTTP layer keeps one to read.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<SmShared>,
    /// `None` only in the storage conformance suite, which applies entries without committing
    /// them first.
    gate: Option<CommitGate>,
}

impl StateMachine {
    /// Reads a key from the locally applied state (no consensus round: callers decide when that
    /// is safe).
    pub fn get(&self, key: &str) -> Result<Option<Stored>, DbError> {
        get_json(&self.shared.db, KV, key)
    }

    /// Makes everything applied so far durable (one fsync); called at shutdown.
    pub fn sync(&self) -> Result<(), DbError> {
        self.shared.make_durable()
    }

    fn applied(&self) -> Result<AppliedState, DbError> {
        let db = &self.shared.db;
        let applied: Option<LogId<NodeId>> = get_json(db, SM_META, APPLIED)?;
        let membership = get_json(db, SM_META, MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }
}

/// Applies `op`, the entry at log `index`.
fn apply_op(kv: &mut redb::Table<&str, &[u8]>, op: &Op, index: u64) -> Result<Response, DbError> {
    let key = op.key();
    let current: Option<Stored> = match kv.get(key)? {
        Some(v) => Some(serde_json::from_slice(v.value())?),
        None => None,
    };
    let (value, response) = match op.decide(current.as_ref()) {
        Ok(write) => write,
        Err(response) => return Ok(response),
    };
    let stored = match current {
        Some(cur) if cur.value == *value => return Ok(response),
        Some(cur) => Stored {
            value: value.clone(),
            create: cur.create,
            modify: index,
        },
        None => Stored {
            value: value.clone(),
            create: index,
            modify: index,
        },
    };
    kv.insert(key, serde_json::to_vec(&stored)?.as_slice())?;
    Ok(response)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<AppliedState, SError> {
        self.applied()
            .map_err(storage_err(ErrorSubject::StateMachine, ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Response>>, SError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        if let Some(gate) = &mut self.gate {
            // The committed index covering this batch must be on disk first (module docs).
            gate.wait_for(|durable| *durable >= Some(last.index))
                .await
                .map_err(|e| {
                    storage_err(ErrorSubject::StateMachine, ErrorVerb::Write)(DbError::from(e))
                })?;
        }
        // No fsync per batch (crash-consistent, see the module docs), but one at least every
        // SM_DURABLE_INTERVAL so that redb can reclaim pages and restarts re-apply little.
        let durable = lock(&self.shared.last_durable).elapsed() >= SM_DURABLE_INTERVAL;
        if durable {
            // The fsync runs off the async workers (see `blocking`).
            let shared = self.shared.clone();
            blocking(ErrorSubject::StateMachine, ErrorVerb::Write, move || {
                shared.apply_batch(&entries, last, true)
            })
            .await
        } else {
            // No fsync: cheaper inline than a hop to the blocking pool.
            self.shared
                .apply_batch(&entries, last, false)
                .map_err(storage_err(ErrorSubject::StateMachine, ErrorVerb::Write))
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let shared = self.shared.clone();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        blocking(subject, ErrorVerb::Write, move || {
            let db = &shared.db;
            let pairs: Vec<(String, Stored)> = serde_json::from_slice(&stored.data)?;
            let txn = db.begin_write()?;
            txn.delete_table(KV)?;
            {
                let mut kv = txn.open_table(KV)?;
                for (k, v) in &pairs {
                    kv.insert(k.as_str(), serde_json::to_vec(v)?.as_slice())?;
                }
                let mut m = txn.open_table(SM_META)?;
                m.insert(
                    APPLIED,
                    serde_json::to_vec(&stored.meta.last_log_id)?.as_slice(),
                )?;
                let membership = serde_json::to_vec(&stored.meta.last_membership)?;
                m.insert(MEMBERSHIP, membership.as_slice())?;
                m.insert(SNAPSHOT, serde_json::to_vec(&stored)?.as_slice())?;
            }
            // Default durability (`Immediate`): openraft may purge the log up to the snapshot next.
            txn.commit()?;
            shared.durable(stored.meta.last_log_id.map(|l| l.index));
            Ok(())
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SError> {
        let stored: Option<StoredSnapshot> = get_json(&self.shared.db, SM_META, SNAPSHOT)
            .map_err(storage_err(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SError> {
        let shared = self.shared.clone();
        let stored = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            // One write transaction both reads a consistent state and stores the snapshot. Its
            // default durability (`Immediate`) also makes all earlier applies durable, so the log
            // may be purged up to the snapshot.
            let txn = shared.db.begin_write()?;
            let stored = {
                let kv = txn.open_table(KV)?;
                let mut meta = txn.open_table(SM_META)?;
                let mut pairs: Vec<(String, Stored)> = Vec::new();
                for row in kv.iter()? {
                    let (k, v) = row?;
                    pairs.push((k.value().to_string(), serde_json::from_slice(v.value())?));
                }
                let read = |key| -> Result<Option<Vec<u8>>, DbError> {
                    Ok(meta.get(key)?.map(|v| v.value().to_vec()))
                };
                let applied: Option<LogId<NodeId>> = match read(APPLIED)? {
                    Some(b) => serde_json::from_slice(&b)?,
                    None => None,
                };
                let membership: StoredMembership<NodeId, BasicNode> = match read(MEMBERSHIP)? {
                    Some(b) => serde_json::from_slice(&b)?,
                    None => StoredMembership::default(),
                };
                let snapshot_id = match applied {
                    Some(id) => format!("{}-{}-{}", id.leader_id, id.index, unique_id()),
                    None => format!("none-{}", unique_id()),
                };
                let stored = StoredSnapshot {
                    meta: SnapshotMeta {
                        last_log_id: applied,
                        last_membership: membership,
                        snapshot_id,
                    },
                    data: serde_json::to_vec(&pairs)?,
                };
                meta.insert(SNAPSHOT, serde_json::to_vec(&stored)?.as_slice())?;
                stored
            };
            txn.commit()?;
            shared.durable(stored.meta.last_log_id.map(|l| l.index));
            Ok(stored)
        })
        .await?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

/// A process-unique, time-seeded id (request ids and snapshot ids).
pub fn unique_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // The seed makes ids differ across restarts; the counter makes them differ within a run.
    let _ = NEXT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), SError> {
            let dir = tempfile::tempdir()
                .map_err(|e| storage_err(ErrorSubject::Store, ErrorVerb::Write)(e.into()))?;
            let (log, mut sm) =
                open(dir.path(), 1).map_err(storage_err(ErrorSubject::Store, ErrorVerb::Write))?;
            // The suite applies entries it never commits.
            sm.gate = None;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite.
    #[test]
    fn openraft_storage_suite() -> Result<(), Box<SError>> {
        Suite::test_all(Builder).map_err(Box::new)
    }
}
