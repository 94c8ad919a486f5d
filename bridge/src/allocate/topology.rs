//! The electrical tree the allocation must respect: the site's grid connection at the root,
//! circuits (sub-distributions, each behind its own fuse) below it, bays at the leaves.
//!
//! Limits are per *site* phase. A circuit's limit is enforced in addition to every limit
//! above it, so a circuit configured larger than its parent is harmless: the parent still
//! binds. The tree is validated once and flattened into an arena of indices (node 0 is the
//! site, node `k + 1` is `circuits()[k]`) so the allocator walks a bay's path to the root
//! with integer hops, no string lookups.

use std::collections::HashMap;

use ctrl22_node::{Deciamps, Phase};

/// One circuit of the site: a fuse protecting a group of bays or sub-circuits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    /// Name used by bays (`[nodes.<dev>] circuit`) and child circuits to refer to it.
    pub id: String,
    /// The circuit this one hangs off; `None` = directly below the site connection.
    pub parent: Option<String>,
    /// What all bays below this circuit may draw together, per site phase.
    pub limit: [Deciamps; 3],
}

/// Why a set of circuits does not form a tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("circuit `{0}` is defined twice")]
    DuplicateCircuit(String),
    #[error("circuit `{circuit}` names parent `{parent}`, which is not a circuit")]
    UnknownParent { circuit: String, parent: String },
    #[error("circuit `{0}` is its own ancestor (the parent chain loops)")]
    Cycle(String),
}

/// A node of the flattened tree; node 0 is the site.
#[derive(Clone, Copy, Debug)]
struct Node {
    parent: Option<usize>,
    limit: [Deciamps; 3],
}

/// The validated site tree. Cheap to share; rebuild it when the configuration changes.
#[derive(Clone, Debug)]
pub struct Topology {
    circuits: Vec<Circuit>,
    nodes: Vec<Node>,
    by_id: HashMap<String, usize>,
}

impl Topology {
    /// Validates the tree: circuit ids are unique, every parent exists, no parent chain loops.
    ///
    /// # Errors
    /// The first [`TopologyError`] found, in the order the circuits are given.
    pub fn new(site_limit: [Deciamps; 3], circuits: Vec<Circuit>) -> Result<Self, TopologyError> {
        let mut by_id = HashMap::with_capacity(circuits.len());
        for (index, circuit) in circuits.iter().enumerate() {
            if by_id.insert(circuit.id.clone(), index + 1).is_some() {
                return Err(TopologyError::DuplicateCircuit(circuit.id.clone()));
            }
        }
        let mut nodes = Vec::with_capacity(circuits.len() + 1);
        nodes.push(Node {
            parent: None,
            limit: site_limit,
        });
        for circuit in &circuits {
            let parent = match &circuit.parent {
                None => 0,
                Some(parent) => *by_id
                    .get(parent)
                    .ok_or_else(|| TopologyError::UnknownParent {
                        circuit: circuit.id.clone(),
                        parent: parent.clone(),
                    })?,
            };
            nodes.push(Node {
                parent: Some(parent),
                limit: circuit.limit,
            });
        }
        // A chain longer than the number of nodes must revisit one of them.
        for (index, circuit) in circuits.iter().enumerate() {
            let mut hops = 0;
            let mut cursor = Some(index + 1);
            while let Some(node) = cursor {
                hops += 1;
                if hops > nodes.len() {
                    return Err(TopologyError::Cycle(circuit.id.clone()));
                }
                cursor = nodes.get(node).and_then(|n| n.parent);
            }
        }
        Ok(Self {
            circuits,
            nodes,
            by_id,
        })
    }

    /// A site without sub-circuits.
    #[must_use]
    pub fn site_only(site_limit: [Deciamps; 3]) -> Self {
        Self {
            circuits: Vec::new(),
            nodes: vec![Node {
                parent: None,
                limit: site_limit,
            }],
            by_id: HashMap::new(),
        }
    }

    #[must_use]
    pub fn site_limit(&self) -> [Deciamps; 3] {
        self.nodes.first().map_or([Deciamps::ZERO; 3], |n| n.limit)
    }

    /// The circuits in configuration order; [`Allocation::circuit_totals`] uses the same
    /// order.
    ///
    /// [`Allocation::circuit_totals`]: super::Allocation::circuit_totals
    #[must_use]
    pub fn circuits(&self) -> &[Circuit] {
        &self.circuits
    }

    /// Position of a circuit in [`Self::circuits`].
    #[must_use]
    pub fn circuit_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).map(|node| node - 1)
    }

    /// Number of nodes in the arena (site + circuits).
    pub(super) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Arena node a bay hangs off: the site for `None`, `None` for an unknown circuit.
    pub(super) fn node_of(&self, circuit: Option<&str>) -> Option<usize> {
        match circuit {
            None => Some(0),
            Some(id) => self.by_id.get(id).copied(),
        }
    }

    /// The node itself and every ancestor up to the site.
    pub(super) fn path(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        core::iter::successors(Some(node), move |n| {
            self.nodes.get(*n).and_then(|node| node.parent)
        })
    }

    /// Limit of one node on one site phase; negative (nonsense) limits count as zero.
    pub(super) fn limit(&self, node: usize, phase: Phase) -> Deciamps {
        self.nodes.get(node).map_or(Deciamps::ZERO, |n| {
            n.limit
                .get(phase.index())
                .copied()
                .unwrap_or(Deciamps::ZERO)
                .max(Deciamps::ZERO)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn circuit(id: &str, parent: Option<&str>) -> Circuit {
        Circuit {
            id: id.into(),
            parent: parent.map(Into::into),
            limit: [Deciamps::from_amps(16); 3],
        }
    }

    #[test]
    fn rejects_duplicates_unknown_parents_and_cycles() {
        let site = [Deciamps::from_amps(32); 3];
        assert_eq!(
            Topology::new(site, vec![circuit("a", None), circuit("a", None)]).unwrap_err(),
            TopologyError::DuplicateCircuit("a".into())
        );
        assert!(matches!(
            Topology::new(site, vec![circuit("a", Some("x"))]).unwrap_err(),
            TopologyError::UnknownParent { .. }
        ));
        assert!(matches!(
            Topology::new(site, vec![circuit("a", Some("b")), circuit("b", Some("a"))])
                .unwrap_err(),
            TopologyError::Cycle(_)
        ));
        assert!(matches!(
            Topology::new(site, vec![circuit("a", Some("a"))]).unwrap_err(),
            TopologyError::Cycle(_)
        ));
    }

    #[test]
    fn paths_walk_up_to_the_site() {
        let site = [Deciamps::from_amps(32); 3];
        let topo = Topology::new(
            site,
            vec![circuit("garage", None), circuit("row-b", Some("garage"))],
        )
        .unwrap();
        let node = topo.node_of(Some("row-b")).unwrap();
        assert_eq!(topo.path(node).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(topo.circuit_index("row-b"), Some(1));
        assert_eq!(topo.node_of(Some("nope")), None);
    }
}
