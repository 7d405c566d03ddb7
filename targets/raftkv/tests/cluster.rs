//! A correct 3-node cluster of real processes: the API, forwarding, leader failure, whole-cluster
//! crash and recovery.

mod common;

use std::time::{Duration, Instant};

use common::{put_request, Cluster, IDS};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn writes_cas_and_reads_through_followers() {
    let c = Cluster::start(&[]);
    let leader = c.leader().await;
    let f = c.others(leader);

    let (st, body) = c.put(f[0], "x", json!(1)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body["node"], leader,
        "a follower forwards writes to the leader"
    );

    let (st, body) = c.get(f[1], "x").await;
    assert_eq!((st, &body["value"]), (StatusCode::OK, &json!(1)), "{body}");
    assert_eq!(body["node"], leader);

    let (st, body) = c.cas(f[1], "x", json!(1), json!("two")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = c.cas(f[0], "x", json!(1), json!(3)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "compare-failed");
    assert_eq!(body["value"], "two");
    let (_, body) = c.get(f[0], "x").await;
    assert_eq!(body["value"], "two");

    let (st, body) = c.cas(f[0], "absent", json!(1), json!(2)).await;
    assert_eq!(
        (st, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("not-found"))
    );
    let (st, body) = c.get(leader, "absent").await;
    assert_eq!(
        (st, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("not-found"))
    );

    let resp = c
        .http
        .put(c.url(f[0], "/kv/x"))
        .body("{\"valu\": 1}")
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "bad-request");

    let s = c.status(f[0]).await.expect("status");
    assert_eq!(
        (s["id"].clone(), s["role"].clone()),
        (json!(f[0]), json!("follower"))
    );
    assert_eq!(s["leader"], leader);
    for field in ["term", "last_log_index", "commit_index", "applied_index"] {
        assert!(s[field].is_u64(), "status lacks {field}: {s}");
    }
}

#[tokio::test]
async fn leader_kill_elects_a_new_leader_keeps_writes_and_restarted_node_catches_up() {
    let mut c = Cluster::start(&[]);
    let old = c.leader().await;
    let f = c.others(old);
    for i in 0..10 {
        let (st, body) = c.put(f[i % 2], &format!("k{i}"), json!(i)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }

    c.kill(old);
    let killed = Instant::now();
    let new = c.leader_among(&f, Duration::from_secs(2)).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(2), "new leader after {took:?}");

    for i in 0..10 {
        let (st, body) = c.get(f[i % 2], &format!("k{i}")).await;
        assert_eq!(
            (st, &body["value"]),
            (StatusCode::OK, &json!(i)),
            "k{i}: {body}"
        );
    }
    for i in 10..20 {
        let (st, body) = c.put(new, &format!("k{i}"), json!(i)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }

    // The restarted node has missed writes k10..k19 and must catch up.
    c.spawn(old);
    let target = c.commit_index(new).await;
    c.wait_applied(old, target, Duration::from_secs(5)).await;
    for i in 0..20 {
        let (st, body) = c.get(old, &format!("k{i}")).await;
        assert_eq!(
            (st, &body["value"]),
            (StatusCode::OK, &json!(i)),
            "k{i}: {body}"
        );
    }
}

#[tokio::test]
async fn sigkill_every_node_and_restart_keeps_acknowledged_writes() {
    let mut c = Cluster::start(&[]);
    c.leader().await;

    // Concurrent writers, each to its own key; the cluster is killed while they run.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let http = c.http.clone();
        let urls: Vec<String> = IDS.iter().map(|&id| c.url(id, "")).collect();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000u64 {
                let key = format!("w{w}-{i}");
                let url = format!("{}/kv/{key}", urls[(i % 3) as usize]);
                match http.put(url).json(&json!({ "value": i })).send().await {
                    Ok(r) if r.status() == StatusCode::OK => acked.lock().unwrap().push((key, i)),
                    _ => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "too few writes acknowledged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in IDS {
        c.kill(id);
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let acked = acked.lock().unwrap().clone();

    for id in IDS {
        c.spawn(id);
    }
    let leader = c.leader().await;
    for (key, value) in &acked {
        let (st, body) = c.get(leader, key).await;
        assert_eq!(
            (st, &body["value"]),
            (StatusCode::OK, &json!(value)),
            "acknowledged write {key}={value} lost after a full-cluster crash"
        );
    }
}

/// openraft #1511: a leader SIGKILLed and restarted at once (it may keep its leadership) must not
/// serve a state older than what it had applied, and so acknowledged, before the crash. The state
/// machine commits without fsync, so this relies on the durable committed index and re-applying.
#[tokio::test]
async fn sigkilled_leader_restarted_at_once_serves_every_acknowledged_write() {
    let mut c = Cluster::start(&[]);
    let leader = c.leader().await;
    // Well under the state machine's 1 s fsync interval: most of these applies are not durable.
    for i in 0..150u64 {
        let (st, body) = c.put(leader, &format!("r{i}"), json!(i)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let applied = c.status(leader).await.expect("status")["applied_index"]
        .as_u64()
        .expect("applied index");

    c.kill(leader);
    c.spawn(leader);
    // The first answer of the restarted node: re-applying happens before it serves anything.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = c.status(leader).await {
            break s;
        }
        assert!(Instant::now() < deadline, "node {leader} did not come back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let recovered = status["applied_index"].as_u64().unwrap_or(0);
    assert!(
        recovered >= applied,
        "restarted node recovered to {recovered}, below the {applied} it had applied: {status}"
    );
    for i in 0..150u64 {
        let (st, body) = c.get(leader, &format!("r{i}")).await;
        assert_eq!(
            (st, &body["value"]),
            (StatusCode::OK, &json!(i)),
            "r{i} after the leader's restart: {body}"
        );
    }
}

/// A leader replicates its entries before its own fsync, so one SIGKILLed under load may lose
/// entries its followers already hold. Restarted at once, it must not lead the same term again:
/// it would give new entries the log ids (term, leader, index) of the ones the followers hold,
/// they would keep theirs, and the nodes' states would differ. Writers put fresh keys (nothing
/// is overwritten, so every entry's effect stays visible) through the leader while it is killed
/// and restarted three times; afterwards every node must hold the same keys with the same
/// values and indexes, including every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_killed_under_load_and_restarted_at_once_leave_every_node_in_agreement() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut c = Cluster::start(&[]);
    let writers = 8;
    let mut attempted: Vec<(String, bool)> = Vec::new();
    for round in 0..3 {
        let leader = c.leader().await;
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (http, stop) = (c.http.clone(), stop.clone());
                let url = c.url(leader, "");
                tokio::spawn(async move {
                    let mut keys = Vec::new();
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("r{round}-w{w}-{n}");
                        let ok = put_request(&http, &url, &key, json!(n))
                            .timeout(Duration::from_secs(2))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == StatusCode::OK);
                        keys.push((key, ok));
                    }
                    keys
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.kill(leader);
        c.spawn(leader);
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            attempted.extend(t.await.expect("writer task"));
        }
    }
    let acknowledged = attempted.iter().filter(|(_, ok)| *ok).count();
    assert!(
        acknowledged > 100,
        "only {acknowledged} writes were acknowledged"
    );

    // A last write through the leader, applied everywhere, settles every earlier entry.
    let leader = c.leader().await;
    c.write_everywhere(leader).await;
    for (key, ok) in &attempted {
        let mut seen = Vec::new();
        for id in IDS {
            seen.push(c.get_local(id, key).await);
        }
        assert!(
            seen.iter().all(|s| *s == seen[0]),
            "nodes disagree on {key}: {seen:?}"
        );
        if *ok {
            assert_eq!(seen[0].0, StatusCode::OK, "acknowledged {key} is missing");
        }
    }
}
