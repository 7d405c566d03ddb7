//! `splitbrain run --target etcd` end to end, with real etcd 3.4 members
//! (`apt-get install etcd-server`): linearizable reads stay valid under
//! partitions and kills, serializable reads are caught stale, and an
//! existing loopback cluster can be tested through `--endpoints`.
//!
//! Tests skip, saying why, when etcd (or, for namespaces, root, `ip` and
//! `iptables`) is missing. One cluster at a time.

mod common;

use common::{have, read_json, splitbrain, text, Children};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// Why this machine cannot run the test, if it cannot.
fn missing(namespaces: bool) -> Option<String> {
    if !have("etcd") {
        return Some("`etcd` is not installed (apt-get install etcd-server)".into());
    }
    namespaces.then(common::missing_namespaces).flatten()
}

fn cluster_test(name: &str, namespaces: bool) -> Option<MutexGuard<'static, ()>> {
    common::cluster_test(name, missing(namespaces))
}

fn store(name: &str) -> PathBuf {
    common::store("etcd", name)
}

fn leftovers(store: &Path) {
    let out = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(out) = out {
        let ns = String::from_utf8_lossy(&out.stdout);
        assert!(!ns.contains("sb-"), "namespaces left behind: {ns}");
    }
    let ps = Command::new("pgrep")
        .args(["-af", &store.display().to_string()])
        .output()
        .expect("pgrep runs");
    assert!(
        ps.stdout.is_empty(),
        "processes left behind: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

/// `splitbrain run --target etcd` on 3 members.
fn run(store: &Path, seconds: &str, seed: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--target", "etcd"];
    args.extend(extra);
    common::run_three(store, "10.221.0.0/24", seconds, seed, &args)
}

#[test]
fn etcd_with_linearizable_reads_is_valid_under_partitions_and_kills() {
    let Some(_lock) = cluster_test("the linearizable etcd run", true) else {
        return;
    };
    let store = store("linearizable");
    let out = run(&store, "12", "7", &["--nemesis", "partition,kill"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let dir = common::newest_run(&store, "etcd-register");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid", "{said}");
    let faults = results["stats"]["faults"].as_object().expect("faults");
    assert!(!faults.is_empty(), "no faults were injected: {said}");
    let test = read_json(&dir.join("test.json"));
    assert_eq!(test["options"]["target"], "etcd");
    assert!(dir.join("nodes/n1/stderr.log").is_file());
    leftovers(&store);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn etcd_with_serializable_reads_is_caught_reading_stale() {
    let Some(_lock) = cluster_test("the serializable etcd run", true) else {
        return;
    };
    let store = store("serializable");
    let out = run(
        &store,
        "8",
        "3",
        &["--nemesis", "partition", "--read-mode", "serializable"],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let results = read_json(&common::newest_run(&store, "etcd-register").join("results.json"));
    assert_eq!(results["verdict"], "invalid", "{said}");
    // The operation that cannot be placed is a read that saw an old value.
    let blocked = &results["report"]["counterexample"]["blocked"];
    assert_eq!(blocked["f"], "read", "{blocked}");
    leftovers(&store);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn an_existing_loopback_etcd_cluster_is_tested_through_endpoints() {
    let Some(_lock) = cluster_test("the endpoints run", false) else {
        return;
    };
    let store = store("endpoints");
    std::fs::create_dir_all(&store).unwrap();

    // Refusals need no cluster.
    let out = splitbrain(&[
        "run",
        "--target",
        "etcd",
        "--endpoints",
        "http://127.0.0.1:2379",
        "--nemesis",
        "kill",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("started itself"), "{}", text(&out));
    let out = splitbrain(&[
        "run",
        "--target",
        "etcd",
        "--endpoints",
        "http://192.0.2.7:2379",
        "--store",
        &store.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("never other hosts"), "{}", text(&out));

    let ports = common::free_ports(6);
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[3 + i]);
    let client = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let initial: Vec<String> = (0..3).map(|i| format!("m{i}={}", peer(i))).collect();
    let mut members = Children(Vec::new());
    for i in 0..3 {
        let dir = store.join(format!("m{i}"));
        let log = std::fs::File::create(store.join(format!("m{i}.log"))).unwrap();
        let child = Command::new("etcd")
            .args(["--name", &format!("m{i}")])
            .args(["--data-dir", &dir.display().to_string()])
            .args(["--listen-client-urls", &client(i)])
            .args(["--advertise-client-urls", &client(i)])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        members.0.push(child);
    }
    let endpoints: Vec<String> = (0..3).map(client).collect();
    let endpoints = endpoints.join(",");
    let started = Instant::now();
    let out = splitbrain(&[
        "run",
        "--target",
        "etcd",
        "--endpoints",
        &endpoints,
        "--concurrency",
        "6",
        "--time-limit",
        "5",
        "--seed",
        "11",
        "--store",
        &store.display().to_string(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let results = read_json(&common::newest_run(&store, "etcd-register").join("results.json"));
    assert_eq!(results["verdict"], "valid", "{said}");
    let ok = results["stats"]["ops"]["read"]["ok"].as_u64().unwrap_or(0);
    assert!(ok > 0, "no successful reads: {said}");
    drop(members);
    leftovers(&store);
    let _ = std::fs::remove_dir_all(&store);
}
