//! The bays of the site, one [`BaySlot`] each, found by index (the sequencer's numbering)
//! or by MAC.

use std::collections::HashMap;

use ctrl22_node::mesh::MacAddr;
use ctrl22_node::Deciamps;

use super::record::Bay;
use super::status::BayStatus;
use crate::bay::{BayId, Setpoint};

/// Where a bay hangs in the circuit tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Directly below the site connection, or below the named circuit (configured, or
    /// `site.default_circuit` for bays the configuration does not name).
    Placed(Option<String>),
    /// Not in the configuration and no default circuit: counted against every circuit's
    /// limit, since it could be on any of them.
    Unplaced,
}

impl Placement {
    /// The circuit the allocator puts the bay under.
    #[must_use]
    pub fn circuit(&self) -> Option<&str> {
        match self {
            Self::Placed(circuit) => circuit.as_deref(),
            Self::Unplaced => None,
        }
    }
}

/// One bay and what the core decided for it.
#[derive(Debug)]
pub struct BaySlot {
    pub bay: Bay,
    pub placement: Placement,
    /// The allocation's last target.
    pub target: Setpoint,
    /// The fail-safe current the allocation chose.
    pub fail_safe: Deciamps,
    /// Why the bay got what it got.
    pub reason: Option<String>,
    /// The status last announced as an event.
    pub status: BayStatus,
    /// Problems last announced as events.
    pub problems: Vec<&'static str>,
    /// The setpoint last announced as confirmed.
    pub confirmed: Option<Setpoint>,
}

impl BaySlot {
    #[must_use]
    pub fn new(bay: Bay, placement: Placement) -> Self {
        Self {
            bay,
            placement,
            target: Setpoint::PAUSED,
            fail_safe: Deciamps::ZERO,
            reason: None,
            status: BayStatus::Unavailable,
            problems: Vec::new(),
            confirmed: None,
        }
    }
}

/// Every bay of the site.
#[derive(Debug, Default)]
pub struct Registry {
    slots: Vec<BaySlot>,
    by_mac: HashMap<MacAddr, usize>,
}

impl Registry {
    /// Adds a bay; its index is the next one.
    pub fn push(&mut self, slot: BaySlot) -> usize {
        let index = self.slots.len();
        self.by_mac.insert(slot.bay.mac, index);
        self.slots.push(slot);
        index
    }

    /// Removes the bay at `index`; the last bay takes its index (as `Vec::swap_remove`,
    /// and as the sequencer's `remove_bay`).
    pub fn swap_remove(&mut self, index: usize) -> Option<BaySlot> {
        if index >= self.slots.len() {
            return None;
        }
        let slot = self.slots.swap_remove(index);
        self.by_mac.remove(&slot.bay.mac);
        if let Some(moved) = self.slots.get(index) {
            self.by_mac.insert(moved.bay.mac, index);
        }
        Some(slot)
    }

    #[must_use]
    pub fn index_of_mac(&self, mac: &MacAddr) -> Option<usize> {
        self.by_mac.get(mac).copied()
    }

    #[must_use]
    pub fn index_of(&self, id: &BayId) -> Option<usize> {
        id.0.parse::<MacAddr>()
            .ok()
            .and_then(|mac| self.index_of_mac(&mac))
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    #[must_use]
    pub fn get(&self, index: usize) -> Option<&BaySlot> {
        self.slots.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut BaySlot> {
        self.slots.get_mut(index)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, BaySlot> {
        self.slots.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, BaySlot> {
        self.slots.iter_mut()
    }
}
