//! What a bay asks of the allocator this round, derived from what its node reported and
//! what its operator set.

use ctrl22_node::{Ccss, CcssGroup, Deciamps, PhaseSet};

use jiff::tz::TimeZone;

use super::record::Bay;
use crate::allocate::{BayDemand, ChargeMode};
use crate::bay::Setpoint;
use crate::clock::Now;

/// The mode in force for a bay: its own, else the site's default.
#[must_use]
pub fn effective_mode(bay: &Bay, default_mode: ChargeMode) -> ChargeMode {
    bay.settings.mode.unwrap_or(default_mode)
}

/// Whether the bay's session wants current now. A stopped (OFF9) or faulted bay does not;
/// a bay whose node is silent does not ask for more (its reservation is kept separately).
#[must_use]
pub fn wants_charge(bay: &Bay, mode: ChargeMode) -> bool {
    let Some(state) = bay.ccss() else {
        return false;
    };
    bay.online
        && bay.settings.enabled
        && mode != ChargeMode::Off
        && bay.plugged()
        && state.in_session()
        && state.group() != CcssGroup::Err
        && state != Ccss::Off9
}

/// The allocator's view of one bay.
#[must_use]
pub fn demand(
    bay: &Bay,
    circuit: Option<&str>,
    default_mode: ChargeMode,
    reserved: Option<Setpoint>,
    now: Now,
    zone: &TimeZone,
) -> BayDemand {
    let mode = effective_mode(bay, default_mode);
    // The allocator counts on the monotonic clock: the departure, a wall time in the site's
    // zone, becomes "so many ms from now" on it.
    let departure_ms = bay
        .settings
        .departure
        .and_then(|d| d.next_after(now.wall_ms, zone))
        .map(|at| now.mono_ms.saturating_add(at.saturating_sub(now.wall_ms)));
    let energy_needed_wh = bay.settings.target_energy_wh.map(|target| {
        // Whole Wh are plenty for a deadline; the fraction is dropped on purpose.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let delivered = bay.energy.session_wh().max(0.0) as u32;
        target.saturating_sub(delivered)
    });
    let mut demand = BayDemand::new(bay.id.clone(), bay.cap());
    demand.circuit = circuit.map(str::to_owned);
    demand.rotation = bay.settings.rotation;
    demand.wired_phases = bay.phase_switch.phases(PhaseSet::ALL);
    demand.ev_phases = bay.ev_phases;
    demand.mode = mode;
    demand.wants_charge = wants_charge(bay, mode);
    demand.priority = bay.settings.priority;
    demand.arrived_at_ms = bay.session_started_mono_ms.unwrap_or(now.mono_ms);
    demand.departure_ms = departure_ms;
    demand.energy_needed_wh = energy_needed_wh;
    demand.reserved = if bay.online { None } else { reserved };
    if demand.max_current < Deciamps::MIN_CHARGE {
        demand.wants_charge = false;
    }
    demand
}
