//! Durable storage for openraft in two redb files: `log.redb` (log entries, vote, committed index)
//! and `sm.redb` (the key-value state machine, its `last_applied`, membership and snapshot).
//!
//! Two files rather than one so that appending to the log and applying to the state machine, which
//! openraft runs in different tasks, never wait for each other's fsync (redb has one writer per
//! file). Every write that openraft relies on for safety is a redb commit with
//! `Durability::Immediate` (one fdatasync) before the call returns or the flush callback fires:
//! appended entries, the vote, truncation, and each applied batch. The state machine writes
//! `last_applied` in the same transaction as the data it covers, so a crash can never leave a
//! half-applied state behind (openraft #1511).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftLogReader,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of raftkv.
    pub TypeConfig:
        D = Request,
        R = Response,
        Node = BasicNode,
);

/// A state-machine command, replicated as one log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Unique per proposing node; lets the `lost-write` bug recognise its own entry when it is
    /// appended locally.
    pub id: u64,
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    Put { key: String, value: Value },
    Cas { key: String, from: Value, to: Value },
}

/// The result of applying one log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Response {
    /// A put, or an entry without a command (blank, membership).
    Done,
    Swapped,
    CompareFailed {
        current: Value,
    },
    NotFound,
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

/// Waiters of the `lost-write` bug: request id → notified once the entry is durable in the local
/// log, regardless of whether any follower has it.
pub type AppendWaiters = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// Opens (creating if needed) both databases in `dir`.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), DbError> {
    let log_db = Arc::new(Database::create(dir.join("log.redb"))?);
    let sm_db = Arc::new(Database::create(dir.join("sm.redb"))?);
    // Create the tables up front so that read transactions never see them missing.
    let txn = log_db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(LOG_META)?;
    txn.commit()?;
    let txn = sm_db.begin_write()?;
    txn.open_table(KV)?;
    txn.open_table(SM_META)?;
    txn.commit()?;
    let pending = Pending::default();
    let waiters = AppendWaiters::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = Writer {
        db: log_db.clone(),
        pending: pending.clone(),
        waiters: waiters.clone(),
    };
    std::thread::Builder::new()
        .name("raftkv-log-writer".into())
        .spawn(move || writer.run(rx))?;
    let log = LogStore {
        db: log_db,
        pending,
        waiters,
        writer: tx,
    };
    let sm = StateMachine { db: sm_db };
    Ok((log, sm))
}

/// Entries handed to `append` whose redb commit has not finished yet. Replication reads them
/// from here: openraft replicates an entry as soon as it is submitted, in parallel with the local
/// fsync.
type Pending = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

/// A log write, executed in submission order by the writer thread.
enum WriteOp {
    Append {
        entries: Vec<Entry<TypeConfig>>,
        callback: LogFlushed<TypeConfig>,
    },
    Other {
        write: Box<dyn FnOnce(&Database) -> Result<(), DbError> + Send>,
        /// `None`: nobody waits; a failure is only logged.
        done: Option<oneshot::Sender<Result<(), DbError>>>,
    },
}

/// The only thread that writes `log.redb`. `append` returns as soon as its entries are queued, so
/// openraft keeps working during the fsync, and appends queued behind one another share one
/// commit (one fsync). Everything else (vote, truncate, purge) waits for its turn in the same
/// queue, which keeps all log writes in the order openraft issued them.
struct Writer {
    db: Arc<Database>,
    pending: Pending,
    waiters: AppendWaiters,
}

impl Writer {
    fn run(self, rx: std::sync::mpsc::Receiver<WriteOp>) {
        let mut next = rx.recv().ok();
        while let Some(op) = next.take() {
            match op {
                WriteOp::Other { write, done } => {
                    let result = write(&self.db);
                    match done {
                        Some(done) => {
                            let _ = done.send(result);
                        }
                        None => {
                            if let Err(e) = result {
                                tracing::error!("log store write failed: {e}");
                            }
                        }
                    }
                    next = rx.recv().ok();
                }
                WriteOp::Append { entries, callback } => {
                    let mut batch = vec![(entries, callback)];
                    loop {
                        match rx.try_recv() {
                            Ok(WriteOp::Append { entries, callback }) => {
                                batch.push((entries, callback))
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append(batch);
                    if next.is_none() {
                        next = rx.recv().ok();
                    }
                }
            }
        }
    }

    fn append(&self, batch: Vec<(Vec<Entry<TypeConfig>>, LogFlushed<TypeConfig>)>) {
        let write = || -> Result<(), DbError> {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for e in batch.iter().flat_map(|(entries, _)| entries) {
                    table.insert(e.log_id.index, serde_json::to_vec(e)?.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        let result = write();
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
    db: Arc<Database>,
    pending: Pending,
    waiters: AppendWaiters,
    writer: std::sync::mpsc::Sender<WriteOp>,
}

impl LogStore {
    pub fn append_waiters(&self) -> AppendWaiters {
        self.waiters.clone()
    }

    /// Runs `write` on the writer thread after every write queued before it, and waits for it.
    async fn write(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        write: impl FnOnce(&Database) -> Result<(), DbError> + Send + 'static,
    ) -> Result<(), SError> {
        let (done, rx) = oneshot::channel();
        let op = WriteOp::Other {
            write: Box::new(write),
            done: Some(done),
        };
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

    /// Not fsynced on its own: the next log append makes it durable, and before any write is
    /// acknowledged the state machine has durably recorded `last_applied`, which never exceeds
    /// the committed index. A lost (older) committed index only means less is re-applied at
    /// start-up; it can never be ahead of what was really committed.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SError> {
        // Queued without waiting: RaftCore calls this on every commit and would otherwise stall
        // behind the append fsync ahead of it in the queue.
        let bytes = serde_json::to_vec(&committed)
            .map_err(|e| storage_err(ErrorSubject::Store, ErrorVerb::Write)(e.into()))?;
        let write = move |db: &Database| -> Result<(), DbError> {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            txn.open_table(LOG_META)?
                .insert(COMMITTED, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        };
        let op = WriteOp::Other {
            write: Box::new(write),
            done: None,
        };
        self.writer.send(op).map_err(|_| {
            storage_err(ErrorSubject::Store, ErrorVerb::Write)(DbError(AnyError::error(
                "log writer stopped",
            )))
        })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SError> {
        let c: Option<Option<LogId<NodeId>>> = get_json(&self.db, LOG_META, COMMITTED)
            .map_err(storage_err(ErrorSubject::Store, ErrorVerb::Read))?;
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

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SError> {
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

/// The key-value state machine. Clones share the database: the HTTP layer keeps one to read.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
}

impl StateMachine {
    /// Reads a key from the locally applied state (no consensus round: callers decide when that
    /// is safe).
    pub fn get(&self, key: &str) -> Result<Option<Value>, DbError> {
        get_json(&self.db, KV, key)
    }

    fn applied(
        &self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), DbError> {
        let applied: Option<LogId<NodeId>> = get_json(&self.db, SM_META, APPLIED)?;
        let membership = get_json(&self.db, SM_META, MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }
}

fn apply_op(kv: &mut redb::Table<&str, &[u8]>, op: &Op) -> Result<Response, DbError> {
    match op {
        Op::Put { key, value } => {
            kv.insert(key.as_str(), serde_json::to_vec(value)?.as_slice())?;
            Ok(Response::Done)
        }
        Op::Cas { key, from, to } => {
            let current: Option<Value> = match kv.get(key.as_str())? {
                Some(v) => Some(serde_json::from_slice(v.value())?),
                None => None,
            };
            match current {
                None => Ok(Response::NotFound),
                Some(cur) if cur == *from => {
                    kv.insert(key.as_str(), serde_json::to_vec(to)?.as_slice())?;
                    Ok(Response::Swapped)
                }
                Some(cur) => Ok(Response::CompareFailed { current: cur }),
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), SError> {
        self.applied()
            .map_err(storage_err(ErrorSubject::StateMachine, ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let db = self.db.clone();
        blocking(ErrorSubject::StateMachine, ErrorVerb::Write, move || {
            let txn = db.begin_write()?;
            let mut out = Vec::with_capacity(entries.len());
            {
                let mut kv = txn.open_table(KV)?;
                let mut meta = txn.open_table(SM_META)?;
                for e in &entries {
                    out.push(match &e.payload {
                        EntryPayload::Blank => Response::Done,
                        EntryPayload::Normal(req) => apply_op(&mut kv, &req.op)?,
                        EntryPayload::Membership(m) => {
                            let sm = StoredMembership::new(Some(e.log_id), m.clone());
                            meta.insert(MEMBERSHIP, serde_json::to_vec(&sm)?.as_slice())?;
                            Response::Done
                        }
                    });
                }
                // Same transaction as the data: last_applied can never run ahead of (or behind)
                // what is on disk.
                if let Some(last) = entries.last() {
                    meta.insert(APPLIED, serde_json::to_vec(&Some(last.log_id))?.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(out)
        })
        .await
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
        let db = self.db.clone();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        blocking(subject, ErrorVerb::Write, move || {
            let pairs: Vec<(String, Value)> = serde_json::from_slice(&stored.data)?;
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
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SError> {
        let stored: Option<StoredSnapshot> = get_json(&self.db, SM_META, SNAPSHOT)
            .map_err(storage_err(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SError> {
        let db = self.db.clone();
        let stored = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            // One write transaction both reads a consistent state and stores the snapshot.
            let txn = db.begin_write()?;
            let stored = {
                let kv = txn.open_table(KV)?;
                let mut meta = txn.open_table(SM_META)?;
                let mut pairs: Vec<(String, Value)> = Vec::new();
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
            let (log, sm) =
                open(dir.path()).map_err(storage_err(ErrorSubject::Store, ErrorVerb::Write))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite.
    #[test]
    fn openraft_storage_suite() -> Result<(), SError> {
        Suite::test_all(Builder)
    }
}
