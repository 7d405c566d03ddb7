//! Faults and the local cluster's network namespaces.
//!
//! This crate will own everything that touches the machine on a run's behalf:
//! the per-node network namespaces, veth pairs and bridge, partitions made with
//! iptables inside those namespaces, and process faults (SIGKILL, SIGSTOP) sent
//! by pid to the nodes the harness started. Every fault it injects is undone on
//! heal, on teardown, on Ctrl-C and on panic.
