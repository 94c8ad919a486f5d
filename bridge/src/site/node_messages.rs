//! What a node's message changes: discovery, online state, heartbeats (energy, sessions,
//! learned phases, the sequencer's evidence), replies to writes.

use ctrl22_node::mesh::{MacAddr, NodeMessage};
use ctrl22_node::Ccss;

use super::events::{self, BayEvent, BayEventKind};
use super::pending::Reported;
use super::phase_switch::PhaseSwitch;
use super::record::BaySettings;
use super::{wiring, Output, Site};
use crate::bay::BayId;
use crate::clock::Now;
use crate::setpoint::Measurement;

impl Site {
    /// The bay a node message is about; a new node becomes a bay unless the site is full.
    fn bay_for(
        &mut self,
        now: Now,
        src: MacAddr,
        msg: &NodeMessage,
        out: &mut Vec<Output>,
    ) -> Option<usize> {
        if let Some(index) = self.registry.index_of_mac(&src) {
            return Some(index);
        }
        // Only a heartbeat introduces a bay: a stray reply names nobody we asked.
        if !matches!(msg, NodeMessage::Heartbeat(_)) {
            self.count_rejected("unknown_node");
            return None;
        }
        if self.registry.len() >= self.settings.max_bays {
            self.count_rejected("too_many_bays");
            return None;
        }
        let id = BayId(src.topic_form().to_string());
        // A configured bay that was forgotten comes back with its configuration: its
        // ceiling, rotation and circuit are the file's, not a stranger's defaults.
        let (settings, placement) = match self.settings.nodes.get(&id) {
            Some((settings, circuit)) => {
                (settings.clone(), super::Placement::Placed(circuit.clone()))
            }
            None => (BaySettings::new(&id), self.placement_of_unconfigured()),
        };
        out.push(Output::Event {
            bay: Some(id.clone()),
            text: match &placement {
                super::Placement::Unplaced => {
                    "new bay discovered; not in the configuration, so counted against every circuit until placed".to_owned()
                }
                super::Placement::Placed(_) => "new bay discovered".to_owned(),
            },
        });
        Some(self.add_bay(now, src, settings, placement))
    }

    pub(super) fn on_mesh(
        &mut self,
        now: Now,
        src: MacAddr,
        msg: NodeMessage,
        out: &mut Vec<Output>,
    ) {
        let Some(index) = self.bay_for(now, src, &msg, out) else {
            return;
        };
        let voltage = self.settings.voltage;
        let gap = self.settings.heartbeat_timeout_ms;
        let Some(slot) = self.registry.get_mut(index) else {
            return;
        };
        let bay = &mut slot.bay;
        let reported = Reported::of(bay);
        bay.last_heard_mono_ms = Some(now.mono_ms);
        bay.last_heard_ms = Some(now.wall_ms);
        if !bay.online {
            bay.online = true;
            out.push(Output::Event {
                bay: Some(bay.id.clone()),
                text: "online".to_owned(),
            });
        }
        match msg {
            NodeMessage::Heartbeat(hb) => {
                let was_in_session = bay.ccss().is_some_and(Ccss::in_session);
                let was_plugged = bay.plugged();
                let now_in_session = hb.ccss.in_session();
                bay.energy.sample(now.mono_ms, hb.cur, voltage, gap);
                if hb.cmaxcur.get() <= 0 {
                    // Unplugged: the next car may be started again. Done per heartbeat, not
                    // per cycle, so an unplug and replug between two cycles still counts.
                    bay.autostart_done = false;
                }
                let measurement = Measurement {
                    amaxcur: hb.amaxcur,
                    aphases: hb.aphases,
                    cur: hb.cur,
                };
                bay.heartbeat = Some(hb);
                let id = bay.id.clone();
                let event = |kind| {
                    Output::Bay(BayEvent {
                        bay: id.clone(),
                        at_ms: now.wall_ms,
                        kind,
                    })
                };
                match (was_plugged, bay.plugged()) {
                    (false, true) => out.push(event(BayEventKind::Plugged)),
                    (true, false) => out.push(event(BayEventKind::Unplugged)),
                    _ => {}
                }
                if now_in_session && !was_in_session {
                    bay.energy.start_session();
                    bay.session_started_ms = Some(now.wall_ms);
                    bay.session_started_mono_ms = Some(now.mono_ms);
                    bay.ev_phases = None;
                    bay.phase_switch = PhaseSwitch::default();
                    out.push(event(BayEventKind::SessionStarted {
                        meter_wh: bay.energy.total_wh_floor(),
                    }));
                } else if was_in_session && !now_in_session {
                    // The duration is the monotonic clock's: a wall clock stepped during the
                    // session (NTP, an operator) would stretch it by hours or make it negative.
                    let lasted_ms = bay
                        .session_started_mono_ms
                        .take()
                        .map(|t| now.mono_ms.saturating_sub(t));
                    if let Some(started_ms) = bay.session_started_ms.take() {
                        let started_ms =
                            lasted_ms.map_or(started_ms, |d| now.wall_ms.saturating_sub(d));
                        out.push(event(BayEventKind::SessionStopped {
                            started_ms,
                            energy_wh: bay.energy.session_wh(),
                            meter_wh: bay.energy.total_wh_floor(),
                            uncounted_ms: bay.energy.session_uncounted_ms(),
                        }));
                        out.push(Output::SaveEnergy {
                            bay: id.clone(),
                            total_wh: bay.energy.total_wh_floor(),
                        });
                    }
                    bay.ev_phases = None;
                    bay.phase_switch = PhaseSwitch::default();
                }
                bay.learn_ev_phases();
                let wiring = wiring(bay);
                self.sequencer.set_wiring(index, wiring);
                // A bay being flashed is held: its heartbeats say nothing of its setpoints.
                if !self.firmware_holds(&id) {
                    let writes = self
                        .sequencer
                        .on_heartbeat(now.mono_ms, index, &measurement);
                    self.writes.extend(writes);
                }
            }
            NodeMessage::Status(status) => bay.status = Some(status),
            NodeMessage::System(system) => bay.system = Some(system),
            NodeMessage::AvrSetPar { ok } => {
                if !self.operator_set_reply(now, src, ok) {
                    let writes = self.sequencer.on_ack(now.mono_ms, index, ok);
                    self.writes.extend(writes);
                }
            }
            NodeMessage::AvrGetPar { par, val } => self.operator_get_reply(src, &par, val),
            NodeMessage::Tsync(_)
            | NodeMessage::AvrOta { .. }
            | NodeMessage::AvrImg { .. }
            | NodeMessage::AvrLog { .. } => {}
        }
        if self
            .registry
            .get(index)
            .is_some_and(|slot| Reported::of(&slot.bay) != reported)
        {
            self.allocation_needed(now);
        }
        self.announce(now, index, out);
    }

    /// Emits the events for what changed in how the bay looks to the outside: its status,
    /// its problems, its confirmed setpoint.
    pub(super) fn announce(&mut self, now: Now, index: usize, out: &mut Vec<Output>) {
        let status = self.status_of(index);
        let problems = self.problems_of(index);
        let confirmed = self.sequencer.confirmed(index);
        let Some(slot) = self.registry.get_mut(index) else {
            return;
        };
        let id = slot.bay.id.clone();
        let mut event = |kind| {
            out.push(Output::Bay(BayEvent {
                bay: id.clone(),
                at_ms: now.wall_ms,
                kind,
            }));
        };
        if slot.status != status {
            slot.status = status;
            event(BayEventKind::StatusChanged { status });
        }
        for &what in &problems {
            if !slot.problems.contains(&what) {
                event(BayEventKind::ProblemRaised { what });
            }
        }
        for &what in &slot.problems {
            if !problems.contains(&what) {
                event(BayEventKind::ProblemCleared { what });
            }
        }
        slot.problems = problems;
        if confirmed != slot.confirmed {
            slot.confirmed = confirmed;
            if let Some(setpoint) = confirmed {
                event(events::confirmed(setpoint));
            }
        }
    }
}
