//! The client for raftkv's HTTP API, mapping every answer to ok / fail / info
//! by raftkv's documented error codes (see `targets/raftkv/src/main.rs`).

use crate::client::{Action, Client, Completion, Op};
use checker::{EventType, Value};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// Codes raftkv documents as "not applied". Every other code, and any code
/// this client does not know, is taken as "outcome unknown".
const NOT_APPLIED: &[&str] = &[
    "bad-request",
    "not-found",
    "compare-failed",
    "not-leader",
    "no-leader",
    "leader-unreachable",
];

/// Failures that are a healthy cluster's normal answers, not unavailability.
const ANSWERS: &[&str] = &["compare-failed", "not-found"];

const UNAVAILABLE_BACKOFF: Duration = Duration::from_millis(20);

/// Talks to one node, as a Jepsen client bound to one node does; raftkv
/// forwards to the leader itself.
pub struct RaftkvClient {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    code: Option<String>,
}

impl RaftkvClient {
    /// A client of the node at `addr` (`HOST:PORT`).
    pub fn new(http: reqwest::Client, addr: &str) -> Self {
        RaftkvClient {
            http,
            base: format!("http://{addr}"),
        }
    }

    async fn send(&self, op: &Op) -> reqwest::Result<(u16, Body)> {
        let url = format!("{}/kv/{}", self.base, op.key);
        let request = match op.action {
            Action::Read => self.http.get(url),
            Action::Write(v) => self.http.put(url).json(&serde_json::json!({ "value": v })),
            Action::Cas { from, to } => self
                .http
                .post(format!("{url}/cas"))
                .json(&serde_json::json!({ "from": from, "to": to })),
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json::<Body>().await?;
        Ok((status, body))
    }
}

impl Client for RaftkvClient {
    async fn invoke(&mut self, op: &Op) -> Completion {
        let read = op.action == Action::Read;
        let done = match self.send(op).await {
            Ok((200, body)) if read => Completion::ok(value(body.value)),
            Ok((200, _)) => Completion::ok(op.input()),
            Ok((_, body)) => match body.code.as_deref() {
                // An absent key reads as nil, the register's initial state.
                Some("not-found") if read => Completion::ok(Value::Nil),
                Some(code) if NOT_APPLIED.contains(&code) => Completion::fail(code),
                Some(code) => Completion::info(code),
                None => Completion::info("unexpected answer without an error code"),
            },
            Err(e) if e.is_connect() => Completion::fail("connect"),
            // The request may have left: it may have been applied.
            Err(e) if e.is_timeout() => Completion::info("timeout"),
            Err(_) => Completion::info("no-answer"),
        };
        if done.kind == EventType::Fail && !ANSWERS.contains(&done.error.as_deref().unwrap_or("")) {
            // A down node refuses at once: without a pause, a worker bound to
            // it would spin, flooding the history with failures and taking
            // the CPU from the nodes that are up.
            tokio::time::sleep(UNAVAILABLE_BACKOFF).await;
        }
        done
    }
}

fn value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Number(n) if n.is_i64() => Value::Int(n.as_i64().expect("is i64")),
        other => Value::Str(other.to_string()),
    }
}

#[derive(Deserialize)]
struct Status {
    role: String,
    term: u64,
    leader: Option<u64>,
}

/// The index of the node that leads and that a majority of the nodes
/// follow, by raftkv's `GET /status`; `None` while there is no such node.
pub async fn leader(http: &reqwest::Client, addrs: &[SocketAddr]) -> Option<usize> {
    let statuses: Vec<Option<Status>> =
        crate::client::ask_all(addrs, |addr| http.get(format!("http://{addr}/status"))).await;
    // raftkv numbers nodes from 1; the cluster from 0.
    let (index, _) = statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.as_ref()
                .filter(|s| s.role == "leader")
                .map(|s| (i, s.term))
        })
        .max_by_key(|&(_, term)| term)?;
    let followers = statuses
        .iter()
        .flatten()
        .filter(|s| s.leader == Some(index as u64 + 1))
        .count();
    (followers * 2 > addrs.len()).then_some(index)
}
