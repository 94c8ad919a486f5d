//! One direction of the mesh between the site and the bays, as a model: every message is
//! lost with some probability, or delivered after a random delay; some are held back longer
//! (reordering). Seeded, so a failing case replays exactly.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use ctrl22_node::mesh::MacAddr;
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// How one direction of the mesh treats messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    /// Probability that a message never arrives.
    pub loss: f64,
    /// Delay of every message, ms (inclusive range).
    pub delay_ms: (u64, u64),
    /// Probability that a message is held back by `hold_ms` on top of its delay.
    pub reorder: f64,
    pub hold_ms: u64,
    /// Messages of one node arrive in the order sent (one MQTT connection, which the
    /// sequencer assumes); reordering then only happens between nodes.
    pub fifo_per_node: bool,
}

impl LinkModel {
    /// A quick mesh that loses nothing.
    pub const CLEAN: Self = Self {
        loss: 0.0,
        delay_ms: (20, 200),
        reorder: 0.0,
        hold_ms: 0,
        fifo_per_node: true,
    };

    pub fn lossy(loss: f64) -> Self {
        Self {
            loss,
            ..Self::CLEAN
        }
    }
}

/// Counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub delivered: u64,
}

#[derive(Debug)]
struct InFlight<T> {
    due_ms: u64,
    seq: u64,
    node: MacAddr,
    msg: T,
}

impl<T> PartialEq for InFlight<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due_ms, self.seq) == (other.due_ms, other.seq)
    }
}

impl<T> Eq for InFlight<T> {}

impl<T> PartialOrd for InFlight<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for InFlight<T> {
    /// Earliest due first out of the (max-)heap; sending order breaks ties.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due_ms, other.seq).cmp(&(self.due_ms, self.seq))
    }
}

/// Messages on their way in one direction.
#[derive(Debug)]
pub struct Link<T> {
    model: LinkModel,
    rng: TestRng,
    in_flight: BinaryHeap<InFlight<T>>,
    /// Per node, when its latest message is due (for `fifo_per_node`).
    last_due_ms: HashMap<MacAddr, u64>,
    seq: u64,
    stats: LinkStats,
}

impl<T> Link<T> {
    pub fn new(model: LinkModel, seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(
                &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
            );
        }
        Self {
            model,
            rng: TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
            in_flight: BinaryHeap::new(),
            last_due_ms: HashMap::new(),
            seq: 0,
            stats: LinkStats::default(),
        }
    }

    /// Changes the model for messages sent from now on; those on their way keep theirs.
    pub fn set_model(&mut self, model: LinkModel) {
        self.model = model;
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// `msg` from or to `node` leaves at `now_ms`.
    pub fn send(&mut self, now_ms: u64, node: MacAddr, msg: T) {
        self.stats.sent += 1;
        let model = self.model;
        if model.loss > 0.0 && self.rng.random_bool(model.loss.min(1.0)) {
            self.stats.lost += 1;
            return;
        }
        let (low, high) = model.delay_ms;
        let mut due_ms = now_ms + self.rng.random_range(low..=high.max(low));
        if model.reorder > 0.0 && self.rng.random_bool(model.reorder.min(1.0)) {
            due_ms += model.hold_ms;
        }
        if model.fifo_per_node {
            let last = self.last_due_ms.entry(node).or_insert(0);
            due_ms = due_ms.max(*last);
            *last = due_ms;
        }
        self.seq += 1;
        self.in_flight.push(InFlight {
            due_ms,
            seq: self.seq,
            node,
            msg,
        });
    }

    /// The next message due at or before `now_ms`, in delivery order.
    pub fn receive(&mut self, now_ms: u64) -> Option<(MacAddr, T)> {
        if self.in_flight.peek()?.due_ms > now_ms {
            return None;
        }
        let m = self.in_flight.pop()?;
        self.stats.delivered += 1;
        Some((m.node, m.msg))
    }
}
