//! The report and the index page in a real browser: headless Chromium loads
//! them, runs their scripts and hands back the DOM. Skipped, saying why, when
//! Chromium is not installed (`apt-get install -y chromium`).

mod common;

use checker::ModelChoice;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `args` and a fresh profile; returns stdout.
fn run_chromium(binary: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill(); // only the child this test started
            let _ = child.wait();
            panic!("chromium did not finish within 60 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap().expect("chromium's output is UTF-8")
}

#[test]
fn reports_of_invalid_runs_load_in_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium on PATH (apt-get install -y chromium)");
        return;
    };
    let runs = [
        ("stale-read", stale_read(), ModelChoice::Auto),
        ("kv-c10-bad", kv_bad(), ModelChoice::Kv),
    ];
    for (name, history, model) in runs {
        let report = check(&history, model);
        let dir = tempfile::tempdir().unwrap();
        results::render(dir.path(), &history, &report, &info(name)).unwrap();
        let url = format!("file://{}", dir.path().join("report.html").display());
        // Kept under the target directory for a person to look at.
        let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}.png"));
        let _ = std::fs::remove_file(&screenshot);
        run_chromium(
            &chromium,
            &[
                format!("--screenshot={}", screenshot.display()),
                "--window-size=1280,2000".into(),
                url.clone(),
            ],
        );
        assert_eq!(
            png_size(&screenshot),
            (1280, 2000),
            "{}",
            screenshot.display()
        );

        let dom = run_chromium(&chromium, &["--dump-dom".into(), url]);
        assert!(
            dom.contains(r#"<section id="counterexample">"#),
            "{name}: no counterexample in the DOM"
        );
        // The script ran: it put the blocked operation's description under the lanes.
        let blocked = report.counterexample.unwrap().blocked.unwrap().to_string();
        let state = format!(
            r#"<p id="cx-state" class="state">cannot be placed: {}</p>"#,
            blocked.replace('>', "&gt;")
        );
        assert!(dom.contains(&state), "{name}: no {state} in the DOM");
    }
}

/// Sends one GET and returns the status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let response = String::from_utf8_lossy(&bytes);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

#[test]
fn serve_lists_runs_and_serves_only_the_store() {
    let store = tempfile::tempdir().unwrap();
    let runs = [
        (
            "register",
            "20261122T201500Z",
            stale_read(),
            ModelChoice::Auto,
        ),
        (
            "register",
            "20261122T203000Z",
            big_valid(2_000),
            ModelChoice::CasRegister,
        ),
    ];
    for (test, stamp, history, model) in runs {
        let dir = store.path().join(test).join(stamp);
        let report = check(&history, model);
        results::render(&dir, &history, &report, &info(test)).unwrap();
        let results = serde_json::json!({"seed": 42, "verdict": report.verdict, "report": report});
        std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
        let test_json = serde_json::json!({"name": test, "seed": 42, "options": {"target": "raftkv", "nodes": 5}});
        std::fs::write(dir.join("test.json"), test_json.to_string()).unwrap();
    }
    std::os::unix::fs::symlink("20261122T203000Z", store.path().join("register/latest")).unwrap();
    std::os::unix::fs::symlink("/etc", store.path().join("register/escape")).unwrap();

    let addr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let root = store.path().to_path_buf();
    // The server thread ends with the test process.
    std::thread::spawn(move || results::serve(&root, addr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, index) = get(addr, "/");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        index.matches("<tr><td>").count(),
        2,
        "two runs, the latest link skipped"
    );
    assert!(index.contains(r#"<span class="verdict invalid">invalid</span>"#));
    assert!(index.contains(r#"<span class="verdict valid">valid</span>"#));
    assert!(
        index.find("20:30:00").unwrap() < index.find("20:15:00").unwrap(),
        "newest first"
    );
    assert!(index.contains(r#"href="/register/20261122T201500Z/report.html""#));

    let (status, report) = get(addr, "/register/20261122T201500Z/report.html");
    assert!(
        status.contains("200") && report.contains("id=\"counterexample\""),
        "{status}"
    );
    let (status, _) = get(addr, "/register/latest/rate.png");
    assert!(status.contains("200"), "{status}");
    for bad in ["/../../etc/passwd", "/register/%2e%2e/%2e%2e/etc/passwd"] {
        let (status, body) = get(addr, bad);
        assert!(status.contains("400"), "{bad}: {status}");
        assert!(!body.contains("root:"), "{bad} leaked a file");
    }
    let (status, _) = get(addr, "/register/escape/passwd");
    assert!(
        status.contains("403"),
        "a symlink out of the store: {status}"
    );

    let Some(chromium) = chromium() else {
        eprintln!("skipped the browser half: no chromium on PATH (apt-get install -y chromium)");
        return;
    };
    let dom = run_chromium(&chromium, &["--dump-dom".into(), format!("http://{addr}/")]);
    assert!(
        dom.contains("<h1>Splitbrain runs</h1>"),
        "no index in {dom}"
    );
    assert!(
        dom.contains(r#"<span class="verdict invalid">invalid</span>"#),
        "no invalid run in {dom}"
    );
}
