//! How the Consul client classifies each answer, against a scripted HTTP server: the verdicts
//! Jepsen's Consul client gave (500s are unknown for writes, failures for reads), the CAS built
//! from a GET and `PUT ?cas=ModifyIndex`, the read-mode query and the token header.
//! The end-to-end runs against raftkv's Consul API are in the harness's tests.

use checker::{EventType, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use targets::consul::{ConsulClient, ReadMode};
use targets::{Action, Client, Completion, Op};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request as the server saw it: method, path with query, token header.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// Serves `script` (method, path with query → status, body) on a loopback port.
async fn server(
    script: impl Fn(&str, &str) -> (u16, &'static str) + Send + 'static,
) -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            let head_end = loop {
                let n = conn.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let length: usize = header("content-length").map_or(0, |l| l.parse().unwrap());
            while buf.len() < head_end + length {
                let n = conn.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap(), words.next().unwrap());
            log.lock().unwrap().push((
                method.to_string(),
                path.to_string(),
                header("x-consul-token"),
            ));
            let (status, body) = script(method, path);
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (addr, seen)
}

async fn invoke(addr: SocketAddr, mode: ReadMode, action: Action) -> Completion {
    let http = reqwest::Client::new();
    let mut client = ConsulClient::new(http, &addr.to_string(), mode, Some("tok".into()));
    let op = Op {
        key: "k".into(),
        action,
    };
    client.invoke(&op).await
}

const FIVE_AT_7: &str =
    r#"[{"LockIndex":0,"Key":"k","Flags":0,"Value":"NQ==","CreateIndex":2,"ModifyIndex":7}]"#;

#[tokio::test]
async fn reads_map_values_absence_and_errors() {
    let (addr, seen) = server(|_, path| match path {
        "/v1/kv/k?consistent" => (200, FIVE_AT_7),
        "/v1/kv/k?stale" => (404, ""),
        _ => (500, "No cluster leader"),
    })
    .await;
    let read = |mode| invoke(addr, mode, Action::Read);
    assert_eq!(
        read(ReadMode::Consistent).await,
        Completion::ok(Value::Int(5))
    );
    assert_eq!(read(ReadMode::Stale).await, Completion::ok(Value::Nil));
    let failed = read(ReadMode::Default).await;
    assert_eq!(
        failed.kind,
        EventType::Fail,
        "a failed read changes nothing"
    );
    assert!(failed.error.unwrap().contains("No cluster leader"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[2].1, "/v1/kv/k", "the default mode has no flag");
    assert!(seen
        .iter()
        .all(|(_, _, token)| token.as_deref() == Some("tok")));
}

#[tokio::test]
async fn writes_are_unknown_on_500s_and_failed_on_refusals() {
    for (status, body, kind) in [
        (200, "true", EventType::Ok),
        (500, "No cluster leader", EventType::Info),
        (500, "rpc error making call: timeout", EventType::Info),
        (503, "", EventType::Info),
        (403, "Permission denied", EventType::Fail),
        (429, "rate limit exceeded", EventType::Fail),
        (400, "bad request", EventType::Fail),
    ] {
        let (addr, _) = server(move |_, _| (status, body)).await;
        let done = invoke(addr, ReadMode::Consistent, Action::Write(3)).await;
        assert_eq!(done.kind, kind, "{status} {body}: {done:?}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_failure() {
    // Bind, learn the port, close: nothing listens there.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let done = invoke(addr, ReadMode::Consistent, Action::Write(3)).await;
    assert_eq!(done.kind, EventType::Fail);
}

#[tokio::test]
async fn cas_puts_with_the_modify_index_it_read() {
    let (addr, seen) = server(|method, path| match (method, path) {
        ("GET", _) => (200, FIVE_AT_7),
        (_, "/v1/kv/k?cas=7") => (200, "true"),
        _ => (500, "unexpected"),
    })
    .await;
    let done = invoke(addr, ReadMode::Consistent, Action::Cas { from: 5, to: 6 }).await;
    assert_eq!(done.kind, EventType::Ok, "{done:?}");
    assert_eq!(seen.lock().unwrap()[1].1, "/v1/kv/k?cas=7");

    // Another value: failed without writing.
    let done = invoke(addr, ReadMode::Consistent, Action::Cas { from: 4, to: 6 }).await;
    assert_eq!(done, Completion::fail("compare-failed"));
    assert_eq!(seen.lock().unwrap().len(), 3, "no PUT after a mismatch");
}

#[tokio::test]
async fn cas_outcomes_follow_the_put() {
    let (lost, _) = server(|method, _| match method {
        "GET" => (200, FIVE_AT_7),
        _ => (200, "false"),
    })
    .await;
    let done = invoke(lost, ReadMode::Consistent, Action::Cas { from: 5, to: 6 }).await;
    assert_eq!(
        done,
        Completion::fail("compare-failed"),
        "index moved: not written"
    );

    let (unknown, _) = server(|method, _| match method {
        "GET" => (200, FIVE_AT_7),
        _ => (500, "No cluster leader"),
    })
    .await;
    let done = invoke(
        unknown,
        ReadMode::Consistent,
        Action::Cas { from: 5, to: 6 },
    )
    .await;
    assert_eq!(done.kind, EventType::Info);

    let (unread, _) = server(|_, _| (500, "No cluster leader")).await;
    let done = invoke(unread, ReadMode::Consistent, Action::Cas { from: 5, to: 6 }).await;
    assert_eq!(
        done.kind,
        EventType::Fail,
        "nothing written when the GET failed"
    );
}
