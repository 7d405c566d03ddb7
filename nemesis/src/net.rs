//! The namespace network: subnet checks, bridge, veths, namespaces and iptables.
//!
//! Every command here names one of our own objects (`sb-*`, `sbv*`); iptables only
//! ever runs as `ip netns exec <our-ns> iptables ...`, never against the host's tables.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::Error;

/// An IPv4 subnet such as 10.213.0.0/24.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subnet {
    base: u32,
    prefix: u8,
}

impl Subnet {
    pub(crate) fn parse(s: &str) -> Result<Subnet, Error> {
        let bad = || {
            Error::new(format!("bad subnet {s:?}"))
                .hint("give --subnet as a private IPv4 CIDR such as 10.213.0.0/24")
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let base = u32::from(addr) & mask(prefix);
        let subnet = Subnet { base, prefix };
        let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .any(|p| Subnet::parse_plain(p).contains(&subnet));
        if !private {
            return Err(Error::new(format!("subnet {s} is not a private range"))
                .hint("choose a --subnet inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"));
        }
        Ok(subnet)
    }

    /// Parses a route destination as printed by `ip route` ("10.0.0.0/8", "192.0.2.1").
    fn parse_plain(s: &str) -> Subnet {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, "32"));
        let base: u32 = addr.parse::<Ipv4Addr>().map(u32::from).unwrap_or(0);
        let prefix = prefix.parse().unwrap_or(32).min(32);
        Subnet {
            base: base & mask(prefix),
            prefix,
        }
    }

    fn contains(&self, other: &Subnet) -> bool {
        self.prefix <= other.prefix && other.base & mask(self.prefix) == self.base
    }

    fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The k-th address of the subnet (1 = the bridge, 11.. = nodes).
    pub(crate) fn host(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + k)
    }

    /// Whether .11 .. .(10+n) fit below the broadcast address.
    pub(crate) fn fits(&self, n: usize) -> bool {
        let size = 1u64 << (32 - self.prefix as u64);
        10 + n as u64 + 1 < size
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

/// Refuses a subnet that overlaps any route the host already has (the default route aside).
pub(crate) fn check_routes(subnet: &Subnet, flag_value: &str) -> Result<(), Error> {
    let routes = run(&["ip", "-4", "route", "show"])?;
    for line in routes.lines() {
        // Route types ("unreachable 10.1.0.0/16") come before the destination.
        let dest = line
            .split_whitespace()
            .find(|w| !matches!(*w, "unicast" | "unreachable" | "blackhole" | "prohibit"))
            .unwrap_or("default");
        if dest == "default" {
            continue;
        }
        if subnet.overlaps(&Subnet::parse_plain(dest)) {
            let leftover = if line.contains(" dev sb-") {
                " (it looks like a Splitbrain bridge: run the cleanup command if no run is active)"
            } else {
                ""
            };
            return Err(Error::new(format!(
                "subnet {flag_value} overlaps the host route `{}`{leftover}",
                line.trim()
            ))
            .hint("choose another private range with --subnet, e.g. --subnet 10.214.0.0/24"));
        }
    }
    Ok(())
}

/// Runs a command and returns its stdout, or an error quoting its stderr.
pub(crate) fn run(argv: &[&str]) -> Result<String, Error> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| {
            Error::new(format!("cannot run {}: {e}", argv[0])).hint(install_hint(argv[0]))
        })?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn install_hint(program: &str) -> &'static str {
    match program {
        "iptables" => "install it with `apt-get install iptables`",
        "ip" => "install iproute2 with `apt-get install iproute2`",
        _ => "check that it is installed and on PATH",
    }
}

/// Whether `ip` can be run at all.
pub(crate) fn have_ip() -> bool {
    Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails with install instructions unless `iptables` works inside namespace `ns`.
pub(crate) fn check_iptables(ns: &str) -> Result<(), Error> {
    run(&["ip", "netns", "exec", ns, "iptables", "-w", "-S", "INPUT"])
        .map(drop)
        .map_err(|e| {
            Error::new(format!("iptables does not work in namespace {ns}: {e}"))
                .hint("partitions need iptables: install it with `apt-get install iptables`")
        })
}

pub(crate) fn drop_from(ns: &str, peer: Ipv4Addr) -> Result<(), Error> {
    let peer = peer.to_string();
    let argv = ["ip", "netns", "exec", ns, "iptables", "-w", "-A", "INPUT"];
    run(&[&argv[..], &["-s", &peer, "-j", "DROP"]].concat()).map(drop)
}

pub(crate) fn flush(ns: &str) -> Result<(), Error> {
    run(&["ip", "netns", "exec", ns, "iptables", "-w", "-F", "INPUT"]).map(drop)
}

/// Names of existing namespaces and links, to refuse clobbering and to sweep leftovers.
pub(crate) fn namespaces() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

pub(crate) fn links() -> Vec<String> {
    run(&["ip", "-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            // "12: sbvab1@if2: <...>" -> "sbvab1"
            let name = l.split(": ").nth(1)?;
            Some(name.split('@').next()?.to_owned())
        })
        .collect()
}

pub(crate) fn add_bridge(bridge: &str, subnet: &Subnet) -> Result<(), Error> {
    let addr = format!("{}/{}", subnet.host(1), subnet.prefix());
    run(&["ip", "link", "add", bridge, "type", "bridge"])?;
    run(&["ip", "addr", "add", &addr, "dev", bridge])?;
    run(&["ip", "link", "set", bridge, "up"]).map(drop)
}

pub(crate) fn add_namespace(ns: &str) -> Result<(), Error> {
    run(&["ip", "netns", "add", ns])?;
    // Nodes may talk to themselves over 127.0.0.1; a fresh namespace has lo down.
    run(&["ip", "-n", ns, "link", "set", "lo", "up"]).map(drop)
}

/// A veth pair: `veth` on the host, enslaved to the bridge; `eth0` inside `ns` with `addr`.
pub(crate) fn add_veth(
    veth: &str,
    ns: &str,
    bridge: &str,
    addr: Ipv4Addr,
    subnet: &Subnet,
) -> Result<(), Error> {
    let cidr = format!("{addr}/{}", subnet.prefix());
    let argv = ["ip", "link", "add", veth, "type", "veth", "peer", "name"];
    run(&[&argv[..], &["eth0", "netns", ns]].concat())?;
    run(&["ip", "link", "set", veth, "master", bridge, "up"])?;
    run(&["ip", "-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
    run(&["ip", "-n", ns, "link", "set", "eth0", "up"]).map(drop)
}

pub(crate) fn del_link(name: &str) -> Result<(), Error> {
    run(&["ip", "link", "del", name]).map(drop)
}

pub(crate) fn del_namespace(ns: &str) -> Result<(), Error> {
    run(&["ip", "netns", "del", ns]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        let a = Subnet::parse("10.213.0.0/24").unwrap();
        assert!(a.overlaps(&Subnet::parse_plain("10.0.0.0/8")));
        assert!(a.overlaps(&Subnet::parse_plain("10.213.0.7")));
        assert!(!a.overlaps(&Subnet::parse_plain("10.214.0.0/24")));
        assert!(!a.overlaps(&Subnet::parse_plain("192.0.2.0/24")));
        assert!(Subnet::parse("8.8.8.0/24").is_err());
        assert!(a.fits(200) && !a.fits(245));
        assert_eq!(a.host(11).to_string(), "10.213.0.11");
    }
}
