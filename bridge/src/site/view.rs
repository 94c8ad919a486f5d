//! The picture of the site for the adapters that show it (Home Assistant, HTTP, dashboard,
//! metrics), and how a bay looks from outside: its status and its problems.

use ctrl22_node::{Ccss, Deciamps, Phase};

use super::registry::{BaySlot, Placement};
use super::snapshot::{BaySnapshot, CircuitSnapshot, LimitSnapshot, SiteSnapshot};
use super::status::BayStatus;
use super::{demand, Site};
use crate::clock::Now;

impl Site {
    /// The picture of the site for the adapters that show it.
    #[must_use]
    pub fn snapshot(&self, now: Now) -> SiteSnapshot {
        let voltage = self.settings.voltage;
        let mut measured = [0i64; 3];
        let bays: Vec<BaySnapshot> = self
            .registry
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let bay = &slot.bay;
                for (bay_phase, current) in Phase::ALL.into_iter().zip(bay.measured()) {
                    let site_phase = bay.settings.rotation[bay_phase.index()];
                    measured[site_phase.index()] += i64::from(current.get().max(0));
                }
                self.bay_snapshot(index, slot)
            })
            .collect();
        let reserved = self.sequencer.total(0).to_deciamps();
        let circuits = self
            .topology
            .circuits()
            .iter()
            .enumerate()
            .map(|(i, c)| CircuitSnapshot {
                id: c.id.clone(),
                parent: c.parent.clone(),
                limit_a: amps3(c.limit),
                reserved_a: amps3(self.sequencer.total(i + 1).to_deciamps()),
            })
            .collect();
        #[allow(clippy::cast_precision_loss)] // currents are small integers
        let measured_a = measured.map(|d| d as f64 / 10.0);
        let limit_sources = self
            .limits
            .sources()
            .into_iter()
            .map(|(source, limit)| LimitSnapshot {
                source,
                limit_a: amps3(limit),
            })
            .collect();
        let combined = self.power.combined();
        SiteSnapshot {
            name: self.settings.name.clone(),
            at_ms: now.wall_ms,
            voltage,
            strategy: self.settings.strategy,
            default_mode: self.settings.default_mode,
            limit_a: amps3(self.limits.effective()),
            ceiling_a: amps3(self.limits.ceiling()),
            limit_binding: self.limits.binding(),
            limit_sources,
            reserved_a: amps3(reserved),
            measured_a,
            ev_power_w: self.registry.iter().map(|s| s.bay.power_w(voltage)).sum(),
            grid_power_w: combined
                .grid_w
                .or_else(|| combined.grid_phase_w.map(|p| p.iter().sum())),
            pv_power_w: combined.pv_w,
            battery_power_w: combined.battery_w,
            surplus_w: self.power.surplus.budget_w().map(i64::from),
            solar_ok: self.power.sources.values().any(|s| !s.stale),
            power: self.power_snapshot(now, &combined),
            energy_total_wh: self.registry.iter().map(|s| s.bay.energy.total_wh()).sum(),
            mesh_connected: self.mesh_connected,
            circuits,
            bays,
            rejected: self.rejected.clone(),
            cycle_us: self.cycle_us,
            traffic: self.traffic,
        }
    }

    /// How long the last control cycle took, measured by the runtime (the core reads no
    /// clock).
    pub fn record_cycle_time(&mut self, micros: u64) {
        self.cycle_us = micros;
    }

    /// How long the last allocation a change asked for took (its input alone, measured by
    /// the runtime): the spacing of the next ones follows it, not the whole cycle's cost.
    pub fn record_allocation_time(&mut self, micros: u64) {
        self.pending.record_cost(micros);
    }

    /// The bay's state in OCPP's words (SPEC section 7), shared by Home Assistant and OCPP.
    pub(super) fn status_of(&self, index: usize) -> BayStatus {
        self.registry
            .get(index)
            .map_or(BayStatus::Unavailable, |slot| {
                let bay = &slot.bay;
                BayStatus::of(
                    bay.ccss(),
                    bay.online,
                    bay.settings.enabled,
                    bay.plugged(),
                    bay.charging(),
                )
            })
    }

    /// What is wrong with the bay, in a word each.
    pub(super) fn problems_of(&self, index: usize) -> Vec<&'static str> {
        let Some(slot) = self.registry.get(index) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        if slot.bay.in_error() {
            problems.push("controller_error");
        }
        if self.sequencer.no_watchdog(index) {
            problems.push("no_watchdog");
        }
        if slot.placement == Placement::Unplaced {
            problems.push("unplaced");
        }
        problems
    }

    fn bay_snapshot(&self, index: usize, slot: &BaySlot) -> BaySnapshot {
        let bay = &slot.bay;
        let hb = bay.heartbeat.as_ref();
        let mode = demand::effective_mode(bay, self.settings.default_mode);
        let problems = self.problems_of(index);
        BaySnapshot {
            dev: bay.id.0.clone(),
            mac: bay.mac.to_string(),
            name: bay.settings.name.clone(),
            online: bay.online,
            last_heard_ms: bay.last_heard_ms,
            state: bay.ccss().map(|s| s.name().to_owned()),
            ccss: bay.ccss().map(Ccss::code),
            status: self.status_of(index),
            plugged: bay.plugged(),
            charging: bay.charging(),
            problem: !problems.is_empty(),
            problems,
            cable_a: hb
                .filter(|h| h.cmaxcur.get() > 0)
                .map(|h| h.cmaxcur.as_amps()),
            offered_a: hb.map_or(0.0, |h| h.amaxcur.as_amps()),
            active_phases: hb.map_or(0, |h| h.aphases.to_digits()),
            current_a: bay.measured().map(Deciamps::as_amps),
            power_w: bay.power_w(self.settings.voltage),
            session_energy_wh: bay.energy.session_wh(),
            total_energy_wh: bay.energy.total_wh(),
            session_started_ms: bay.session_started_ms,
            allocated_a: slot.target.current.as_amps(),
            allocated_phases: slot.target.phases.to_digits(),
            confirmed_a: self.sequencer.confirmed(index).map(|s| s.current.as_amps()),
            fail_safe_a: slot.fail_safe.as_amps(),
            reserved_a: amps3(self.sequencer.reservation(index).to_deciamps()),
            reason: slot.reason.clone(),
            mode,
            ceiling_a: bay.ceiling.as_amps(),
            settings: bay.settings.clone(),
            button_request: bay.button_request,
            no_watchdog: self.sequencer.no_watchdog(index),
            rssi_dbm: hb.map(|h| h.rssi),
            mesh_layer: bay.status.as_ref().map(|s| s.layer),
            mesh_parent: bay.status.as_ref().map(|s| s.parent.to_string()),
            mesh_latency_ms: bay.status.as_ref().map(|s| s.plat),
            firmware: bay.system.as_ref().map(|s| s.version.to_string()),
            board: bay.system.as_ref().map(|s| s.board.to_string()),
            avr_firmware: bay.system.as_ref().map(|s| s.avrver),
            avr_latest: self.latest_avr(bay.system.as_ref().map(|s| s.board.as_str())),
            firmware_job: self.firmware_job_of(&bay.id),
            esp32_latest: self.latest_esp32(bay.system.as_ref().map(|s| s.board.as_str())),
            esp32_job: self.esp32_job_of(&bay.id),
        }
    }
}

fn amps3(d: [Deciamps; 3]) -> [f64; 3] {
    d.map(Deciamps::as_amps)
}
