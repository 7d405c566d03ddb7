//! Faults and the local cluster for Splitbrain.
//!
//! [`LocalCluster`] starts the nodes of a target as real processes, each in its own
//! network namespace, and injects faults: partitions with iptables inside the nodes'
//! namespaces, and process faults (SIGKILL, SIGSTOP) by pid. Every fault has an undo.
//!
//! ## Network layout (namespace mode)
//!
//! ```text
//!   host (harness)                         subnet 10.213.0.0/24 (--subnet)
//!   ───────────────────────────────────────────────────────────────────────
//!   bridge sb-<name>  10.213.0.1
//!      ├── sbv<name>1 ══ veth ══ eth0 10.213.0.11 ┐ netns sb-<name>-n1 (node n1, lo up)
//!      ├── sbv<name>2 ══ veth ══ eth0 10.213.0.12 ┤ netns sb-<name>-n2 (node n2, lo up)
//!      └── sbv<name>3 ══ veth ══ eth0 10.213.0.13 ┘ netns sb-<name>-n3 (node n3, lo up)
//! ```
//!
//! The harness reaches node i at `10.213.0.(11+i):port` through the bridge. Because each
//! node has its own network stack, a partition is a set of `-A INPUT -s PEER -j DROP`
//! rules in the *nodes'* iptables, never the host's. Node index i (0-based in this API)
//! is named `n<i+1>`, like raftkv's 1-based ids; its files are under `dir/nodes/n<i+1>/`
//! (`data/`, `stdout.log`, `stderr.log`, `node.log`) and the cluster's record of what it
//! created is `dir/cluster.json`.
//!
//! Without root or without `ip`, [`NetworkMode::Auto`] falls back to loopback: every node
//! on 127.0.0.1 with its own port. Kill and pause still work; partitions are refused.
//!
//! ## Safety rules
//!
//! - Namespaces, the bridge, veths and addresses are created for our own nodes only, under
//!   our own names (`sb-*`, `sbv*`), and removed on teardown.
//! - The subnet must be private and must not overlap any host route (`ip -4 route`);
//!   otherwise `start` refuses, naming the route and the `--subnet` flag.
//! - iptables only ever runs as `ip netns exec sb-<name>-n<i> iptables ...`.
//! - Only loopback and our namespaces' addresses are contacted (by the harness's probe).
//! - Only processes we started are signalled, by pid (their process group); `cleanup()`
//!   first checks that `/proc/<pid>/cmdline` still matches what was recorded.
//! - Teardown runs on [`LocalCluster::teardown`], on drop, and (after
//!   [`install_signal_cleanup`]) on SIGINT/SIGTERM and on panic. Each cluster is recorded
//!   in `dir/cluster.json` and in an index (`/run/splitbrain/` as root) *before* anything
//!   is created, so [`cleanup`] can remove what a SIGKILLed harness left behind.
//!
//! ## Fault catalogue
//!
//! | Fault | How | Undo |
//! |---|---|---|
//! | [`Fault::Partition`] with [`Grudge::random_halves`], [`Grudge::majorities_ring`], [`Grudge::bridge`], [`Grudge::isolate`] (one node, e.g. the leader) | node i drops packets from each node in `drops[i]` (INPUT DROP rules in its namespace) | flush the INPUT chain of the affected nodes |
//! | [`Fault::Kill`] (one node, the leader, a [`minority`]) | SIGKILL to the node's process group | restart with the same command and data dir |
//! | [`Fault::Pause`] (same targets) | SIGSTOP | SIGCONT |
//!
//! [`LocalCluster::heal_all`] undoes everything outstanding.

mod cleanup;
mod grudge;
mod net;
mod process;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use cleanup::{cleanup, install_signal_cleanup};
pub use grudge::{minority, node_name, Fault, Grudge};
pub use std::net::SocketAddr;

use cleanup::{Proc, Shared, State};
use net::Subnet;
use process::Node;

/// How the nodes are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Namespaces when running as root with `ip` installed, else loopback.
    Auto,
    /// One network namespace per node, joined by a bridge; partitions possible.
    Namespaces,
    /// All nodes on 127.0.0.1 with distinct ports; kill and pause only.
    Loopback,
}

/// What cluster to build.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Short run id, `[a-z0-9]`, at most 6 characters. Names derived from it:
    /// `sb-<name>-n<i+1>` (namespace), `sb-<name>` (bridge), `sbv<name><i+1>` (veth, at most
    /// 15 characters) for node index i.
    pub name: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Run directory; node i's files live under `dir/nodes/n<i+1>/`
    /// (`data/`, `stdout.log`, `stderr.log`, `node.log`).
    pub dir: PathBuf,
    /// Network mode.
    pub network: NetworkMode,
    /// Private IPv4 subnet for namespace mode, e.g. "10.213.0.0/24".
    pub subnet: String,
    /// Node port: every node listens on it in namespace mode; loopback mode
    /// uses `port + i` (moved up to a free range if taken).
    pub port: u16,
}

/// The default subnet for namespace mode.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/24";

/// What to run for node `i`: the harness knows the target's flags.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Where node `i` keeps its data and log.
#[derive(Debug, Clone)]
pub struct NodePaths {
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
}

/// A running local cluster. Dropping it tears it down (ignoring errors).
pub struct LocalCluster {
    mode: NetworkMode,
    addrs: Vec<SocketAddr>,
    nodes: Vec<Node>,
    /// Nodes whose INPUT chains hold partition rules.
    partitioned: Vec<bool>,
    state: Shared,
}

impl LocalCluster {
    /// Creates the network (or picks loopback ports), starts every node with `command(i, &addrs, &paths_i)`,
    /// and waits until `ready(&addrs)` returns true (polled every 100 ms, up to `timeout`).
    /// On any failure, whatever was already created is removed again.
    pub fn start(
        spec: ClusterSpec,
        command: &dyn Fn(usize, &[SocketAddr], &NodePaths) -> NodeCommand,
        ready: &dyn Fn(&[SocketAddr]) -> bool,
        timeout: Duration,
    ) -> Result<LocalCluster, Error> {
        check_name(&spec.name)?;
        if spec.nodes == 0 {
            return Err(Error::new("a cluster needs at least one node"));
        }
        let mode = resolve_mode(spec.network)?;
        let state = Arc::new(Mutex::new(State {
            name: spec.name.clone(),
            dir: spec.dir.clone(),
            owner_pid: std::process::id(),
            owner_cmdline: process::cmdline(std::process::id()).unwrap_or_default(),
            ..State::default()
        }));
        let mut cluster = LocalCluster {
            mode,
            addrs: Vec::new(),
            nodes: Vec::new(),
            partitioned: vec![false; spec.nodes],
            state,
        };
        cleanup::register(&cluster.state);
        // On error, `cluster` is dropped here and tears down what was created so far.
        cluster.addrs = match mode {
            NetworkMode::Namespaces => cluster.create_network(&spec)?,
            _ => loopback_addrs(spec.port, spec.nodes)?,
        };
        for i in 0..spec.nodes {
            let dir = spec.dir.join("nodes").join(node_name(i));
            let paths = NodePaths {
                data_dir: dir.join("data"),
                log_file: dir.join("node.log"),
            };
            std::fs::create_dir_all(&paths.data_dir)
                .map_err(|e| process::io_error(&paths.data_dir, e))?;
            let netns = (mode == NetworkMode::Namespaces).then(|| ns_name(&spec.name, i));
            cluster.nodes.push(Node {
                name: node_name(i),
                command: command(i, &cluster.addrs, &paths),
                dir,
                paths,
                netns,
                child: None,
                paused: false,
            });
        }
        for i in 0..spec.nodes {
            cluster.start_node(i)?;
        }
        cluster.wait_ready(ready, timeout)?;
        Ok(cluster)
    }

    fn create_network(&mut self, spec: &ClusterSpec) -> Result<Vec<SocketAddr>, Error> {
        let subnet = Subnet::parse(&spec.subnet)?;
        if !subnet.fits(spec.nodes) {
            return Err(Error::new(format!(
                "subnet {} is too small for {} nodes at .11 and up",
                spec.subnet, spec.nodes
            ))
            .hint("choose a larger --subnet, e.g. a /24"));
        }
        let bridge = format!("sb-{}", spec.name);
        // Veth names can coincide across runs ("a" node 11 and "a1" node 1 are both sbva11).
        let veths: Vec<String> = (0..spec.nodes)
            .map(|i| format!("sbv{}{}", spec.name, i + 1))
            .collect();
        let clash = net::namespaces()
            .into_iter()
            .chain(net::links())
            .find(|n| *n == bridge || n.starts_with(&format!("{bridge}-")) || veths.contains(n));
        if let Some(existing) = clash {
            return Err(Error::new(format!("{existing} already exists")).hint(format!(
                "another run named {:?} is active or crashed: run the cleanup command, or use another run name",
                spec.name
            )));
        }
        net::check_routes(&subnet, &spec.subnet)?;
        // Record, then create: a crash in between leaves a record, never an orphan.
        self.record(|s| s.bridge = Some(bridge.clone()))?;
        net::add_bridge(&bridge, &subnet)?;
        let mut addrs = Vec::new();
        for (i, veth) in veths.into_iter().enumerate() {
            let ns = ns_name(&spec.name, i);
            self.record(|s| {
                s.namespaces.push(ns.clone());
                s.veths.push(veth.clone());
            })?;
            net::add_namespace(&ns)?;
            let addr = subnet.host(11 + i as u32);
            net::add_veth(&veth, &ns, &bridge, addr, &subnet)?;
            addrs.push(SocketAddr::new(IpAddr::V4(addr), spec.port));
        }
        Ok(addrs)
    }

    fn wait_ready(
        &mut self,
        ready: &dyn Fn(&[SocketAddr]) -> bool,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            for node in &mut self.nodes {
                node.check_alive()?;
            }
            if ready(&self.addrs) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs = self.nodes[0].dir.parent().map(|d| d.display().to_string());
                return Err(
                    Error::new(format!("the cluster was not ready after {timeout:?}")).hint(
                        format!(
                            "see the nodes' logs under {}, or allow a longer timeout",
                            logs.unwrap_or_default()
                        ),
                    ),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the record and writes it to disk.
    fn record(&self, change: impl FnOnce(&mut State)) -> Result<(), Error> {
        let mut state = self.lock();
        change(&mut state);
        state.save()
    }

    fn node(&mut self, node: usize) -> Result<&mut Node, Error> {
        let n = self.nodes.len();
        self.nodes.get_mut(node).ok_or_else(|| {
            Error::new(format!(
                "there is no node {node} (the cluster has {n}, numbered from 0)"
            ))
        })
    }

    fn start_node(&mut self, node: usize) -> Result<(), Error> {
        let n = self.node(node)?;
        n.spawn()?;
        let proc = Proc {
            pid: n.pid().expect("just spawned"),
            cmdline: n.argv(),
        };
        self.record(|s| s.procs.push(proc))
    }

    /// The nodes' addresses, index i = node i.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The resolved mode: `Namespaces` or `Loopback`.
    pub fn mode(&self) -> NetworkMode {
        self.mode
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The pid of node `node` (the target process itself), or `None` while it is killed.
    pub fn pid(&self, node: usize) -> Option<u32> {
        self.nodes.get(node).and_then(Node::pid)
    }

    /// Node `node`'s data dir and log file (as passed to the command).
    pub fn paths(&self, node: usize) -> Option<&NodePaths> {
        self.nodes.get(node).map(|n| &n.paths)
    }

    /// The network namespace of node `node` (namespace mode only).
    pub fn namespace(&self, node: usize) -> Option<&str> {
        self.nodes.get(node).and_then(|n| n.netns.as_deref())
    }

    /// Injects a fault. Nodes already in the fault's state (a kill of a dead node, a pause
    /// of a paused one) are skipped, so healing the result never undoes someone else's fault.
    pub fn apply(&mut self, fault: &Fault) -> Result<Applied, Error> {
        let mut nodes = Vec::new();
        match fault {
            Fault::Partition(grudge) => {
                if grudge.drops.len() != self.nodes.len() {
                    return Err(Error::new(format!(
                        "the partition is for {} nodes but the cluster has {}",
                        grudge.drops.len(),
                        self.nodes.len()
                    )));
                }
                let ns: Vec<String> = self.partition_namespaces()?;
                net::check_iptables(&ns[0])?;
                for (i, peers) in grudge.drops.iter().enumerate() {
                    for &peer in peers {
                        let IpAddr::V4(ip) = self.addrs[peer].ip() else {
                            unreachable!("namespace mode uses IPv4")
                        };
                        self.partitioned[i] = true;
                        net::drop_from(&ns[i], ip)?;
                    }
                    if !peers.is_empty() {
                        nodes.push(i);
                    }
                }
            }
            Fault::Kill(targets) => {
                for &i in targets {
                    if self.node(i)?.child.is_some() {
                        self.kill(i)?;
                        nodes.push(i);
                    }
                }
            }
            Fault::Pause(targets) => {
                for &i in targets {
                    let n = self.node(i)?;
                    if n.child.is_some() && !n.paused {
                        self.pause(i)?;
                        nodes.push(i);
                    }
                }
            }
        }
        Ok(Applied {
            fault: fault.clone(),
            nodes,
        })
    }

    fn partition_namespaces(&self) -> Result<Vec<String>, Error> {
        if self.mode != NetworkMode::Namespaces {
            return Err(Error::new(
                "partitions need network namespaces, but this cluster runs on loopback (all nodes share one network stack, so iptables cannot tell them apart)",
            )
            .hint("run as root with `ip` (apt-get install iproute2) and iptables (apt-get install iptables) installed, with network mode auto or namespaces"));
        }
        Ok(self.nodes.iter().filter_map(|n| n.netns.clone()).collect())
    }

    /// Undoes one applied fault: flushes the INPUT chains of the partitioned nodes
    /// (including rules of other partitions on those nodes), restarts killed nodes,
    /// resumes paused ones.
    pub fn heal(&mut self, applied: &Applied) -> Result<(), Error> {
        for &i in &applied.nodes {
            match applied.fault {
                Fault::Partition(_) => self.flush(i)?,
                Fault::Kill(_) => {
                    if self.nodes[i].child.is_none() {
                        self.restart(i)?;
                    }
                }
                Fault::Pause(_) => {
                    if self.nodes[i].paused {
                        self.resume(i)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, node: usize) -> Result<(), Error> {
        if self.partitioned[node] {
            if let Some(ns) = &self.nodes[node].netns {
                net::flush(ns)?;
            }
            self.partitioned[node] = false;
        }
        Ok(())
    }

    /// Undoes everything outstanding: flushes all partition rules, resumes paused nodes
    /// and restarts killed ones.
    pub fn heal_all(&mut self) -> Result<(), Error> {
        for i in 0..self.nodes.len() {
            self.flush(i)?;
            if self.nodes[i].paused {
                self.resume(i)?;
            }
            if self.nodes[i].child.is_none() {
                self.restart(i)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs node `node` (its whole process group) and reaps it.
    pub fn kill(&mut self, node: usize) -> Result<(), Error> {
        let n = self.node(node)?;
        let pid = n.pid();
        n.kill()?;
        self.record(|s| s.procs.retain(|p| Some(p.pid) != pid))
    }

    /// Restarts a killed node with the same command and data dir.
    pub fn restart(&mut self, node: usize) -> Result<(), Error> {
        if self.node(node)?.child.is_some() {
            return Err(
                Error::new(format!("node {} is still running", node_name(node)))
                    .hint("kill it before restarting it"),
            );
        }
        self.start_node(node)
    }

    /// SIGSTOPs node `node`.
    pub fn pause(&mut self, node: usize) -> Result<(), Error> {
        self.node(node)?.stop(true)
    }

    /// SIGCONTs node `node`.
    pub fn resume(&mut self, node: usize) -> Result<(), Error> {
        self.node(node)?.stop(false)
    }

    /// Kills the nodes and removes rules, veths, bridge and namespaces; returns what it
    /// removed. Drop does the same, ignoring errors.
    pub fn teardown(mut self) -> Result<Vec<String>, Error> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<Vec<String>, Error> {
        let mut done = Vec::new();
        let mut first_error = None;
        for node in &mut self.nodes {
            if let Some(pid) = node.pid() {
                match node.kill() {
                    Ok(()) => done.push(format!("killed node {} (pid {pid})", node.name)),
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.partitioned[i] {
                match self.flush(i) {
                    Ok(()) => done.push(format!("flushed the rules of {}", node_name(i))),
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        }
        let (removed, errors) = {
            let mut state = self.lock();
            state.procs.clear(); // all reaped above
            state.remove()
        };
        done.extend(removed);
        cleanup::unregister(&self.state);
        match first_error.or(errors.into_iter().next()) {
            None => Ok(done),
            Some(e) => Err(e.hint("run the cleanup command (as root) to remove what is left")),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.teardown_inner();
    }
}

/// Names are `sb-<name>-n<i+1>`.
fn ns_name(name: &str, node: usize) -> String {
    format!("sb-{name}-{}", node_name(node))
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 6
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!("bad run name {name:?}"))
            .hint("use 1 to 6 characters from [a-z0-9]: it becomes part of interface names, which are limited to 15 characters"))
    }
}

fn resolve_mode(mode: NetworkMode) -> Result<NetworkMode, Error> {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let ip = net::have_ip();
    match mode {
        NetworkMode::Loopback => Ok(NetworkMode::Loopback),
        NetworkMode::Auto if root && ip => Ok(NetworkMode::Namespaces),
        NetworkMode::Auto => Ok(NetworkMode::Loopback),
        NetworkMode::Namespaces if !root => Err(Error::new("network namespaces need root").hint(
            "run as root (e.g. with sudo), or use the loopback network mode (no partitions)",
        )),
        NetworkMode::Namespaces if !ip => Err(Error::new("the `ip` command is missing")
            .hint("install iproute2 (apt-get install iproute2), or use the loopback network mode")),
        NetworkMode::Namespaces => Ok(NetworkMode::Namespaces),
    }
}

/// `n` consecutive free ports on 127.0.0.1, from `port` upwards.
fn loopback_addrs(port: u16, n: usize) -> Result<Vec<SocketAddr>, Error> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut base = port as usize;
    while base + n <= u16::MAX as usize {
        let addrs: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::new(lo, (base + i) as u16))
            .collect();
        // A bound-then-closed listener proves the port was free just now; the node
        // binds it moments later.
        if addrs.iter().all(|a| TcpListener::bind(a).is_ok()) {
            return Ok(addrs);
        }
        base += n;
    }
    Err(Error::new(format!(
        "no {n} consecutive free ports on 127.0.0.1 above {port}"
    ))
    .hint("choose another --port"))
}

/// A fault that was injected, with what it takes to undo it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub fault: Fault,
    /// The nodes the fault actually changed (the ones to undo).
    nodes: Vec<usize>,
}

impl Applied {
    /// The nodes this fault changed: partitioned, killed or paused.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }
}

/// What failed and what to do about it.
#[derive(Debug, Clone)]
pub struct Error {
    what: String,
    hint: Option<String>,
}

impl Error {
    fn new(what: impl Into<String>) -> Error {
        Error {
            what: what.into(),
            hint: None,
        }
    }

    /// Adds what to do, unless a more specific hint is already there.
    fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint.get_or_insert_with(|| hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
