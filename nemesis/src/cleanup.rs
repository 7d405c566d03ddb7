//! Leaving nothing behind: state files, the live-cluster registry, signal and panic
//! cleanup, and `cleanup()` for what a SIGKILLed harness could not remove itself.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, TryLockError};

use serde::{Deserialize, Serialize};

use crate::{net, process, Error};

/// Everything a cluster created on the machine. Written to `<dir>/cluster.json` and to the
/// global index before each object is created, so a crash at any point leaves a record.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// The harness process, so that `cleanup()` leaves a live run alone.
    pub(crate) owner_pid: u32,
    pub(crate) owner_cmdline: Vec<String>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) bridge: Option<String>,
    pub(crate) veths: Vec<String>,
    pub(crate) procs: Vec<Proc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) cmdline: Vec<String>,
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// Live clusters of this process, torn down on SIGINT/SIGTERM and on panic.
static LIVE: Mutex<Vec<Shared>> = Mutex::new(Vec::new());

impl State {
    fn index_file(&self) -> PathBuf {
        index_dir().join(format!("{}.json", self.name))
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    pub(crate) fn save(&self) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        for path in [self.state_file(), self.index_file()] {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| process::io_error(parent, e))?;
            }
            std::fs::write(&path, &json).map_err(|e| process::io_error(&path, e))?;
        }
        Ok(())
    }

    /// Kills the recorded processes (only if they still run what we started), deletes the
    /// veths, namespaces (and with them their iptables rules) and the bridge, then the state
    /// files. Returns one line per removed thing; what could not be removed stays recorded.
    pub(crate) fn remove(&mut self) -> (Vec<String>, Vec<Error>) {
        let (mut done, mut errors) = (Vec::new(), Vec::new());
        for p in std::mem::take(&mut self.procs) {
            if process::cmdline(p.pid).as_ref() == Some(&p.cmdline) {
                process::signal_group(p.pid, libc::SIGKILL);
                done.push(format!("killed process {} ({})", p.pid, p.cmdline[0]));
            }
        }
        let mut step = |what: &str, name: String, result: Result<(), Error>| match result {
            Ok(()) => {
                done.push(format!("removed {what} {name}"));
                None
            }
            Err(e) => {
                errors.push(e);
                Some(name)
            }
        };
        // Deleting a namespace deletes its end of the veth and hence the pair, so a veth
        // that is already gone is not an error.
        let links = net::links();
        let veths = std::mem::take(&mut self.veths);
        let mut kept: Vec<String> = veths
            .into_iter()
            .filter(|v| links.contains(v))
            .filter_map(|v| step("veth", v.clone(), net::del_link(&v)))
            .collect();
        let existing = net::namespaces();
        let namespaces = std::mem::take(&mut self.namespaces);
        let kept_ns: Vec<String> = namespaces
            .into_iter()
            .filter(|ns| existing.contains(ns))
            .filter_map(|ns| step("namespace", ns.clone(), net::del_namespace(&ns)))
            .collect();
        if let Some(bridge) = self.bridge.take() {
            if links.contains(&bridge) {
                self.bridge = step("bridge", bridge.clone(), net::del_link(&bridge));
            }
        }
        self.veths.append(&mut kept);
        self.namespaces = kept_ns;
        if self.namespaces.is_empty() && self.veths.is_empty() && self.bridge.is_none() {
            let _ = std::fs::remove_file(self.state_file());
            let _ = std::fs::remove_file(self.index_file());
        } else {
            let _ = self.save();
        }
        (done, errors)
    }
}

/// `/run/splitbrain` as root, else `$XDG_RUNTIME_DIR/splitbrain`, else `/tmp/splitbrain-<uid>`.
fn index_dir() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/splitbrain");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => Path::new(&dir).join("splitbrain"),
        None => PathBuf::from(format!("/tmp/splitbrain-{uid}")),
    }
}

pub(crate) fn register(state: &Shared) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(state.clone());
}

pub(crate) fn unregister(state: &Shared) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|s| !Arc::ptr_eq(s, state));
}

/// Tears down every live cluster. `patient` waits for locks; the panic hook is not
/// patient, since the panicking thread may itself hold one of them.
fn teardown_live(patient: bool) {
    let live: Vec<Shared> = match LIVE.try_lock() {
        Ok(live) => live.clone(),
        Err(TryLockError::Poisoned(e)) => e.into_inner().clone(),
        Err(TryLockError::WouldBlock) if patient => {
            LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
        Err(TryLockError::WouldBlock) => return,
    };
    for shared in live {
        let mut state = match shared.try_lock() {
            Ok(s) => s,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) if patient => {
                shared.lock().unwrap_or_else(|e| e.into_inner())
            }
            Err(TryLockError::WouldBlock) => continue,
        };
        let (done, errors) = state.remove();
        for line in done {
            eprintln!("splitbrain: {line}");
        }
        for e in errors {
            eprintln!("splitbrain: cleanup: {e}");
        }
    }
}

/// Installs (once) a SIGINT/SIGTERM handler that tears down every live cluster and exits
/// with status 130, and a panic hook, chained after the previous one, that tears them down.
pub fn install_signal_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            eprintln!("splitbrain: interrupted, tearing down the cluster");
            teardown_live(true);
            std::process::exit(130);
        });
        if let Err(e) = installed {
            eprintln!("splitbrain: cannot install the Ctrl-C cleanup handler: {e}");
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            teardown_live(false);
        }));
    });
}

/// Removes everything a crashed run left behind (namespaces, bridges, veths named sb-*,
/// processes recorded in state files, by pid and only if their /proc/<pid>/cmdline still
/// matches what we recorded), and returns one line per removed thing. Runs whose harness
/// is still alive are left alone.
pub fn cleanup() -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let mut live_names: Vec<String> = Vec::new();
    // Listed before the index is read: every run records its objects before creating
    // them, so anything listed here that belongs to a live run is in the index below.
    let (listed_ns, listed_links) = if net::have_ip() {
        (net::namespaces(), net::links())
    } else {
        (Vec::new(), Vec::new())
    };
    let entries = std::fs::read_dir(index_dir())
        .into_iter()
        .flatten()
        .flatten();
    for entry in entries {
        let path = entry.path();
        let Some(mut state) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        else {
            continue;
        };
        let owner_alive = process::cmdline(state.owner_pid).as_ref() == Some(&state.owner_cmdline);
        if owner_alive {
            live_names.extend(state.namespaces.iter().cloned());
            live_names.extend(state.veths.iter().cloned());
            live_names.extend(state.bridge.iter().cloned());
            continue;
        }
        let (d, e) = state.remove();
        done.extend(d);
        errors.extend(e);
    }
    // Objects named like ours but in no state file (an older run, a lost run directory).
    // Each is checked again just before deletion: a run may have removed it meanwhile.
    let orphan = |n: &String| !live_names.contains(n);
    let current_ns = net::namespaces();
    for ns in listed_ns
        .iter()
        .filter(|n| n.starts_with("sb-") && orphan(n))
    {
        if current_ns.contains(ns) {
            record(
                &mut done,
                &mut errors,
                format!("namespace {ns}"),
                net::del_namespace(ns),
            );
        }
    }
    // Listed again after the namespaces are gone: that already removed their veth pairs.
    let current_links = net::links();
    for link in listed_links
        .iter()
        .filter(|l| l.starts_with("sb-") || l.starts_with("sbv"))
    {
        if orphan(link) && current_links.contains(link) {
            record(
                &mut done,
                &mut errors,
                format!("link {link}"),
                net::del_link(link),
            );
        }
    }
    match errors.into_iter().next() {
        None => Ok(done),
        Some(e) => Err(e.hint(
            "run the cleanup as root, or remove what is left with `ip netns del` / `ip link del`",
        )),
    }
}

fn record(done: &mut Vec<String>, errors: &mut Vec<Error>, what: String, r: Result<(), Error>) {
    match r {
        Ok(()) => done.push(format!("removed {what}")),
        Err(e) => errors.push(e),
    }
}
