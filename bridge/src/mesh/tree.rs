//! `mesh tree`: the mesh as its nodes see it, the root first and every node indented under
//! the parent its `status` reply names. The nodes come from `status` and `system` answers
//! (standalone) or from a running bridge's `GET /api/v1/nodes`; either way a node that
//! answered only one of the two shows what it answered and `?` for the rest.

use std::collections::{BTreeMap, HashSet};

use ctrl22_node::mesh::{MacAddr, NodeMessage};
use serde_json::{json, Value};

/// What is known of one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TreeNode {
    /// The MAC in its colon form.
    pub node: String,
    /// The bridge's name for the bay (only through a running bridge).
    pub name: Option<String>,
    pub layer: Option<u8>,
    pub parent: Option<String>,
    pub rssi_dbm: Option<i16>,
    pub parent_latency_ms: Option<u32>,
    pub board: Option<String>,
    /// ESP32 firmware version.
    pub version: Option<String>,
    /// The AVR charge controller's `ver`.
    pub avr_version: Option<i16>,
}

/// Nodes collected from `status` and `system` answers, one per MAC; a later answer of the
/// same kind replaces the earlier one.
#[derive(Debug, Default)]
pub struct Answers {
    nodes: BTreeMap<[u8; 6], TreeNode>,
}

impl Answers {
    /// Takes a `status` or `system` reply of `src`; anything else is ignored.
    pub fn add(&mut self, src: MacAddr, msg: &NodeMessage) {
        let entry = || TreeNode {
            node: src.to_string(),
            ..TreeNode::default()
        };
        match msg {
            NodeMessage::Status(s) => {
                let node = self.nodes.entry(src.0).or_insert_with(entry);
                node.layer = Some(s.layer);
                node.parent = Some(s.parent.to_string());
                node.rssi_dbm = Some(s.rssi);
                node.parent_latency_ms = Some(s.plat);
            }
            NodeMessage::System(s) => {
                let node = self.nodes.entry(src.0).or_insert_with(entry);
                node.board = Some(s.board.as_str().to_owned());
                node.version = Some(s.version.as_str().to_owned());
                node.avr_version = Some(s.avrver);
            }
            _ => {}
        }
    }

    #[must_use]
    pub fn into_nodes(self) -> Vec<TreeNode> {
        self.nodes.into_values().collect()
    }
}

/// The nodes of a bridge's `GET /api/v1/nodes` answer; entries without a MAC are skipped.
#[must_use]
pub fn from_snapshot(bays: &Value) -> Vec<TreeNode> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    bays.as_array()
        .map(|bays| {
            bays.iter()
                .filter_map(|b| {
                    Some(TreeNode {
                        node: text(&b["mac"])?,
                        name: text(&b["name"]),
                        layer: b["mesh_layer"].as_u64().and_then(|v| u8::try_from(v).ok()),
                        parent: text(&b["mesh_parent"]),
                        rssi_dbm: b["rssi_dbm"].as_i64().and_then(|v| i16::try_from(v).ok()),
                        parent_latency_ms: b["mesh_latency_ms"]
                            .as_u64()
                            .and_then(|v| u32::try_from(v).ok()),
                        board: text(&b["board"]),
                        version: text(&b["firmware"]),
                        avr_version: b["avr_firmware"]
                            .as_i64()
                            .and_then(|v| i16::try_from(v).ok()),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A MAC in either form (`d8a01d..` or `d8:a0:1d:..`), for comparing.
fn key(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A node with its children, in the order they are shown.
#[derive(Debug)]
struct Branch<'a> {
    node: &'a TreeNode,
    children: Vec<Branch<'a>>,
}

/// The forest: a node whose parent is not among `nodes` (the root, whose parent is the
/// router, or a node whose parent did not answer) starts a tree. Each node appears once,
/// even if the answers describe a cycle (answers from moments apart can).
fn forest(nodes: &[TreeNode]) -> Vec<Branch<'_>> {
    let known: HashSet<String> = nodes.iter().map(|n| key(&n.node)).collect();
    let mut order: Vec<&TreeNode> = nodes.iter().collect();
    order.sort_by(|a, b| {
        (a.layer.unwrap_or(u8::MAX), &a.name, &a.node).cmp(&(
            b.layer.unwrap_or(u8::MAX),
            &b.name,
            &b.node,
        ))
    });
    let parent_of = |n: &TreeNode| n.parent.as_deref().map(key).filter(|p| known.contains(p));
    let mut placed = HashSet::new();
    let mut trees = Vec::new();
    for top in order.iter().filter(|n| parent_of(n).is_none()) {
        trees.push(grow(top, &order, &parent_of, &mut placed));
    }
    // Whatever is left sits in a cycle: its first node is shown as a top.
    for rest in &order {
        if !placed.contains(&key(&rest.node)) {
            trees.push(grow(rest, &order, &parent_of, &mut placed));
        }
    }
    trees
}

fn grow<'a>(
    node: &'a TreeNode,
    order: &[&'a TreeNode],
    parent_of: &dyn Fn(&TreeNode) -> Option<String>,
    placed: &mut HashSet<String>,
) -> Branch<'a> {
    let me = key(&node.node);
    placed.insert(me.clone());
    let mut children = Vec::new();
    for child in order {
        if parent_of(child).as_deref() == Some(me.as_str()) && !placed.contains(&key(&child.node)) {
            children.push(grow(child, order, parent_of, placed));
        }
    }
    Branch { node, children }
}

fn describe(n: &TreeNode) -> String {
    fn or_unknown<T: ToString>(v: Option<&T>, unit: &str) -> String {
        v.map_or_else(|| "?".to_owned(), |v| format!("{}{unit}", v.to_string()))
    }
    let mut line = n.node.clone();
    if let Some(name) = &n.name {
        line.push_str(&format!(" \"{name}\""));
    }
    line.push_str(&format!(
        "  layer {}  {}  {} to parent  {}  esp32 {}  avr {}",
        or_unknown(n.layer.as_ref(), ""),
        or_unknown(n.rssi_dbm.as_ref(), " dBm"),
        or_unknown(n.parent_latency_ms.as_ref(), " ms"),
        n.board.as_deref().unwrap_or("?"),
        n.version.as_deref().unwrap_or("?"),
        or_unknown(n.avr_version.as_ref(), ""),
    ));
    line
}

/// The tree as text: one line per node, children indented under their parent.
#[must_use]
pub fn render_text(nodes: &[TreeNode]) -> String {
    fn lines(branch: &Branch<'_>, prefix: &str, last: bool, top: bool, out: &mut String) {
        let (here, below) = match (top, last) {
            (true, _) => (String::new(), String::new()),
            (false, true) => (format!("{prefix}└─ "), format!("{prefix}   ")),
            (false, false) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
        };
        out.push_str(&here);
        out.push_str(&describe(branch.node));
        if top {
            if let Some(parent) = &branch.node.parent {
                out.push_str(&format!("  (parent {parent})"));
            }
        }
        out.push('\n');
        let count = branch.children.len();
        for (i, child) in branch.children.iter().enumerate() {
            lines(child, &below, i + 1 == count, false, out);
        }
    }
    let mut out = String::new();
    for tree in forest(nodes) {
        lines(&tree, "", true, true, &mut out);
    }
    out
}

/// The tree as nested JSON: an array of the tops, each node with its `children`.
#[must_use]
pub fn render_json(nodes: &[TreeNode]) -> Value {
    fn object(branch: &Branch<'_>) -> Value {
        let n = branch.node;
        json!({
            "node": n.node,
            "name": n.name,
            "layer": n.layer,
            "parent": n.parent,
            "rssi_dbm": n.rssi_dbm,
            "parent_latency_ms": n.parent_latency_ms,
            "board": n.board,
            "version": n.version,
            "avr_version": n.avr_version,
            "children": branch.children.iter().map(object).collect::<Vec<_>>(),
        })
    }
    forest(nodes).iter().map(object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrl22_node::mesh::StatusReply;

    const ROUTER: MacAddr = MacAddr([0x44, 0x4e, 0x6d, 0, 0, 0]);

    fn mac(last: u8) -> MacAddr {
        MacAddr([0xd8, 0xa0, 0x1d, 0, 0, last])
    }

    fn status(answers: &mut Answers, node: u8, parent: MacAddr, layer: u8) {
        let reply = NodeMessage::Status(StatusReply {
            parent,
            rssi: -40 - i16::from(node),
            layer,
            nodes: 4,
            plat: 10,
        });
        answers.add(mac(node), &reply);
    }

    #[test]
    fn children_are_indented_under_their_parent() {
        let mut answers = Answers::default();
        status(&mut answers, 3, mac(2), 3);
        status(&mut answers, 1, ROUTER, 1);
        status(&mut answers, 2, mac(1), 2);
        status(&mut answers, 4, mac(1), 2);
        let nodes = answers.into_nodes();
        let text = render_text(&nodes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("d8:a0:1d:00:00:01  layer 1"), "{text}");
        assert!(lines[0].ends_with("(parent 44:4e:6d:00:00:00)"), "{text}");
        assert!(lines[1].starts_with("├─ d8:a0:1d:00:00:02"), "{text}");
        assert!(lines[2].starts_with("│  └─ d8:a0:1d:00:00:03"), "{text}");
        assert!(lines[3].starts_with("└─ d8:a0:1d:00:00:04"), "{text}");
        assert!(
            lines[1].contains("-42 dBm") && lines[1].contains("esp32 ?"),
            "{text}"
        );

        let json = render_json(&nodes);
        assert_eq!(json.as_array().map(Vec::len), Some(1));
        assert_eq!(json[0]["children"][0]["node"], "d8:a0:1d:00:00:02");
        assert_eq!(
            json[0]["children"][0]["children"][0]["node"],
            "d8:a0:1d:00:00:03"
        );
        assert_eq!(json[0]["children"][1]["rssi_dbm"], -44);
    }

    #[test]
    fn a_cycle_or_a_missing_parent_still_shows_every_node_once() {
        let mut answers = Answers::default();
        status(&mut answers, 1, mac(2), 2);
        status(&mut answers, 2, mac(1), 2);
        status(&mut answers, 5, mac(9), 3);
        let text = render_text(&answers.into_nodes());
        assert_eq!(text.lines().count(), 3, "{text}");
        for n in ["01", "02", "05"] {
            assert_eq!(text.matches(&format!("00:00:{n} ")).count(), 1, "{text}");
        }
    }

    #[test]
    fn the_bridge_snapshot_gives_the_same_tree() {
        let bays = json!([
            {"dev": "d8a01d000002", "mac": "d8:a0:1d:00:00:02", "name": "Bay 2", "mesh_layer": 2,
             "mesh_parent": "d8:a0:1d:00:00:01", "rssi_dbm": -60, "mesh_latency_ms": 20,
             "board": "agccs12", "firmware": "3.5", "avr_firmware": 15},
            {"dev": "d8a01d000001", "mac": "d8:a0:1d:00:00:01", "name": "Bay 1", "mesh_layer": 1,
             "mesh_parent": "44:4e:6d:00:00:00", "rssi_dbm": null, "board": null},
            {"dev": "broken"}
        ]);
        let nodes = from_snapshot(&bays);
        assert_eq!(nodes.len(), 2);
        let text = render_text(&nodes);
        assert!(
            text.starts_with("d8:a0:1d:00:00:01 \"Bay 1\"  layer 1  ?  ?"),
            "{text}"
        );
        assert!(
            text.contains("└─ d8:a0:1d:00:00:02 \"Bay 2\"  layer 2  -60 dBm  20 ms to parent  agccs12  esp32 3.5  avr 15"),
            "{text}"
        );
    }
}
