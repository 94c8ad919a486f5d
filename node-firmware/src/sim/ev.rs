//! The electric vehicle behind a simulated bay: battery, state of charge, on-board charger
//! (one or three phases, its own maximum current), taper near full, and the habit some cars
//! have of refusing a phase set that changes in the middle of a session.
//!
//! The car only sees what a real car sees: the current offered by the pilot PWM and the
//! phases the bay's contactors energise. It answers with what the bay can measure: whether it
//! asks for charge (CP at 6 V) and the current it draws on each phase, in 0.1 A like the
//! bay's current transformers.

use rand::Rng;

use crate::pilot::CableRating;
use crate::{Deciamps, Phase, PhaseSet};

/// Nominal phase voltage used to turn drawn current into stored energy.
const PHASE_VOLTAGE_V: i64 = 230;
/// The car charges at full power up to this state of charge (per mille), then tapers.
const TAPER_START_PERMILLE: u64 = 800;
/// Near 100 % the car still draws this fraction (per mille) of its maximum.
const TAPER_FLOOR_PERMILLE: u64 = 100;
/// Measurement noise of the current transformers: the car draws up to this much less.
const MAX_NOISE: i16 = 2;

/// The on-board charger's wiring: a one-phase charger sits on the cable's L1 conductor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnboardCharger {
    OnePhase,
    ThreePhase,
}

impl OnboardCharger {
    /// The bay phases this charger can draw from.
    #[must_use]
    pub const fn phases(self) -> PhaseSet {
        match self {
            Self::OnePhase => PhaseSet::L1,
            Self::ThreePhase => PhaseSet::ALL,
        }
    }
}

/// What kind of car it is; fixed for the car's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvSpec {
    pub battery_wh: u32,
    pub charger: OnboardCharger,
    /// Per-phase maximum of the on-board charger.
    pub max_current: Deciamps,
    /// The car's charging cable, as its proximity-pilot resistor states it.
    pub cable: CableRating,
    /// Refuses to draw on any phases other than those it started the session on (several
    /// real cars cannot switch between one and three phases without a re-plug).
    pub refuses_phase_change: bool,
}

impl EvSpec {
    /// A car drawn from a plausible fleet mix.
    pub fn random(rng: &mut impl Rng) -> Self {
        let (charger, max_amps) = match rng.gen_range(0..10) {
            0..=2 => (OnboardCharger::OnePhase, 16),
            3 => (OnboardCharger::OnePhase, 32),
            4..=7 => (OnboardCharger::ThreePhase, 16),
            _ => (OnboardCharger::ThreePhase, 32),
        };
        let cable = match rng.gen_range(0..4) {
            0 => CableRating::A13,
            1 => CableRating::A20,
            _ => CableRating::A32,
        };
        Self {
            battery_wh: rng.gen_range(30..=100) * 1000,
            charger,
            max_current: Deciamps::from_amps(max_amps),
            cable,
            refuses_phase_change: rng.gen_bool(0.2),
        }
    }
}

/// What the bay offers the car at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EvSupply {
    /// The current signalled by the pilot PWM; below 6 A there is no offer.
    pub offered: Deciamps,
    /// Phases whose contactors are closed.
    pub energized: PhaseSet,
}

/// How the car answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EvDemand {
    /// CP at 6 V: the car asks for charge.
    pub ready: bool,
    /// Current drawn per phase (index = [`Phase::index`]).
    pub draw: [Deciamps; 3],
}

/// A car plugged into a bay: its spec and its battery.
#[derive(Clone, Debug)]
pub struct Ev {
    spec: EvSpec,
    /// Energy in the battery, in millijoules (integer so the run is exactly reproducible).
    stored_mj: u64,
    /// The phases the car started the session drawing on, for cars that refuse a change.
    session_phases: Option<PhaseSet>,
}

impl Ev {
    #[must_use]
    pub fn new(spec: EvSpec, soc_percent: u8) -> Self {
        let capacity = capacity_mj(spec.battery_wh);
        Self {
            spec,
            stored_mj: capacity * u64::from(soc_percent.min(100)) / 100,
            session_phases: None,
        }
    }

    #[must_use]
    pub fn spec(&self) -> &EvSpec {
        &self.spec
    }

    /// State of charge in per mille.
    #[must_use]
    pub fn soc_permille(&self) -> u16 {
        let capacity = capacity_mj(self.spec.battery_wh).max(1);
        u16::try_from(self.stored_mj.saturating_mul(1000) / capacity).unwrap_or(1000)
    }

    #[must_use]
    pub fn is_full(&self) -> bool {
        self.soc_permille() >= 1000
    }

    /// Whether the car refuses to charge on `phases` right now.
    #[must_use]
    pub fn refuses(&self, phases: PhaseSet) -> bool {
        let used = phases.intersection(self.spec.charger.phases());
        if used.is_empty() {
            // A one-phase car on a bay that does not energise L1 cannot draw at all.
            return true;
        }
        self.spec.refuses_phase_change && self.session_phases.is_some_and(|s| s != used)
    }

    /// The most the car takes per phase at its present state of charge.
    #[must_use]
    pub fn acceptance(&self) -> Deciamps {
        let soc = u64::from(self.soc_permille());
        let max = u64::try_from(self.spec.max_current.get()).unwrap_or(0);
        if soc <= TAPER_START_PERMILLE {
            return self.spec.max_current;
        }
        let span = 1000 - TAPER_START_PERMILLE;
        let left = 1000u64.saturating_sub(soc);
        let factor = TAPER_FLOOR_PERMILLE + (1000 - TAPER_FLOOR_PERMILLE) * left / span;
        Deciamps(i16::try_from(max * factor / 1000).unwrap_or(0))
    }

    /// Advances the car by `dt_ms` under `supply`; returns what it does during that time.
    pub fn step(&mut self, dt_ms: u64, supply: EvSupply, rng: &mut impl Rng) -> EvDemand {
        let ready = !self.is_full() && supply.offered >= Deciamps::MIN_CHARGE;
        let mut demand = EvDemand {
            ready,
            draw: [Deciamps::ZERO; 3],
        };
        if !ready || supply.energized.is_empty() || self.refuses(supply.energized) {
            return demand;
        }
        let used = supply.energized.intersection(self.spec.charger.phases());
        self.session_phases.get_or_insert(used);
        let limit = supply.offered.min(self.acceptance());
        let mut watts: i64 = 0;
        for phase in used.iter() {
            let noise = rng.gen_range(0..=MAX_NOISE);
            let drawn = Deciamps((limit.get() - noise).max(0));
            watts += i64::from(drawn.get()) * PHASE_VOLTAGE_V / 10;
            if let Some(slot) = demand.draw.get_mut(Phase::index(phase)) {
                *slot = drawn;
            }
        }
        let added = u64::try_from(watts).unwrap_or(0).saturating_mul(dt_ms);
        self.stored_mj = (self.stored_mj + added).min(capacity_mj(self.spec.battery_wh));
        demand
    }
}

fn capacity_mj(battery_wh: u32) -> u64 {
    u64::from(battery_wh) * 3_600_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn spec(charger: OnboardCharger, refuses_phase_change: bool) -> EvSpec {
        EvSpec {
            battery_wh: 50_000,
            charger,
            max_current: Deciamps::from_amps(16),
            cable: CableRating::A32,
            refuses_phase_change,
        }
    }

    fn supply(amps: i16, phases: PhaseSet) -> EvSupply {
        EvSupply {
            offered: Deciamps::from_amps(amps),
            energized: phases,
        }
    }

    #[test]
    fn draws_at_most_the_offer_and_its_own_maximum() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ev = Ev::new(spec(OnboardCharger::ThreePhase, false), 20);
        for amps in [6, 10, 16, 32] {
            let demand = ev.step(1000, supply(amps, PhaseSet::ALL), &mut rng);
            assert!(demand.ready);
            let cap = Deciamps::from_amps(amps.min(16));
            for drawn in demand.draw {
                assert!(drawn <= cap && drawn.get() >= cap.get() - MAX_NOISE);
            }
        }
    }

    #[test]
    fn one_phase_car_on_three_phase_bay_draws_on_l1_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut ev = Ev::new(spec(OnboardCharger::OnePhase, false), 20);
        let demand = ev.step(1000, supply(16, PhaseSet::ALL), &mut rng);
        assert!(demand.draw[0].get() > 150);
        assert_eq!(demand.draw[1], Deciamps::ZERO);
        assert_eq!(demand.draw[2], Deciamps::ZERO);
    }

    #[test]
    fn tapers_near_full_and_stops_when_full() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut ev = Ev::new(spec(OnboardCharger::ThreePhase, false), 79);
        assert_eq!(ev.acceptance(), Deciamps::from_amps(16));
        let mut last = ev.acceptance();
        let mut tapered = false;
        while !ev.is_full() {
            let demand = ev.step(60_000, supply(32, PhaseSet::ALL), &mut rng);
            assert!(demand.ready);
            assert!(ev.acceptance() <= last);
            tapered |= ev.acceptance() < Deciamps::from_amps(8);
            last = ev.acceptance();
        }
        assert!(
            tapered,
            "acceptance fell well below the maximum before full"
        );
        let demand = ev.step(1000, supply(32, PhaseSet::ALL), &mut rng);
        assert!(!demand.ready);
        assert_eq!(demand.draw, [Deciamps::ZERO; 3]);
    }

    #[test]
    fn picky_car_refuses_a_phase_change_and_accepts_the_original_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut ev = Ev::new(spec(OnboardCharger::ThreePhase, true), 20);
        assert!(ev.step(1000, supply(16, PhaseSet::ALL), &mut rng).draw[0].get() > 0);
        let one_phase = ev.step(1000, supply(16, PhaseSet::L1), &mut rng);
        assert_eq!(one_phase.draw, [Deciamps::ZERO; 3]);
        assert!(ev.refuses(PhaseSet::L1));
        assert!(ev.step(1000, supply(16, PhaseSet::ALL), &mut rng).draw[2].get() > 0);
    }

    #[test]
    fn tolerant_car_follows_a_phase_change() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut ev = Ev::new(spec(OnboardCharger::ThreePhase, false), 20);
        ev.step(1000, supply(16, PhaseSet::ALL), &mut rng);
        let demand = ev.step(1000, supply(16, PhaseSet::L1), &mut rng);
        assert!(demand.draw[0].get() > 0);
        assert_eq!(demand.draw[1], Deciamps::ZERO);
    }

    #[test]
    fn no_offer_below_six_amps() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut ev = Ev::new(spec(OnboardCharger::ThreePhase, false), 20);
        let demand = ev.step(1000, supply(5, PhaseSet::ALL), &mut rng);
        assert!(!demand.ready);
        assert_eq!(demand.draw, [Deciamps::ZERO; 3]);
    }
}
