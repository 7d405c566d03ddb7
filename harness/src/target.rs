//! The systems under test, behind one interface the runner and the nemesis
//! schedule share. A target is two choices:
//!
//! - the **server** Splitbrain starts on each node, if any: `raftkv`
//!   (`--raftkv-binary`, `--bug`) or a real etcd cluster (`--etcd-binary`,
//!   default `etcd` on PATH); none with `--endpoints`, for a cluster someone
//!   else runs;
//! - the **API** its clients speak: raftkv's own, etcd's v3 gateway
//!   (`--read-mode linearizable|serializable`), or Consul's KV API
//!   (`--read-mode consistent|default|stale`, `--token`). Consul cannot be
//!   installed on the machines Splitbrain is developed on, so besides an
//!   existing Consul (`--endpoints`), `--consul-on-raftkv` starts raftkv
//!   nodes and drives them through the Consul KV subset raftkv serves.
//!
//! In namespace mode every etcd member serves clients on the nemesis port and
//! peers on port+1; in loopback mode member i serves clients on `port+i` and
//! peers on `port+i+1000`.

use nemesis::{NodeCommand, NodePaths};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use targets::consul::{self, ConsulClient};
use targets::etcd::{self, EtcdClient};
use targets::raftkv::{self, RaftkvClient};
use targets::{Client, Completion, Op};

/// Peer port offset from the client port in loopback mode, where nemesis
/// hands out consecutive client ports.
const LOOPBACK_PEER_OFFSET: u16 = 1000;

#[derive(Clone, Debug)]
pub struct Target {
    /// What runs on each node; `None` for a cluster Splitbrain did not start.
    pub server: Option<Server>,
    pub api: Api,
}

#[derive(Clone, Debug)]
pub enum Server {
    Raftkv {
        binary: PathBuf,
        bugs: Vec<String>,
        request_timeout_ms: u64,
        /// Passed as `--acl-token`, so the Consul API demands it.
        acl_token: Option<String>,
    },
    Etcd {
        binary: PathBuf,
    },
}

#[derive(Clone, Debug)]
pub enum Api {
    Raftkv,
    Etcd(etcd::ReadMode),
    Consul {
        read_mode: consul::ReadMode,
        token: Option<String>,
    },
}

impl Target {
    /// The target's name, as `--target` spells it.
    pub fn name(&self) -> &'static str {
        match self.api {
            Api::Raftkv => "raftkv",
            Api::Etcd(_) => "etcd",
            Api::Consul { .. } => "consul",
        }
    }

    /// The binary Splitbrain starts for each node, if it starts any.
    pub fn binary(&self) -> Option<&std::path::Path> {
        match self.server.as_ref()? {
            Server::Raftkv { binary, .. } | Server::Etcd { binary } => Some(binary),
        }
    }

    /// The port nemesis gives the nodes (client port).
    pub fn port(&self) -> u16 {
        match self.server {
            Some(Server::Etcd { .. }) => 2379,
            _ => 7000,
        }
    }

    /// The command of node `i` of the cluster `cluster` (its run name).
    /// Only called for targets with a server.
    pub fn node_command(
        &self,
        cluster: &str,
        i: usize,
        addrs: &[SocketAddr],
        paths: &NodePaths,
    ) -> NodeCommand {
        match self.server.as_ref().expect("a target Splitbrain starts") {
            Server::Raftkv {
                binary,
                bugs,
                request_timeout_ms,
                acl_token,
            } => {
                let members: Vec<String> = addrs
                    .iter()
                    .enumerate()
                    .map(|(j, a)| format!("{}={a}", j + 1))
                    .collect();
                let mut args = vec![
                    "--id".to_string(),
                    (i + 1).to_string(),
                    "--listen".into(),
                    addrs[i].to_string(),
                    "--cluster".into(),
                    members.join(","),
                    "--data-dir".into(),
                    paths.data_dir.display().to_string(),
                    "--log-file".into(),
                    paths.log_file.display().to_string(),
                    "--request-timeout-ms".into(),
                    request_timeout_ms.to_string(),
                ];
                for bug in bugs {
                    args.extend(["--bug".to_string(), bug.clone()]);
                }
                if let Some(token) = acl_token {
                    args.extend(["--acl-token".to_string(), token.clone()]);
                }
                NodeCommand {
                    program: binary.clone(),
                    args,
                    env: Vec::new(),
                }
            }
            Server::Etcd { binary } => {
                let peer = |a: &SocketAddr| {
                    // Loopback members share one IP: their ports are consecutive.
                    let offset = if a.ip().is_loopback() {
                        LOOPBACK_PEER_OFFSET
                    } else {
                        1
                    };
                    format!("http://{}:{}", a.ip(), a.port() + offset)
                };
                let members: Vec<String> = addrs
                    .iter()
                    .enumerate()
                    .map(|(j, a)| format!("{}={}", nemesis::node_name(j), peer(a)))
                    .collect();
                let client = format!("http://{}", addrs[i]);
                let args = [
                    "--name",
                    &nemesis::node_name(i),
                    "--data-dir",
                    &paths.data_dir.display().to_string(),
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                    "--listen-peer-urls",
                    &peer(&addrs[i]),
                    "--initial-advertise-peer-urls",
                    &peer(&addrs[i]),
                    "--initial-cluster",
                    &members.join(","),
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    &format!("splitbrain-{cluster}"),
                    "--heartbeat-interval",
                    "100",
                    "--election-timeout",
                    "1000",
                ]
                .map(String::from)
                .to_vec();
                NodeCommand {
                    program: binary.clone(),
                    args,
                    env: Vec::new(),
                }
            }
        }
    }

    /// The index of the node a majority follows, if any. For a Consul
    /// cluster Splitbrain did not start, an endpoint that knows a leader
    /// (see [`consul::any_leader`]).
    pub async fn leader(&self, http: &reqwest::Client, addrs: &[SocketAddr]) -> Option<usize> {
        match (&self.server, &self.api) {
            (Some(Server::Raftkv { .. }), _) | (None, Api::Raftkv) => {
                raftkv::leader(http, addrs).await
            }
            (Some(Server::Etcd { .. }), _) | (None, Api::Etcd(_)) => {
                etcd::leader(http, addrs).await
            }
            (None, Api::Consul { .. }) => consul::any_leader(http, addrs).await,
        }
    }

    /// Polls until a node leads a majority, for up to `patience`.
    pub async fn wait_for_leader(
        &self,
        http: &reqwest::Client,
        addrs: &[SocketAddr],
        patience: Duration,
    ) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(leader) = self.leader(http, addrs).await {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Refuses a cluster the run could not use, with what to do about it.
    pub async fn preflight(
        &self,
        http: &reqwest::Client,
        addrs: &[SocketAddr],
    ) -> Result<(), String> {
        match &self.api {
            Api::Consul { token, .. } => consul::preflight(http, addrs, token.as_deref()).await,
            Api::Raftkv | Api::Etcd(_) => Ok(()),
        }
    }

    /// A client bound to the node at `addr`.
    pub fn client(&self, http: reqwest::Client, addr: &SocketAddr) -> TargetClient {
        let addr = addr.to_string();
        match &self.api {
            Api::Raftkv => TargetClient::Raftkv(RaftkvClient::new(http, &addr)),
            Api::Etcd(read_mode) => TargetClient::Etcd(EtcdClient::new(http, &addr, *read_mode)),
            Api::Consul { read_mode, token } => {
                TargetClient::Consul(ConsulClient::new(http, &addr, *read_mode, token.clone()))
            }
        }
    }
}

/// A client of whichever target runs.
pub enum TargetClient {
    Raftkv(RaftkvClient),
    Etcd(EtcdClient),
    Consul(ConsulClient),
}

impl Client for TargetClient {
    async fn invoke(&mut self, op: &Op) -> Completion {
        match self {
            TargetClient::Raftkv(c) => c.invoke(op).await,
            TargetClient::Etcd(c) => c.invoke(op).await,
            TargetClient::Consul(c) => c.invoke(op).await,
        }
    }
}

/// Parses `--endpoints` URLs (`http://HOST:PORT`) into addresses, refusing
/// anything but loopback and the run's own namespace subnet: Splitbrain
/// only contacts hosts it is allowed to test.
pub fn parse_endpoints(urls: &[String], subnet: &str) -> Result<Vec<SocketAddr>, String> {
    let (net, len) = parse_subnet(subnet)?;
    urls.iter()
        .map(|url| {
            let rest = url.strip_prefix("http://").ok_or_else(|| {
                format!("endpoint {url:?}: expected http://HOST:PORT (a plain-HTTP client URL)")
            })?;
            let hostport = rest.trim_end_matches('/');
            let hostport = hostport.replacen("localhost:", "127.0.0.1:", 1);
            let addr: SocketAddr = hostport.parse().map_err(|_| {
                format!("endpoint {url:?}: expected an IP address and a port, e.g. http://127.0.0.1:2379")
            })?;
            let allowed = match addr.ip() {
                ip if ip.is_loopback() => true,
                std::net::IpAddr::V4(v4) => {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    u32::from(v4) & mask == net & mask
                }
                _ => false,
            };
            if allowed {
                Ok(addr)
            } else {
                Err(format!(
                    "endpoint {url:?} is neither loopback nor in the namespace subnet {subnet}: \
                     Splitbrain only contacts clusters on this machine, never other hosts"
                ))
            }
        })
        .collect()
}

fn parse_subnet(subnet: &str) -> Result<(u32, u32), String> {
    let bad = || format!("bad --subnet {subnet:?}: expected A.B.C.D/LEN");
    let (ip, len) = subnet.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(bad)?;
    Ok((u32::from(ip), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_loopback_or_our_subnet_only() {
        let ok = |u: &str| parse_endpoints(&[u.to_string()], "10.213.0.0/24");
        assert_eq!(
            ok("http://127.0.0.1:2379").unwrap()[0].to_string(),
            "127.0.0.1:2379"
        );
        assert!(ok("http://localhost:2379/").is_ok());
        assert!(ok("http://10.213.0.11:2379").is_ok());
        assert!(ok("http://10.214.0.11:2379").is_err());
        assert!(ok("http://192.0.2.7:2379").is_err());
        assert!(ok("https://127.0.0.1:2379").is_err());
        assert!(ok("http://example.com:2379").is_err());
    }

    #[test]
    fn etcd_members_get_distinct_peer_ports() {
        let target = Target {
            server: Some(Server::Etcd {
                binary: "etcd".into(),
            }),
            api: Api::Etcd(etcd::ReadMode::Linearizable),
        };
        let addrs: Vec<SocketAddr> = (0..3)
            .map(|i| format!("127.0.0.1:{}", 2379 + i).parse().unwrap())
            .collect();
        let paths = NodePaths {
            data_dir: "/d".into(),
            log_file: "/l".into(),
        };
        let cmd = target.node_command("abc", 1, &addrs, &paths);
        let cluster = &cmd.args[cmd
            .args
            .iter()
            .position(|a| a == "--initial-cluster")
            .unwrap()
            + 1];
        assert_eq!(
            cluster,
            "n1=http://127.0.0.1:3379,n2=http://127.0.0.1:3380,n3=http://127.0.0.1:3381"
        );
    }
}
