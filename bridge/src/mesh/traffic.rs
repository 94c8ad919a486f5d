//! What the site task handed to the mesh link, for `/metrics`: commands by `cmd`, and how
//! long after the change that asked for an allocation its setpoint writes were handed over.
//! Atomics and one histogram shared by the command forwarder (the one writer) and the
//! metrics page (the reader); nothing is allocated per command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

/// The `cmd` label of `ctrl22_mesh_commands_total`: every [`Command::name`](ctrl22_node::mesh::Command::name).
pub const COMMAND_NAMES: [&str; 10] = [
    "status",
    "system",
    "tsync",
    "restart",
    "hbperiod",
    "avrsetpar",
    "avrgetpar",
    "upgrade",
    "avrota",
    "avrimg",
];

/// Upper bounds of `ctrl22_event_to_write_seconds`: 100 us (a change answered at once) to
/// 2 s (one that waited for a cycle or two).
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
];

/// Counters of the link's outgoing side; clones share them.
#[derive(Clone, Debug)]
pub struct LinkTraffic(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    commands: [AtomicU64; COMMAND_NAMES.len()],
    event_to_write: Histogram,
}

impl Default for LinkTraffic {
    fn default() -> Self {
        Self(Arc::new(Counters {
            commands: std::array::from_fn(|_| AtomicU64::new(0)),
            event_to_write: Histogram::new(LATENCY_BUCKETS_S),
        }))
    }
}

impl LinkTraffic {
    /// Counts a command handed to the link, by its [`Command::name`](ctrl22_node::mesh::Command::name).
    pub fn handed(&self, name: &str) {
        if let Some(count) = COMMAND_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.0.commands.get(i))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The time from a change to the last setpoint write of the allocation it asked for
    /// being handed to the link.
    pub fn observe_event_to_write(&self, latency: Duration) {
        self.0.event_to_write.observe(latency.as_secs_f64());
    }

    /// Commands handed to the link so far, as `(cmd, count)`.
    pub fn commands(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        COMMAND_NAMES
            .into_iter()
            .zip(self.0.commands.iter().map(|c| c.load(Ordering::Relaxed)))
    }

    /// The event -> write histogram, for registering with `/metrics`.
    #[must_use]
    pub fn event_to_write(&self) -> Histogram {
        self.0.event_to_write.clone()
    }
}
