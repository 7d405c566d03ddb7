//! Raft RPCs between nodes: JSON over HTTP on the same port as the client API (`POST /raft/*`,
//! served by `api.rs`). The remote side answers with the serialized `Result` of the local openraft
//! call, so openraft's own errors cross the wire unchanged.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::{DurableLog, NodeId, TypeConfig};

pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

/// Creates one connection handle per peer; all share one reqwest connection pool.
pub struct Network {
    client: reqwest::Client,
    /// Each member's endpoints by address, parsed once: openraft asks for a new client for every
    /// ReadIndex round, and URL parsing showed in profiles.
    endpoints: HashMap<String, Arc<Endpoints>>,
    durable: DurableLog,
}

impl Network {
    pub fn new(client: reqwest::Client, durable: DurableLog) -> Self {
        Network {
            client,
            endpoints: HashMap::new(),
            durable,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let endpoints = self
            .endpoints
            .entry(node.addr.clone())
            .or_insert_with(|| Arc::new(Endpoints::parse(&node.addr)))
            .clone();
        Peer {
            target,
            endpoints,
            client: self.client.clone(),
            durable: self.durable.clone(),
        }
    }
}

/// A member's Raft RPC URLs, or why its address gives none.
struct Endpoints(Result<Urls, String>);

struct Urls {
    append: reqwest::Url,
    vote: reqwest::Url,
    snapshot: reqwest::Url,
}

impl Endpoints {
    fn parse(addr: &str) -> Self {
        let url = |path| {
            reqwest::Url::parse(&format!("http://{addr}{path}"))
                .map_err(|e| format!("unusable member address {addr:?}: {e}"))
        };
        Endpoints((|| {
            Ok(Urls {
                append: url(APPEND_PATH)?,
                vote: url(VOTE_PATH)?,
                snapshot: url(SNAPSHOT_PATH)?,
            })
        })())
    }
}

pub struct Peer {
    target: NodeId,
    endpoints: Arc<Endpoints>,
    client: reqwest::Client,
    /// This node's durable log, which bounds the commit it announces.
    durable: DurableLog,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        endpoint: fn(&Urls) -> &reqwest::Url,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let url = match &self.endpoints.0 {
            Ok(urls) => endpoint(urls).clone(),
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(e)))),
        };
        let resp = self
            .client
            .post(url)
            .timeout(option.hard_ttl())
            .json(req)
            .send()
            .await
            .map_err(|e| {
                // A refused connection is a dead peer: let openraft back off instead of spinning.
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let result: Result<Resp, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    /// Sends the entries at once but announces only a commit this node's disk backs
    /// ([`DurableLog::announceable`]): followers apply what they are told is committed.
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, Infallible> {
        rpc.leader_commit = self.durable.announceable(rpc.leader_commit);
        self.call(|u| &u.append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(|u| &u.snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, Infallible> {
        self.call(|u| &u.vote, &rpc, &option).await
    }

    /// Retry an unreachable peer every 100 ms (default 500 ms) so that a restarted node is
    /// caught up quickly.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
