//! Real clusters: raftkv processes in real namespaces, real iptables, real signals.
//!
//! The raftkv binary: `RAFTKV_BIN` if set, else `raftkv` next to this test's own target
//! profile directory. If it is missing the test builds it with `cargo build -p raftkv`
//! into the same target directory (once per test binary). That works for any
//! `CARGO_TARGET_DIR`, any profile and a bare `cargo test -p splitbrain-nemesis`, without
//! the unstable artifact dependencies a dev-dependency on a binary would need.
//!
//! Tests that need root, `ip` or `iptables` say why and return early without them.
//! The crash scenarios re-run this binary with `NEMESIS_CHILD` set (see `child_scenario`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nemesis::{ClusterSpec, Fault, Grudge, LocalCluster, NetworkMode, NodeCommand, NodePaths};

fn raftkv() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("RAFTKV_BIN") {
            return Some(PathBuf::from(bin));
        }
        // .../<target>/<profile>/deps/cluster-<hash>
        let exe = std::env::current_exe().ok()?;
        let profile_dir = exe.parent()?.parent()?;
        let bin = profile_dir.join("raftkv");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "raftkv"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("CARGO_TARGET_DIR", profile_dir.parent()?);
            if profile_dir.ends_with("release") {
                cmd.arg("--release");
            }
            eprintln!("building raftkv: {cmd:?}");
            let ok = cmd.status().is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipping: `cargo build -p raftkv` failed");
                return None;
            }
        }
        Some(bin)
    })
    .clone()
}

/// Namespace tests need root, `ip` and `iptables`; says why when they are missing.
fn namespaces_available() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: network namespaces need root");
        return false;
    }
    for (tool, pkg) in [("ip", "iproute2"), ("iptables", "iptables")] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("skipping: `{tool}` is missing (apt-get install {pkg})");
            return false;
        }
    }
    true
}

fn spec(name: &str, network: NetworkMode, subnet: &str, port: u16) -> ClusterSpec {
    let dir = std::env::temp_dir().join(format!("nemesis-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ClusterSpec {
        name: name.into(),
        nodes: 3,
        dir,
        network,
        subnet: subnet.into(),
        port,
    }
}

fn raftkv_command(bin: PathBuf) -> impl Fn(usize, &[SocketAddr], &NodePaths) -> NodeCommand {
    move |i, addrs, paths| {
        let cluster: Vec<String> = addrs
            .iter()
            .enumerate()
            .map(|(j, a)| format!("{}={a}", j + 1))
            .collect();
        let args = [
            "--id",
            &(i + 1).to_string(),
            "--listen",
            &addrs[i].to_string(),
            "--cluster",
            &cluster.join(","),
            "--data-dir",
            &paths.data_dir.to_string_lossy(),
            "--log-file",
            &paths.log_file.to_string_lossy(),
            "--request-timeout-ms",
            "1000",
        ];
        NodeCommand {
            program: bin.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("RUST_LOG".into(), "info".into())],
        }
    }
}

fn start(spec: ClusterSpec) -> LocalCluster {
    let bin = raftkv().expect("raftkv binary");
    let cmd = raftkv_command(bin);
    LocalCluster::start(
        spec,
        &cmd,
        &|addrs| agreed_leader(addrs).is_some(),
        secs(20),
    )
    .unwrap_or_else(|e| panic!("start: {e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `GET /status` over a bare TcpStream.
fn status(addr: SocketAddr) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(secs(1))).ok()?;
    let req = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = &response[response.find("\r\n\r\n")? + 4..];
    serde_json::from_str(body).ok()
}

fn leader_of(addr: SocketAddr) -> Option<u64> {
    status(addr)?["leader"].as_u64()
}

/// The leader's 1-based id when every given node answers and names the same leader.
fn agreed_leader(addrs: &[SocketAddr]) -> Option<u64> {
    let leaders: Vec<Option<u64>> = addrs.iter().map(|&a| leader_of(a)).collect();
    let first = leaders[0]?;
    leaders.iter().all(|&l| l == Some(first)).then_some(first)
}

fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP connect to `addr` made from inside namespace `ns` (on a thread of its own,
/// since setns moves only the calling thread).
fn connect_from(ns: &str, addr: SocketAddr) -> bool {
    let path = Path::new("/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).expect("namespace file");
        // SAFETY: setns on an fd we own; only this thread changes namespace.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
    })
    .join()
    .unwrap()
}

fn netns_iptables(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "iptables", "-S", "INPUT"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn proc_state(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("State:"));
    line.unwrap_or("State: gone").to_owned()
}

/// Namespaces, links and live processes this cluster could have left behind.
fn leftovers(name: &str, dir: &Path) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut left: Vec<String> = run(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&format!("sb-{name}-")))
        .map(str::to_owned)
        .collect();
    for line in run(&["-o", "link", "show"]).lines() {
        let link = line
            .split(": ")
            .nth(1)
            .unwrap_or("")
            .split('@')
            .next()
            .unwrap_or("");
        if link == format!("sb-{name}") || link.starts_with(&format!("sbv{name}")) {
            left.push(link.to_owned());
        }
    }
    let dir = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&dir) {
            left.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    left
}

#[test]
fn namespaces_partition_kill_pause() {
    if !namespaces_available() || raftkv().is_none() {
        return;
    }
    let spec = spec("nsf", NetworkMode::Auto, "10.213.101.0/24", 7000);
    let dir = spec.dir.clone();
    let mut cluster = start(spec);
    assert_eq!(cluster.mode(), NetworkMode::Namespaces);
    assert_eq!(cluster.addrs()[0].to_string(), "10.213.101.11:7000");
    let addrs = cluster.addrs().to_vec();
    let ns = |i: usize| format!("sb-nsf-n{}", i + 1);

    // Isolate the leader, found through its status endpoint as the harness does.
    let leader = agreed_leader(&addrs).unwrap() as usize - 1;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    assert!(connect_from(&ns(a), addrs[leader]));
    let applied = cluster
        .apply(&Fault::Partition(Grudge::isolate(3, leader)))
        .unwrap();
    let rules = netns_iptables(&ns(leader));
    assert!(
        rules.contains(&format!("-A INPUT -s {}/32 -j DROP", addrs[a].ip())),
        "{rules}"
    );
    assert!(
        !connect_from(&ns(a), addrs[leader]),
        "the isolated node must be unreachable"
    );
    assert!(connect_from(&ns(a), addrs[b]), "the majority still talks");
    eventually(
        "the majority to elect a new leader",
        secs(10),
        || matches!(agreed_leader(&[addrs[a], addrs[b]]), Some(l) if l as usize - 1 != leader),
    );
    cluster.heal(&applied).unwrap();
    assert!(!netns_iptables(&ns(leader)).contains("DROP"));
    assert!(connect_from(&ns(a), addrs[leader]));
    eventually("all three nodes to agree on a leader", secs(10), || {
        agreed_leader(&addrs).is_some()
    });

    // Kill and restart a node: a new process on the same data dir.
    let old = cluster.pid(a).unwrap();
    let applied = cluster.apply(&Fault::Kill(vec![a])).unwrap();
    assert_eq!(cluster.pid(a), None);
    assert_eq!(proc_state(old), "State: gone");
    assert!(status(addrs[a]).is_none());
    cluster.heal(&applied).unwrap();
    assert_ne!(cluster.pid(a), Some(old));
    eventually("the restarted node to rejoin", secs(10), || {
        agreed_leader(&addrs).is_some()
    });

    // Pause and resume; then heal_all undoes a pause and a kill together.
    let applied = cluster.apply(&Fault::Pause(vec![b])).unwrap();
    let pid = cluster.pid(b).unwrap();
    assert!(proc_state(pid).contains('T'), "{}", proc_state(pid));
    cluster.heal(&applied).unwrap();
    assert!(!proc_state(pid).contains('T'));
    cluster.apply(&Fault::Pause(vec![a])).unwrap();
    cluster.apply(&Fault::Kill(vec![b])).unwrap();
    cluster
        .apply(&Fault::Partition(Grudge::isolate(3, leader)))
        .unwrap();
    cluster.heal_all().unwrap();
    assert!(!proc_state(cluster.pid(a).unwrap()).contains('T'));
    assert!(cluster.pid(b).is_some());
    assert!(!netns_iptables(&ns(leader)).contains("DROP"));
    eventually("the healed cluster to agree on a leader", secs(10), || {
        agreed_leader(&addrs).is_some()
    });

    let removed = cluster.teardown().unwrap();
    assert!(
        removed.iter().any(|l| l == "removed namespace sb-nsf-n1"),
        "{removed:?}"
    );
    assert!(
        removed.iter().any(|l| l == "removed bridge sb-nsf"),
        "{removed:?}"
    );
    assert_eq!(leftovers("nsf", &dir), Vec::<String>::new());
    assert!(dir.join("nodes/n1/stderr.log").exists());
    assert!(dir.join("nodes/n1/node.log").exists());
    assert!(!dir.join("cluster.json").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn loopback_without_namespaces() {
    if raftkv().is_none() {
        return;
    }
    let spec = spec("lo", NetworkMode::Loopback, "10.213.102.0/24", 17100);
    let dir = spec.dir.clone();
    let mut cluster = start(spec);
    assert_eq!(cluster.mode(), NetworkMode::Loopback);
    assert!(cluster.addrs().iter().all(|a| a.ip().is_loopback()));
    let err = cluster
        .apply(&Fault::Partition(Grudge::isolate(3, 0)))
        .unwrap_err();
    assert!(err.to_string().contains("namespaces"), "{err}");
    assert!(err.to_string().contains("root"), "{err}");

    let old = cluster.pid(1).unwrap();
    cluster.kill(1).unwrap();
    assert_eq!(proc_state(old), "State: gone");
    cluster.restart(1).unwrap();
    cluster.pause(2).unwrap();
    assert!(proc_state(cluster.pid(2).unwrap()).contains('T'));
    cluster.resume(2).unwrap();
    let addrs = cluster.addrs().to_vec();
    eventually(
        "the loopback cluster to agree on a leader",
        secs(10),
        || agreed_leader(&addrs).is_some(),
    );
    drop(cluster); // Drop tears down too.
    assert_eq!(leftovers("lo", &dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a crash scenario in a child process (this binary, filtered to this test).
fn spawn_child(mode: &str, name: &str, subnet: &str) -> (std::process::Child, PathBuf) {
    let spec = spec(name, NetworkMode::Namespaces, subnet, 7000);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_scenario",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NEMESIS_CHILD", mode)
        .env("NEMESIS_CHILD_NAME", name)
        .env("NEMESIS_CHILD_SUBNET", subnet)
        .env("NEMESIS_CHILD_DIR", &spec.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.ends_with("READY")));
    assert!(ready, "the child did not start its cluster");
    (child, spec.dir)
}

fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child side of the crash tests; does nothing in a normal test run.
#[test]
fn child_scenario() {
    let Ok(mode) = std::env::var("NEMESIS_CHILD") else {
        return;
    };
    nemesis::install_signal_cleanup();
    let mut spec = spec(
        &std::env::var("NEMESIS_CHILD_NAME").unwrap(),
        NetworkMode::Namespaces,
        &std::env::var("NEMESIS_CHILD_SUBNET").unwrap(),
        7000,
    );
    spec.dir = std::env::var("NEMESIS_CHILD_DIR").unwrap().into();
    let mut cluster = start(spec);
    let leader = agreed_leader(cluster.addrs()).unwrap() as usize - 1;
    cluster
        .apply(&Fault::Partition(Grudge::isolate(3, leader)))
        .unwrap();
    cluster
        .apply(&Fault::Pause(vec![(leader + 1) % 3]))
        .unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    if mode == "panic" {
        // Forgotten, so that only the panic hook (not Drop) can clean up.
        std::mem::forget(cluster);
        panic!("a mid-run panic (expected: panic_mid_run_leaves_nothing checks the cleanup)");
    }
    std::thread::sleep(secs(60));
}

#[test]
fn panic_mid_run_leaves_nothing() {
    if !namespaces_available() || raftkv().is_none() {
        return;
    }
    let (mut child, dir) = spawn_child("panic", "pan", "10.213.103.0/24");
    assert_ne!(wait_exit(&mut child), Some(0));
    assert_eq!(leftovers("pan", &dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ctrl_c_leaves_nothing() {
    if !namespaces_available() || raftkv().is_none() {
        return;
    }
    let (mut child, dir) = spawn_child("wait", "int", "10.213.104.0/24");
    assert!(!leftovers("int", &dir).is_empty());
    // SAFETY: signalling the child we spawned, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut child), Some(130));
    assert_eq!(leftovers("int", &dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cleanup_after_sigkill() {
    if !namespaces_available() || raftkv().is_none() {
        return;
    }
    let (mut child, dir) = spawn_child("wait", "kil", "10.213.105.0/24");
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let left = leftovers("kil", &dir);
    assert!(left.iter().any(|l| l == "sb-kil-n1"), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("process")), "{left:?}");
    let removed = nemesis::cleanup().unwrap();
    assert!(
        removed.iter().any(|l| l == "removed namespace sb-kil-n1"),
        "{removed:?}"
    );
    assert!(
        removed.iter().any(|l| l.starts_with("killed process")),
        "{removed:?}"
    );
    eventually("the killed nodes to exit", secs(5), || {
        leftovers("kil", &dir).is_empty()
    });
    let _ = std::fs::remove_dir_all(dir);
}
