//! Departure goals: the current a `schedule` bay needs to deliver its energy in time, and its
//! laxity (how long it could still wait at full speed), which orders the bays under the
//! `schedule` strategy: least laxity first.
//!
//! A `schedule` bay charges from the surplus first (like `pv`) while it can still wait, and
//! from the grid once its laxity falls to [`GRID_MARGIN_MS`]: the latest start at its own
//! maximum that still meets the departure, with a margin for what the site may not grant.
//! Once on the grid it stays there until the laxity has grown to twice the margin (the sun
//! came back), so the boundary does not flap.

use ctrl22_node::Deciamps;

use super::input::BayDemand;

const MS_PER_HOUR: u128 = 3_600_000;

/// Laxity at which a `schedule` bay starts charging from the grid.
pub(super) const GRID_MARGIN_MS: i64 = 15 * 60_000;

/// What a bay with a departure time and an energy goal needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Goal {
    /// Steady current per phase that delivers the energy exactly at departure (saturated at
    /// `i16::MAX` when the departure has passed).
    pub needed: Deciamps,
    /// Time to departure minus the time the energy takes at the bay's own maximum; negative
    /// when even that is too late.
    pub laxity_ms: i64,
}

/// `phase_count` is how many phases the bay draws on (the sum of its site-phase weights).
pub(super) fn goal(bay: &BayDemand, phase_count: u8, now_ms: u64, voltage: u16) -> Option<Goal> {
    let departure = bay.departure_ms?;
    let energy_wh = bay.energy_needed_wh.filter(|wh| *wh > 0)?;
    // Deciampere-volts per phase set, per deciampere: `10 W = 1 dA * 1 V * phases`.
    let watts_per_deciamp_x10 = u128::from(voltage) * u128::from(phase_count);
    if watts_per_deciamp_x10 == 0 {
        return None;
    }
    let energy_dav_ms = u128::from(energy_wh) * MS_PER_HOUR * 10;
    let remaining_ms = departure.saturating_sub(now_ms);
    let needed = if remaining_ms == 0 {
        Deciamps(i16::MAX)
    } else {
        let per_phase = energy_dav_ms.div_ceil(u128::from(remaining_ms) * watts_per_deciamp_x10);
        Deciamps(i16::try_from(per_phase).unwrap_or(i16::MAX))
    };
    let cap = u128::try_from(bay.max_current.get()).unwrap_or(0);
    let at_full_ms = if cap == 0 {
        u128::from(u64::MAX)
    } else {
        energy_dav_ms.div_ceil(cap * watts_per_deciamp_x10)
    };
    let laxity = i128::from(remaining_ms) - i128::try_from(at_full_ms).unwrap_or(i128::MAX);
    let laxity_ms = i64::try_from(laxity).unwrap_or(if laxity < 0 { i64::MIN } else { i64::MAX });
    Some(Goal { needed, laxity_ms })
}

/// Whether a `schedule` bay may take grid power this round. Without a departure or a goal
/// it charges like `now`; with its goal met it only takes surplus.
pub(super) fn from_grid(bay: &BayDemand, goal: Option<Goal>, was_from_grid: bool) -> bool {
    match goal {
        Some(goal) => {
            let margin = if was_from_grid {
                2 * GRID_MARGIN_MS
            } else {
                GRID_MARGIN_MS
            };
            goal.laxity_ms <= margin
        }
        None => !(bay.departure_ms.is_some() && bay.energy_needed_wh == Some(0)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bay::BayId;

    #[test]
    fn needed_current_spreads_energy_over_remaining_time() {
        let mut bay = BayDemand::new(BayId("a".into()), Deciamps::from_amps(16));
        bay.departure_ms = Some(3_600_000);
        bay.energy_needed_wh = Some(6_900);
        // 6.9 kWh in one hour on three phases at 230 V: 10 A.
        let goal = goal(&bay, 3, 0, 230).unwrap();
        assert_eq!(goal.needed, Deciamps::from_amps(10));
        // At 16 A it takes 37.5 minutes: 22.5 minutes to spare.
        assert_eq!(goal.laxity_ms, 3_600_000 - 2_250_000);
        assert_eq!(
            super::goal(&bay, 3, 3_600_000, 230).unwrap().needed,
            Deciamps(i16::MAX)
        );
    }
}
