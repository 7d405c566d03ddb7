//! Who drops whose packets, and the fault catalogue.

use rand::seq::SliceRandom;
use rand::Rng;

/// Which nodes drop packets from which: `drops[i]` = nodes whose packets node i drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grudge {
    pub drops: Vec<Vec<usize>>,
}

impl Grudge {
    /// Splits the nodes into two random halves (the first one the smaller) that cannot talk.
    pub fn random_halves(n: usize, rng: &mut impl Rng) -> Grudge {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let (a, b) = order.split_at(n / 2);
        Grudge::components(n, &[a.to_vec(), b.to_vec()])
    }

    /// Every node sees a majority, but no two nodes see the same majority:
    /// on a random ring, node i talks only to its n/2 nearest neighbours.
    pub fn majorities_ring(n: usize, rng: &mut impl Rng) -> Grudge {
        let mut ring: Vec<usize> = (0..n).collect();
        ring.shuffle(rng);
        // A majority is the node plus n/2 others: `left` before it on the ring, the rest
        // after. With an odd n/2 (n = 3, 6, 7) the view is lopsided, so some links only
        // drop in one direction.
        let others = n / 2;
        let left = others / 2;
        let mut drops = vec![Vec::new(); n];
        for pos in 0..n {
            let sees: Vec<usize> = (0..=others)
                .map(|k| ring[(pos + n - left + k) % n])
                .collect();
            let node = ring[pos];
            drops[node] = (0..n).filter(|j| !sees.contains(j)).collect();
        }
        Grudge { drops }
    }

    /// Two halves joined by one random node that sees both sides.
    pub fn bridge(n: usize, rng: &mut impl Rng) -> Grudge {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let bridge = order[0];
        let rest = &order[1..];
        let (a, b) = rest.split_at(rest.len() / 2);
        let mut g = Grudge::components(n, &[a.to_vec(), b.to_vec()]);
        // The bridge node is in neither component; only the halves drop each other.
        g.drops[bridge].clear();
        g
    }

    /// Cuts `node` off from every other node (both directions).
    pub fn isolate(n: usize, node: usize) -> Grudge {
        let rest: Vec<usize> = (0..n).filter(|&i| i != node).collect();
        Grudge::components(n, &[vec![node], rest])
    }

    /// Nodes in different components drop each other; nodes in no component drop nobody.
    fn components(n: usize, parts: &[Vec<usize>]) -> Grudge {
        let mut drops = vec![Vec::new(); n];
        for (pi, part) in parts.iter().enumerate() {
            for &node in part {
                let mut d: Vec<usize> = parts
                    .iter()
                    .enumerate()
                    .filter(|&(pj, _)| pj != pi)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                d.sort_unstable();
                drops[node] = d;
            }
        }
        Grudge { drops }
    }

    /// `"{n1 n2} | {n3 n4 n5}"` when the grudge splits the nodes into groups that
    /// see each other fully, else per-node lists such as `"n1 drops n3; n2 drops n4"`.
    pub fn describe(&self) -> String {
        let n = self.drops.len();
        let sees =
            |i: usize| -> Vec<usize> { (0..n).filter(|j| !self.drops[i].contains(j)).collect() };
        // Components: every node sees exactly the nodes of its own group.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in 0..n {
            let group = sees(i);
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        let is_partition = groups.iter().map(Vec::len).sum::<usize>() == n
            && groups.iter().all(|g| g.iter().all(|&i| sees(i) == *g));
        if is_partition {
            groups.sort();
            let names = |g: &Vec<usize>| {
                g.iter()
                    .map(|&i| node_name(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return groups
                .iter()
                .map(|g| format!("{{{}}}", names(g)))
                .collect::<Vec<_>>()
                .join(" | ");
        }
        let lists: Vec<String> = (0..n)
            .filter(|&i| !self.drops[i].is_empty())
            .map(|i| {
                let from: Vec<String> = self.drops[i].iter().map(|&j| node_name(j)).collect();
                format!("{} drops {}", node_name(i), from.join(" "))
            })
            .collect();
        lists.join("; ")
    }
}

/// One fault the nemesis can inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Drop packets per the grudge (iptables in the nodes' namespaces).
    Partition(Grudge),
    /// SIGKILL these nodes; healing restarts them with the same data dir.
    Kill(Vec<usize>),
    /// SIGSTOP these nodes; healing sends SIGCONT.
    Pause(Vec<usize>),
}

impl Fault {
    /// One line for logs, e.g. `"kill n2"`.
    pub fn describe(&self) -> String {
        let names = |nodes: &[usize]| {
            nodes
                .iter()
                .map(|&i| node_name(i))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Fault::Partition(g) => format!("partition {}", g.describe()),
            Fault::Kill(nodes) => format!("kill {}", names(nodes)),
            Fault::Pause(nodes) => format!("pause {}", names(nodes)),
        }
    }

    /// `"partition"`, `"kill"` or `"pause"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::Kill(_) => "kill",
            Fault::Pause(_) => "pause",
        }
    }
}

/// A random non-empty minority of `n` nodes: between 1 and (n-1)/2 of them (1 when n < 3).
pub fn minority(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let most = ((n.saturating_sub(1)) / 2).max(1).min(n);
    let size = rng.gen_range(1..=most);
    let mut nodes = rand::seq::index::sample(rng, n, size).into_vec();
    nodes.sort_unstable();
    nodes
}

/// Node index i is called n<i+1>, like the target's 1-based ids and the node directories.
pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn symmetric(g: &Grudge) -> bool {
        (0..g.drops.len()).all(|i| g.drops[i].iter().all(|&j| g.drops[j].contains(&i)))
    }

    #[test]
    fn shapes() {
        let mut rng = SmallRng::seed_from_u64(7);
        assert_eq!(Grudge::isolate(3, 1).describe(), "{n1 n3} | {n2}");
        let halves = Grudge::random_halves(5, &mut rng);
        assert!(symmetric(&halves));
        assert_eq!(halves.describe().matches('n').count(), 5);
        for n in [3, 5, 7] {
            let ring = Grudge::majorities_ring(n, &mut rng);
            for i in 0..n {
                assert_eq!(
                    n - ring.drops[i].len(),
                    n / 2 + 1,
                    "node {i} sees a majority"
                );
                assert!(!ring.drops[i].contains(&i));
            }
        }
        let bridge = Grudge::bridge(5, &mut rng);
        assert!(symmetric(&bridge));
        assert_eq!(bridge.drops.iter().filter(|d| d.is_empty()).count(), 1);
        assert!(bridge.describe().contains("drops"));
        for n in 1..8 {
            let m = minority(n, &mut rng);
            assert!(!m.is_empty() && (n < 3 || m.len() * 2 < n), "{n}: {m:?}");
        }
        assert_eq!(Fault::Kill(vec![0, 2]).describe(), "kill n1 n3");
    }
}
