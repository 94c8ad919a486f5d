//! What the site does with power readings and outside limit signals: the house-load limit,
//! the external limits and the solar budget, and the health of every source.
//!
//! Every one of them can only lower: the house-load and external limits are dynamic limits
//! under the configured ceiling ([`super::limits`]), and the budget only ever sizes what
//! `pv`/`minpv` bays get above their floor. A lowered limit reaches the sequencer with the
//! input that lowered it, so no raise goes out past it; the bays are lowered by the
//! targets of the allocation that lowering asks for (`pending.rs`), a few ms later.

use std::collections::{BTreeMap, HashMap};

use ctrl22_node::{Deciamps, Phase};

use super::external::ExternalLimits;
use super::house_load::{CarsDraw, HouseLoad};
use super::limits::LimitSource;
use super::power::{ExternalLimit, LimitScope, PowerReading, PowerSettings, SourceId};
use super::snapshot::{ExternalSnapshot, PowerSnapshot, SourceSnapshot};
use super::surplus::Surplus;
use super::{demand, Output, Site};
use crate::allocate::{ChargeMode, Circuit, Topology};
use crate::bay::BayId;
use crate::clock::Now;
use crate::setpoint::Param;

/// How long a car may take to follow a new pilot current (IEC 61851-1 allows 5 s): a
/// bay's report sooner after a raise may not show it yet.
const EV_FOLLOW_MS: u64 = 5_000;

/// Error texts are cut to this many characters (they come from outside).
const ERROR_CHARS: usize = 200;

/// What one source last said and how it has fared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceHealth {
    pub reading: Option<PowerReading>,
    /// Monotonic ms of the last good reading.
    pub at_ms: Option<u64>,
    pub readings: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// No good reading within the timeout, or its last answer was an error.
    pub stale: bool,
}

/// The site's power state: sources, house load, external limits, budget.
#[derive(Clone, Debug)]
pub struct PowerState {
    pub(super) settings: PowerSettings,
    pub(super) sources: BTreeMap<SourceId, SourceHealth>,
    pub(super) house: Option<HouseLoad>,
    pub(super) external: ExternalLimits,
    pub(super) surplus: Surplus,
    /// When a raised setpoint last went out to each bay (monotonic ms) and its value: until
    /// the bay's next heartbeat its car may already draw it, which the meter sees and the
    /// bay's last report does not.
    pub(super) raised_at_ms: HashMap<BayId, (u64, Deciamps)>,
}

impl PowerState {
    pub(super) fn new(settings: PowerSettings, ceiling: [Deciamps; 3]) -> Self {
        let house = settings.house_reserve.map(|reserve| {
            HouseLoad::new(
                ceiling,
                reserve,
                settings.house_margin,
                settings.house_raise_hold_ms,
            )
        });
        Self {
            surplus: Surplus::new(settings.surplus),
            settings,
            sources: BTreeMap::new(),
            house,
            external: ExternalLimits::default(),
            raised_at_ms: HashMap::new(),
        }
    }

    /// The freshest good reading of each kind across the sources, for people.
    #[must_use]
    pub fn combined(&self) -> PowerReading {
        let mut fresh: Vec<(&u64, &PowerReading)> = self
            .sources
            .values()
            .filter(|s| !s.stale)
            .filter_map(|s| s.at_ms.as_ref().zip(s.reading.as_ref()))
            .collect();
        fresh.sort_by_key(|(at, _)| std::cmp::Reverse(**at));
        let mut out = PowerReading::default();
        for (_, r) in fresh {
            if out.grid_w.is_none() && out.grid_phase_a.is_none() && out.grid_phase_w.is_none() {
                out.grid_w = r.grid_w;
                out.grid_phase_a = r.grid_phase_a;
                out.grid_phase_w = r.grid_phase_w;
            }
            out.pv_w = out.pv_w.or(r.pv_w);
            if out.battery_w.is_none() {
                out.battery_w = r.battery_w;
                out.battery_soc_pct = r.battery_soc_pct;
            }
        }
        out
    }

    /// Whether a source that measures the grid answered within the timeout.
    fn grid_fresh(&self) -> bool {
        self.sources
            .values()
            .any(|s| !s.stale && s.reading.is_some_and(has_grid))
    }
}

fn has_grid(r: PowerReading) -> bool {
    r.grid_w.is_some() || r.grid_phase_a.is_some() || r.grid_phase_w.is_some()
}

impl Site {
    pub(super) fn on_power(
        &mut self,
        now: Now,
        source: SourceId,
        reading: PowerReading,
        out: &mut Vec<Output>,
    ) {
        let health = self.power.sources.entry(source).or_default();
        let recovered = health.stale && health.at_ms.is_some();
        health.reading = Some(reading);
        health.at_ms = Some(now.mono_ms);
        health.readings += 1;
        health.stale = false;
        if recovered {
            out.push(Output::Event {
                bay: None,
                text: format!("power source {} answers again", source.0),
            });
        }
        if !has_grid(reading) {
            return;
        }
        let voltage = self.settings.voltage;
        let cars = self.cars_draw();
        let ceiling = self.limits.ceiling();
        if let Some(house) = &mut self.power.house {
            house.on_reading(now.mono_ms, ceiling, &reading, cars, voltage);
        }
        let solar_w = self.solar_bays_w();
        self.power
            .surplus
            .on_reading(now.mono_ms, &reading, solar_w);
        self.refresh_limits(now);
    }

    pub(super) fn on_power_lost(
        &mut self,
        now: Now,
        source: SourceId,
        error: &str,
        out: &mut Vec<Output>,
    ) {
        let health = self.power.sources.entry(source).or_default();
        health.errors += 1;
        health.last_error = Some(error.chars().take(ERROR_CHARS).collect());
        let was_stale = health.stale;
        health.stale = true;
        if !was_stale {
            out.push(Output::Event {
                bay: None,
                text: format!(
                    "power source {} lost: {}",
                    source.0,
                    health.last_error.as_deref().unwrap_or("")
                ),
            });
        }
        self.after_staleness(now, out);
    }

    /// Once per control cycle: sources silent beyond the timeout turn stale.
    pub(super) fn check_power_sources(&mut self, now: Now, out: &mut Vec<Output>) {
        let timeout = self.power.settings.reading_timeout_ms;
        let mut went_stale = Vec::new();
        for (id, health) in &mut self.power.sources {
            let silent = health
                .at_ms
                .is_none_or(|t| now.mono_ms.saturating_sub(t) > timeout);
            if silent && !health.stale {
                health.stale = true;
                went_stale.push(*id);
            }
        }
        for id in &went_stale {
            out.push(Output::Event {
                bay: None,
                text: format!("power source {} silent for {} s", id.0, timeout / 1000),
            });
        }
        if !went_stale.is_empty() || self.power.house.as_ref().is_some_and(|h| !h.in_fallback()) {
            self.after_staleness(now, out);
        }
    }

    /// Without a fresh grid reading: the house reserve applies and the budget is gone.
    fn after_staleness(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.power.grid_fresh() {
            return;
        }
        self.power.surplus.clear();
        let ceiling = self.limits.ceiling();
        if let Some(house) = &mut self.power.house {
            if !house.in_fallback() {
                house.on_stale(ceiling);
                out.push(Output::Event {
                    bay: None,
                    text: "grid meter stale: cars fall back to the site limit minus site.house_reserve".to_owned(),
                });
            }
        }
        self.refresh_limits(now);
    }

    pub(super) fn on_external_limit(
        &mut self,
        now: Now,
        source: SourceId,
        scope: LimitScope,
        limit: Option<ExternalLimit>,
        out: &mut Vec<Output>,
    ) {
        if let LimitScope::Circuit(name) = &scope {
            if self.topology.circuit_index(name).is_none() {
                self.count_rejected("external_limit_unknown_circuit");
                return;
            }
        }
        let text = match limit {
            Some(l) => format!(
                "external limit from source {} on {scope:?}: {l:?}",
                source.0
            ),
            None => format!(
                "external limit from source {} on {scope:?} lifted",
                source.0
            ),
        };
        if self.power.external.set(source, scope, limit) {
            out.push(Output::Event { bay: None, text });
            self.refresh_limits(now);
        }
    }

    /// The dynamic limits of the meters and signals into the limits in force, the
    /// allocator's topology and the sequencer's groups.
    pub(super) fn refresh_limits(&mut self, now: Now) {
        match &self.power.house {
            Some(house) => self.limits.set_all(LimitSource::HouseLoad, house.limit()),
            None => self.limits.clear(LimitSource::HouseLoad),
        }
        let voltage = self.settings.voltage;
        match self.power.external.limit_of(&LimitScope::Site, voltage) {
            Some(limit) => self.limits.set_all(LimitSource::External, limit),
            None => self.limits.clear(LimitSource::External),
        }
        let site = self.limits.effective();
        let circuits = self.circuits_in_force();
        // The circuits were valid with the configuration; lower limits keep them valid.
        if let Ok(topology) = Topology::new(site, circuits.clone()) {
            self.topology = topology;
        }
        let mut writes = self.sequencer.set_limit(now.mono_ms, 0, site);
        for (i, circuit) in circuits.iter().enumerate() {
            writes.extend(self.sequencer.set_limit(now.mono_ms, i + 1, circuit.limit));
        }
        self.writes.extend(writes);
    }

    /// The configured circuits, each lowered by the external signals on it.
    fn circuits_in_force(&self) -> Vec<Circuit> {
        let voltage = self.settings.voltage;
        self.settings
            .circuits
            .iter()
            .map(|c| {
                let mut c = c.clone();
                let scope = LimitScope::Circuit(c.id.clone());
                if let Some(limit) = self.power.external.limit_of(&scope, voltage) {
                    c.limit = Phase::ALL.map(|p| c.limit[p.index()].min(limit[p.index()]));
                }
                c
            })
            .collect()
    }

    /// What the cars draw per site phase: as the bays last reported it, and at most, where a
    /// bay raised since its last report counts with its new setpoint on the phases it was
    /// given (the meter may see the raise before the bay reports it).
    pub(super) fn cars_draw(&self) -> CarsDraw {
        let mut reported = [0i64; 3];
        let mut sum = [0i64; 3];
        for slot in self.registry.iter() {
            let bay = &slot.bay;
            let raised_unseen = self
                .power
                .raised_at_ms
                .get(&bay.id)
                .filter(|(at, _)| {
                    bay.last_heard_mono_ms
                        .is_none_or(|heard| heard < at.saturating_add(EV_FOLLOW_MS))
                })
                .map(|(_, value)| *value);
            for (bay_phase, current) in Phase::ALL.into_iter().zip(bay.measured()) {
                let mut current = current.max(Deciamps::ZERO);
                let site_phase = bay.settings.rotation[bay_phase.index()];
                reported[site_phase.index()] += i64::from(current.get());
                if let Some(raised) = raised_unseen {
                    if slot.target.phases.contains(bay_phase) {
                        current = current.max(raised);
                    }
                }
                sum[site_phase.index()] += i64::from(current.get());
            }
        }
        #[allow(clippy::cast_precision_loss)] // sums of 0.1 A far below 2^52
        let amps = |d: [i64; 3]| d.map(|d| d as f64 / 10.0);
        CarsDraw {
            reported_a: amps(reported),
            possible_a: amps(sum),
        }
    }

    /// Notes the setpoint raises about to go out (see [`PowerState::raised_at_ms`]).
    pub(super) fn note_raises(&mut self, now: Now) {
        for write in &self.writes {
            if write.par != Param::Smaxcur {
                continue;
            }
            let Some(slot) = self.registry.get(write.bay) else {
                continue;
            };
            let value = Deciamps(write.value);
            let drawn = slot
                .bay
                .measured()
                .into_iter()
                .max()
                .unwrap_or(Deciamps::ZERO);
            if value > drawn {
                self.power
                    .raised_at_ms
                    .insert(slot.bay.id.clone(), (now.mono_ms, value));
            }
        }
    }

    /// What the `pv` and `minpv` bays draw now (W).
    pub(super) fn solar_bays_w(&self) -> i64 {
        let default_mode = self.settings.default_mode;
        self.registry
            .iter()
            .map(|slot| &slot.bay)
            .filter(|b| {
                matches!(
                    demand::effective_mode(b, default_mode),
                    ChargeMode::Pv | ChargeMode::MinPv
                )
            })
            .map(|b| b.power_w(self.settings.voltage))
            .sum()
    }
}

impl Site {
    /// The energy part of the snapshot.
    pub(super) fn power_snapshot(&self, now: Now, combined: &PowerReading) -> PowerSnapshot {
        let amps = |d: [Deciamps; 3]| d.map(Deciamps::as_amps);
        let round = |a: [f64; 3]| a.map(|x| (x * 10.0).round() / 10.0);
        let house = self.power.house.as_ref();
        PowerSnapshot {
            grid_phase_a: combined.grid_phase_a.map(round),
            battery_soc_pct: combined.battery_soc_pct,
            budget_w: self.power.surplus.budget_w().map(i64::from),
            house_load_a: house.and_then(HouseLoad::house_a).map(round),
            house_load_managed: house.is_some(),
            house_fallback: house.is_some_and(HouseLoad::in_fallback),
            house_limit_a: house.map(|h| amps(h.limit())),
            external: self
                .power
                .external
                .iter()
                .map(|(source, scope, limit)| ExternalSnapshot {
                    source: source.0,
                    scope: match scope {
                        LimitScope::Site => "site".to_owned(),
                        LimitScope::Circuit(c) => c.clone(),
                    },
                    watts: match limit {
                        ExternalLimit::Watts(w) => Some(w),
                        ExternalLimit::Amps(_) => None,
                    },
                    limit_a: match limit {
                        ExternalLimit::Amps(a) => Some(amps(a)),
                        ExternalLimit::Watts(_) => None,
                    },
                })
                .collect(),
            sources: self
                .power
                .sources
                .iter()
                .map(|(id, s)| SourceSnapshot {
                    source: id.0,
                    healthy: !s.stale,
                    age_ms: s.at_ms.map(|t| now.mono_ms.saturating_sub(t)),
                    readings: s.readings,
                    errors: s.errors,
                    last_error: s.last_error.clone(),
                })
                .collect(),
        }
    }
}
