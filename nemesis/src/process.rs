//! Node processes: spawning (inside a namespace), signals, restarts.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{Error, NodeCommand, NodePaths};

/// One node: how to (re)start it, and its process while it runs.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) paths: NodePaths,
    pub(crate) command: NodeCommand,
    pub(crate) netns: Option<String>,
    pub(crate) child: Option<Child>,
    pub(crate) paused: bool,
}

impl Node {
    /// The argv we expect in /proc/<pid>/cmdline, recorded so that `cleanup()` never
    /// signals a pid that has since been reused by another program.
    pub(crate) fn argv(&self) -> Vec<String> {
        let mut argv = vec![self.command.program.to_string_lossy().into_owned()];
        argv.extend(self.command.args.iter().cloned());
        argv
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the node. Inside a namespace we `setns` in the child between fork and exec
    /// rather than going through `ip netns exec`, so the pid we get is the target's own.
    /// Each node leads its own process group so that stray children die with it.
    pub(crate) fn spawn(&mut self) -> Result<(), Error> {
        let open = |file: &str| {
            let path = self.dir.join(file);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))
        };
        let (stdout, stderr) = (open("stdout.log")?, open("stderr.log")?);
        let mut cmd = Command::new(&self.command.program);
        cmd.args(&self.command.args)
            .envs(self.command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // Kept open until spawn returns: the child needs the fd between fork and exec.
        let netns_file = match &self.netns {
            Some(ns) => {
                let path = Path::new("/run/netns").join(ns);
                Some(File::open(&path).map_err(|e| io_error(&path, e))?)
            }
            None => None,
        };
        if let Some(file) = &netns_file {
            let fd = file.as_raw_fd();
            // SAFETY: setns is a plain syscall, async-signal-safe, touching no Rust state.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(|e| {
            Error::new(format!(
                "cannot start node {} ({}): {e}",
                self.name,
                self.command.program.display()
            ))
            .hint("check the target's path (build it first) and that the run directory is writable")
        })?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// SIGKILLs the node's process group and reaps it. A no-op when it is not running.
    pub(crate) fn kill(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), libc::SIGKILL);
            child
                .wait()
                .map_err(|e| Error::new(format!("waiting for node {}: {e}", self.name)))?;
        }
        self.paused = false;
        Ok(())
    }

    pub(crate) fn stop(&mut self, stop: bool) -> Result<(), Error> {
        let pid = self.pid().ok_or_else(|| {
            Error::new(format!("node {} is not running", self.name))
                .hint("restart it (or heal its kill) before pausing or resuming it")
        })?;
        signal_group(pid, if stop { libc::SIGSTOP } else { libc::SIGCONT });
        self.paused = stop;
        // Signals are delivered asynchronously; return once the kernel shows the new state
        // so that the caller's "the node is paused" is true (bounded: a process in an
        // uninterruptible sleep stops only when the sleep ends).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while is_stopped(pid) != stop && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    /// If the node died on its own (a crash, a bad flag), says so and where to look.
    pub(crate) fn check_alive(&mut self) -> Result<(), Error> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            let stderr = self.dir.join("stderr.log");
            let last = std::fs::read_to_string(&stderr).unwrap_or_default();
            let last = last
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(
                Error::new(format!("node {} exited ({status}): {last}", self.name))
                    .hint(format!("see {}", stderr.display())),
            );
        }
        Ok(())
    }
}

/// Signals a node's whole process group (its pid is the group id, see `spawn`).
pub(crate) fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(pid as libc::pid_t, sig);
    }
}

/// Whether /proc/<pid>/stat shows the process stopped (state T).
fn is_stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')', since comm may contain one.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    state.is_some_and(|s| s.starts_with('T'))
}

/// The argv of a running process, from /proc.
pub(crate) fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(format!("{}: {e}", path.display()))
        .hint("check that the run directory exists and is writable")
}
