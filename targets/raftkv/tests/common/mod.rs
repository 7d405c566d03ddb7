//! A 3-node raftkv cluster of real processes on loopback, for the integration tests.
//!
//! Every process is killed (SIGKILL, by pid) when the `Cluster` is dropped, including when a test
//! panics.

#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

pub const IDS: [u64; 3] = [1, 2, 3];

pub struct Cluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    procs: Vec<Option<Child>>,
    extra: Vec<String>,
    pub http: reqwest::Client,
}

/// Picks free loopback ports by binding to port 0 (all at once, so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

impl Cluster {
    /// Starts nodes 1..=3 with `extra` flags on each.
    pub fn start(extra: &[&str]) -> Cluster {
        let mut c = Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            ports: free_ports(IDS.len()),
            procs: IDS.iter().map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        };
        for id in IDS {
            c.spawn(id);
        }
        c
    }

    fn cluster_flag(&self) -> String {
        IDS.iter()
            .zip(&self.ports)
            .map(|(id, p)| format!("{id}=127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports[(id - 1) as usize], path)
    }

    /// Starts (or restarts) node `id` on its data directory.
    pub fn spawn(&mut self, id: u64) {
        let i = (id - 1) as usize;
        assert!(self.procs[i].is_none(), "node {id} is already running");
        let data = self.dir.path().join(format!("n{id}"));
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .arg("--cluster")
            .arg(self.cluster_flag())
            .arg("--data-dir")
            .arg(&data)
            .args(["--request-timeout-ms", "1500"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start raftkv");
        self.procs[i] = Some(child);
    }

    fn pid(&self, id: u64) -> u32 {
        self.procs[(id - 1) as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.procs[(id - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, id: u64, sig: &str) {
        let status = Command::new("kill")
            .arg(sig)
            .arg(self.pid(id).to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} node {id}");
    }

    pub fn sigstop(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    pub fn sigcont(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    pub async fn status(&self, id: u64) -> Option<Value> {
        let resp = self
            .http
            .get(self.url(id, "/status"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Waits until one of `among` is leader and every one of `among` agrees on it.
    pub async fn leader_among(&self, among: &[u64], within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            for &id in among {
                let s = self.status(id).await;
                leaders.push(s.and_then(|s| s["leader"].as_u64()));
            }
            if let Some(Some(l)) = leaders.first() {
                if among.contains(l) && leaders.iter().all(|x| *x == Some(*l)) {
                    let s = self.status(*l).await;
                    if s.is_some_and(|s| s["role"] == "leader") {
                        return *l;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?} within {within:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn leader(&self) -> u64 {
        self.leader_among(&IDS, Duration::from_secs(5)).await
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let applied = self
                .status(id)
                .await
                .and_then(|s| s["applied_index"].as_u64());
            if applied.is_some_and(|a| a >= index) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} applied {applied:?}, wanted {index} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn commit_index(&self, id: u64) -> u64 {
        self.status(id).await.expect("status")["commit_index"]
            .as_u64()
            .expect("commit index")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request failed");
        let status = resp.status();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn put(&self, id: u64, key: &str, value: Value) -> (StatusCode, Value) {
        self.send(put_request(&self.http, &self.url(id, ""), key, value))
            .await
    }

    pub async fn get(&self, id: u64, key: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(id, &format!("/kv/{key}"))))
            .await
    }

    /// Node `id`'s own applied value of `key` (Consul's `?stale`: no forwarding, no barrier),
    /// as status and the raw answer, indexes included.
    pub async fn get_local(&self, id: u64, key: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(self.url(id, &format!("/v1/kv/{key}?stale")))
            .send()
            .await
            .expect("local read");
        (resp.status(), resp.text().await.unwrap_or_default())
    }

    pub async fn cas(&self, id: u64, key: &str, from: Value, to: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(id, &format!("/kv/{key}/cas")))
                .json(&json!({ "from": from, "to": to })),
        )
        .await
    }

    /// Commits `x = 1` and waits until all three nodes have applied it.
    pub async fn write_everywhere(&self, leader: u64) {
        let (st, body) = self.put(leader, "x", json!(1)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let index = self.commit_index(leader).await;
        for id in IDS {
            self.wait_applied(id, index, Duration::from_secs(5)).await;
        }
    }

    /// Makes a node that has `x = 1` miss an acknowledged `x = 2`, then brings it back alone
    /// (the other two stopped) and returns its id.
    pub async fn lagging_node(&mut self) -> u64 {
        let leader = self.leader().await;
        self.write_everywhere(leader).await;
        let f = self.others(leader)[0];
        self.kill(f);
        let (st, body) = self.put(leader, "x", json!(2)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        for id in self.others(f) {
            self.sigstop(id);
        }
        self.spawn(f);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.status(f).await.is_none() {
            assert!(Instant::now() < deadline, "node {f} did not restart");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        f
    }

    /// The other two nodes.
    pub fn others(&self, id: u64) -> Vec<u64> {
        IDS.iter().copied().filter(|&x| x != id).collect()
    }
}

/// `PUT /kv/{key}` of `value` to the node at `node_url` (usable without a `Cluster`, from tasks).
pub fn put_request(
    http: &reqwest::Client,
    node_url: &str,
    key: &str,
    value: Value,
) -> reqwest::RequestBuilder {
    http.put(format!("{node_url}/kv/{key}"))
        .json(&json!({ "value": value }))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in IDS {
            self.kill(id);
        }
    }
}
