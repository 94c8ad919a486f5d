//! What the sequencer can tell about its bays and groups, for the site's snapshot and tests.

use super::load::{LimitGroup, PhaseLoad};
use super::{Sequencer, SetparCommand, Target};
use crate::bay::Setpoint;
use ctrl22_node::Deciamps;

impl Sequencer {
    /// Number of bays.
    #[must_use]
    pub fn bay_count(&self) -> usize {
        self.bays.len()
    }

    /// The limit groups, in the order given (bays sorted).
    #[must_use]
    pub fn groups(&self) -> &[LimitGroup] {
        &self.groups
    }

    /// What `bay` holds in the budget per site phase (zero for unknown bays).
    #[must_use]
    pub fn reservation(&self, bay: usize) -> PhaseLoad {
        self.bays
            .get(bay)
            .map_or(PhaseLoad::ZERO, |s| s.reservation)
    }

    /// The sum of the reservations of `group`'s bays (zero for unknown groups).
    #[must_use]
    pub fn total(&self, group: usize) -> PhaseLoad {
        self.totals.get(group).copied().unwrap_or_default()
    }

    /// The setpoint the node has confirmed, if the bridge knows it exactly.
    #[must_use]
    pub fn confirmed(&self, bay: usize) -> Option<Setpoint> {
        let k = self.bays.get(bay)?.knowledge?;
        Some(Setpoint {
            current: k.smaxcur.exact()?,
            phases: k.phases.exact()?,
        })
    }

    /// The fail-safe current the node has confirmed, if known exactly (never for bays
    /// without watchdog).
    #[must_use]
    pub fn confirmed_fail_safe(&self, bay: usize) -> Option<Deciamps> {
        let f = self.bays.get(bay)?.knowledge?.fsafecur?;
        f.exact()
    }

    /// The target last given for `bay`, as sanitized.
    #[must_use]
    pub fn target(&self, bay: usize) -> Option<Target> {
        self.bays.get(bay)?.target
    }

    /// The write outstanding at `bay`, if any.
    #[must_use]
    pub fn pending(&self, bay: usize) -> Option<SetparCommand> {
        self.bays
            .get(bay)?
            .outstanding
            .map(|o| o.write.to_command(bay))
    }

    /// Whether the node rejected `fsafecur`/`wdtsec` (original firmware without watchdog).
    #[must_use]
    pub fn no_watchdog(&self, bay: usize) -> bool {
        self.bays.get(bay).is_some_and(|s| s.no_watchdog)
    }

    /// Writes to `bay` given up on after `max_attempts` so far (then retried after the
    /// backoff).
    #[must_use]
    pub fn give_ups(&self, bay: usize) -> u32 {
        self.bays.get(bay).map_or(0, |s| s.give_ups)
    }

    /// Whether `bay` has reached its target: node confirmed it exactly (fail-safe too where
    /// there is a watchdog), nothing in flight, no reservation held beyond it.
    #[must_use]
    pub fn is_settled(&self, bay: usize) -> bool {
        let Some(state) = self.bays.get(bay) else {
            return false;
        };
        let (Some(target), Some(k)) = (state.target, state.knowledge) else {
            return false;
        };
        let fail_safe_ok = k.fsafecur.is_none_or(|f| f.is_exactly(target.fail_safe));
        state.outstanding.is_none()
            && state.hold.is_none()
            && k.smaxcur.is_exactly(target.setpoint.current)
            && k.phases.is_exactly(target.setpoint.phases)
            && fail_safe_ok
    }
}
