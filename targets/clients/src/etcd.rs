//! The client for etcd's v3 JSON gateway (`/v3/kv/*`), mapping every answer
//! to ok / fail / info as Jepsen's etcd test does.
//!
//! Keys and values travel base64-encoded; 64-bit numbers are strings. An
//! absent key has no `kvs` field; a txn whose compare failed has no
//! `succeeded` field. Errors are `{"error","message","code"}` with a gRPC
//! code, and are classified on that code, not on the HTTP status:
//!
//! - reads: any error is `fail` (a read changes nothing);
//! - writes and cas: Unavailable (14), "leader changed", deadline exceeded
//!   (2 and 4), resets and client timeouts after sending are `info`; refused
//!   connections and definite errors (invalid argument, not found, too many
//!   requests, compacted) are `fail`; a failed compare is `fail` with error
//!   `compare-failed`.

use crate::client::{Action, Client, Completion, Op};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use checker::{EventType, Value};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// gRPC codes that say the request was definitely not applied:
/// InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
/// ResourceExhausted (too many requests), FailedPrecondition, OutOfRange
/// (compacted), Unimplemented, Unauthenticated.
const DEFINITE: &[i64] = &[3, 5, 6, 7, 8, 9, 11, 12, 16];

const UNAVAILABLE_BACKOFF: Duration = Duration::from_millis(20);

/// How reads are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// Through Raft (ReadIndex): linearizable.
    Linearizable,
    /// From the member's local state: may be stale by design.
    Serializable,
}

/// Talks to one member, as a Jepsen client bound to one node does.
pub struct EtcdClient {
    http: reqwest::Client,
    base: String,
    read_mode: ReadMode,
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    kvs: Vec<Kv>,
    #[serde(default)]
    succeeded: Option<bool>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Kv {
    #[serde(default)]
    value: Option<String>,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

impl EtcdClient {
    /// A client of the member at `addr` (`HOST:PORT`).
    pub fn new(http: reqwest::Client, addr: &str, read_mode: ReadMode) -> Self {
        EtcdClient {
            http,
            base: format!("http://{addr}"),
            read_mode,
        }
    }

    async fn send(&self, op: &Op) -> reqwest::Result<(u16, Option<Answer>)> {
        let key = b64(&op.key);
        let (path, body) = match op.action {
            Action::Read => (
                "range",
                json!({ "key": key, "serializable": self.read_mode == ReadMode::Serializable }),
            ),
            Action::Write(v) => ("put", json!({ "key": key, "value": b64(&v.to_string()) })),
            Action::Cas { from, to } => (
                "txn",
                json!({
                    "compare": [{
                        "key": key, "target": "VALUE", "result": "EQUAL",
                        "value": b64(&from.to_string()),
                    }],
                    "success": [{ "request_put": { "key": key, "value": b64(&to.to_string()) } }],
                }),
            ),
        };
        let response = self
            .http
            .post(format!("{}/v3/kv/{path}", self.base))
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }
}

impl Client for EtcdClient {
    async fn invoke(&mut self, op: &Op) -> Completion {
        let read = op.action == Action::Read;
        let done = match self.send(op).await {
            Ok((200, Some(answer))) if answer.code.is_none() && answer.error.is_none() => {
                match op.action {
                    Action::Read => match answer.kvs.first() {
                        None => Completion::ok(Value::Nil),
                        Some(kv) => match decode(kv.value.as_deref().unwrap_or("")) {
                            Some(v) => Completion::ok(v),
                            None => Completion::fail("undecodable value"),
                        },
                    },
                    Action::Write(_) => Completion::ok(op.input()),
                    Action::Cas { .. } if answer.succeeded == Some(true) => {
                        Completion::ok(op.input())
                    }
                    Action::Cas { .. } => Completion::fail("compare-failed"),
                }
            }
            Ok((status, answer)) => {
                let answer = answer.unwrap_or_default();
                let message = answer
                    .message
                    .or(answer.error)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let error = match answer.code {
                    Some(code) => format!("code {code}: {message}"),
                    None => message.clone(),
                };
                let definite = answer.code.is_some_and(|c| DEFINITE.contains(&c))
                    && !message.contains("leader changed");
                if read || definite {
                    Completion::fail(error)
                } else {
                    Completion::info(error)
                }
            }
            // Nothing was sent: definitely not applied.
            Err(e) if e.is_connect() => Completion::fail("connect"),
            Err(_) if read => Completion::fail("no-answer"),
            // The request may have left: it may have been applied.
            Err(e) if e.is_timeout() => Completion::info("timeout"),
            Err(_) => Completion::info("no-answer"),
        };
        if done.kind == EventType::Fail && done.error.as_deref() != Some("compare-failed") {
            tokio::time::sleep(UNAVAILABLE_BACKOFF).await;
        }
        done
    }
}

/// A stored value: our integers as decimal text.
fn decode(value: &str) -> Option<Value> {
    let bytes = B64.decode(value).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(match text.parse::<i64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Str(text),
    })
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    member_id: Option<String>,
    #[serde(default)]
    raft_term: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    header: Header,
    #[serde(default)]
    leader: Option<String>,
    #[serde(default, rename = "raftTerm")]
    raft_term: Option<String>,
}

/// The index of the member that leads and that a majority of the members
/// follow, by `/v3/maintenance/status` (leader when `leader ==
/// header.member_id`); `None` while there is no such member.
pub async fn leader(http: &reqwest::Client, addrs: &[SocketAddr]) -> Option<usize> {
    let statuses: Vec<Option<Status>> = crate::client::ask_all(addrs, |addr| {
        http.post(format!("http://{addr}/v3/maintenance/status"))
            .json(&json!({}))
    })
    .await;
    let term = |s: &Status| {
        s.raft_term
            .as_deref()
            .or(s.header.raft_term.as_deref())
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (index, id) = statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let s = s.as_ref()?;
            let id = s.header.member_id.as_deref()?;
            (s.leader.as_deref() == Some(id)).then(|| (i, id, term(s)))
        })
        .max_by_key(|&(_, _, t)| t)
        .map(|(i, id, _)| (i, id.to_string()))?;
    let followers = statuses
        .iter()
        .flatten()
        .filter(|s| s.leader.as_deref() == Some(id.as_str()))
        .count();
    (followers * 2 > addrs.len()).then_some(index)
}
