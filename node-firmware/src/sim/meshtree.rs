//! The simulated ESP-MDF mesh: a tree of N nodes under one root, each with a layer, a parent,
//! the RSSI to that parent and a parent round-trip time (`plat`), as the `status` command
//! reports them. MAC addresses are stable for a seed so that a rerun shows the same bays.

use rand::Rng;

use crate::mesh::MacAddr;

/// How many children a node accepts (ESP-MDF's per-node connection limit); 10,000 nodes
/// fit in six layers.
const MAX_CHILDREN: usize = 8;
/// Locally administered unicast prefix of every simulated node (`02:c2:22:..`).
const MAC_PREFIX: [u8; 3] = [0x02, 0xc2, 0x22];
/// Multiplier of the index-to-MAC bijection (odd, so distinct indices give distinct MACs).
const MAC_SPREAD: u32 = 0x009e_3779;

/// One node's place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshNode {
    pub mac: MacAddr,
    /// The mesh parent; for the root, the Wi-Fi router.
    pub parent: MacAddr,
    /// 1 = root.
    pub layer: u8,
    /// Signal strength to the parent, dBm.
    pub rssi_dbm: i16,
    /// Parent round trip, ms.
    pub plat_ms: u32,
}

/// The whole mesh, node 0 being the root.
#[derive(Clone, Debug)]
pub struct MeshTree {
    nodes: Vec<MeshNode>,
}

impl MeshTree {
    /// A breadth-first tree of `count` nodes with MACs derived from `seed` and link quality
    /// drawn from `rng`.
    pub fn generate(count: usize, seed: u64, rng: &mut impl Rng) -> Self {
        let router = MacAddr([0x9c, 0x53, 0x22, rng.gen(), rng.gen(), rng.gen()]);
        let mut nodes: Vec<MeshNode> = Vec::with_capacity(count);
        for index in 0..count {
            let (parent, layer) = match index.checked_sub(1).map(|i| i / MAX_CHILDREN) {
                Some(parent_index) => nodes
                    .get(parent_index)
                    .map_or((router, 1), |p| (p.mac, p.layer.saturating_add(1))),
                None => (router, 1),
            };
            let rssi_dbm: i16 = rng.gen_range(-85..=-45);
            // Weaker links retry more; every layer adds a hop of queueing.
            let plat_ms = 3
                + u32::from(layer) * 2
                + rng.gen_range(0..=u32::from(rssi_dbm.unsigned_abs() / 10));
            nodes.push(MeshNode {
                mac: node_mac(seed, index),
                parent,
                layer,
                rssi_dbm,
                plat_ms,
            });
        }
        Self { nodes }
    }

    #[must_use]
    pub fn nodes(&self) -> &[MeshNode] {
        &self.nodes
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The mesh size as `status` reports it.
    #[must_use]
    pub fn size(&self) -> u16 {
        u16::try_from(self.nodes.len()).unwrap_or(u16::MAX)
    }
}

/// The MAC of node `index` for `seed`: `02:c2:22` plus 24 bits that are distinct for the
/// first 16,777,216 indices.
#[must_use]
pub fn node_mac(seed: u64, index: usize) -> MacAddr {
    let offset = (seed ^ (seed >> 24) ^ (seed >> 48)) as u32;
    let low = (index as u32).wrapping_mul(MAC_SPREAD).wrapping_add(offset) & 0x00ff_ffff;
    let [_, a, b, c] = low.to_be_bytes();
    MacAddr([MAC_PREFIX[0], MAC_PREFIX[1], MAC_PREFIX[2], a, b, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    #[test]
    fn ten_thousand_nodes_form_a_shallow_tree_with_unique_macs() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let tree = MeshTree::generate(10_000, 7, &mut rng);
        let layers: HashMap<MacAddr, u8> = tree.nodes().iter().map(|n| (n.mac, n.layer)).collect();
        assert_eq!(layers.len(), 10_000);
        assert_eq!(tree.nodes()[0].layer, 1);
        assert!(tree.nodes().iter().all(|n| n.layer <= 6));
        for node in &tree.nodes()[1..] {
            assert_eq!(layers[&node.parent] + 1, node.layer);
        }
    }

    #[test]
    fn macs_are_stable_per_seed_and_differ_between_seeds() {
        assert_eq!(node_mac(1, 5), node_mac(1, 5));
        assert_ne!(node_mac(1, 5), node_mac(2, 5));
        assert_eq!(&node_mac(1, 5).0[..3], &MAC_PREFIX);
    }
}
