//! The client for Consul's KV HTTP API (`/v1/kv/<key>`), mapping every answer to ok / fail /
//! info as Jepsen's Consul client did.
//!
//! - read: `GET /v1/kv/<key>` with `?consistent`, nothing, or `?stale` by [`ReadMode`]; the
//!   answer is a JSON array whose `Value` is base64 (or `null`); 404 is an absent key (`nil`).
//! - write: `PUT /v1/kv/<key>` with the value as the raw body; Consul answers `true`.
//! - cas `[from, to]`: a GET (same read mode), then, if the value is `from`,
//!   `PUT /v1/kv/<key>?cas=<ModifyIndex>`: `true` means swapped, `false` means the key changed
//!   since the GET and nothing was written. A GET that finds another value or no key ends the cas
//!   as `fail` without writing.
//!
//! Every request carries `X-Consul-Token` when a token is given. Consul's errors are plain text
//! and say nothing about whether a write was applied: 500 (`No cluster leader`, `rpc error making
//! call: ...`), 502–504 and a request cut off after it was sent are `info` for writes and cas; a
//! refused connection, 400, 403 (ACL) and 429 (rate limit) are `fail` (never applied). Any failed
//! read is `fail`. A 403 before the run starts is a setup error ([`preflight`]).

use crate::client::{Action, Client, Completion, Op};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use checker::{EventType, Value};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN_HEADER: &str = "X-Consul-Token";

const UNAVAILABLE_BACKOFF: Duration = Duration::from_millis(20);

/// HTTP statuses Consul answers before it applies anything.
const DEFINITE: &[u16] = &[400, 403, 404, 405, 413, 429];

/// How reads are served (`--read-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// `?consistent`: the leader confirms its leadership with a quorum first.
    Consistent,
    /// No flag: the leader answers under its lease (Consul's default).
    Default,
    /// `?stale`: any server answers from its local state, stale by design.
    Stale,
}

impl ReadMode {
    fn query(self) -> &'static str {
        match self {
            ReadMode::Consistent => "?consistent",
            ReadMode::Default => "",
            ReadMode::Stale => "?stale",
        }
    }
}

/// Talks to one agent or server, as a Jepsen client bound to one node does.
pub struct ConsulClient {
    http: reqwest::Client,
    base: String,
    read_mode: ReadMode,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    #[serde(default)]
    value: Option<String>,
    modify_index: u64,
}

/// What a GET found.
enum Found {
    Absent,
    Present(Value, u64),
}

/// A request's failure, already classified.
struct Failed {
    definite: bool,
    error: String,
}

impl ConsulClient {
    /// A client of the agent at `addr` (`HOST:PORT`), sending `token` if given.
    pub fn new(
        http: reqwest::Client,
        addr: &str,
        read_mode: ReadMode,
        token: Option<String>,
    ) -> Self {
        ConsulClient {
            http,
            base: format!("http://{addr}"),
            read_mode,
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.header(TOKEN_HEADER, token),
            None => request,
        }
    }

    async fn get(&self, key: &str) -> Result<Found, Failed> {
        let url = format!("{}/v1/kv/{key}{}", self.base, self.read_mode.query());
        let (status, body) = self.send(self.request(reqwest::Method::GET, url)).await?;
        if status == 404 {
            return Ok(Found::Absent);
        }
        let entries: Vec<Entry> = serde_json::from_slice(&body).map_err(|e| Failed {
            definite: true,
            error: format!("unreadable answer: {e}"),
        })?;
        let entry = entries.first().ok_or_else(|| Failed {
            definite: true,
            error: "empty answer".into(),
        })?;
        let value = decode(entry.value.as_deref()).ok_or_else(|| Failed {
            definite: true,
            error: "undecodable value".into(),
        })?;
        Ok(Found::Present(value, entry.modify_index))
    }

    /// PUT, with `?cas=INDEX` if given; what Consul answered (`true` / `false`).
    async fn put(&self, key: &str, value: i64, cas: Option<u64>) -> Result<bool, Failed> {
        let query = cas.map(|i| format!("?cas={i}")).unwrap_or_default();
        let url = format!("{}/v1/kv/{key}{query}", self.base);
        let request = self
            .request(reqwest::Method::PUT, url)
            .body(value.to_string());
        let (_, body) = self.send(request).await?;
        match body.trim_ascii() {
            b"true" => Ok(true),
            b"false" => Ok(false),
            other => Err(Failed {
                definite: false,
                error: format!("unexpected answer {:?}", String::from_utf8_lossy(other)),
            }),
        }
    }

    /// Sends one request; a 2xx or 404 answer with its body, anything else classified.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failed> {
        let response = request.send().await.map_err(|e| Failed {
            // Nothing was sent over a connection that was never made.
            definite: e.is_connect(),
            error: if e.is_connect() {
                "connect".into()
            } else if e.is_timeout() {
                "timeout".into()
            } else {
                "no-answer".into()
            },
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|_| Failed {
            definite: false,
            error: "no-answer".into(),
        })?;
        if response_ok(status) {
            return Ok((status, body.to_vec()));
        }
        let text = String::from_utf8_lossy(&body);
        Err(Failed {
            definite: DEFINITE.contains(&status),
            error: format!("HTTP {status}: {}", text.trim()),
        })
    }

    async fn cas(&self, key: &str, from: i64, to: i64) -> Result<bool, Failed> {
        match self.get(key).await {
            // Nothing was written: a failed GET is as definite as a refused compare.
            Err(failed) => Err(Failed {
                definite: true,
                ..failed
            }),
            Ok(Found::Present(Value::Int(v), index)) if v == from => {
                self.put(key, to, Some(index)).await
            }
            Ok(_) => Ok(false),
        }
    }
}

fn response_ok(status: u16) -> bool {
    (200..300).contains(&status) || status == 404
}

impl Client for ConsulClient {
    async fn invoke(&mut self, op: &Op) -> Completion {
        let done = match op.action {
            Action::Read => match self.get(&op.key).await {
                Ok(Found::Absent) => Completion::ok(Value::Nil),
                Ok(Found::Present(value, _)) => Completion::ok(value),
                Err(failed) => Completion::fail(failed.error),
            },
            Action::Write(v) => match self.put(&op.key, v, None).await {
                Ok(true) => Completion::ok(op.input()),
                Ok(false) => Completion::info("a plain PUT answered false"),
                Err(failed) => classified(failed),
            },
            Action::Cas { from, to } => match self.cas(&op.key, from, to).await {
                Ok(true) => Completion::ok(op.input()),
                Ok(false) => Completion::fail("compare-failed"),
                Err(failed) => classified(failed),
            },
        };
        if done.kind == EventType::Fail && done.error.as_deref() != Some("compare-failed") {
            // A down agent refuses at once: do not spin on it.
            tokio::time::sleep(UNAVAILABLE_BACKOFF).await;
        }
        done
    }
}

fn classified(failed: Failed) -> Completion {
    if failed.definite {
        Completion::fail(failed.error)
    } else {
        Completion::info(failed.error)
    }
}

/// A stored value: our integers as decimal text; `null` (an empty value) as `""`.
fn decode(value: Option<&str>) -> Option<Value> {
    let bytes = B64.decode(value.unwrap_or("")).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(match text.parse::<i64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Str(text),
    })
}

/// Refuses to start a run the ACLs would deny: one GET through every agent, and a 403 becomes
/// a message saying what to do.
pub async fn preflight(
    http: &reqwest::Client,
    addrs: &[SocketAddr],
    token: Option<&str>,
) -> Result<(), String> {
    for addr in addrs {
        let mut request = http.get(format!("http://{addr}/v1/kv/splitbrain-preflight"));
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        let Ok(response) = request.send().await else {
            continue; // unreachable agents are the run's business, not a setup error
        };
        if response.status().as_u16() == 403 {
            let text = response.text().await.unwrap_or_default();
            let given = if token.is_some() {
                "the token given"
            } else {
                "no token"
            };
            return Err(format!(
                "Consul at {addr} refused a KV read with {given} (403 {}): pass an ACL token \
                 with read and write rights on the test's keys with --token or \
                 CONSUL_HTTP_TOKEN",
                text.trim()
            ));
        }
    }
    Ok(())
}

/// For a cluster Splitbrain did not start: the index of an endpoint whose agent knows a
/// leader (`GET /v1/status/leader` names one), so a run can wait until the cluster is ready.
/// Consul names its leader by its server RPC address, which cannot be mapped to an HTTP
/// endpoint; the nemesis, which needs the real leader, only runs on clusters it started.
pub async fn any_leader(http: &reqwest::Client, addrs: &[SocketAddr]) -> Option<usize> {
    let leaders: Vec<Option<String>> = crate::client::ask_all(addrs, |addr| {
        http.get(format!("http://{addr}/v1/status/leader"))
    })
    .await;
    leaders
        .iter()
        .position(|l| l.as_deref().is_some_and(|l| !l.is_empty()))
}
