//! Bays join and leave a running sequencer: the site discovers bays from heartbeats, learns
//! which phases a vehicle loads, and operators change limits or forget bays, all without
//! losing what is known about the other bays.

use ctrl22_node::Deciamps;

use super::bay_state::BayState;
use super::{BayWiring, PhaseLoad, Sequencer, SetparCommand};

impl PhaseLoad {
    /// The load as currents per site phase (saturating at the `i16` range).
    #[must_use]
    pub fn to_deciamps(self) -> [Deciamps; 3] {
        self.0
            .map(|v| Deciamps(i16::try_from(v).unwrap_or(if v < 0 { i16::MIN } else { i16::MAX })))
    }
}

impl Sequencer {
    /// Adds a bay that belongs to `groups` (indices into [`Sequencer::groups`]; unknown ones
    /// are skipped); returns its index. It reserves nothing until heard from.
    pub fn add_bay(&mut self, wiring: BayWiring, groups: &[usize]) -> usize {
        let bay = self.bays.len();
        let mut member_of: Vec<usize> = groups
            .iter()
            .copied()
            .filter(|&g| g < self.groups.len())
            .collect();
        member_of.sort_unstable();
        member_of.dedup();
        for &g in &member_of {
            if let Some(group) = self.groups.get_mut(g) {
                group.bays.push(bay);
            }
        }
        self.bays.push(BayState::new(wiring));
        self.groups_of_bay.push(member_of);
        bay
    }

    /// The bay's wiring changed (a vehicle's phases became known). The reservation follows
    /// at once: narrower when the vehicle evidently loads fewer phases, wider when more.
    pub fn set_wiring(&mut self, bay: usize, wiring: BayWiring) {
        let Some(state) = self.bays.get_mut(bay) else {
            return;
        };
        if state.wiring != wiring {
            state.wiring = wiring;
            self.sync_reservation(bay);
        }
    }

    /// A group's limit changed. A lower limit blocks raises until the group's bays have been
    /// lowered under it by new targets; a higher one lets waiting raises go.
    pub fn set_limit(
        &mut self,
        now_ms: u64,
        group: usize,
        limit: [Deciamps; 3],
    ) -> Vec<SetparCommand> {
        if let Some(g) = self.groups.get_mut(group) {
            g.limit = limit;
        }
        self.poll(now_ms)
    }

    /// Presses the operator button of `bay` (start or stop; the site core decides when the
    /// state calls for it) as soon as the node's write slot is free.
    pub fn press_button(&mut self, now_ms: u64, bay: usize) -> Vec<SetparCommand> {
        let Some(state) = self.bays.get_mut(bay) else {
            return Vec::new();
        };
        state.button = true;
        self.step(now_ms, vec![bay])
    }

    /// Removes a bay for good; the last bay takes its index (as `Vec::swap_remove`). Only
    /// sensible for a bay that was released first: whatever it reserved is given back.
    pub fn remove_bay(&mut self, bay: usize) {
        let Some(state) = self.bays.get(bay) else {
            return;
        };
        let reservation = state.reservation;
        for &g in self.groups_of_bay.get(bay).into_iter().flatten() {
            if let Some(total) = self.totals.get_mut(g) {
                *total = total.minus(reservation);
            }
        }
        let last = self.bays.len() - 1;
        for group in &mut self.groups {
            group.bays.retain(|&b| b != bay);
            for b in &mut group.bays {
                if *b == last {
                    *b = bay;
                }
            }
            group.bays.sort_unstable();
        }
        self.bays.swap_remove(bay);
        self.groups_of_bay.swap_remove(bay);
        self.waiting_for_budget.remove(&bay);
        if self.waiting_for_budget.remove(&last) {
            self.waiting_for_budget.insert(bay);
        }
        // The removed bay's pending change is its caller's to persist (it knows the id).
        self.reservation_changes.remove(&bay);
        if let Some(change) = self.reservation_changes.remove(&last) {
            self.reservation_changes.insert(bay, change);
        }
    }
}
