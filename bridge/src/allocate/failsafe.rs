//! The current each node's watchdog falls back to when setpoints stop coming.
//!
//! Every fail-safe current is at most the bay's allocated current (and 0 or at least 6 A),
//! so any mix of bays at their setpoint and bays at their fail-safe stays within every
//! limit the allocation respected. Within that bound the choice follows what the owner
//! asked for: without the bridge nobody measures the surplus, so `pv` bays stop and `minpv`
//! bays drop to their 6 A minimum; the rest keep what they have, so a crowded site goes on
//! charging (without rotation) instead of stopping everyone. A bay that is offline keeps
//! its reserved current: it may still be drawing it.

use ctrl22_node::Deciamps;

use super::input::ChargeMode;

pub(super) fn fail_safe(mode: ChargeMode, allocated: Deciamps, reserved: bool) -> Deciamps {
    let allocated = allocated.max(Deciamps::ZERO);
    if reserved {
        return allocated;
    }
    match mode {
        ChargeMode::Off | ChargeMode::Pv => Deciamps::ZERO,
        ChargeMode::MinPv => allocated.min(Deciamps::MIN_CHARGE),
        ChargeMode::Now | ChargeMode::Schedule => allocated,
    }
}
