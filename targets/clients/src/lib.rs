//! Splitbrain's clients of the systems under test, one module per system, all behind the
//! [`Client`] protocol of [`client`]:
//!
//! - [`raftkv`]: the bundled store's own HTTP API;
//! - [`etcd`]: etcd's v3 JSON gateway;
//! - [`consul`]: Consul's KV HTTP API (also served by raftkv, which is how it is tested).
//!
//! A client turns one operation into requests and says whether it took effect (`ok`), definitely
//! did not (`fail`) or may have (`info`); each module documents how it classifies its system's
//! answers. Each also finds the current leader, which the nemesis uses to aim its faults.

pub mod client;
pub mod consul;
pub mod etcd;
pub mod raftkv;

pub use client::{Action, Client, Completion, Op};
