//! The HTTP server: the client key-value API, `/status`, and the Raft RPC endpoints, all on one
//! port. See the crate documentation (main.rs) for the API and error-code tables.
//!
//! Every client request runs under one deadline and records how far it got ([`Progress`]), so
//! that a request cut off by the deadline is answered with the right code: never sent anywhere
//! (`no-leader`, definitely not applied), proposed to the local log (`timeout` / `leader-lost`,
//! outcome unknown) or forwarded to the leader (`timeout`, outcome unknown).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{BasicNode, LogId, Raft, ServerState};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::consul;
use crate::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::store::{self, AppendWaiters, NodeId, Op, Request, StateMachine, Stored, TypeConfig};

/// Marks a request forwarded by another node, so that it is never forwarded a second time.
pub const FORWARDED_HEADER: &str = "x-raftkv-forwarded";
/// On every response: the id of the node that served the request.
pub const NODE_HEADER: &str = "x-raftkv-node";

/// The bug switches (`--bug NAME`), all off by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bugs {
    pub stale_read: bool,
    pub lost_write: bool,
    pub racy_cas: bool,
}

/// Shared state of one node's HTTP server.
pub struct Node {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    /// Read handle on the state machine that openraft owns.
    pub sm: StateMachine,
    /// Client-API address of every member, from `--cluster`.
    pub peers: BTreeMap<NodeId, String>,
    pub client: reqwest::Client,
    pub bugs: Bugs,
    pub request_timeout: Duration,
    /// Pause between the read and the write of a `racy-cas` CAS, to widen the race on purpose.
    pub racy_cas_delay: Duration,
    pub waiters: AppendWaiters,
    /// Reads waiting for the next shared ReadIndex round.
    pub reads: Rounds<(), ReadResult>,
    /// Writes waiting for the next log entry.
    pub writes: Rounds<Op, WriteResult>,
    /// The token `/v1/kv` requests must carry (`--acl-token`), if any.
    pub acl_token: Option<String>,
}

type ReadResult =
    Result<Option<LogId<NodeId>>, RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>;

type WriteResult = Result<store::Response, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>;

/// Requests that share one round of an expensive step: linearizable reads share a ReadIndex round
/// (`ensure_linearizable`: a heartbeat round to a quorum, then wait until the read index is
/// applied), writes share a log entry (one append, one fsync per node, one commit). A round serves
/// exactly the requests queued before it started and runs while new requests queue for the next
/// one, so concurrent requests cost one round instead of one each.
///
/// For reads, every read's barrier still begins after the read arrived, which is all
/// linearizability needs. For writes, every op is applied exactly once, in its entry, between its
/// request and its answer.
pub struct Rounds<T, R>(Arc<std::sync::Mutex<RoundsState<T, R>>>);

struct RoundsState<T, R> {
    /// A task is running rounds; it exits when it finds no request waiting.
    running: bool,
    waiting: Vec<(T, tokio::sync::oneshot::Sender<R>)>,
}

impl<T, R> Default for Rounds<T, R> {
    fn default() -> Self {
        Rounds(Arc::new(std::sync::Mutex::new(RoundsState {
            running: false,
            waiting: Vec::new(),
        })))
    }
}

impl<T: Send + 'static, R: Send + 'static> Rounds<T, R> {
    /// Queues `item` for the next round and waits for its result. `round` runs one round over the
    /// queued items and returns their results in the same order. `None` if the round's task died
    /// or returned no result for this item.
    async fn join<F, Fut>(&self, app: &App, item: T, round: F) -> Option<R>
    where
        F: Fn(App, Vec<T>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<R>> + Send,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.push((item, tx));
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let (queue, app) = (self.0.clone(), app.clone());
            // A task of its own: the request that started it may hit its deadline and be dropped.
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        if q.waiting.is_empty() {
                            q.running = false;
                            break;
                        }
                        std::mem::take(&mut q.waiting)
                    };
                    let (items, txs): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                    for (tx, result) in txs.into_iter().zip(round(app.clone(), items).await) {
                        let _ = tx.send(result);
                    }
                }
            });
        }
        rx.await.ok()
    }
}

/// Waits for a ReadIndex round that started after this call.
async fn read_barrier(app: &App) -> Option<ReadResult> {
    app.reads
        .join(app, (), |app, reads| async move {
            let result = app.raft.ensure_linearizable().await;
            vec![result; reads.len()]
        })
        .await
}

/// Proposes `op` in the next log entry this node proposes and waits until it is applied.
async fn write(app: &App, op: Op) -> Option<WriteResult> {
    app.writes
        .join(app, op, |app, ops| async move {
            let n = ops.len();
            let req = Request {
                id: store::unique_id(),
                ops,
            };
            match app.raft.client_write(req).await {
                Ok(resp) => resp.data.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e); n],
            }
        })
        .await
}

pub type App = Arc<Node>;

pub fn router(app: App) -> Router {
    Router::new()
        .merge(kv_routes())
        .merge(consul::routes())
        .merge(raft_routes())
        .route("/status", get(status))
        .with_state(app)
}

fn kv_routes() -> Router<App> {
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key))
        .route("/kv/{key}/cas", post(cas_key))
}

fn raft_routes() -> Router<App> {
    Router::new()
        .route(APPEND_PATH, post(raft_append))
        .route(VOTE_PATH, post(raft_vote))
        .route(SNAPSHOT_PATH, post(raft_snapshot))
        // Snapshot chunks and entry batches are larger than axum's 2 MB default.
        .layer(DefaultBodyLimit::max(256 << 20))
}

/// An error answer: `{"code", "message"}` plus the serving node, and for `compare-failed` the
/// current value.
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    value: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            value: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    fn into_response(self, node: NodeId) -> Response {
        let mut body = json!({"code": self.code, "message": self.message, "node": node});
        if let Some(v) = self.value {
            body["value"] = v;
        }
        with_node((self.status, Json(body)).into_response(), node)
    }
}

pub fn with_node(mut resp: Response, node: NodeId) -> Response {
    resp.headers_mut()
        .insert(NODE_HEADER, HeaderValue::from(node));
    resp
}

fn ok(node: NodeId, body: Value) -> Response {
    with_node((StatusCode::OK, Json(body)).into_response(), node)
}

/// What a served request produced, before it is rendered in the request's [`Dialect`].
pub enum Outcome {
    /// A read of a present key (an absent one is the `not-found` error).
    Value(Stored),
    /// A write or CAS took effect.
    Applied,
    /// A Consul `?cas=INDEX` write found another index: nothing was written.
    IndexChanged,
}

/// The API a request came in through, which decides how its outcome is rendered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// raftkv's own `/kv` API (JSON).
    Raftkv,
    /// The Consul KV subset (`/v1/kv`, see `consul.rs`).
    Consul,
}

/// How far a client request got, read when its deadline cuts it off.
#[derive(Default)]
struct Progress {
    stage: AtomicU8,
    /// The term in which this node proposed the entry (stage `PROPOSED`).
    term: AtomicU64,
}

const STARTED: u8 = 0;
const PROPOSED: u8 = 1;
const FORWARDED: u8 = 2;

impl Progress {
    fn set(&self, stage: u8) {
        self.stage.store(stage, Ordering::SeqCst);
    }

    fn proposed(&self, term: u64) {
        self.term.store(term, Ordering::SeqCst);
        self.set(PROPOSED);
    }
}

/// A parsed client request.
pub enum Kind {
    /// `local`: from this node's state machine, without forwarding or read barrier.
    Get { key: String, local: bool },
    /// A state-machine command.
    Write(Op),
}

/// A request as it arrived, kept whole so that it can be forwarded to the leader.
pub struct Incoming {
    pub method: Method,
    pub key: String,
    /// Path and query.
    pub path: String,
    pub body: Bytes,
    pub headers: HeaderMap,
    pub dialect: Dialect,
}

/// The local attempt could not serve the request: retry after leadership settles.
struct NotLeader;

async fn get_key(State(app): State<App>, Path(key): Path<String>, headers: HeaderMap) -> Response {
    let incoming = Incoming::raftkv(
        Method::GET,
        &key,
        format!("/kv/{key}"),
        Bytes::new(),
        headers,
    );
    let local = false;
    serve(app, Ok(Kind::Get { key, local }), incoming).await
}

#[derive(Deserialize)]
struct PutBody {
    value: Value,
}

#[derive(Deserialize)]
struct CasBody {
    from: Value,
    to: Value,
}

async fn put_key(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = serde_json::from_slice::<PutBody>(&body)
        .map(|b| {
            Kind::Write(Op::Put {
                key: key.clone(),
                value: b.value,
            })
        })
        .map_err(|e| ApiError::bad_request(format!("expected a JSON body {{\"value\": V}}: {e}")));
    let incoming = Incoming::raftkv(Method::PUT, &key, format!("/kv/{key}"), body, headers);
    serve(app, kind, incoming).await
}

async fn cas_key(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = serde_json::from_slice::<CasBody>(&body)
        .map(|b| {
            Kind::Write(Op::Cas {
                key: key.clone(),
                from: b.from,
                to: b.to,
            })
        })
        .map_err(|e| {
            ApiError::bad_request(format!(
                "expected a JSON body {{\"from\": V, \"to\": V}}: {e}"
            ))
        });
    let incoming = Incoming::raftkv(Method::POST, &key, format!("/kv/{key}/cas"), body, headers);
    serve(app, kind, incoming).await
}

impl Incoming {
    fn raftkv(method: Method, key: &str, path: String, body: Bytes, headers: HeaderMap) -> Self {
        Incoming {
            method,
            key: key.to_string(),
            path,
            body,
            headers,
            dialect: Dialect::Raftkv,
        }
    }

    /// A `/v1/kv` request (`consul.rs`).
    pub fn consul(
        method: Method,
        key: &str,
        query: Option<String>,
        body: Bytes,
        headers: HeaderMap,
    ) -> Self {
        let path = match query {
            Some(q) => format!("/v1/kv/{key}?{q}"),
            None => format!("/v1/kv/{key}"),
        };
        Incoming {
            dialect: Dialect::Consul,
            ..Incoming::raftkv(method, key, path, body, headers)
        }
    }

    fn forwarded(&self) -> bool {
        self.headers.contains_key(FORWARDED_HEADER)
    }
}

/// Runs one client request under the server-side deadline and renders what came of it.
pub async fn serve(app: App, kind: Result<Kind, ApiError>, incoming: Incoming) -> Response {
    let result = match kind {
        Err(e) => Err(e),
        Ok(kind) => {
            let progress = Progress::default();
            let work = handle(&app, &kind, &incoming, &progress);
            match tokio::time::timeout(app.request_timeout, work).await {
                Ok(Ok(Served::Here(outcome))) => Ok(outcome),
                // The leader's answer, already rendered in this dialect.
                Ok(Ok(Served::Forwarded(resp))) => return resp,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(deadline_error(&app, &progress)),
            }
        }
    };
    match incoming.dialect {
        Dialect::Raftkv => render(&app, result),
        Dialect::Consul => consul::render(&app, &incoming.key, result),
    }
}

/// Where a request was served.
enum Served {
    Here(Outcome),
    Forwarded(Response),
}

fn render(app: &Node, result: Result<Outcome, ApiError>) -> Response {
    match result {
        Ok(Outcome::Value(stored)) => ok(app.id, json!({"value": stored.value, "node": app.id})),
        Ok(Outcome::Applied) => ok(app.id, json!({"node": app.id})),
        Ok(Outcome::IndexChanged) => {
            internal("a CAS by index through the /kv API").into_response(app.id)
        }
        Err(e) => e.into_response(app.id),
    }
}

fn deadline_error(app: &Node, progress: &Progress) -> ApiError {
    let ms = app.request_timeout.as_millis();
    match progress.stage.load(Ordering::SeqCst) {
        STARTED => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-leader",
            format!("no leader (or no quorum) within {ms} ms; the request was not sent anywhere"),
        ),
        PROPOSED => {
            let m = app.raft.metrics().borrow().clone();
            let term = progress.term.load(Ordering::SeqCst);
            if m.current_term != term || m.state != ServerState::Leader {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "leader-lost",
                    format!(
                        "this node proposed the entry as leader of term {term} but lost the \
                         leadership before it committed; it may still be applied"
                    ),
                )
            } else {
                timeout_error(ms)
            }
        }
        _ => timeout_error(ms),
    }
}

fn timeout_error(ms: u128) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!("no outcome within {ms} ms; the request may or may not be applied"),
    )
}

async fn handle(
    app: &App,
    kind: &Kind,
    incoming: &Incoming,
    progress: &Progress,
) -> Result<Served, ApiError> {
    if let Kind::Get { key, local } = kind {
        if *local || app.bugs.stale_read {
            // `local` by request; with BUG stale-read, every read: no barrier, no forwarding.
            return read_local(app, key).map(Served::Here);
        }
    }
    loop {
        let leader = wait_for_leader(&app.raft).await;
        if leader != app.id {
            if incoming.forwarded() {
                return Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "not-leader",
                    format!("forwarded here but the leader is node {leader}; not applied, retry"),
                ));
            }
            progress.set(FORWARDED);
            return forward(app, leader, incoming).await.map(Served::Forwarded);
        }
        match execute(app, kind, progress).await {
            Err(NotLeader) => {
                // Leadership moved under us before anything was committed (a truncated entry is
                // never applied), so starting over is safe.
                progress.set(STARTED);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(result) => return result.map(Served::Here),
        }
    }
}

async fn wait_for_leader(raft: &Raft<TypeConfig>) -> NodeId {
    let mut rx = raft.metrics();
    loop {
        if let Some(leader) = rx.borrow_and_update().current_leader {
            return leader;
        }
        if rx.changed().await.is_err() {
            // Raft is shutting down; the request deadline will answer.
            std::future::pending::<()>().await;
        }
    }
}

fn read_local(app: &Node, key: &str) -> Result<Outcome, ApiError> {
    match app.sm.get(key) {
        Ok(Some(stored)) => Ok(Outcome::Value(stored)),
        Ok(None) => Err(not_found(key)),
        Err(e) => Err(internal(e)),
    }
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("key {key:?} does not exist"),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{e}; the request may or may not be applied, see the node's log"),
    )
}

/// Serves the request on this node, which believes it is the leader.
async fn execute(
    app: &App,
    kind: &Kind,
    progress: &Progress,
) -> Result<Result<Outcome, ApiError>, NotLeader> {
    let op = match kind {
        Kind::Get { key, .. } => loop {
            match read_barrier(app).await {
                Some(Ok(_)) => return Ok(read_local(app, key)),
                Some(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                    return Err(NotLeader)
                }
                Some(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                    // No quorum answered the heartbeat round: retry until the deadline.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(Err(RaftError::Fatal(e))) => return Ok(Err(internal(e))),
                None => return Ok(Err(internal("the read barrier task failed"))),
            }
        },
        Kind::Write(op @ (Op::Cas { .. } | Op::CasIndex { .. })) if app.bugs.racy_cas => {
            // BUG racy-cas: decide against local state, then write unconditionally.
            let current = match app.sm.get(op.key()) {
                Err(e) => return Ok(Err(internal(e))),
                Ok(current) => current,
            };
            let value = match op.decide(current.as_ref()) {
                Ok((value, _)) => value.clone(),
                Err(response) => return Ok(outcome(response, op.key())),
            };
            tokio::time::sleep(app.racy_cas_delay).await;
            Op::Put {
                key: op.key().to_string(),
                value,
            }
        }
        Kind::Write(op) => op.clone(),
    };
    let result = if app.bugs.lost_write && matches!(kind, Kind::Write(Op::Put { .. })) {
        propose_lost_write(app, op, progress).await?
    } else {
        propose(app, op, progress).await?
    };
    Ok(result.and_then(|response| outcome(response, kind.key())))
}

/// What a state-machine response means for the client.
fn outcome(response: store::Response, key: &str) -> Result<Outcome, ApiError> {
    match response {
        store::Response::Done | store::Response::Swapped => Ok(Outcome::Applied),
        store::Response::IndexChanged => Ok(Outcome::IndexChanged),
        store::Response::CompareFailed { current } => Err(compare_failed(current)),
        store::Response::NotFound => Err(not_found(key)),
    }
}

impl Kind {
    fn key(&self) -> &str {
        match self {
            Kind::Get { key, .. } => key,
            Kind::Write(op) => op.key(),
        }
    }
}

fn compare_failed(current: Value) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        "compare-failed",
        "the current value differs from \"from\"; nothing was written",
    );
    e.value = Some(current);
    e
}

fn current_term(app: &Node) -> u64 {
    app.raft.metrics().borrow().current_term
}

/// Proposes `op` and waits until it is committed and applied.
async fn propose(
    app: &App,
    op: Op,
    progress: &Progress,
) -> Result<Result<store::Response, ApiError>, NotLeader> {
    progress.proposed(current_term(app));
    match write(app, op).await {
        Some(Ok(response)) => Ok(Ok(response)),
        Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(NotLeader),
        Some(Err(RaftError::APIError(e))) => Ok(Err(internal(e))),
        Some(Err(RaftError::Fatal(e))) => Ok(Err(internal(e))),
        None => Ok(Err(internal("the write task failed"))),
    }
}

/// BUG lost-write: answers as soon as the entry is in the leader's own log (or commits,
/// whichever comes first), without waiting for a quorum.
async fn propose_lost_write(
    app: &App,
    op: Op,
    progress: &Progress,
) -> Result<Result<store::Response, ApiError>, NotLeader> {
    let id = store::unique_id();
    let (tx, appended) = tokio::sync::oneshot::channel();
    app.waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, tx);
    progress.proposed(current_term(app));
    let req = Request { id, ops: vec![op] };
    let result = match app.raft.client_write_ff(req).await {
        Err(e) => Ok(Err(internal(e))),
        Ok(committed) => tokio::select! {
            _ = appended => Ok(Ok(store::Response::Done)),
            res = committed => match res {
                Ok(Ok(resp)) => Ok(resp
                    .data
                    .into_iter()
                    .next()
                    .ok_or_else(|| internal("no response for the entry's op"))),
                Ok(Err(ClientWriteError::ForwardToLeader(_))) => Err(NotLeader),
                Ok(Err(e)) => Ok(Err(internal(e))),
                Err(e) => Ok(Err(internal(e))),
            },
        },
    };
    app.waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    result
}

/// Proxies the request to the leader and relays its answer unchanged.
async fn forward(app: &App, leader: NodeId, incoming: &Incoming) -> Result<Response, ApiError> {
    let Some(addr) = app.peers.get(&leader) else {
        return Err(internal(format!("leader {leader} is not in --cluster")));
    };
    let resp = app
        .client
        .request(
            incoming.method.clone(),
            format!("http://{addr}{}", incoming.path),
        )
        .headers(pass_through(&incoming.headers))
        .header(FORWARDED_HEADER, app.id)
        .body(incoming.body.clone())
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "leader-unreachable",
                    format!("could not connect to leader {leader} at {addr}; not applied: {e}"),
                )
            } else {
                forward_failed(leader, e)
            }
        })?;
    let status = resp.status();
    let headers = pass_through(resp.headers());
    let body = resp.bytes().await.map_err(|e| forward_failed(leader, e))?;
    let mut out = (status, body).into_response();
    out.headers_mut().extend(headers);
    Ok(out)
}

/// The headers a proxy relays: content type, the serving node, Consul's `X-Consul-*` (the token
/// on the way in, the indexes on the way out); not the connection-level ones.
fn pass_through(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name == "content-type" || name == NODE_HEADER || name.starts_with("x-consul-")
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn forward_failed(leader: NodeId, e: reqwest::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "forward-failed",
        format!("forwarded to leader {leader} but got no answer; outcome unknown: {e}"),
    )
}

async fn status(State(app): State<App>) -> Response {
    let m = app.raft.metrics().borrow().clone();
    let commit = app
        .raft
        .with_raft_state(|st| st.committed.map(|c| c.index))
        .await
        .ok()
        .flatten();
    let role = match m.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    ok(
        app.id,
        json!({
            "id": app.id,
            "role": role,
            "term": m.current_term,
            "leader": m.current_leader,
            "last_log_index": m.last_log_index,
            "commit_index": commit,
            "applied_index": m.last_applied.map(|l| l.index),
        }),
    )
}

async fn raft_append(
    State(app): State<App>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    Json(app.raft.append_entries(req).await).into_response()
}

async fn raft_vote(State(app): State<App>, Json(req): Json<VoteRequest<NodeId>>) -> Response {
    Json(app.raft.vote(req).await).into_response()
}

async fn raft_snapshot(
    State(app): State<App>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    Json(app.raft.install_snapshot(req).await).into_response()
}
