//! `splitbrain run`: one or more runs of a workload against a local cluster
//! under a nemesis, each ending in a verdict.
//!
//! A run goes through its phases in order:
//! 1. **setup**: run directory, `test.json`, the cluster (nemesis crate), a
//!    leader;
//! 2. **main phase**: `--concurrency` workers for `--time-limit` seconds while
//!    the nemesis schedule injects and heals faults;
//! 3. **heal**: everything healed, then a wait for a leader;
//! 4. **final reads**: a fresh client reads every key the run touched, so a
//!    lost write shows even when nobody read the key after it was lost;
//! 5. **teardown**, then the check and `results.json`.

use crate::generator::{Generator, Mix};
use crate::progress::Progress;
use crate::recorder;
use crate::schedule::{Cluster, FaultCounts, Kind, Nemesis};
use crate::store::RunDir;
use crate::target::{self, Api, Server, Target};
use crate::workers::{self, Counts, Pace};
use crate::{exit, summary};
use checker::check::{ModelChoice, Options, Verdict};
use checker::{EventType, FailedCas, History, Process};
use nemesis::{ClusterSpec, LocalCluster, NetworkMode, NodePaths};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use targets::{consul, etcd};
use targets::{Action, Op};
use tokio::time::Instant;

#[derive(clap::Args, Serialize, Clone, Debug)]
pub struct Args {
    /// The system under test.
    #[arg(long, default_value = "raftkv", value_parser = ["raftkv", "etcd", "consul"])]
    target: String,
    /// Cluster size.
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    nodes: usize,
    /// Workers, each a client bound to one node (round robin).
    #[arg(long, default_value_t = 10, value_parser = at_least_one)]
    concurrency: usize,
    /// Length of the main phase, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = positive)]
    time_limit: f64,
    /// The workload.
    #[arg(long, default_value = "register", value_parser = ["register"])]
    workload: String,
    /// Keys in use at any time.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    keys: usize,
    /// Operations on one key before it is retired for a fresh one.
    #[arg(long, default_value_t = 200)]
    ops_per_key: u64,
    /// Percent of reads, writes and cas, e.g. 50,30,20.
    #[arg(long, default_value = "50,30,20")]
    mix: Mix,
    /// Fault kinds, comma separated: partition, kill, pause (none by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    nemesis: Vec<Kind>,
    /// Seconds between the starts of two faults; each lasts about half of it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    nemesis_interval: f64,
    /// Overall operations per second (default: as fast as the target answers).
    #[arg(long, value_parser = positive)]
    rate: Option<f64>,
    /// Seconds before an operation is given up as indeterminate (`info`).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive)]
    op_timeout: f64,
    /// Seed of every random choice (default: random, printed and stored).
    #[arg(long)]
    seed: Option<u64>,
    /// Start raftkv (also under --consul-on-raftkv) with this bug switch (repeatable).
    #[arg(long = "bug", value_name = "NAME", value_parser = ["stale-read", "lost-write", "racy-cas"])]
    bugs: Vec<String>,
    /// Repeat the run up to N times (seeds SEED, SEED+1, ...); stop at the
    /// first invalid one.
    #[arg(long, value_name = "N", default_value_t = 1)]
    test_count: u64,
    /// Give the checker this many seconds before it answers unknown.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = positive)]
    check_time_limit: f64,
    /// Where run directories go.
    #[arg(long, value_name = "DIR", default_value = "store")]
    store: PathBuf,
    /// Private IPv4 subnet for the nodes' network namespaces; it must not
    /// overlap a host route, nor another run's subnet.
    #[arg(long, default_value = nemesis::DEFAULT_SUBNET)]
    subnet: String,
    /// The raftkv binary (default: next to this executable, then on PATH).
    #[arg(long, value_name = "PATH")]
    raftkv_binary: Option<PathBuf>,
    /// The etcd binary (default: `etcd` on PATH; apt-get install etcd-server).
    #[arg(long, value_name = "PATH")]
    etcd_binary: Option<PathBuf>,
    /// Test an existing cluster at these client URLs (comma separated,
    /// loopback or the --subnet only) instead of starting one; no nemesis.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// How reads are served. etcd: linearizable (default) or serializable
    /// (local to the member, stale by design). Consul: consistent (default),
    /// default (leader lease) or stale (any server, stale by design).
    #[arg(long, value_parser = ["linearizable", "serializable", "consistent", "default", "stale"])]
    read_mode: Option<String>,
    /// Consul ACL token, sent as X-Consul-Token (never written to the run directory).
    #[arg(long, env = "CONSUL_HTTP_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    token: Option<String>,
    /// With --target consul: start raftkv nodes and drive them through the
    /// Consul KV API they also serve, under the nemesis (Splitbrain cannot
    /// start Consul itself).
    #[arg(long)]
    consul_on_raftkv: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

/// What `test.json` holds: every option, with the seed this run used.
#[derive(Serialize)]
struct TestFile<'a> {
    name: &'a str,
    seed: u64,
    target: &'a str,
    binary: Option<&'a Path>,
    splitbrain_version: &'static str,
    options: &'a Args,
}

/// A run that could not be set up or carried out; the message says what to do.
type Setup<T> = Result<T, String>;

pub fn run(args: Args) -> ExitCode {
    nemesis::install_signal_cleanup();
    let outcome = choose_target(&args).and_then(|target| {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(run_all(&args, &target))
    });
    match outcome {
        Ok(verdict) => ExitCode::from(exit::verdict(verdict)),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

/// Runs `--test-count` times; the result is the worst verdict.
async fn run_all(args: &Args, target: &Target) -> Setup<Verdict> {
    let first_seed = args.seed.unwrap_or_else(rand::random);
    let mut worst = Verdict::Valid;
    for i in 0..args.test_count.max(1) {
        let seed = first_seed.wrapping_add(i);
        if args.test_count > 1 {
            println!("\nrun {} of {}", i + 1, args.test_count);
        }
        match one_run(args, seed, target).await? {
            Verdict::Invalid => return Ok(Verdict::Invalid),
            Verdict::Unknown => worst = Verdict::Unknown,
            Verdict::Valid => {}
        }
    }
    Ok(worst)
}

/// The target the options describe, with its binary found; refuses options
/// that do not fit it.
fn choose_target(args: &Args) -> Setup<Target> {
    // Refuse hosts we may not contact before anything is created.
    target::parse_endpoints(&args.endpoints, &args.subnet)?;
    let consul = args.target == "consul";
    if args.token.is_some() && !consul {
        return Err("--token (or CONSUL_HTTP_TOKEN) applies to --target consul only".into());
    }
    if args.consul_on_raftkv && !consul {
        return Err("--consul-on-raftkv applies to --target consul only".into());
    }
    let api = match (args.target.as_str(), args.read_mode.as_deref()) {
        ("etcd", None | Some("linearizable")) => Api::Etcd(etcd::ReadMode::Linearizable),
        ("etcd", Some("serializable")) => Api::Etcd(etcd::ReadMode::Serializable),
        ("consul", mode @ (None | Some("consistent" | "default" | "stale"))) => Api::Consul {
            read_mode: match mode {
                Some("default") => consul::ReadMode::Default,
                Some("stale") => consul::ReadMode::Stale,
                _ => consul::ReadMode::Consistent,
            },
            token: args.token.clone(),
        },
        ("raftkv", None) => Api::Raftkv,
        ("raftkv", Some(_)) => {
            return Err(
                "raftkv reads are always linearizable, --read-mode applies to etcd and \
                        consul; use --bug stale-read for stale reads"
                    .into(),
            )
        }
        (target, Some(mode)) => {
            let modes = if target == "etcd" {
                "linearizable or serializable"
            } else {
                "consistent, default or stale"
            };
            return Err(format!(
                "--read-mode {mode} is not a {target} read mode: use {modes}"
            ));
        }
        (target, None) => unreachable!("clap admits no target {target:?}"),
    };
    if !args.endpoints.is_empty() {
        if !args.nemesis.is_empty() {
            return Err(
                "--nemesis cannot be used with --endpoints: Splitbrain only faults \
                        processes and namespaces it started itself, never an existing cluster; \
                        drop --endpoints to let it start one"
                    .into(),
            );
        }
        if !args.bugs.is_empty() || args.consul_on_raftkv {
            return Err("--bug and --consul-on-raftkv start raftkv nodes; drop --endpoints".into());
        }
        return Ok(Target { server: None, api });
    }
    let server = match args.target.as_str() {
        "etcd" => {
            if !args.bugs.is_empty() {
                return Err("--bug switches exist only in raftkv, not in etcd".into());
            }
            Server::Etcd {
                binary: find_etcd(args.etcd_binary.as_deref())?,
            }
        }
        "consul" if !args.consul_on_raftkv => {
            return Err(
                "Splitbrain cannot start Consul servers: test an existing Consul with \
                        --endpoints http://127.0.0.1:8500, or add --consul-on-raftkv to drive \
                        raftkv nodes through the Consul KV API they serve, under the nemesis"
                    .into(),
            )
        }
        _ => Server::Raftkv {
            binary: find_raftkv(args.raftkv_binary.as_deref())?,
            bugs: args.bugs.clone(),
            // raftkv answers before the client gives up, so that what it
            // knows to be "not applied" (no leader) is recorded as `fail`,
            // not `info`.
            request_timeout_ms: (args.op_timeout * 750.0) as u64,
            acl_token: args.token.clone(),
        },
    };
    Ok(Target {
        server: Some(server),
        api,
    })
}

fn find_etcd(given: Option<&Path>) -> Setup<PathBuf> {
    let found = match given {
        Some(path) => Some(path.to_path_buf()).filter(|p| p.is_file()),
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file()),
    };
    found.ok_or_else(|| {
        "cannot find the etcd binary: install it with `apt-get install etcd-server`, \
         or pass --etcd-binary PATH"
            .to_string()
    })
}

fn find_raftkv(given: Option<&Path>) -> Setup<PathBuf> {
    let found = match given {
        Some(path) => Some(path.to_path_buf()).filter(|p| p.is_file()),
        None => std::env::current_exe()
            .ok()
            .map(|exe| exe.with_file_name("raftkv"))
            .filter(|p| p.is_file())
            .or_else(|| {
                std::env::split_paths(&std::env::var_os("PATH")?)
                    .map(|dir| dir.join("raftkv"))
                    .find(|p| p.is_file())
            }),
    };
    found.ok_or_else(|| {
        "cannot find the raftkv binary: build it with `cargo build --release -p raftkv` \
         (it lands next to splitbrain), or pass --raftkv-binary PATH"
            .to_string()
    })
}

async fn one_run(args: &Args, seed: u64, target: &Target) -> Setup<Verdict> {
    let mut name = format!("{}-{}", args.target, args.workload);
    for bug in &args.bugs {
        name = format!("{name}-{bug}");
    }
    let dir = RunDir::create(&args.store, &name).map_err(|e| {
        format!(
            "cannot create a run directory in {}: {e}; pass --store DIR",
            args.store.display()
        )
    })?;
    let test = TestFile {
        name: &name,
        seed,
        target: target.name(),
        binary: target.binary(),
        splitbrain_version: env!("CARGO_PKG_VERSION"),
        options: args,
    };
    dir.write_json("test.json", &test)
        .map_err(|e| format!("cannot write {}: {e}", dir.file("test.json").display()))?;
    println!("{name}: seed {seed} (repeat with --seed {seed})");
    println!("run directory: {}", dir.path.display());

    let op_timeout = Duration::from_secs_f64(args.op_timeout);
    let http = targets::client::http(op_timeout)
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let (cluster, addrs) = if args.endpoints.is_empty() {
        let cluster = start_cluster(args, seed, target, &dir.path, &http).await?;
        let addrs = cluster.lock().expect("lock").addrs().to_vec();
        (Some(cluster), addrs)
    } else {
        let addrs = target::parse_endpoints(&args.endpoints, &args.subnet)?;
        if target
            .wait_for_leader(&http, &addrs, Duration::from_secs(10))
            .await
            .is_none()
        {
            return Err(format!(
                "no leader among {} within 10 s: is the cluster up, and are these all its members?",
                args.endpoints.join(",")
            ));
        }
        (None, addrs)
    };
    let driven = drive(args, seed, &dir, cluster.as_ref(), &addrs, target, &http).await;
    // Tear down before checking: a long check should not keep the nodes alive.
    let removed = match cluster {
        Some(cluster) => teardown(cluster).await,
        None => Ok(()),
    };
    let (history, faults) = driven?;
    removed?;
    judge(args, seed, &dir, &history, faults)
}

async fn start_cluster(
    args: &Args,
    seed: u64,
    target: &Target,
    dir: &Path,
    http: &reqwest::Client,
) -> Setup<Cluster> {
    let name = cluster_name(seed);
    let spec = ClusterSpec {
        name: name.clone(),
        nodes: args.nodes,
        dir: dir.to_path_buf(),
        network: NetworkMode::Auto,
        subnet: args.subnet.clone(),
        port: target.port(),
    };
    let command = {
        let target = target.clone();
        move |i: usize, addrs: &[SocketAddr], paths: &NodePaths| {
            target.node_command(&name, i, addrs, paths)
        }
    };
    let handle = tokio::runtime::Handle::current();
    let http = http.clone();
    let probe = target.clone();
    let ready = move |addrs: &[SocketAddr]| handle.block_on(probe.leader(&http, addrs)).is_some();
    let cluster = tokio::task::spawn_blocking(move || {
        LocalCluster::start(spec, &command, &ready, Duration::from_secs(30))
    })
    .await
    .map_err(|e| format!("starting the cluster panicked: {e}"))?
    .map_err(|e| format!("cannot start the cluster: {e}"))?;
    let cluster = Arc::new(Mutex::new(cluster));
    let loopback = cluster.lock().expect("lock").mode() == NetworkMode::Loopback;
    if loopback && args.nemesis.contains(&Kind::Partition) {
        teardown(cluster).await?;
        return Err("--nemesis partition needs one network namespace per node, which needs root and \
                    the `ip` and `iptables` commands (apt-get install iproute2 iptables); the cluster \
                    fell back to loopback. Run as root, or use --nemesis kill,pause"
            .into());
    }
    Ok(cluster)
}

/// `[a-z0-9]`, at most 6 characters, different for runs started together.
fn cluster_name(seed: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut n = (seed ^ nanos ^ u64::from(std::process::id()).rotate_left(32)) % 36u64.pow(6);
    let mut name = String::new();
    for _ in 0..6 {
        name.push(char::from_digit((n % 36) as u32, 36).expect("below 36"));
        n /= 36;
    }
    name
}

async fn teardown(cluster: Cluster) -> Setup<()> {
    tokio::task::spawn_blocking(move || {
        let cluster = Arc::try_unwrap(cluster)
            .map_err(|_| "the cluster is still in use at teardown".to_string())?
            .into_inner()
            .expect("lock");
        cluster
            .teardown()
            .map(drop)
            .map_err(|e| format!("teardown failed: {e}; run `splitbrain cleanup`"))
    })
    .await
    .map_err(|e| format!("teardown panicked: {e}; run `splitbrain cleanup`"))?
}

/// The main phase, heal and final reads; returns the recorded history.
async fn drive(
    args: &Args,
    seed: u64,
    dir: &RunDir,
    cluster: Option<&Cluster>,
    addrs: &[SocketAddr],
    target: &Target,
    http: &reqwest::Client,
) -> Setup<(History, FaultCounts)> {
    target.preflight(http, addrs).await?;
    let path = dir.file("history.jsonl");
    let (recorder, recording) =
        recorder::start(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let addrs = addrs.to_vec();
    let counts = Arc::new(Counts::default());
    let now = Arc::new(Mutex::new(String::new()));
    let progress = Progress::start(counts.clone(), now.clone());
    let op_timeout = Duration::from_secs_f64(args.op_timeout);
    let until = Instant::now() + Duration::from_secs_f64(args.time_limit);

    let nemesis = cluster.map(|cluster| Nemesis {
        cluster: cluster.clone(),
        target: target.clone(),
        addrs: addrs.clone(),
        http: http.clone(),
        kinds: args.nemesis.clone(),
        interval: Duration::from_secs_f64(args.nemesis_interval),
        recorder: recorder.clone(),
        now: now.clone(),
    });
    let schedule = nemesis.map(|nemesis| tokio::spawn(nemesis.run(seed, until)));
    let generator = Arc::new(Mutex::new(Generator::new(
        seed,
        args.keys,
        args.ops_per_key,
        args.mix,
    )));
    let clients = (0..args.concurrency)
        .map(|i| target.client(http.clone(), &addrs[i % addrs.len()]))
        .collect();
    let pace = Pace {
        op_timeout,
        rate: args.rate,
        seed,
    };
    let mut next_process =
        workers::run(clients, generator.clone(), &recorder, &pace, &counts, until).await;
    let faults = match schedule {
        Some(schedule) => schedule
            .await
            .map_err(|e| format!("the nemesis schedule panicked: {e}"))??,
        None => FaultCounts::new(),
    };

    if let Some(cluster) = cluster {
        *now.lock().expect("lock") = "healing".into();
        let healed = cluster.clone();
        tokio::task::spawn_blocking(move || healed.lock().expect("lock").heal_all())
            .await
            .map_err(|e| format!("healing panicked: {e}"))?
            .map_err(|e| format!("cannot heal the cluster: {e}"))?;
    }
    let recovered = target
        .wait_for_leader(http, &addrs, Duration::from_secs(30))
        .await;

    *now.lock().expect("lock") = "final reads".into();
    let keys: Vec<String> = generator.lock().expect("lock").keys().collect();
    for (i, key) in keys.iter().enumerate() {
        let op = Op {
            key: key.as_str().into(),
            action: Action::Read,
        };
        // A fresh client per key, spread over the nodes; a few tries each,
        // as the cluster may still be settling.
        for attempt in 0..5 {
            let mut client = target.client(http.clone(), &addrs[(i + attempt) % addrs.len()]);
            let outcome =
                workers::perform(&mut client, &op, next_process, &recorder, op_timeout).await;
            next_process += 1;
            if outcome == EventType::Ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(progress);
    if recovered.is_none() {
        println!(
            "warning: no leader emerged within 30 s of healing; the final reads may have failed"
        );
    }
    drop(recorder);
    let history = recording
        .finish()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((history, faults))
}

/// Operation counts by function and outcome, e.g. `write` → `ok` → 812.
type OpCounts = BTreeMap<String, BTreeMap<&'static str, u64>>;

fn op_counts(history: &History) -> OpCounts {
    let mut counts = OpCounts::new();
    for event in &history.events {
        let outcome = match (event.process, event.kind) {
            (Process::Nemesis, _) | (_, EventType::Invoke) => continue,
            (_, EventType::Ok) => "ok",
            (_, EventType::Fail) => "fail",
            (_, EventType::Info) => "info",
        };
        *counts
            .entry(event.f.to_string())
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }
    counts
}

/// Checks the history, writes `results.json`, prints the verdict.
fn judge(
    args: &Args,
    seed: u64,
    dir: &RunDir,
    history: &History,
    faults: FaultCounts,
) -> Setup<Verdict> {
    let source = dir.file("history.jsonl").display().to_string();
    let ops = checker::operations(history, &source).map_err(|e| e.to_string())?;
    let options = Options {
        time_limit: Some(Duration::from_secs_f64(args.check_time_limit)),
        ..Options::default()
    };
    // Only `compare-failed` says what the value was; raftkv also fails a cas
    // for reasons that observed nothing (no leader), so failed cases count
    // as "nothing happened" (Knossos's reading), which is always sound.
    let report = checker::check_with(ModelChoice::CasRegister, FailedCas::Ignore, &ops, &options)
        .map_err(|e| format!("{source}: {e}"))?;
    let counts = op_counts(history);
    dir.write_json(
        "results.json",
        &serde_json::json!({
            "seed": seed,
            "verdict": report.verdict,
            "stats": { "events": history.len(), "ops": counts, "faults": faults },
            "report": report,
        }),
    )
    .map_err(|e| format!("cannot write {}: {e}", dir.file("results.json").display()))?;
    results::RunInfo::read(&dir.path)
        .and_then(|info| results::render(&dir.path, history, &report, &info))
        .map_err(|e| format!("cannot write the report into {}: {e}", dir.path.display()))?;

    let describe = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let totals: BTreeMap<String, u64> = ["ok", "fail", "info"]
        .iter()
        .map(|&o| {
            (
                o.to_string(),
                counts.values().filter_map(|m| m.get(o)).sum(),
            )
        })
        .collect();
    println!("operations: {} ({})", ops.len(), describe(&totals));
    if !faults.is_empty() {
        println!("faults: {}", describe(&faults));
    }
    summary::print(
        &report,
        &format!(
            "checked {} operations on {} keys in {:.1} ms",
            ops.len(),
            report.keys.len(),
            report.elapsed_ms
        ),
    );
    println!("report: {}", dir.file(results::REPORT_HTML).display());
    println!("run directory: {}", dir.path.display());
    Ok(report.verdict)
}
