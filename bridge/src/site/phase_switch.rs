//! Automatic 1-phase <-> 3-phase switching of `pv` and `minpv` bays through their `phases`
//! setpoint (`[site.surplus] phase_switching`).
//!
//! Three phases need 6 A x 3 x the voltage (4.14 kW at 230 V) before a car can charge from
//! the sun alone; one phase needs only a third of that. Between the two a three-phase `pv`
//! bay would pause (and a `minpv` bay import the difference), so the bay is told one phase
//! (bay L1) while the surplus stays below the three-phase minimum, and all three again once
//! the surplus has cleared it by [`UP_MARGIN_DA`] per phase. Each way the surplus must hold
//! for the `pv` enable delay (shorter than the stop delay, so a three-phase bay goes to one
//! phase before it would pause), and two switches are at least `phase_switch_interval`
//! apart: a switch costs the car a pause of about 30 s (the firmware's P1, W8, a new offer
//! and the 10 s phase check), so it must not flap.
//!
//! The change itself is the sequencer's: the allocator's target names the new phase set, and
//! the sequencer writes `phases` and `smaxcur` lower first (fewer phases before more current
//! on one, less current before more phases), so the fuse rules hold during the switch. The
//! node pauses (P1), waits (W8) and offers again on the new set.
//!
//! A car that refuses the new set (the firmware's W9) goes back to the set it charged on
//! before and is not switched again this session.

use ctrl22_node::{Ccss, CcssGroup, PhaseSet};

use super::{demand, Output, Site};
use crate::allocate::ChargeMode;
use crate::clock::Now;

/// Surplus above the three-phase minimum, per phase (0.1 A), before a one-phase bay goes
/// back to three phases: 0.5 A x 3 phases x 230 V = 345 W of hysteresis.
pub const UP_MARGIN_DA: i64 = 5;

/// What the switch of one bay remembers for its session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseSwitch {
    /// The bay is told one phase (L1) instead of every phase it is wired for.
    one_phase: bool,
    /// When the phase set last changed (monotonic ms).
    switched_at_ms: Option<u64>,
    /// Since when the surplus has asked for the other phase count.
    wanted_since_ms: Option<u64>,
    /// The EV refused a changed set: it stays on the one it accepted.
    refused: bool,
    /// Phase changes this session (reverts included).
    switches: u32,
}

/// The settings and the situation one decision needs.
#[derive(Clone, Copy, Debug)]
pub struct SwitchInput {
    pub now_ms: u64,
    pub mode: ChargeMode,
    /// The node's state; `None` before the first heartbeat.
    pub state: Option<Ccss>,
    /// The bay may switch at all: online, in a session, an EV that draws on several phases
    /// (or not known yet), switching enabled.
    pub eligible: bool,
    /// The solar budget this bay may count on (W): the site's minus what the other surplus
    /// bays draw; `None` without a fresh budget.
    pub share_w: Option<i64>,
    pub voltage: u16,
    /// How long the surplus must ask for the other set (the `pv` enable delay).
    pub delay_ms: u64,
    /// The least time between two switches.
    pub interval_ms: u64,
}

/// A switch made this cycle, for the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switched {
    ToOnePhase,
    ToThreePhases,
    /// The EV refused the new set (W9): back to the previous one, for good this session.
    Reverted {
        one_phase: bool,
    },
}

impl PhaseSwitch {
    /// The phases to offer, in bay numbering, for a bay wired for `wired`.
    #[must_use]
    pub fn phases(&self, wired: PhaseSet) -> PhaseSet {
        if self.one_phase && wired.contains(ctrl22_node::Phase::L1) {
            PhaseSet::L1
        } else {
            wired
        }
    }

    #[must_use]
    pub fn one_phase(&self) -> bool {
        self.one_phase
    }

    #[must_use]
    pub fn switches(&self) -> u32 {
        self.switches
    }

    /// One control cycle's decision.
    pub fn update(&mut self, input: &SwitchInput) -> Option<Switched> {
        if input.state == Some(Ccss::W9) && self.switches > 0 && !self.refused {
            self.refused = true;
            self.toggle(input.now_ms);
            return Some(Switched::Reverted {
                one_phase: self.one_phase,
            });
        }
        if self.refused {
            return None;
        }
        let surplus_mode = matches!(input.mode, ChargeMode::Pv | ChargeMode::MinPv);
        if input.eligible && !surplus_mode && self.one_phase {
            // Out of the surplus modes the bay gets every phase back at once.
            self.toggle(input.now_ms);
            return Some(Switched::ToThreePhases);
        }
        let changing = input
            .state
            .is_none_or(|s| s.group() == CcssGroup::P || matches!(s, Ccss::W8 | Ccss::W9));
        let (Some(share_w), true, true, false) =
            (input.share_w, input.eligible, surplus_mode, changing)
        else {
            self.wanted_since_ms = None;
            return None;
        };
        let volts = i64::from(input.voltage.max(1));
        let min_da = i64::from(ctrl22_node::Deciamps::MIN_CHARGE.get());
        let one_min_w = min_da * volts / 10;
        let three_min_w = 3 * one_min_w;
        let wants_other = if self.one_phase {
            share_w >= three_min_w + 3 * UP_MARGIN_DA * volts / 10
        } else {
            // Below one phase's minimum a `pv` bay pauses either way; a `minpv` bay imports
            // less on one phase.
            share_w < three_min_w && (input.mode == ChargeMode::MinPv || share_w >= one_min_w)
        };
        if !wants_other {
            self.wanted_since_ms = None;
            return None;
        }
        let since = *self.wanted_since_ms.get_or_insert(input.now_ms);
        let held = input.now_ms.saturating_sub(since) >= input.delay_ms;
        let rested = self
            .switched_at_ms
            .is_none_or(|at| input.now_ms.saturating_sub(at) >= input.interval_ms);
        if !(held && rested) {
            return None;
        }
        self.toggle(input.now_ms);
        Some(if self.one_phase {
            Switched::ToOnePhase
        } else {
            Switched::ToThreePhases
        })
    }

    fn toggle(&mut self, now_ms: u64) {
        self.one_phase = !self.one_phase;
        self.switched_at_ms = Some(now_ms);
        self.wanted_since_ms = None;
        self.switches = self.switches.saturating_add(1);
    }
}

impl Site {
    /// Each surplus bay's phase count for this cycle, before the allocator runs on it.
    pub(super) fn switch_phases(&mut self, now: Now, out: &mut Vec<Output>) {
        let power = &self.settings.power;
        if !power.phase_switching {
            return;
        }
        let voltage = self.settings.voltage;
        let default_mode = self.settings.default_mode;
        let budget_w = self.power.surplus.budget_w().map(i64::from);
        let surplus_draw: Vec<i64> = self
            .registry
            .iter()
            .map(|slot| {
                let mode = demand::effective_mode(&slot.bay, default_mode);
                if matches!(mode, ChargeMode::Pv | ChargeMode::MinPv) {
                    slot.bay.power_w(voltage)
                } else {
                    0
                }
            })
            .collect();
        let all_surplus_draw: i64 = surplus_draw.iter().sum();
        let (delay_ms, interval_ms) = (power.pv_enable_delay_ms, power.phase_switch_interval_ms);
        for (slot, own_draw) in self.registry.iter_mut().zip(surplus_draw) {
            let bay = &mut slot.bay;
            let mode = demand::effective_mode(bay, default_mode);
            let several_phases = bay.ev_phases.is_none_or(|p| p.iter().count() > 1);
            let input = SwitchInput {
                now_ms: now.mono_ms,
                mode,
                state: bay.ccss(),
                eligible: bay.online && bay.ccss().is_some_and(Ccss::in_session) && several_phases,
                share_w: budget_w.map(|b| b - (all_surplus_draw - own_draw)),
                voltage,
                delay_ms,
                interval_ms,
            };
            let Some(switched) = bay.phase_switch.update(&input) else {
                continue;
            };
            let text = match switched {
                Switched::ToOnePhase => "phases: one, the surplus is below three phases' 6 A",
                Switched::ToThreePhases => "phases: three again",
                Switched::Reverted { .. } => {
                    "phases: the car refused the new set, back to the one it charged on"
                }
            };
            out.push(Output::Event {
                bay: Some(bay.id.clone()),
                text: text.to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(now_ms: u64, share_w: i64) -> SwitchInput {
        SwitchInput {
            now_ms,
            mode: ChargeMode::Pv,
            state: Some(Ccss::C3),
            eligible: true,
            share_w: Some(share_w),
            voltage: 230,
            delay_ms: 60_000,
            interval_ms: 300_000,
        }
    }

    #[test]
    fn between_one_and_three_phase_minimum_goes_to_one_phase_after_the_delay() {
        let mut s = PhaseSwitch::default();
        assert_eq!(s.update(&input(0, 3_000)), None);
        assert_eq!(s.update(&input(59_000, 3_000)), None);
        assert_eq!(s.update(&input(60_000, 3_000)), Some(Switched::ToOnePhase));
        assert_eq!(s.phases(PhaseSet::ALL), PhaseSet::L1);
        // Below one phase's minimum a `pv` bay stays where it is.
        let mut t = PhaseSwitch::default();
        assert_eq!(t.update(&input(0, 1_000)), None);
        assert_eq!(t.update(&input(120_000, 1_000)), None);
    }

    #[test]
    fn back_to_three_phases_needs_the_margin_and_the_interval() {
        let mut s = PhaseSwitch::default();
        s.update(&input(0, 3_000));
        s.update(&input(60_000, 3_000));
        assert!(s.one_phase());
        // 4.2 kW is above 4.14 kW but inside the margin.
        assert_eq!(s.update(&input(100_000, 4_200)), None);
        assert_eq!(s.update(&input(400_000, 4_200)), None);
        // Clear of the margin from 400 s, held for a minute, and 5 min after the last switch.
        assert_eq!(s.update(&input(400_001, 4_600)), None);
        assert_eq!(
            s.update(&input(460_001, 4_600)),
            Some(Switched::ToThreePhases)
        );
        assert_eq!(s.switches(), 2);
    }

    #[test]
    fn a_refused_set_goes_back_and_stays() {
        let mut s = PhaseSwitch::default();
        s.update(&input(0, 3_000));
        s.update(&input(60_000, 3_000));
        let w9 = SwitchInput {
            state: Some(Ccss::W9),
            ..input(80_000, 3_000)
        };
        assert_eq!(s.update(&w9), Some(Switched::Reverted { one_phase: false }));
        assert_eq!(s.update(&input(1_000_000, 3_000)), None);
        assert_eq!(s.update(&input(2_000_000, 3_000)), None);
        assert!(!s.one_phase());
    }

    #[test]
    fn no_switch_while_a_change_is_under_way_or_without_a_budget() {
        let mut s = PhaseSwitch::default();
        for state in [Ccss::P1, Ccss::W8] {
            let i = SwitchInput {
                state: Some(state),
                ..input(0, 3_000)
            };
            assert_eq!(s.update(&i), None);
        }
        let none = SwitchInput {
            share_w: None,
            ..input(500_000, 3_000)
        };
        assert_eq!(s.update(&none), None);
        assert!(!s.one_phase());
    }
}
