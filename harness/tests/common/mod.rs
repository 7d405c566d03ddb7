//! What the harness's end-to-end test files share: running the binary, the
//! skip decision for tests that need namespaces, one cluster at a time.
#![allow(dead_code)] // Each test file uses its own subset.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Mutex, MutexGuard};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn splitbrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Everything the command said, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why this machine cannot run a cluster in network namespaces, if it cannot.
pub fn missing_namespaces() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        return Some("not root (network namespaces need it)".into());
    }
    ["ip", "iptables"]
        .into_iter()
        .find(|tool| !have(tool))
        .map(|tool| format!("`{tool}` is not installed (apt-get install iproute2 iptables)"))
}

/// Holds the lock for a test that starts a cluster, or says why it skips.
pub fn cluster_test(name: &str, missing: Option<String>) -> Option<MutexGuard<'static, ()>> {
    if let Some(why) = missing {
        eprintln!("skipping {name}: {why}");
        return None;
    }
    Some(
        ONE_CLUSTER_AT_A_TIME
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    )
}

/// A fresh place for run directories that no other test uses.
pub fn store(prefix: &str, name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("splitbrain-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The raftkv binary of the same build, built first if `cargo test` did not
/// (it does with `--workspace`, not with `-p splitbrain`).
pub fn raftkv() -> PathBuf {
    let splitbrain = Path::new(env!("CARGO_BIN_EXE_splitbrain"));
    let raftkv = splitbrain.with_file_name("raftkv");
    if !raftkv.is_file() {
        let release = splitbrain.parent().is_some_and(|d| d.ends_with("release"));
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "raftkv"]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p raftkv failed");
    }
    raftkv
}

/// Processes a test started itself (a cluster it runs as "existing"), killed by pid on drop,
/// also when the test panics.
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The newest run directory of test `test` under `store`.
pub fn newest_run(store: &Path, test: &str) -> PathBuf {
    let dir = store.join(test);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    runs.pop().expect("a run directory")
}

/// `splitbrain run` on 3 nodes with 10 clients and a fault every 3 s, on `subnet` (each test
/// file has its own), storing under `store`; `extra` picks the target and the faults.
pub fn run_three(store: &Path, subnet: &str, seconds: &str, seed: &str, extra: &[&str]) -> Output {
    let store = store.display().to_string();
    let mut args = vec![
        "run",
        "--nodes",
        "3",
        "--concurrency",
        "10",
        "--time-limit",
        seconds,
        "--nemesis-interval",
        "3",
        "--seed",
        seed,
        "--subnet",
        subnet,
        "--store",
        &store,
    ];
    args.extend(extra);
    splitbrain(&args)
}

/// `n` distinct free loopback ports (bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}
