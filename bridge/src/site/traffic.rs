//! What the core counts of its own traffic for `/metrics`: node messages by kind, the
//! sequencer's setpoint writes, allocations by what started them. Plain integers, since the
//! core is their one owner; they reach `/metrics` with the snapshot, so counting costs an
//! increment per message and nothing is allocated per message.

use ctrl22_node::mesh::NodeMessage;

/// The `kind` label of `ctrl22_mesh_messages_total`, in the order [`Traffic::messages`]
/// lists them. `other`: `tsync` and `avrlog`.
pub const MESSAGE_KINDS: [&str; 8] = [
    "heartbeat",
    "status",
    "system",
    "avrsetpar",
    "avrgetpar",
    "avrota",
    "avrimg",
    "other",
];

/// The core's counters, copied into every snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    messages: [u64; MESSAGE_KINDS.len()],
    /// `avrsetpar` writes the sequencer released (setpoints, phases, fail-safe, watchdog,
    /// button presses); operators' own `setpar` are not among them.
    pub setpoint_writes: u64,
    /// Allocations of the periodic control cycle.
    pub cycle_allocations: u64,
    /// Allocations a change asked for between two cycles.
    pub event_allocations: u64,
}

impl Traffic {
    pub(super) fn count_message(&mut self, msg: &NodeMessage) {
        let kind = match msg {
            NodeMessage::Heartbeat(_) => 0,
            NodeMessage::Status(_) => 1,
            NodeMessage::System(_) => 2,
            NodeMessage::AvrSetPar { .. } => 3,
            NodeMessage::AvrGetPar { .. } => 4,
            NodeMessage::AvrOta { .. } => 5,
            NodeMessage::AvrImg { .. } => 6,
            NodeMessage::Tsync(_) | NodeMessage::AvrLog { .. } => 7,
        };
        if let Some(count) = self.messages.get_mut(kind) {
            *count += 1;
        }
    }

    /// Messages received per kind, as `(kind, count)`.
    pub fn messages(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        MESSAGE_KINDS.into_iter().zip(self.messages.iter().copied())
    }

    /// Messages of one kind received (`heartbeat`, ... `other`).
    #[must_use]
    pub fn messages_of(&self, kind: &str) -> u64 {
        self.messages()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| n)
    }
}
