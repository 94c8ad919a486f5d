//! What the site core tells the allocator each round: one [`BayDemand`] per bay and the
//! site-wide [`Params`].
//!
//! Everything here is already reduced to what the decision needs: the site core folds cable
//! capacity, the bay's configured maximum, the EV's observed maximum and external caps (OCPP
//! charging profiles) into one [`BayDemand::max_current`], and turns grid/PV/battery readings
//! into one [`Params::solar_budget_w`].

use ctrl22_node::{Deciamps, Phase, PhaseSet};
use serde::{Deserialize, Serialize};

use crate::bay::{BayId, Setpoint};

/// How the site shares its capacity among bays that want to charge (`[site] strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Water-filling: equal current per phase; what a capped bay cannot use goes to others.
    #[default]
    Fair,
    /// First come, first served: earlier arrivals get their maximum first.
    Fcfs,
    /// Higher [`BayDemand::priority`] first; equal priorities share by rotation, then fairly.
    Priority,
    /// Bays in `schedule` mode get the current their departure goal needs first (least
    /// laxity first); the rest is shared fairly.
    Schedule,
}

impl Strategy {
    /// Every strategy, in the order Home Assistant lists them.
    pub const ALL: [Self; 4] = [Self::Fair, Self::Fcfs, Self::Priority, Self::Schedule];
}

/// What the owner of a bay asked for (`[nodes.<dev>] mode`, Home Assistant select).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChargeMode {
    /// Never charge.
    Off,
    /// As fast as the limits allow.
    #[default]
    Now,
    /// At least 6 A from wherever, more when there is solar surplus.
    MinPv,
    /// Only from solar surplus; paused when the surplus is below 6 A.
    Pv,
    /// Reach [`BayDemand::energy_needed_wh`] by [`BayDemand::departure_ms`]; otherwise like
    /// [`ChargeMode::Now`].
    Schedule,
}

impl ChargeMode {
    /// Every mode, in the order Home Assistant lists them.
    pub const ALL: [Self; 5] = [Self::Off, Self::Now, Self::MinPv, Self::Pv, Self::Schedule];
}

/// One bay as the allocator sees it in this round.
#[derive(Clone, Debug)]
pub struct BayDemand {
    pub id: BayId,
    /// The circuit the bay hangs off; `None` = directly below the site connection.
    pub circuit: Option<String>,
    /// Bay phase `i` (L1, L2, L3 at the bay) is wired to site phase `rotation[i]`.
    /// Config `phase_rotation = "231"` is `[L2, L3, L1]`.
    pub rotation: [Phase; 3],
    /// Phases the bay is wired for, in bay numbering (a single-phase bay: `L1`).
    pub wired_phases: PhaseSet,
    /// Phases the EV was seen drawing on, in bay numbering; `None` while unknown. Must be
    /// reset at each new session. The bay is then told exactly these phases, so the node's
    /// contactors enforce what the budget assumes.
    pub ev_phases: Option<PhaseSet>,
    /// min(cable capacity, configured bay maximum, EV maximum observed, external caps).
    pub max_current: Deciamps,
    pub mode: ChargeMode,
    /// A car is plugged in and its session wants power (not finished, not stopped).
    pub wants_charge: bool,
    /// Higher first under [`Strategy::Priority`].
    pub priority: i32,
    /// When the current session started (plug-in), for first come first served.
    pub arrived_at_ms: u64,
    /// When the car leaves, for [`ChargeMode::Schedule`].
    pub departure_ms: Option<u64>,
    /// Energy still to deliver before departure, for [`ChargeMode::Schedule`].
    pub energy_needed_wh: Option<u32>,
    /// The bay stopped reporting: its last allowed setpoint stays counted against the limits
    /// (it may still be drawing it) and is handed back unchanged, until it reports again or
    /// an operator releases it.
    pub reserved: Option<Setpoint>,
}

impl BayDemand {
    /// A plugged bay in `now` mode on all three phases with no rotation: a base for tests,
    /// the simulator and the demo to adjust.
    #[must_use]
    pub fn new(id: BayId, max_current: Deciamps) -> Self {
        Self {
            id,
            circuit: None,
            rotation: Phase::ALL,
            wired_phases: PhaseSet::ALL,
            ev_phases: None,
            max_current,
            mode: ChargeMode::Now,
            wants_charge: true,
            priority: 0,
            arrived_at_ms: 0,
            departure_ms: None,
            energy_needed_wh: None,
            reserved: None,
        }
    }

    /// Phases the bay would be told to use, in bay numbering: the wired phases, narrowed to
    /// the EV's when those are known. Empty when the two disagree (bad input pauses).
    #[must_use]
    pub fn usable_phases(&self) -> PhaseSet {
        match self.ev_phases {
            Some(ev) => self.wired_phases.intersection(ev),
            None => self.wired_phases,
        }
    }

    /// How many amperes one ampere at this bay puts on each site phase, for bay phases
    /// `phases` (a rotation that maps two bay phases onto one site phase counts twice).
    #[must_use]
    pub fn site_load_weights(&self, phases: PhaseSet) -> [u8; 3] {
        let mut weights = [0u8; 3];
        for bay_phase in phases.iter() {
            let site = self
                .rotation
                .get(bay_phase.index())
                .copied()
                .unwrap_or(bay_phase);
            if let Some(w) = weights.get_mut(site.index()) {
                *w += 1;
            }
        }
        weights
    }
}

/// Site-wide settings and live inputs for one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub strategy: Strategy,
    /// Nominal phase-to-neutral voltage, to turn the solar budget into amperes. 0 makes the
    /// solar budget unusable (treated as unknown).
    pub voltage: u16,
    /// Power available to `pv`/`minpv` bays: export plus what those bays draw now. `None`
    /// when no source is configured or the source is down: `pv` bays get nothing, `minpv`
    /// bays their 6 A minimum.
    pub solar_budget_w: Option<i32>,
    /// How long a bay charges before a paused one takes its turn when not everyone fits.
    pub rotation_period_ms: u64,
    /// A bay that started charging is not paused for rotation or surplus before this.
    pub min_on_ms: u64,
    /// A bay that was paused is not restarted before this.
    pub min_off_ms: u64,
    /// A paused `pv` bay starts only after the surplus has sufficed for 6 A this long (0:
    /// at once).
    pub pv_start_delay_ms: u64,
    /// A charging `pv` bay is paused only after the surplus has been short of 6 A this long
    /// (it draws its 6 A from the grid meanwhile).
    pub pv_stop_delay_ms: u64,
    /// A charging bay's current is only raised by at least this much (and a `pv` bay only
    /// starts with this much surplus above 6 A); decreases are never held back.
    pub hysteresis: Deciamps,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            strategy: Strategy::Fair,
            voltage: 230,
            solar_budget_w: None,
            rotation_period_ms: 15 * 60 * 1000,
            min_on_ms: 2 * 60 * 1000,
            min_off_ms: 2 * 60 * 1000,
            pv_start_delay_ms: 0,
            pv_stop_delay_ms: 3 * 60 * 1000,
            hysteresis: Deciamps(5),
        }
    }
}
