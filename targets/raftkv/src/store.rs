//! Durable storage for openraft in two redb files: `log.redb` (log entries, vote, committed index)
//! and `sm.redb` (the key-value state machine, its `last_applied`, membership and snapshot).
//!
//! Two files rather than one so that appending to the log and applying to the state machine, which
//! openraft runs in different tasks, never wait for each other (redb has one writer per file).
//!
//! ## What is durable when
//!
//! One writer thread owns `log.redb` and executes every log write in the order openraft issued
//! it; `append` and `save_committed` return once their write is queued.
//!
//! - **Vote, truncation, purge** are redb commits with `Durability::Immediate` (one fdatasync)
//!   before the call returns.
//! - **Log entries** are fsynced before openraft is told they are stored (the flush callback),
//!   except the entries this node proposes as the elected leader of its current vote. openraft
//!   0.9's core sends nothing to followers until the leader's flush callback has fired, so for
//!   those the callback fires when `append` queues them, and the writer holds them until their
//!   committed index arrives and writes both in one commit. A lone write then costs three fsyncs
//!   (each follower's append, then the leader's entry with its committed index), two of them in
//!   series; writing the leader's entry first cost four, three in series. What keeps this safe is
//!   below ("The leader's early callback").
//! - **The committed index** shares a commit with the appends queued with it, and only then does
//!   the writer publish it as *durably committed*.
//! - **Waiting to share an fsync.** A write nobody waits for yet — a follower's committed index
//!   (the leader does not wait for it), the leader's own entries (their callback has fired) —
//!   waits up to [`SHARE_FSYNC_DELAY`] for one somebody waits for: a follower's next append, the
//!   leader's committed index. So each node fsyncs once per entry.
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
//! an acknowledged write or an earlier read (#1511). raftkv rules this out twice: a node that led
//! never resumes its old term (rule 3 below), and by ordering:
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
//!
//! ## The leader's early callback
//!
//! Once the callback has fired, openraft counts the leader's copy of an entry towards a quorum,
//! so its committed index can run ahead of what a quorum has on disk until the leader's commit
//! lands. Three rules keep that from being observed:
//!
//! 1. Nothing is applied on the leader before the committed index covering it is durable (the
//!    gate above), and by point 4 the leader's entries are then on its disk too. With the
//!    followers that acknowledged them (a follower acknowledges only after its fsync) that is a
//!    real quorum.
//! 2. Followers apply what the leader tells them is committed, so the leader tells them only what
//!    its durable log backs: the Raft RPC client passes every AppendEntries through
//!    [`DurableLog::announceable`].
//! 3. A leader that stopped with entries not yet on its disk may have sent them to followers. If
//!    it led the same term again it could give a different entry the same log id (term, leader,
//!    index) that a follower holds, breaking Raft's log matching. So a node whose stored vote says
//!    it was the elected leader starts in the next term ([`new_term_if_led`]) and has to win an
//!    election, and everything it proposes afterwards carries the new term.
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

/// Writes `value` as JSON under `key` of `table` in an `Immediate` commit: on disk (one fsync)
/// when it returns.
fn put_json<T: Serialize>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    value: &T,
) -> Result<(), DbError> {
    let txn = db.begin_write()?;
    txn.open_table(table)?
        .insert(key, serde_json::to_vec(value)?.as_slice())?;
    txn.commit()?;
    Ok(())
}

/// How often, at most, the state machine's non-durable applies are made durable (one fsync).
pub const SM_DURABLE_INTERVAL: Duration = Duration::from_secs(1);

/// How long, at most, a log write nobody waits for yet waits for one somebody waits for, to share
/// its fsync (module docs).
pub const SHARE_FSYNC_DELAY: Duration = Duration::from_millis(100);

/// The highest log index whose commit is durable in `log.redb` (`None`: none yet). The writer
/// thread publishes it after the fsync; `apply` waits on it (see the module docs).
pub type CommitGate = watch::Receiver<Option<u64>>;

/// Waiters of the `lost-write` bug: request id → notified once the entry is appended to the local
/// log (not necessarily on disk yet), regardless of whether any follower has it.
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
    let vote = Arc::new(Mutex::new(new_term_if_led(&log_db, id)?));
    let pending = Pending::default();
    let waiters = AppendWaiters::default();
    let durable = DurableLog::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = Writer {
        db: log_db.clone(),
        pending: pending.clone(),
        gate: gate_tx,
        durable: durable.clone(),
    };
    std::thread::Builder::new()
        .name("raftkv-log-writer".into())
        .spawn(move || writer.run(rx))?;
    let log = LogStore {
        id,
        db: log_db,
        vote,
        pending,
        waiters,
        durable,
        writer: tx,
        sm: sm_shared.clone(),
    };
    let sm = StateMachine {
        shared: sm_shared,
        gate: Some(gate),
    };
    Ok((log, sm))
}

/// The vote to start with. A node that led the term of its stored vote moves on to the next term
/// (voting for itself, not yet elected): its last appends may not have reached the disk before it
/// stopped, while a follower may have them already, so leading the same term again could give a
/// different entry the log id a follower holds (module docs). Any node may raise its term; this
/// one then wins or loses an election like a candidate.
fn new_term_if_led(db: &Database, id: NodeId) -> Result<Option<Vote<NodeId>>, DbError> {
    let vote: Option<Vote<NodeId>> = get_json(db, LOG_META, VOTE)?;
    match vote {
        Some(v) if v.is_committed() && v.leader_id.node_id == id => {
            let next = Vote::new(v.leader_id.term + 1, id);
            put_json(db, LOG_META, VOTE, &next)?;
            Ok(Some(next))
        }
        v => Ok(v),
    }
}

/// The last log id whose append is fsynced in this node's current log (`None` right after a
/// start or a truncation, until the next append is durable). The Raft RPC client reads it to
/// keep a leader from announcing a commit its own disk does not back yet ([`Self::announceable`]).
#[derive(Clone, Default)]
pub struct DurableLog(Arc<Mutex<Option<LogId<NodeId>>>>);

impl DurableLog {
    /// The committed log id a leader may send to followers when openraft says `committed`.
    ///
    /// openraft counts the leader's own entries as stored as soon as `append` queues them
    /// (module docs), so its `committed` can be ahead of what a quorum has on disk until the
    /// leader's commit lands. A follower that applied such an entry could see it overwritten
    /// after a leader crash. What is safe to announce:
    /// - `committed` itself once the leader's durable log reaches it: the followers counted for
    ///   it acknowledged only after their fsync, so a quorum truly has it;
    /// - otherwise the durable end of the log when it is from the same term as `committed`. The
    ///   same quorum truly has it, and it is committed: either that term is the leader's own
    ///   (openraft commits nothing else on its own count), or `committed` is from an earlier
    ///   term, which a leader only holds when it was truly committed before;
    /// - otherwise nothing new: an earlier term's entry on a quorum is not committed by that
    ///   alone (Raft's figure 8), and `None` never lowers a follower's committed index.
    pub fn announceable(&self, committed: Option<LogId<NodeId>>) -> Option<LogId<NodeId>> {
        let (committed, durable) = (committed?, (*lock(&self.0))?);
        if committed <= durable {
            Some(committed)
        } else if durable.leader_id == committed.leader_id {
            Some(durable)
        } else {
            None
        }
    }

    fn set(&self, last: Option<LogId<NodeId>>) {
        *lock(&self.0) = last;
    }
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

/// Entries queued by one `append`, with the callback still to fire after the fsync (if any).
type Queued = (Vec<Entry<TypeConfig>>, Option<LogFlushed<TypeConfig>>);

/// A log write, executed in submission order by the writer thread.
enum WriteOp {
    Append {
        entries: Vec<Entry<TypeConfig>>,
        /// Fired after the fsync; `None` when `append` fired it already (the leader's own
        /// entries, module docs).
        callback: Option<LogFlushed<TypeConfig>>,
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
/// (one fsync); those nobody waits for yet wait a little for one somebody does (module docs).
/// Everything else (vote, truncate, purge) waits for its turn in the same queue, which keeps all
/// log writes in the order openraft issued them.
struct Writer {
    db: Arc<Database>,
    pending: Pending,
    /// Publishes the durable committed index.
    gate: watch::Sender<Option<u64>>,
    durable: DurableLog,
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
                    let deadline = Instant::now() + SHARE_FSYNC_DELAY;
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
                            // Nobody waits for this fsync yet: a follower's committed index
                            // waits for the next append, the leader's own entries for their
                            // committed index (module docs).
                            None if !urgent && batch.iter().all(|(_, cb)| cb.is_none()) => match rx
                                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                            {
                                Ok(o) => {
                                    op = Some(o);
                                    continue;
                                }
                                Err(_) => break,
                            },
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
    fn append(&self, batch: Vec<Queued>, committed: Option<Option<LogId<NodeId>>>) {
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
        if result.is_ok() {
            if let Some(last) = batch.iter().flat_map(|(entries, _)| entries).next_back() {
                self.durable.set(Some(last.log_id));
            }
        }
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
        {
            let mut pending = lock(&self.pending);
            for e in batch.iter().flat_map(|(entries, _)| entries) {
                if pending.get(&e.log_id.index).map(|p| p.log_id) == Some(e.log_id) {
                    pending.remove(&e.log_id.index);
                }
            }
        }
        for callback in batch.into_iter().filter_map(|(_, callback)| callback) {
            callback.log_io_completed(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
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
    /// The last vote saved (durable).
    vote: Arc<Mutex<Option<Vote<NodeId>>>>,
    pending: Pending,
    waiters: AppendWaiters,
    durable: DurableLog,
    writer: std::sync::mpsc::Sender<WriteOp>,
    /// The state machine, to make it durable before a purge that would need it.
    sm: Arc<SmShared>,
}

impl LogStore {
    pub fn append_waiters(&self) -> AppendWaiters {
        self.waiters.clone()
    }

    pub fn durable_log(&self) -> DurableLog {
        self.durable.clone()
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
        // The leader's replication reads what it just appended: often all of it is pending.
        let covered = match bounds {
            (Bound::Included(start), Bound::Excluded(end)) => {
                end > start && entries.len() as u64 == end - start
            }
            (Bound::Included(start), Bound::Included(end)) => {
                end >= start && entries.len() as u64 == end - start + 1
            }
            _ => false,
        };
        if covered {
            return Ok(entries.into_values().collect());
        }
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
        let vote = *vote;
        self.write(ErrorSubject::Vote, ErrorVerb::Write, move |db| {
            put_json(db, LOG_META, VOTE, &vote)
        })
        .await?;
        *lock(&self.vote) = Some(vote);
        Ok(())
    }

    /// The vote `open` started with or the last one saved: what is on disk.
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SError> {
        Ok(*lock(&self.vote))
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

    /// Queues the entries and returns. `callback` fires once they are fsynced, except for the
    /// entries this node proposed as the elected leader of its current vote: for those it fires
    /// at once, so that openraft replicates them at once, and the writer holds them until their
    /// committed index arrives (module docs).
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
            let mut waiters = lock(&self.waiters);
            for e in &entries {
                pending.insert(e.log_id.index, e.clone());
                if let EntryPayload::Normal(req) = &e.payload {
                    if let Some(tx) = waiters.remove(&req.id) {
                        let _ = tx.send(());
                    }
                }
            }
        }
        let own = lock(&self.vote).is_some_and(|v| {
            v.is_committed()
                && v.leader_id.node_id == self.id
                && entries.iter().all(|e| e.log_id.leader_id == v.leader_id)
        });
        let (early, callback) = if own {
            (Some(callback), None)
        } else {
            (None, Some(callback))
        };
        self.writer
            .send(WriteOp::Append { entries, callback })
            .map_err(|_| {
                storage_err(ErrorSubject::Logs, ErrorVerb::Write)(DbError(AnyError::error(
                    "log writer stopped",
                )))
            })?;
        if let Some(callback) = early {
            callback.log_io_completed(Ok(()));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SError> {
        let pending = self.pending.clone();
        let durable = self.durable.clone();
        self.write(ErrorSubject::Logs, ErrorVerb::Delete, move |db| {
            // Before the entries go: the durable end must never name a removed entry.
            durable.set(None);
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

    fn log_id(term: u64, leader: NodeId, index: u64) -> LogId<NodeId> {
        LogId::new(openraft::CommittedLeaderId::new(term, leader), index)
    }

    #[test]
    fn a_leader_announces_only_commits_its_disk_backs() {
        let durable = DurableLog::default();
        let announce = |committed| durable.announceable(Some(committed));
        // Nothing durable yet (just started or truncated): nothing new.
        assert_eq!(announce(log_id(2, 1, 5)), None);
        // The disk has the committed entry: announced as it is.
        durable.set(Some(log_id(2, 1, 7)));
        assert_eq!(announce(log_id(2, 1, 5)), Some(log_id(2, 1, 5)));
        assert_eq!(announce(log_id(2, 1, 7)), Some(log_id(2, 1, 7)));
        // Ahead of the disk in the same term: the durable end, which the same quorum holds.
        assert_eq!(announce(log_id(2, 1, 9)), Some(log_id(2, 1, 7)));
        // Ahead of the disk, whose end is from an older term: an old-term entry on a quorum is
        // not committed by that alone (Raft's figure 8), so nothing new.
        assert_eq!(announce(log_id(3, 1, 9)), None);
        assert_eq!(durable.announceable(None), None);
    }

    /// The vote a node starts with after leading, after following and as a candidate.
    #[test]
    fn a_node_that_led_starts_in_the_next_term() -> Result<(), DbError> {
        let saved = |vote: Vote<NodeId>| -> Result<Option<Vote<NodeId>>, DbError> {
            let dir = tempfile::tempdir()?;
            {
                let db = Database::create(dir.path().join("log.redb"))?;
                put_json(&db, LOG_META, VOTE, &vote)?;
            }
            let (log, _sm) = open(dir.path(), 1)?;
            let started = *lock(&log.vote);
            let stored: Option<Vote<NodeId>> = get_json(&log.db, LOG_META, VOTE)?;
            assert_eq!(started, stored, "the vote started with is the one on disk");
            Ok(started)
        };
        assert_eq!(
            saved(Vote::new_committed(4, 1))?,
            Some(Vote::new(5, 1)),
            "led term 4: a candidate of term 5"
        );
        assert_eq!(
            saved(Vote::new_committed(4, 2))?,
            Some(Vote::new_committed(4, 2))
        );
        assert_eq!(saved(Vote::new(4, 1))?, Some(Vote::new(4, 1)));
        Ok(())
    }
}
