//! The client protocol: how a worker applies one operation to the system
//! under test, and what it learned.
//!
//! As in Jepsen, a client must say for every operation whether it took effect
//! (`ok`), definitely did not (`fail`), or may have (`info`). Getting `fail`
//! wrong makes the checker unsound, so a client answers `info` whenever it is
//! not sure.

use checker::{EventType, Func, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What an operation does, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Write(i64),
    Cas { from: i64, to: i64 },
}

/// One operation a generator hands to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub key: Arc<str>,
    pub action: Action,
}

impl Op {
    /// The function as the history names it.
    pub fn func(&self) -> Func {
        match self.action {
            Action::Read => Func::Read,
            Action::Write(_) => Func::Write,
            Action::Cas { .. } => Func::Cas,
        }
    }

    /// The invocation's value: what to write, `[from, to]` for cas.
    pub fn input(&self) -> Value {
        match self.action {
            Action::Read => Value::Nil,
            Action::Write(v) => Value::Int(v),
            Action::Cas { from, to } => Value::List(vec![Value::Int(from), Value::Int(to)]),
        }
    }
}

/// How an operation ended, in the history's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info`; never `Invoke`.
    pub kind: EventType,
    /// For an `ok` read, what it returned (`Nil` for an absent key); for an
    /// `ok` write or cas, the invocation's value.
    pub value: Value,
    pub error: Option<String>,
}

impl Completion {
    pub fn ok(value: Value) -> Self {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
        }
    }

    /// Definitely not applied.
    pub fn fail(error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Fail,
            value: Value::Nil,
            error: Some(error.into()),
        }
    }

    /// Maybe applied, maybe not, maybe later.
    pub fn info(error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Info,
            value: Value::Nil,
            error: Some(error.into()),
        }
    }
}

/// A connection to the system under test, owned by one worker.
///
/// The runner bounds every call with `--op-timeout` and records a call cut
/// off that way as `info`, so `invoke` may simply wait.
pub trait Client: Send + 'static {
    fn invoke(&mut self, op: &Op) -> impl Future<Output = Completion> + Send;
}

/// The shared HTTP connection pool. Connecting is bounded well below the
/// operation timeout: a connection that was never made carried no request,
/// so that failure is a definite `fail`, whereas a request cut off by the
/// operation timeout is `info`.
pub fn http(op_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(op_timeout / 2)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

/// Asks every node at once and collects the answers in node order; a node
/// that does not answer within 500 ms (a paused one never does) counts as
/// `None`. Leader lookups of every target go through this.
pub async fn ask_all<T: serde::de::DeserializeOwned + Send + 'static>(
    addrs: &[std::net::SocketAddr],
    request: impl Fn(std::net::SocketAddr) -> reqwest::RequestBuilder,
) -> Vec<Option<T>> {
    let asks: Vec<_> = addrs
        .iter()
        .map(|&addr| {
            let request = request(addr);
            tokio::spawn(async move {
                let ask = async { request.send().await.ok()?.json::<T>().await.ok() };
                tokio::time::timeout(std::time::Duration::from_millis(500), ask)
                    .await
                    .ok()
                    .flatten()
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(asks.len());
    for ask in asks {
        answers.push(ask.await.ok().flatten());
    }
    answers
}
