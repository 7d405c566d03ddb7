//! raftkv's Consul KV subset (`/v1/kv`), against a real 3-node cluster: Consul's answers and
//! indexes, CAS by `ModifyIndex` (including a race), the read modes (`?stale` is local and can
//! be stale, the default and `?consistent` cannot), and ACL tokens.

mod common;

use common::Cluster;
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

/// One Consul API request: status, headers, body as text.
async fn consul(
    c: &Cluster,
    id: u64,
    method: Method,
    path: &str,
    body: &[u8],
    token: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = c.http.request(method, c.url(id, path)).body(body.to_vec());
    if let Some(token) = token {
        req = req.header("X-Consul-Token", token);
    }
    let resp = req.send().await.expect("request");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.expect("body"))
}

async fn get(c: &Cluster, id: u64, path: &str) -> (StatusCode, HeaderMap, String) {
    consul(c, id, Method::GET, path, b"", None).await
}

async fn put(c: &Cluster, id: u64, path: &str, body: &str) -> String {
    let (status, _, text) = consul(c, id, Method::PUT, path, body.as_bytes(), None).await;
    assert_eq!(status, StatusCode::OK, "PUT {path}: {text}");
    text
}

/// The one entry of a GET answer.
async fn entry(c: &Cluster, id: u64, path: &str) -> Value {
    let (status, headers, text) = get(c, id, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    let entries: Value = serde_json::from_str(&text).expect("JSON");
    let entry = entries[0].clone();
    assert_eq!(
        headers["x-consul-index"].to_str().unwrap(),
        entry["ModifyIndex"].to_string(),
        "X-Consul-Index is the key's ModifyIndex"
    );
    entry
}

fn index(entry: &Value, field: &str) -> u64 {
    entry[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {entry}"))
}

#[tokio::test]
async fn consul_kv_answers_and_indexes_follow_consul() {
    let c = Cluster::start(&[]);
    let leader = c.leader().await;
    let f = c.others(leader)[0];

    let (status, headers, text) = get(&c, f, "/v1/kv/a").await;
    assert_eq!((status, text.as_str()), (StatusCode::NOT_FOUND, ""));
    assert!(headers.contains_key("x-consul-index"));
    assert_eq!(headers["x-consul-knownleader"], "true");

    // Written through a follower (forwarded), read through the other follower.
    assert_eq!(put(&c, f, "/v1/kv/a", "hello").await, "true");
    let first = entry(&c, c.others(leader)[1], "/v1/kv/a").await;
    assert_eq!(first["Key"], "a");
    assert_eq!(first["Value"], "aGVsbG8="); // base64 of "hello"
    assert_eq!(index(&first, "CreateIndex"), index(&first, "ModifyIndex"));

    // The same value again changes nothing; another value moves ModifyIndex only.
    assert_eq!(put(&c, f, "/v1/kv/a", "hello").await, "true");
    assert_eq!(entry(&c, f, "/v1/kv/a").await, first);
    assert_eq!(put(&c, leader, "/v1/kv/a", "world").await, "true");
    let second = entry(&c, f, "/v1/kv/a?consistent").await;
    assert!(index(&second, "ModifyIndex") > index(&first, "ModifyIndex"));
    assert_eq!(index(&second, "CreateIndex"), index(&first, "CreateIndex"));

    // ?cas: 0 creates only; a stale index is refused; the current one swaps.
    assert_eq!(put(&c, f, "/v1/kv/a?cas=0", "x").await, "false");
    assert_eq!(put(&c, f, "/v1/kv/b?cas=0", "x").await, "true");
    let stale = index(&first, "ModifyIndex");
    assert_eq!(
        put(&c, f, &format!("/v1/kv/a?cas={stale}"), "x").await,
        "false"
    );
    let current = index(&second, "ModifyIndex");
    assert_eq!(
        put(&c, f, &format!("/v1/kv/a?cas={current}"), "x").await,
        "true"
    );
    assert_eq!(entry(&c, leader, "/v1/kv/a").await["Value"], "eA==");

    // One store behind both APIs: a Consul value is a JSON string in /kv, and a /kv integer
    // reads through /v1/kv as its decimal text.
    assert_eq!(c.get(f, "a").await.1["value"], "x");
    assert_eq!(c.put(f, "n", json!(42)).await.0, StatusCode::OK);
    assert_eq!(entry(&c, f, "/v1/kv/n").await["Value"], "NDI="); // "42"

    // Refusals are plain-text 400s.
    for path in [
        "/v1/kv/a?stale&consistent",
        "/v1/kv/a?recurse",
        "/v1/kv/a?cas=x",
    ] {
        let method = if path.contains("cas") {
            Method::PUT
        } else {
            Method::GET
        };
        let (status, _, text) = consul(&c, f, method, path, b"v", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
        assert!(!text.is_empty() && !text.starts_with('{'), "{path}: {text}");
    }
    let (status, _, _) = consul(&c, f, Method::PUT, "/v1/kv/a", &[0xff, 0xfe], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The leader, by its address, from any node.
    let (status, _, text) = get(&c, f, "/v1/status/leader").await;
    assert_eq!(status, StatusCode::OK);
    let addr = c.url(leader, "").trim_start_matches("http://").to_string();
    assert_eq!(text, format!("\"{addr}\""));
}

/// Two concurrent `PUT ?cas=` of `x` from the same index, through both followers; their
/// answers, sorted.
async fn concurrent_cas(c: &Cluster) -> [String; 2] {
    let leader = c.leader().await;
    put(c, leader, "/v1/kv/x", "0").await;
    let start = index(&entry(c, leader, "/v1/kv/x").await, "ModifyIndex");
    let [f, g] = [c.others(leader)[0], c.others(leader)[1]];
    let path = format!("/v1/kv/x?cas={start}");
    let (a, b) = tokio::join!(put(c, f, &path, "1"), put(c, g, &path, "2"));
    let mut answers = [a, b];
    answers.sort();
    answers
}

#[tokio::test]
async fn of_two_cas_from_the_same_index_exactly_one_wins() {
    let c = Cluster::start(&[]);
    assert_eq!(concurrent_cas(&c).await, ["false", "true"]);
}

#[tokio::test]
async fn racy_cas_lets_two_cas_from_the_same_index_win() {
    let c = Cluster::start(&["--bug", "racy-cas", "--racy-cas-delay-ms", "300"]);
    assert_eq!(concurrent_cas(&c).await, ["true", "true"]);
}

#[tokio::test]
async fn stale_reads_are_local_and_can_be_stale() {
    let mut c = Cluster::start(&[]);
    let f = c.lagging_node().await;
    // `x` was written through /kv as 1, then 2; the lagging node still has 1.
    let stale = entry(&c, f, "/v1/kv/x?stale").await;
    assert_eq!(
        stale["Value"], "MQ==",
        "a local read of the old value: {stale}"
    ); // "1"
    for path in ["/v1/kv/x", "/v1/kv/x?consistent"] {
        let (status, _, text) = get(&c, f, path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {text}");
        assert!(
            ["No cluster leader", "rpc error making call"]
                .iter()
                .any(|m| text.starts_with(m)),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn an_acl_token_is_demanded_when_set() {
    let c = Cluster::start(&["--acl-token", "s3cret"]);
    let leader = c.leader().await;
    let f = c.others(leader)[0];
    let put_with = |token| consul(&c, f, Method::PUT, "/v1/kv/k", b"v", token);
    let (status, _, text) = put_with(None).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::FORBIDDEN, "Permission denied")
    );
    let (status, _, text) = put_with(Some("guess")).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::FORBIDDEN, "ACL not found")
    );
    // Through a follower, so the token is forwarded to the leader too.
    let (status, _, text) = put_with(Some("s3cret")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "true"));
    let (status, _, _) = consul(&c, f, Method::GET, "/v1/kv/k", b"", Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    // raftkv's own API is not under the ACL.
    assert_eq!(c.get(f, "k").await.0, StatusCode::OK);
}
