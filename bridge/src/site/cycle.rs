//! The control cycle: silent bays go offline, node details are polled, start/stop pressed
//! where the state calls for it, the allocator sets targets and the sequencer delivers them.
//! The allocation (with the presses before it) also runs on its own when a change asks for
//! it between cycles (`pending.rs`).

use ctrl22_node::mesh::{Address, Command};
use ctrl22_node::{Ccss, CcssGroup};

use super::record::ButtonRequest;
use super::{demand, Output, Site};
use crate::allocate::{self, BayDemand};
use crate::clock::Now;
use crate::setpoint;

/// Bays polled for `status`/`system` per cycle at most, so 10,000 bays do not flood the mesh.
const POLLS_PER_TICK: usize = 20;

impl Site {
    pub(super) fn tick(&mut self, now: Now, out: &mut Vec<Output>) {
        self.mark_silent_offline(now, out);
        self.check_power_sources(now, out);
        self.poll_details(now, out);
        self.press_buttons(now);
        self.switch_phases(now, out);
        self.allocate(now);
        self.traffic.cycle_allocations += 1;
        // Every whole Wh is saved in the cycle it is reached: a crash loses at most one
        // cycle of energy, and only bays that charged cause a write.
        for slot in self.registry.iter_mut() {
            let bay = &mut slot.bay;
            let total_wh = bay.energy.total_wh_floor();
            if total_wh != bay.saved_wh {
                bay.saved_wh = total_wh;
                out.push(Output::SaveEnergy {
                    bay: bay.id.clone(),
                    total_wh,
                });
            }
        }
        for index in 0..self.registry.len() {
            self.announce(now, index, out);
        }
    }

    fn mark_silent_offline(&mut self, now: Now, out: &mut Vec<Output>) {
        let timeout = self.settings.heartbeat_timeout_ms;
        for (index, slot) in self.registry.iter_mut().enumerate() {
            let bay = &mut slot.bay;
            let silent = bay
                .last_heard_mono_ms
                .is_none_or(|t| now.mono_ms.saturating_sub(t) > timeout);
            if bay.online && silent {
                bay.online = false;
                bay.energy.interrupt();
                self.sequencer.on_offline(index);
                out.push(Output::Event {
                    bay: Some(bay.id.clone()),
                    text: "offline: heartbeat timeout, allowed current stays reserved".to_owned(),
                });
            }
        }
    }

    fn poll_details(&mut self, now: Now, out: &mut Vec<Output>) {
        let interval = self.settings.poll_interval_ms;
        let due = self
            .registry
            .iter_mut()
            .map(|slot| &mut slot.bay)
            .filter(|b| b.online)
            .filter(|b| {
                b.last_poll_ms
                    .is_none_or(|t| now.mono_ms.saturating_sub(t) >= interval)
            })
            .take(POLLS_PER_TICK);
        for bay in due {
            bay.last_poll_ms = Some(now.mono_ms);
            let dst = Address::Node(bay.mac);
            out.push(Output::Send {
                dst,
                cmd: Command::System,
            });
            out.push(Output::Send {
                dst,
                cmd: Command::Status,
            });
        }
    }

    /// Start and stop need the operator button: pressed only when the state calls for it.
    pub(super) fn press_buttons(&mut self, now: Now) {
        let default_mode = self.settings.default_mode;
        let autostart = self.settings.autostart;
        for (index, slot) in self.registry.iter_mut().enumerate() {
            let bay = &mut slot.bay;
            let Some(state) = bay.ccss() else { continue };
            if !bay.online {
                continue;
            }
            let mode = demand::effective_mode(bay, default_mode);
            let idle = state.group() == CcssGroup::Off && state != Ccss::Off9;
            let wanted = match bay.button_request {
                Some(ButtonRequest::Start) => idle || state == Ccss::Off9,
                Some(ButtonRequest::Stop) => state.in_session(),
                None => {
                    let auto_start = autostart
                        && idle
                        && bay.plugged()
                        && bay.settings.enabled
                        && mode != allocate::ChargeMode::Off
                        && !bay.autostart_done;
                    let auto_stop = !bay.settings.enabled && state.in_session();
                    auto_start || auto_stop
                }
            };
            if !wanted {
                // The state no longer calls for the press the operator asked for.
                bay.button_request = None;
                continue;
            }
            bay.button_request = None;
            bay.autostart_done = true;
            // The press shares the node's one avrsetpar slot (the reply names no
            // parameter), so the sequencer sends it when that slot is free.
            let writes = self.sequencer.press_button(now.mono_ms, index);
            self.writes.extend(writes);
        }
    }

    /// New targets for every bay, handed to the sequencer; this answers every change that
    /// asked for an allocation so far.
    pub(super) fn allocate(&mut self, now: Now) {
        self.pending.allocated(now.mono_ms);
        let default_mode = self.settings.default_mode;
        let zone = &self.settings.time_zone;
        let mut demands: Vec<BayDemand> = self
            .registry
            .iter()
            .map(|slot| {
                let reserved = Some(slot.target);
                demand::demand(
                    &slot.bay,
                    slot.placement.circuit(),
                    default_mode,
                    reserved,
                    now,
                    zone,
                )
            })
            .collect();
        self.caps.lower(&mut demands);
        let params = allocate::Params {
            strategy: self.settings.strategy,
            voltage: self.settings.voltage,
            solar_budget_w: self.power.surplus.budget_w(),
            pv_start_delay_ms: self.settings.power.pv_enable_delay_ms,
            pv_stop_delay_ms: self.settings.power.pv_disable_delay_ms,
            rotation_period_ms: self.settings.rotation_period_ms,
            min_on_ms: self.settings.min_on_ms,
            min_off_ms: self.settings.min_off_ms,
            ..allocate::Params::default()
        };
        let allocation = self
            .allocator
            .allocate(now.mono_ms, &self.topology, &demands, &params);
        let mut targets = Vec::with_capacity(allocation.bays.len());
        for (index, (slot, b)) in self.registry.iter_mut().zip(&allocation.bays).enumerate() {
            slot.target = b.setpoint;
            slot.fail_safe = b.fail_safe;
            slot.reason = describe_allocation(b);
            targets.push((
                index,
                setpoint::Target {
                    setpoint: b.setpoint,
                    fail_safe: b.fail_safe,
                },
            ));
        }
        let registry = &self.registry;
        self.power
            .raised_at_ms
            .retain(|id, _| registry.index_of(id).is_some());
        let writes = self.sequencer.set_targets(now.mono_ms, &targets);
        self.writes.extend(writes);
    }
}

fn describe_allocation(bay: &allocate::BayAllocation) -> Option<String> {
    let mut text = format!("{:?}", bay.reason);
    if let Some(outlook) = bay.deadline {
        if !outlook.reachable {
            text.push_str(&format!(
                "; departure goal unreachable (needs {})",
                outlook.needed
            ));
        }
    }
    Some(text)
}
