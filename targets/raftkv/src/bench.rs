//! `raftkv bench`: a closed-loop load benchmark of a 3-node raftkv cluster on loopback, beside
//! the same load against a 3-member etcd cluster when `etcd` is on PATH.
//!
//! Each client sends one request at a time to the leader: 50% linearizable reads, 50% writes of
//! random keys. The report gives throughput, and p50/p99 latency of reads and of writes apart,
//! per system and client count: a percentile of the 50/50 mix falls wherever the two
//! distributions meet, and says little about either.
//! Both clusters run side by side and the load alternates between them in short slices, so that
//! both see the same machine: on a shared disk fsync latency drifts by tens of percent within
//! minutes, which made back-to-back runs of one system and then the other disagree from run to
//! run about which was faster.
//! Every process the benchmark starts is killed (by pid) before it returns, also on error.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "raftkv bench",
    about = "Load benchmark: 3-node raftkv vs 3-node etcd on loopback"
)]
struct Args {
    /// Seconds of load per (system, client count).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration_secs: u64,
    /// Length of one slice of load in ms; the systems take turns slice by slice.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    slice_ms: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Skip etcd even if it is on PATH.
    #[arg(long)]
    no_etcd: bool,
}

pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    // args[0] is the binary, args[1] is "bench".
    let args = Args::parse_from(args.into_iter().skip(1));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftkv bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Child processes, SIGKILLed by pid and reaped on drop.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let ls = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    ls.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))
}

#[derive(Clone, Copy, PartialEq)]
enum System {
    Raftkv,
    Etcd,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Raftkv => "raftkv",
            System::Etcd => "etcd",
        }
    }
}

/// What one system did under one client count, over all its slices.
#[derive(Default)]
struct Load {
    reads: Vec<Duration>,
    writes: Vec<Duration>,
    errors: usize,
    secs: f64,
}

impl Load {
    fn ops_per_sec(&self) -> f64 {
        (self.reads.len() + self.writes.len()) as f64 / self.secs
    }

    /// Takes in one client's requests; not its `secs`, as every client of a slice ran for the
    /// same time, which `run_slice` counts once.
    fn add(&mut self, other: Load) {
        self.reads.extend(other.reads);
        self.writes.extend(other.writes);
        self.errors += other.errors;
    }

    /// Sorts the latencies, as `percentiles` needs them.
    fn sort(&mut self) {
        self.reads.sort();
        self.writes.sort();
    }
}

/// "p50 / p99" in ms of sorted `latencies`.
fn percentiles(latencies: &[Duration]) -> String {
    let ms = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!("{:.2} / {:.2}", ms(0.50), ms(0.99))
}

async fn run(args: Args) -> Result<(), String> {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("raftkv-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .map_err(|e| format!("cannot create {}: {e}", scratch.0.display()))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut systems = Vec::new();
    let raftkv = start_raftkv(&scratch.0, &http).await?;
    systems.push((System::Raftkv, raftkv.1.clone()));
    let etcd_found = which("etcd");
    let etcd = if args.no_etcd || !etcd_found {
        println!(
            "etcd: skipped ({})",
            if args.no_etcd {
                "--no-etcd"
            } else {
                "no `etcd` on PATH; on Debian: apt-get install etcd-server"
            }
        );
        None
    } else {
        let etcd = start_etcd(&scratch.0, &http).await?;
        systems.push((System::Etcd, etcd.1.clone()));
        Some(etcd)
    };

    let total = Duration::from_secs(args.duration_secs);
    let slice = Duration::from_millis(args.slice_ms).min(total);
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let mut loads: Vec<Load> = systems.iter().map(|_| Load::default()).collect();
        let mut done = Duration::ZERO;
        let mut round = 0;
        while done < total {
            let len = slice.min(total - done);
            for ((system, url), load) in systems.iter().zip(&mut loads) {
                run_slice(&http, *system, url, clients, len, round, args.keys, load).await;
            }
            done += len;
            round += 1;
        }
        for ((system, _), mut load) in systems.iter().zip(loads) {
            load.sort();
            println!(
                "{} {clients} clients: {:.0} ops/s, read p50 / p99 {} ms, write p50 / p99 {} ms, \
                 {} errors",
                system.name(),
                load.ops_per_sec(),
                percentiles(&load.reads),
                percentiles(&load.writes),
                load.errors
            );
            rows.push((*system, clients, load));
        }
    }
    drop((raftkv, etcd));

    println!(
        "\n{} s per system and client count in slices of {} ms taken in turns, 50% reads / 50% \
         writes, {} keys, closed loop against the leader\n",
        args.duration_secs, args.slice_ms, args.keys
    );
    println!(
        "| system | clients | ops/s | read p50 / p99 ms | write p50 / p99 ms | errors | raftkv / etcd |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (system, clients, load) in &rows {
        let etcd = rows
            .iter()
            .find(|(s, c, _)| *s == System::Etcd && c == clients)
            .map(|(_, _, l)| l.ops_per_sec());
        let ratio = match (system, etcd) {
            (System::Raftkv, Some(etcd)) => format!("{:.0}%", 100.0 * load.ops_per_sec() / etcd),
            _ => String::new(),
        };
        println!(
            "| {} | {clients} | {:.0} | {} | {} | {} | {ratio} |",
            system.name(),
            load.ops_per_sec(),
            percentiles(&load.reads),
            percentiles(&load.writes),
            load.errors
        );
    }
    Ok(())
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// Polls `f` every 50 ms for up to 10 s.
async fn poll<T, F, Fut>(what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_raftkv(dir: &Path, http: &reqwest::Client) -> Result<(Procs, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let ports = free_ports(3)?;
    let cluster = (0..3)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let child = Command::new(&exe)
            .arg("--id")
            .arg((i + 1).to_string())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cluster")
            .arg(&cluster)
            .arg("--data-dir")
            .arg(dir.join(format!("raftkv-{}", i + 1)))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start raftkv: {e}"))?;
        procs.0.push(child);
    }
    let leader = poll("a raftkv leader", || async {
        let url = format!("http://127.0.0.1:{}/status", ports[0]);
        let s: Value = http.get(url).send().await.ok()?.json().await.ok()?;
        s["leader"].as_u64()
    })
    .await?;
    let url = format!("http://127.0.0.1:{}", ports[(leader - 1) as usize]);
    println!("raftkv: 3 nodes up, leader {url}");
    Ok((procs, url))
}

async fn start_etcd(dir: &Path, http: &reqwest::Client) -> Result<(Procs, String), String> {
    let ports = free_ports(6)?;
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
    let client = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let initial = (0..3)
        .map(|i| format!("n{i}={}", peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs(Vec::new());
    for i in 0..3 {
        let log = std::fs::File::create(dir.join(format!("etcd-{i}.log")))
            .map_err(|e| format!("cannot create the etcd log: {e}"))?;
        let child = Command::new("etcd")
            .args(["--name", &format!("n{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-{i}")))
            .args(["--listen-client-urls", &client(i)])
            .args(["--advertise-client-urls", &client(i)])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "raftkv-bench"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start etcd: {e}"))?;
        procs.0.push(child);
    }
    let leader = poll("an etcd leader", || async {
        for i in 0..3 {
            let url = format!("{}/v3/maintenance/status", client(i));
            let s: Value = http
                .post(url)
                .json(&json!({}))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            if s["leader"].is_string() && s["leader"] == s["header"]["member_id"] {
                return Some(client(i));
            }
        }
        None
    })
    .await?;
    println!("etcd: 3 members up, leader {leader}");
    Ok((procs, leader))
}

/// A small xorshift generator: the load needs cheap, seedable randomness, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One random request to `base`; its latency (or its failure) goes into `load`.
async fn one_op(
    http: &reqwest::Client,
    system: System,
    base: &str,
    rng: &mut Rng,
    keys: u64,
    load: &mut Load,
) {
    let key = format!("k{}", rng.next() % keys);
    let write = rng.next().is_multiple_of(2);
    let value = rng.next() % 1_000_000;
    let req = match (system, write) {
        (System::Raftkv, true) => http
            .put(format!("{base}/kv/{key}"))
            .json(&json!({ "value": value })),
        (System::Raftkv, false) => http.get(format!("{base}/kv/{key}")),
        (System::Etcd, true) => http.post(format!("{base}/v3/kv/put")).json(&json!({
            "key": B64.encode(&key),
            "value": B64.encode(value.to_string()),
        })),
        (System::Etcd, false) => http
            .post(format!("{base}/v3/kv/range"))
            .json(&json!({ "key": B64.encode(&key) })),
    };
    let start = Instant::now();
    let ok = match req.send().await {
        // A read of a never-written key (404) is a successful linearizable read.
        Ok(r) => r.status().is_success() || (!write && r.status() == 404),
        Err(_) => false,
    };
    match (ok, write) {
        (false, _) => load.errors += 1,
        (true, true) => load.writes.push(start.elapsed()),
        (true, false) => load.reads.push(start.elapsed()),
    }
}

/// `clients` closed-loop clients against `base` for `len`; adds what they did to `load`.
#[allow(clippy::too_many_arguments)]
async fn run_slice(
    http: &reqwest::Client,
    system: System,
    base: &str,
    clients: usize,
    len: Duration,
    round: u64,
    keys: u64,
    load: &mut Load,
) {
    let start = Instant::now();
    let end = start + len;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base) = (http.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1) ^ (round << 32));
            let mut load = Load::default();
            while Instant::now() < end {
                one_op(&http, system, &base, &mut rng, keys, &mut load).await;
            }
            load
        }));
    }
    for t in tasks {
        match t.await {
            Ok(l) => load.add(l),
            Err(_) => load.errors += 1,
        }
    }
    load.secs += start.elapsed().as_secs_f64();
}
