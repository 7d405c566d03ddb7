//! `splitbrain run` end to end, with real raftkv processes in network
//! namespaces: a correct cluster under partitions, kills and pauses is valid,
//! and each of raftkv's bug switches is caught.
//!
//! The runs are short (3 nodes, 8–15 s) to keep the suite within a few
//! minutes on two cores, and one at a time: they share a subnet and the CPU,
//! and a starved cluster would test the machine rather than the harness.
//! Tests that need root, `ip` and `iptables` say why they skip.

mod common;

use common::{read_json, splitbrain, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cluster_test(name: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    common::cluster_test(name, common::missing_namespaces())
}

fn store(name: &str) -> PathBuf {
    common::store("run", name)
}

/// Runs `splitbrain run` on 3 raftkv nodes with every fault kind.
fn run(store: &Path, seconds: u32, seed: u64, extra: &[&str]) -> Output {
    let raftkv = common::raftkv().display().to_string();
    let mut args = vec![
        "--nemesis",
        "partition,kill,pause",
        "--raftkv-binary",
        &raftkv,
    ];
    args.extend(extra);
    let (seconds, seed) = (seconds.to_string(), seed.to_string());
    common::run_three(store, "10.219.0.0/24", &seconds, &seed, &args)
}

fn leftover_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("sb-"))
        .map(String::from)
        .collect()
}

/// Live processes whose command line mentions `path` (our nodes' data dirs).
fn processes_mentioning(path: &Path) -> usize {
    let needle = path.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&needle))
        .count()
}

#[test]
fn correct_raftkv_under_partitions_kills_and_pauses_is_valid() {
    let Some(_one) = cluster_test("correct_raftkv_under_partitions_kills_and_pauses_is_valid")
    else {
        return;
    };
    let before = leftover_namespaces();
    let store = store("valid");
    let out = run(&store, 15, 42, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("VALID"), "{said}");
    assert!(said.contains("seed 42"), "{said}");

    // The run directory, through the `latest` links.
    let dir = store.join("latest");
    assert_eq!(
        std::fs::canonicalize(&dir).unwrap(),
        std::fs::canonicalize(store.join("raftkv-register/latest")).unwrap()
    );
    assert!(
        said.contains(&std::fs::canonicalize(&dir).unwrap().display().to_string()),
        "{said}"
    );
    let test = read_json(&dir.join("test.json"));
    assert_eq!(test["seed"], 42);
    assert_eq!(test["options"]["nodes"], 3);
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid");
    for artifact in [
        "report.html",
        "junit.xml",
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
    ] {
        assert!(
            dir.join(artifact).is_file(),
            "the run directory has {artifact}"
        );
    }
    assert_eq!(results["report"]["verdict"], "valid");
    let faults = results["stats"]["faults"]
        .as_object()
        .expect("fault counts");
    assert!(faults.len() >= 2, "several faults in 15 s: {faults:?}");
    assert!(
        results["stats"]["ops"]["read"]["ok"].as_u64() > Some(100),
        "{results}"
    );

    // The history on disk has the nemesis events and the final reads.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""process":"nemesis""#));
    assert!(
        history.contains(r#""f":"start-partition""#)
            || history.contains(r#""f":"kill""#)
            || history.contains(r#""f":"pause""#)
    );
    let events: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events
        .windows(2)
        .all(|w| w[0]["time"].as_u64() <= w[1]["time"].as_u64()));
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e["index"] == i as u64));
    assert!(dir.join("nodes/n1").is_dir(), "node files under nodes/");

    assert_eq!(
        leftover_namespaces(),
        before,
        "the run tore down its namespaces"
    );
    let _ = std::fs::remove_dir_all(&store);
}

/// Asserts the run found the bug and printed a counterexample.
fn assert_caught(out: &Output, bug: &str) {
    let said = text(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--bug {bug} was not caught: {said}"
    );
    assert!(said.contains("INVALID"), "{said}");
    assert!(said.contains("cannot be linearized: process"), "{said}");
    assert!(said.contains("minimal sub-history"), "{said}");
}

#[test]
fn stale_read_is_caught_on_every_seed() {
    let Some(_one) = cluster_test("stale_read_is_caught_on_every_seed") else {
        return;
    };
    let store = store("stale-read");
    for seed in 1..=3 {
        assert_caught(
            &run(&store, 8, seed, &["--bug", "stale-read"]),
            "stale-read",
        );
    }
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn lost_write_is_caught_and_test_count_stops_at_the_first_invalid_run() {
    let Some(_one) = cluster_test("lost_write_is_caught") else {
        return;
    };
    let store = store("lost-write");
    let out = run(&store, 8, 7, &["--bug", "lost-write", "--test-count", "3"]);
    assert_caught(&out, "lost-write");
    // Every run but the last was valid, and the last one invalid.
    let mut verdicts: Vec<(PathBuf, Value)> =
        std::fs::read_dir(store.join("raftkv-register-lost-write"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("latest"))
            .map(|p| {
                (
                    p.clone(),
                    read_json(&p.join("results.json"))["verdict"].clone(),
                )
            })
            .collect();
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    let (last, before) = verdicts.split_last().expect("at least one run");
    assert_eq!(last.1, "invalid");
    assert!(before.iter().all(|(_, v)| v == "valid"), "{verdicts:?}");
    assert_eq!(
        text(&out).matches(" of 3\n").count(),
        verdicts.len(),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn racy_cas_is_caught() {
    let Some(_one) = cluster_test("racy_cas_is_caught") else {
        return;
    };
    let store = store("racy-cas");
    // Fewer keys: more cases race on the same one.
    assert_caught(
        &run(&store, 8, 3, &["--bug", "racy-cas", "--keys", "2"]),
        "racy-cas",
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn a_missing_raftkv_binary_is_a_setup_error() {
    let out = splitbrain(&[
        "run",
        "--time-limit",
        "1",
        "--raftkv-binary",
        "/nonexistent/raftkv",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("cargo build --release -p raftkv"), "{said}");
}

#[test]
fn bad_options_are_usage_errors() {
    for bad in [
        &["--time-limit", "0"][..],
        &["--op-timeout", "-1"],
        &["--nodes", "0"],
        &["--nemesis", "flood"],
        &["--bug", "slow"],
        &["--mix", "50,50,50"],
    ] {
        let out = splitbrain(&[&["run"][..], bad].concat());
        assert_eq!(out.status.code(), Some(3), "{bad:?}: {}", text(&out));
    }
}

#[test]
fn cleanup_removes_what_a_killed_run_left_behind() {
    let Some(_one) = cluster_test("cleanup_removes_what_a_killed_run_left_behind") else {
        return;
    };
    let before = leftover_namespaces();
    let store = store("killed");
    let raftkv = common::raftkv().display().to_string();
    let mut harness = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args([
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--raftkv-binary",
            &raftkv,
        ])
        .args([
            "--subnet",
            "10.219.0.0/24",
            "--store",
            &store.display().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    // The history file appears once the cluster is up.
    let history = store.join("latest/history.jsonl");
    for _ in 0..300 {
        if history.is_file() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    harness.kill().expect("SIGKILL the harness");
    harness.wait().unwrap();
    assert!(history.is_file(), "the run never started");
    assert!(
        leftover_namespaces().len() > before.len(),
        "a killed run leaves its namespaces"
    );
    // What was recorded up to the kill is on disk.
    let recorded = std::fs::read_to_string(&history).unwrap();
    assert!(recorded.lines().count() > 10, "{recorded}");

    let out = splitbrain(&["cleanup"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("namespace sb-"), "{said}");
    assert_eq!(leftover_namespaces(), before, "{said}");
    assert_eq!(
        processes_mentioning(&store),
        0,
        "the nodes are gone: {said}"
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn partitions_without_namespaces_are_a_setup_error() {
    // Root can make namespaces, so drop to `nobody` to see the loopback fallback.
    let have_setpriv = Command::new("setpriv").arg("--help").output().is_ok();
    if common::missing_namespaces().is_some() || !have_setpriv {
        eprintln!(
            "skipping partitions_without_namespaces_are_a_setup_error: needs root and setpriv"
        );
        return;
    }
    let store = store("nobody");
    std::fs::create_dir_all(&store).unwrap();
    let _ = Command::new("chmod").arg("777").arg(&store).status();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_splitbrain"))
        .args([
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--nemesis",
            "partition",
        ])
        .args(["--raftkv-binary", &common::raftkv().display().to_string()])
        .args(["--store", &store.display().to_string()])
        .output()
        .expect("setpriv runs");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("--nemesis partition needs one network namespace per node"),
        "{said}"
    );
    assert_eq!(
        processes_mentioning(&store),
        0,
        "the loopback nodes are gone"
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn harness_benchmark_reports_a_rate() {
    let out = splitbrain(&["bench", "harness", "--seconds", "0.5", "--concurrency", "4"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains(" ops/s "), "{said}");
}
