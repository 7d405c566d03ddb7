//! `splitbrain run --target consul` end to end. No Consul binary can be installed on the
//! machines Splitbrain is built on, so the Consul client is exercised against raftkv's Consul KV
//! subset: started by the harness in namespaces under the nemesis (`--consul-on-raftkv`), and
//! started by the test on loopback as an existing cluster (`--endpoints`, with an ACL token).
//!
//! Tests that need root, `ip` and `iptables` say why they skip. One cluster at a time.

mod common;

use common::{read_json, splitbrain, text, Children};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn store(name: &str) -> PathBuf {
    common::store("consul", name)
}

/// `splitbrain run --target consul --consul-on-raftkv` on 3 nodes.
fn run(store: &Path, seconds: &str, seed: &str, extra: &[&str]) -> Output {
    let raftkv = common::raftkv().display().to_string();
    let mut args = vec![
        "--target",
        "consul",
        "--consul-on-raftkv",
        "--raftkv-binary",
        &raftkv,
    ];
    args.extend(extra);
    common::run_three(store, "10.222.0.0/24", seconds, seed, &args)
}

fn ops(results: &Value, f: &str, outcome: &str) -> u64 {
    results["stats"]["ops"][f][outcome].as_u64().unwrap_or(0)
}

#[test]
fn consistent_reads_and_cas_races_are_valid_under_partitions_and_kills() {
    let Some(_one) = common::cluster_test("consul: consistent", common::missing_namespaces())
    else {
        return;
    };
    let store = store("consistent");
    // Few keys and many CASes, so that CASes race on one ModifyIndex.
    let out = run(
        &store,
        "12",
        "5",
        &[
            "--nemesis",
            "partition,kill",
            "--keys",
            "3",
            "--mix",
            "30,20,50",
        ],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let results = read_json(&common::newest_run(&store, "consul-register").join("results.json"));
    assert_eq!(results["verdict"], "valid", "{said}");
    assert!(ops(&results, "read", "ok") > 100, "{results}");
    assert!(ops(&results, "cas", "ok") > 10, "{results}");
    // A CAS that lost the race to another one is a definite failure.
    assert!(ops(&results, "cas", "fail") > 10, "{results}");
    let faults = results["stats"]["faults"].as_object().expect("faults");
    assert!(faults.len() >= 2, "{faults:?}");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn stale_reads_are_caught_under_partitions() {
    let Some(_one) = common::cluster_test("consul: stale", common::missing_namespaces()) else {
        return;
    };
    let store = store("stale");
    for seed in ["1", "2"] {
        let out = run(
            &store,
            "10",
            seed,
            &["--nemesis", "partition", "--read-mode", "stale"],
        );
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "seed {seed}: {said}");
        assert!(said.contains("INVALID"), "{said}");
        let results =
            read_json(&common::newest_run(&store, "consul-register").join("results.json"));
        assert_eq!(results["verdict"], "invalid");
    }
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn racy_cas_through_consul_is_caught() {
    // Runs on loopback when namespaces are missing: no partitions needed.
    let Some(_one) = common::cluster_test("consul: racy cas", None) else {
        return;
    };
    let store = store("racy-cas");
    let out = run(
        &store,
        "8",
        "3",
        &["--bug", "racy-cas", "--keys", "2", "--mix", "10,10,80"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&store);
}

/// Three raftkv nodes on loopback demanding `token`, and their endpoints.
fn start_raftkv(dir: &Path, token: &str) -> (Children, String) {
    let ports = common::free_ports(3);
    let cluster: Vec<String> = (0..3)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[i]))
        .collect();
    let nodes = (0..3)
        .map(|i| {
            Command::new(common::raftkv())
                .args(["--id", &(i + 1).to_string()])
                .args(["--listen", &format!("127.0.0.1:{}", ports[i])])
                .args(["--cluster", &cluster.join(",")])
                .args([
                    "--data-dir",
                    &dir.join(format!("n{i}")).display().to_string(),
                ])
                .args(["--acl-token", token])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("raftkv starts")
        })
        .collect();
    let endpoints: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    (Children(nodes), endpoints.join(","))
}

#[test]
fn an_existing_cluster_is_tested_through_endpoints_with_a_token() {
    let Some(_one) = common::cluster_test("consul: endpoints", None) else {
        return;
    };
    let store = store("endpoints");
    std::fs::create_dir_all(&store).unwrap();
    let (nodes, endpoints) = start_raftkv(&store, "s3cret");
    let endpoint_run = |token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
        cmd.args(["run", "--target", "consul", "--endpoints", &endpoints])
            .args(["--concurrency", "6", "--time-limit", "4", "--seed", "9"])
            .args(["--store", &store.display().to_string()])
            .env_remove("CONSUL_HTTP_TOKEN");
        if let Some(token) = token {
            cmd.env("CONSUL_HTTP_TOKEN", token);
        }
        cmd.output().expect("splitbrain runs")
    };

    // Without the token: a setup error that says what to do, before any operation.
    let out = endpoint_run(None);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("403") && said.contains("CONSUL_HTTP_TOKEN"),
        "{said}"
    );

    let out = endpoint_run(Some("s3cret"));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let dir = common::newest_run(&store, "consul-register");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid", "{said}");
    assert!(ops(&results, "write", "ok") > 0, "{results}");
    let test = std::fs::read_to_string(dir.join("test.json")).unwrap();
    assert!(!test.contains("s3cret"), "the token is not stored: {test}");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn consul_options_that_do_not_fit_are_refused() {
    for (args, says) in [
        (&["--target", "consul"][..], "--consul-on-raftkv"),
        (
            &["--target", "consul", "--read-mode", "serializable"],
            "consistent, default or stale",
        ),
        (
            &["--target", "etcd", "--read-mode", "stale"],
            "linearizable or serializable",
        ),
        (
            &["--target", "raftkv", "--token", "t"],
            "--target consul only",
        ),
        (
            &["--target", "raftkv", "--consul-on-raftkv"],
            "--target consul only",
        ),
        (
            &[
                "--target",
                "consul",
                "--endpoints",
                "http://127.0.0.1:8500",
                "--nemesis",
                "kill",
            ],
            "started itself",
        ),
    ] {
        let mut full = vec!["run"];
        full.extend(args);
        let out = splitbrain(&full);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
}
