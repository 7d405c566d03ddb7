//! The subset of Consul's KV HTTP API that raftkv also serves, so that Splitbrain's Consul client
//! runs against a real replicated store on machines where Consul cannot be installed.
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /v1/kv/{key}` | 200 `[{"LockIndex":0,"Key","Flags":0,"Value":BASE64,"CreateIndex","ModifyIndex"}]`; 404 with an empty body when absent |
//! | `GET ...?consistent` | the same, after the ReadIndex barrier on the leader (linearizable) |
//! | `GET ...` (default) | the same as `?consistent`: raftkv has no leader lease, so its default mode pays the quorum round and is never stale |
//! | `GET ...?stale` | from the local state machine of the node asked, without forwarding: may be stale |
//! | `PUT /v1/kv/{key}` raw body | 200 `true` once committed and applied |
//! | `PUT ...?cas=N` | 200 `true` if the key's `ModifyIndex` was `N` (`N` = 0: if the key was absent) and the value is written; 200 `false` otherwise, nothing written |
//! | `GET /v1/status/leader` | 200 the leader's address as a JSON string (`""` while there is none) |
//!
//! `CreateIndex` and `ModifyIndex` are Raft log indexes: of the entry that created the key and of
//! the last entry that changed it. Writing the value a key already has changes nothing (as in
//! Consul). GET answers carry `X-Consul-Index` (the key's `ModifyIndex`, or for a 404 the node's
//! applied index) and `X-Consul-KnownLeader`.
//!
//! Values are UTF-8 text here (a non-UTF-8 body is refused with 400); they are the same values
//! the `/kv` API sees, as JSON strings, and a `/kv` value that is not a string reads through
//! `/v1/kv` as its JSON text.
//!
//! With `--acl-token T`, every `/v1/kv` request must carry `X-Consul-Token: T`; otherwise it is
//! refused with 403 `Permission denied` (no token) or `ACL not found` (another token), as Consul
//! refuses requests its ACLs deny.
//!
//! Errors are plain text, as Consul's are: 400 for a malformed request or a parameter outside this
//! subset, 500 `No cluster leader` when no leader was found before the deadline (not applied), and
//! 500 `rpc error making call: ...` for every outcome raftkv's own API calls unknown (`timeout`,
//! `leader-lost`, `forward-failed`, `internal`) and for `leader-unreachable`. Consul's 500s do
//! not say whether a write was applied, so clients take every 500 on a write as unknown.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::api::{serve, with_node, ApiError, App, Incoming, Kind, Node, Outcome};
use crate::store::Op;

/// The header carrying an ACL token.
pub const TOKEN_HEADER: &str = "x-consul-token";

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/kv/{*key}", get(get_key).put(put_key))
        .route("/v1/status/leader", get(leader))
}

/// `GET /v1/status/leader`: the leader's address as a JSON string, `""` while there is none.
async fn leader(State(app): State<App>) -> Response {
    let leader = app.raft.metrics().borrow().current_leader;
    let addr = leader.and_then(|id| app.peers.get(&id)).cloned();
    with_node(axum::Json(addr.unwrap_or_default()).into_response(), app.id)
}

/// The query parameters this subset understands.
#[derive(Default)]
struct Query {
    consistent: bool,
    stale: bool,
    cas: Option<u64>,
}

fn parse_query(raw: Option<&str>, method: &Method) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (name, method) {
            ("consistent", &Method::GET) => q.consistent = true,
            ("stale", &Method::GET) => q.stale = true,
            ("cas", &Method::PUT) => {
                let index = value.parse().map_err(|_| {
                    bad_request(format!(
                        "Request decode failed: cas={value:?} is not an index"
                    ))
                })?;
                q.cas = Some(index);
            }
            // Consul ignores a datacenter naming the local one; raftkv has only one.
            ("dc", _) => {}
            _ => {
                return Err(bad_request(format!(
                    "raftkv serves only Consul's single-key GET (?consistent, ?stale) and PUT \
                     (?cas=N); {method} with ?{name} is not supported"
                )))
            }
        }
    }
    if q.consistent && q.stale {
        return Err(bad_request(
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ));
    }
    Ok(q)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
}

/// Refuses a request without the node's ACL token, if it has one.
fn authorize(app: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &app.acl_token else {
        return Ok(());
    };
    let message = match headers.get(TOKEN_HEADER) {
        Some(given) if given.as_bytes() == token.as_bytes() => return Ok(()),
        Some(_) => "ACL not found",
        None => "Permission denied",
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "permission-denied",
        message,
    ))
}

async fn get_key(
    State(app): State<App>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let kind = authorize(&app, &headers)
        .and_then(|()| parse_query(query.as_deref(), &Method::GET))
        .map(|q| Kind::Get {
            key: key.clone(),
            local: q.stale,
        });
    let incoming = Incoming::consul(Method::GET, &key, query, Bytes::new(), headers);
    serve(app, kind, incoming).await
}

async fn put_key(
    State(app): State<App>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = authorize(&app, &headers)
        .and_then(|()| parse_query(query.as_deref(), &Method::PUT))
        .and_then(|q| {
            let text = std::str::from_utf8(&body).map_err(|_| {
                bad_request("raftkv stores Consul values as UTF-8 text; the body is not UTF-8")
            })?;
            let value = Value::String(text.to_string());
            let key = key.clone();
            Ok(Kind::Write(match q.cas {
                None => Op::Put { key, value },
                Some(index) => Op::CasIndex { key, value, index },
            }))
        });
    let incoming = Incoming::consul(Method::PUT, &key, query, body, headers);
    serve(app, kind, incoming).await
}

/// Renders what came of a request as Consul would answer it.
pub fn render(app: &Node, key: &str, result: Result<Outcome, ApiError>) -> Response {
    let known_leader = app.raft.metrics().borrow().current_leader.is_some();
    let resp = match result {
        Ok(Outcome::Value(stored)) => {
            let bytes = match &stored.value {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            let body = json!([{
                "LockIndex": 0,
                "Key": key,
                "Flags": 0,
                "Value": B64.encode(bytes),
                "CreateIndex": stored.create,
                "ModifyIndex": stored.modify,
            }]);
            let mut resp = axum::Json(body).into_response();
            consul_headers(&mut resp, stored.modify, known_leader);
            resp
        }
        Ok(Outcome::Applied) => json_bool(true),
        Ok(Outcome::IndexChanged) => json_bool(false),
        Err(e) if e.code == "not-found" => {
            let applied = app
                .raft
                .metrics()
                .borrow()
                .last_applied
                .map_or(0, |l| l.index);
            let mut resp = StatusCode::NOT_FOUND.into_response();
            consul_headers(&mut resp, applied, known_leader);
            resp
        }
        Err(e) => {
            let (status, text) = match e.code {
                "bad-request" | "permission-denied" => (e.status, e.message),
                "no-leader" | "not-leader" => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "No cluster leader".into(),
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rpc error making call: {}", e.message),
                ),
            };
            (status, text).into_response()
        }
    };
    with_node(resp, app.id)
}

fn json_bool(b: bool) -> Response {
    let mut resp = (StatusCode::OK, if b { "true" } else { "false" }).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn consul_headers(resp: &mut Response, index: u64, known_leader: bool) {
    let headers = resp.headers_mut();
    headers.insert("x-consul-index", HeaderValue::from(index));
    headers.insert(
        "x-consul-knownleader",
        HeaderValue::from_static(if known_leader { "true" } else { "false" }),
    );
}
