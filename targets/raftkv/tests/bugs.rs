//! Each bug switch produces its anomaly deterministically, and the same scenario on a correct
//! cluster does not.
//!
//! Nodes are isolated with SIGKILL/SIGSTOP rather than packet filters. Where a node must not see
//! a message, it is SIGKILLed, not SIGSTOPped: a stopped process still receives TCP data into its
//! socket buffers and would process it on SIGCONT.

mod common;

use std::time::Duration;

use common::Cluster;
use reqwest::StatusCode;
use serde_json::json;

/// The answer of a node that missed an acknowledged `x = 2` and is cut off from the others.
async fn read_from_lagging_node(c: &mut Cluster) -> (StatusCode, serde_json::Value) {
    let f = c.lagging_node().await;
    c.get(f, "x").await
}

#[tokio::test]
async fn stale_read_serves_an_overwritten_value() {
    let mut c = Cluster::start(&["--bug", "stale-read"]);
    let (st, body) = read_from_lagging_node(&mut c).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body["value"], 1,
        "stale read expected: x=2 was acknowledged before"
    );
}

#[tokio::test]
async fn without_the_bug_a_cut_off_node_does_not_read_stale() {
    let mut c = Cluster::start(&[]);
    let (st, body) = read_from_lagging_node(&mut c).await;
    assert_ne!(st, StatusCode::OK, "{body}");
    assert!(
        ["no-leader", "timeout", "leader-unreachable"]
            .contains(&body["code"].as_str().unwrap_or("")),
        "{body}"
    );
}

/// With both followers dead, the leader is asked to write `x = 2`; then it dies and the
/// followers come back. Returns the answer to the write and the value the new leader has.
async fn write_without_quorum_then_fail_over(c: &mut Cluster) -> (StatusCode, serde_json::Value) {
    let leader = c.leader().await;
    c.write_everywhere(leader).await;
    let followers = c.others(leader);
    for &f in &followers {
        c.kill(f);
    }
    let (st, _) = c.put(leader, "x", json!(2)).await;
    c.kill(leader);
    for &f in &followers {
        c.spawn(f);
    }
    let new = c.leader_among(&followers, Duration::from_secs(5)).await;
    let (read_st, body) = c.get(new, "x").await;
    assert_eq!(read_st, StatusCode::OK, "{body}");
    (st, body["value"].clone())
}

#[tokio::test]
async fn lost_write_acknowledges_a_write_that_disappears() {
    let mut c = Cluster::start(&["--bug", "lost-write"]);
    let (write_status, value) = write_without_quorum_then_fail_over(&mut c).await;
    assert_eq!(
        write_status,
        StatusCode::OK,
        "the bug acknowledges without a quorum"
    );
    assert_eq!(value, 1, "the acknowledged x=2 is lost after fail-over");
}

#[tokio::test]
async fn without_the_bug_a_write_without_quorum_is_not_acknowledged() {
    let mut c = Cluster::start(&[]);
    let (write_status, value) = write_without_quorum_then_fail_over(&mut c).await;
    assert_ne!(write_status, StatusCode::OK);
    assert_eq!(value, 1);
}

/// Two concurrent CASes of `x` from 0 (to 1 and to 2); returns both statuses.
async fn concurrent_cas(c: &Cluster) -> [StatusCode; 2] {
    let leader = c.leader().await;
    let (st, body) = c.put(leader, "x", json!(0)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let f = c.others(leader);
    let (a, b) = tokio::join!(
        c.cas(f[0], "x", json!(0), json!(1)),
        c.cas(f[1], "x", json!(0), json!(2)),
    );
    [a.0, b.0]
}

#[tokio::test]
async fn racy_cas_lets_two_cas_from_the_same_value_succeed() {
    let c = Cluster::start(&["--bug", "racy-cas", "--racy-cas-delay-ms", "300"]);
    assert_eq!(concurrent_cas(&c).await, [StatusCode::OK, StatusCode::OK]);
}

#[tokio::test]
async fn without_the_bug_only_one_cas_succeeds() {
    let c = Cluster::start(&[]);
    let mut statuses = concurrent_cas(&c).await;
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
}
