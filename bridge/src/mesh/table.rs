//! `mesh status` and `mesh system` answers of many bays at once: a table for people (one row
//! per node, sorted), or JSON (`--json`) for scripts.

use ctrl22_node::mesh::{MacAddr, NodeMessage};
use serde_json::{json, Value};

/// One node's answer as named columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub node: MacAddr,
    pub columns: Vec<(&'static str, Value)>,
}

/// The row of a `status` or `system` reply; `None` for anything else.
#[must_use]
pub fn row(src: MacAddr, msg: &NodeMessage) -> Option<Row> {
    let columns = match msg {
        NodeMessage::Status(s) => vec![
            ("layer", json!(s.layer)),
            ("parent", json!(s.parent.to_string())),
            ("rssi_dbm", json!(s.rssi)),
            ("parent_latency_ms", json!(s.plat)),
            ("mesh_nodes", json!(s.nodes)),
        ],
        NodeMessage::System(s) => vec![
            ("board", json!(s.board.as_str())),
            ("version", json!(s.version.as_str())),
            ("avr_version", json!(s.avrver)),
            ("uptime_s", json!(s.time_ms / 1000)),
        ],
        _ => return None,
    };
    Some(Row { node: src, columns })
}

/// The rows as aligned text columns, a header first, sorted by node; a node that answered
/// twice shows its last answer.
#[must_use]
pub fn render_table(rows: &[Row]) -> String {
    let rows = latest_per_node(rows);
    let Some(first) = rows.first() else {
        return String::new();
    };
    let header: Vec<String> = std::iter::once("node".to_owned())
        .chain(first.columns.iter().map(|(name, _)| (*name).to_owned()))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            std::iter::once(r.node.to_string())
                .chain(r.columns.iter().map(|(_, v)| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&cells)
                .filter_map(|line| line.get(i).map(String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    std::iter::once(line(&header))
        .chain(cells.iter().map(|c| line(c)))
        .map(|l| l + "\n")
        .collect()
}

/// The rows as a JSON array of objects, sorted by node.
#[must_use]
pub fn render_json(rows: &[Row]) -> Value {
    latest_per_node(rows)
        .into_iter()
        .map(|r| {
            let mut object = serde_json::Map::new();
            object.insert("node".to_owned(), json!(r.node.to_string()));
            for (name, value) in r.columns {
                object.insert(name.to_owned(), value);
            }
            Value::Object(object)
        })
        .collect()
}

fn latest_per_node(rows: &[Row]) -> Vec<Row> {
    let mut by_node = std::collections::BTreeMap::new();
    for row in rows {
        by_node.insert(row.node.0, row.clone());
    }
    by_node.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrl22_node::mesh::StatusReply;

    fn status(last: u8, layer: u8, rssi: i16) -> Row {
        let reply = NodeMessage::Status(StatusReply {
            parent: MacAddr([0x44, 0x4e, 0x6d, 0, 0, 1]),
            rssi,
            layer,
            nodes: 3,
            plat: 12,
        });
        row(MacAddr([0xd8, 0xa0, 0x1d, 0, 0, last]), &reply).expect("a status row")
    }

    #[test]
    fn answers_become_one_sorted_row_per_node() {
        let rows = [status(2, 2, -70), status(1, 1, -50), status(2, 2, -71)];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("node") && lines[0].contains("parent_latency_ms"));
        assert!(lines[1].starts_with("d8:a0:1d:00:00:01"));
        assert!(lines[2].contains("-71"), "the last answer counts: {table}");
        let json = render_json(&rows);
        assert_eq!(json.as_array().map(Vec::len), Some(2));
        assert_eq!(json[1]["rssi_dbm"], -71);
        assert_eq!(json[0]["parent"], "44:4e:6d:00:00:01");
        assert_eq!(render_table(&[]), "");
    }
}
