//! Event-driven allocation. A change that matters to the allocation (see below) marks it
//! due; [`Site::poll_timeout`] then names a moment [`COALESCE_MS`] later, and the
//! [`Input::Timeout`](super::Input::Timeout) the driver feeds there allocates and hands the
//! targets to the sequencer, which still orders every write (lower first, confirm, raise).
//! Every change until then rides along, so a burst costs one allocation. The periodic cycle
//! ([`Input::Tick`](super::Input::Tick)) stays the backstop: it allocates anyway, and alone
//! marks silent bays offline, polls, refreshes and retries.
//!
//! What matters, per input:
//! - a node message that changes what the allocator reads of its bay ([`Reported`]): the
//!   bay came online (or is new), its `ccss` state, its cable (`cmaxcur`), the phases its car
//!   was learned to draw on. A heartbeat that repeats what was known changes nothing, and
//!   currents alone never do (the allocator does not read them; the sequencer takes each
//!   heartbeat's evidence at once anyway);
//! - an operator's accepted setting (all but a name), an external limit, an OCPP cap or
//!   site limit;
//! - a power reading or a lost source that lowers a limit in force (a rise waits for the
//!   cycle, and so does the solar budget, which has its own delays).
//!
//! Replies to writes (`avrsetpar` ok/fail) are not: they change what the sequencer knows,
//! not what the allocation wants, and the sequencer sends what they allow (the next write,
//! raises waiting for budget a confirmed lowering freed) with the reply's own input.

use ctrl22_node::{Ccss, Deciamps, PhaseSet};

use super::record::Bay;
use super::Site;
use crate::clock::Now;

/// How long a change waits for its allocation, so that the changes of a burst (heartbeats
/// after a reconnect, a set of settings) share one.
pub const COALESCE_MS: u64 = 5;

/// Event allocations take at most about a fifth of a core: after an allocation that took
/// `t`, the next waits at least `COST_FACTOR * t` (at 10,000 bays one takes milliseconds).
const COST_FACTOR: u64 = 4;

/// The change waiting for its allocation, and when the last allocation ran.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pending {
    /// When the first change not yet allocated for came in (monotonic ms).
    since_ms: Option<u64>,
    last_allocation_ms: Option<u64>,
    /// What the last allocation a change asked for took (µs), as the runtime measured it.
    cost_us: u64,
}

impl Pending {
    fn mark(&mut self, now_ms: u64) {
        self.since_ms.get_or_insert(now_ms);
    }

    /// When the allocation is due, spaced by what the last one took.
    fn due_ms(&self) -> Option<u64> {
        let since = self.since_ms?;
        let gap_ms = (self.cost_us.saturating_mul(COST_FACTOR) / 1000).max(COALESCE_MS);
        let spaced = self
            .last_allocation_ms
            .map_or(0, |last| last.saturating_add(gap_ms));
        Some(since.saturating_add(COALESCE_MS).max(spaced))
    }

    pub(super) fn record_cost(&mut self, cost_us: u64) {
        self.cost_us = cost_us;
    }

    pub(super) fn allocated(&mut self, now_ms: u64) {
        self.since_ms = None;
        self.last_allocation_ms = Some(now_ms);
    }
}

/// What the allocator reads of a bay's node reports (see `demand.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Reported {
    online: bool,
    ccss: Option<Ccss>,
    cable: Option<Deciamps>,
    ev_phases: Option<PhaseSet>,
}

impl Reported {
    pub(super) fn of(bay: &Bay) -> Self {
        Self {
            online: bay.online,
            ccss: bay.ccss(),
            // Every cable reading without a cable is "none": -1 and 0 are the same to it.
            cable: bay
                .heartbeat
                .as_ref()
                .map(|h| h.cmaxcur.max(Deciamps::ZERO)),
            ev_phases: bay.ev_phases,
        }
    }
}

impl Site {
    /// A change that matters to the allocation: it runs within [`COALESCE_MS`].
    pub(super) fn allocation_needed(&mut self, now: Now) {
        self.pending.mark(now.mono_ms);
    }

    /// Whether a change waits for its allocation (which [`Site::poll_timeout`] schedules).
    #[must_use]
    pub fn allocation_pending(&self) -> bool {
        self.pending.since_ms.is_some()
    }

    /// When the core next needs [`Input::Timeout`](super::Input::Timeout) (monotonic ms): the
    /// allocation a change asked for. Constant time, so a driver may ask after every input.
    /// Timeouts of writes, refreshes, polls and firmware jobs are the control cycle's.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.pending.due_ms()
    }

    /// The pending allocation, if it is due: start/stop presses the new state calls for,
    /// then the targets.
    pub(super) fn on_timeout(&mut self, now: Now) {
        if self.poll_timeout().is_none_or(|due| now.mono_ms < due) {
            return;
        }
        self.press_buttons(now);
        self.allocate(now);
        self.traffic.event_allocations += 1;
    }

    /// The limits in force, the site's first, then each circuit's.
    pub(super) fn limits_in_force(&self) -> Vec<[Deciamps; 3]> {
        std::iter::once(self.topology.site_limit())
            .chain(self.topology.circuits().iter().map(|c| c.limit))
            .collect()
    }

    /// Marks the allocation due if a limit in force is now below what it was in `before`.
    pub(super) fn allocate_if_lowered(&mut self, now: Now, before: &[[Deciamps; 3]]) {
        let lowered = self
            .limits_in_force()
            .iter()
            .zip(before)
            .any(|(now, was)| now.iter().zip(was).any(|(n, w)| n < w));
        if lowered {
            self.allocation_needed(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pending, COALESCE_MS, COST_FACTOR};

    #[test]
    fn only_the_recorded_allocation_cost_spaces_the_next_allocation() {
        let mut pending = Pending::default();
        pending.allocated(1_000);
        pending.mark(1_001);
        assert_eq!(pending.due_ms(), Some(1_001 + COALESCE_MS));
        // An allocation that took 10 ms: the next waits 4 x that after the last.
        pending.record_cost(10_000);
        assert_eq!(pending.due_ms(), Some(1_000 + COST_FACTOR * 10));
    }
}
