//! The site: the one owner of all bay and site state.
//!
//! [`Site`] is a plain, deterministic state machine: the runtime feeds it [`Input`]s with the
//! time (unix ms) and carries out the [`Output`]s it returns. It never touches a socket, a
//! file or a clock, so every decision can be tested with simulated time.
//!
//! Each control cycle ([`Input::Tick`]) it marks silent bays offline, polls node details,
//! presses start/stop where the state calls for it, asks the allocator for targets and hands
//! them to the setpoint sequencer, which alone decides what may be written when (SPEC
//! section 4: lower first, confirm, then raise).

pub mod bay;
pub mod demand;
pub mod energy;
pub mod settings;
pub mod snapshot;
pub mod status;

use std::collections::{BTreeMap, HashMap};

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage, ParName};
use ctrl22_node::{Ccss, CcssGroup, Deciamps, Phase, PhaseSet};

use crate::allocate::{self, Allocator, BayDemand, Topology};
use crate::bay::{BayId, Setpoint};
use crate::setpoint::{self, Measurement, Sequencer, SetparCommand};
use bay::{Bay, BaySettings, ButtonRequest};
pub use settings::{SettingChange, SettingError, SiteSettings};
use snapshot::{BaySnapshot, CircuitSnapshot, SiteSnapshot};
pub use status::BayStatus;

/// Something that happened outside the core.
// Node messages are moved once from the link to the core; boxing them would only add an
// allocation per heartbeat.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// A message from a node, already decoded by a mesh link.
    Mesh { src: MacAddr, msg: NodeMessage },
    /// Input that a link or adapter refused (counted for `/metrics`).
    Rejected { kind: &'static str },
    /// The mesh link (broker or root connection) went up or down.
    MeshLink { up: bool },
    /// Power readings from the solar sources; `None` fields are unknown.
    Solar(SolarReading),
    /// The solar source stopped answering: solar bays fall back to their floor.
    SolarLost,
    /// The control cycle: allocate and deliver.
    Tick,
}

/// Grid, PV and battery power (W). Grid is positive when importing, negative exporting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolarReading {
    pub grid_w: Option<i64>,
    pub pv_w: Option<i64>,
    pub battery_w: Option<i64>,
}

/// Something the runtime must do.
// Commands are moved once from the core to the link; see `Input`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a command to a node over the mesh.
    Send { dst: Address, cmd: Command },
    /// Persist a bay's lifetime energy.
    SaveEnergy { bay: BayId, total_wh: u64 },
    /// A session ended (for the sessions table).
    SessionEnded {
        bay: BayId,
        started_ms: u64,
        ended_ms: u64,
        energy_wh: f64,
    },
    /// A setting changed and must persist across restarts.
    SaveSetting(SettingChange),
    /// Something for the event log.
    Event { bay: Option<BayId>, text: String },
}

/// Why a site cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("site.circuits: {0}")]
    Topology(#[from] allocate::TopologyError),
    #[error("setpoint sequencer: {0}")]
    Sequencer(#[from] setpoint::SequencerError),
}

/// Bays polled for `status`/`system` per cycle at most, so 10,000 bays do not flood the mesh.
const POLLS_PER_TICK: usize = 20;

/// The site core.
#[derive(Debug)]
pub struct Site {
    settings: SiteSettings,
    topology: Topology,
    allocator: Allocator,
    sequencer: Sequencer,
    bays: Vec<Bay>,
    by_mac: HashMap<MacAddr, usize>,
    circuit_of: Vec<Option<String>>,
    targets: Vec<Setpoint>,
    fail_safe: Vec<Deciamps>,
    reasons: Vec<Option<String>>,
    /// Parameter writes the sequencer released, to go out at the end of this input.
    writes: Vec<SetparCommand>,
    rejected: BTreeMap<String, u64>,
    mesh_connected: bool,
    solar: Option<SolarReading>,
    /// Stored settings of bays not heard from yet, applied when they appear.
    waiting_settings: BTreeMap<BayId, Vec<SettingChange>>,
    cycle_us: u64,
    /// Lifetime totals loaded from storage, for bays that appear later.
    stored_totals: BTreeMap<BayId, u64>,
}

impl Site {
    /// A site with its configured bays (offline until heard) and stored energy totals.
    ///
    /// # Errors
    /// When the circuit tree is invalid.
    pub fn new(
        settings: SiteSettings,
        stored_totals_wh: &BTreeMap<BayId, u64>,
        now_ms: u64,
    ) -> Result<Self, SiteError> {
        let topology = Topology::new(settings.limits, settings.circuits.clone())?;
        let sequencer = Sequencer::new(
            now_ms,
            sequencer_params(&settings),
            limit_groups(&topology),
            Vec::new(),
        )?;
        let mut site = Self {
            topology,
            allocator: Allocator::default(),
            sequencer,
            bays: Vec::new(),
            by_mac: HashMap::new(),
            circuit_of: Vec::new(),
            targets: Vec::new(),
            fail_safe: Vec::new(),
            reasons: Vec::new(),
            writes: Vec::new(),
            rejected: BTreeMap::new(),
            mesh_connected: false,
            solar: None,
            waiting_settings: BTreeMap::new(),
            cycle_us: 0,
            stored_totals: stored_totals_wh.clone(),
            settings,
        };
        let configured: Vec<_> = site
            .settings
            .nodes
            .iter()
            .map(|(id, (s, c))| (id.clone(), s.clone(), c.clone()))
            .collect();
        for (id, bay_settings, circuit) in configured {
            if let Ok(mac) = id.0.parse::<MacAddr>() {
                let total = stored_totals_wh.get(&id).copied().unwrap_or(0);
                site.add_bay(now_ms, mac, bay_settings, circuit, total);
            }
        }
        Ok(site)
    }

    /// Replays settings saved at runtime (Home Assistant, HTTP) over the configuration, in
    /// the order they were made. Those of bays not heard from yet wait for them; a stored
    /// setting the core now refuses is skipped and reported.
    pub fn restore_settings(&mut self, now_ms: u64, stored: Vec<SettingChange>) -> Vec<Output> {
        let mut out = Vec::new();
        for change in stored {
            if let Some(id) = change.bay() {
                if self.index_of(id).is_err() {
                    self.waiting_settings
                        .entry(id.clone())
                        .or_default()
                        .push(change);
                    continue;
                }
            }
            if let Err(e) = self.apply(now_ms, change) {
                out.push(Output::Event {
                    bay: None,
                    text: format!("stored setting skipped: {e}"),
                });
            }
        }
        out
    }

    /// Feeds one input; returns what the runtime must do.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Mesh { src, msg } => self.on_mesh(now_ms, src, msg, &mut out),
            Input::Rejected { kind } => self.reject(kind),
            Input::MeshLink { up } => self.mesh_connected = up,
            Input::Solar(reading) => self.solar = Some(reading),
            Input::SolarLost => self.solar = None,
            Input::Tick => {
                self.tick(now_ms, &mut out);
                // Timeouts, refreshes and raises that became possible: once per cycle, as
                // it looks at every bay.
                let polled = self.sequencer.poll(now_ms);
                self.writes.extend(polled);
            }
        }
        self.deliver(&mut out);
        out
    }

    fn reject(&mut self, kind: &str) {
        *self.rejected.entry(kind.to_owned()).or_insert(0) += 1;
    }

    fn add_bay(
        &mut self,
        now_ms: u64,
        mac: MacAddr,
        settings: BaySettings,
        circuit: Option<String>,
        total_wh: u64,
    ) -> usize {
        let index = self.bays.len();
        let bay = Bay::new(mac, settings, total_wh);
        let groups = self.groups_of(circuit.as_deref());
        self.sequencer.add_bay(wiring(&bay), &groups);
        self.by_mac.insert(mac, index);
        self.bays.push(bay);
        self.circuit_of.push(circuit);
        self.targets.push(Setpoint::PAUSED);
        self.fail_safe.push(Deciamps::ZERO);
        self.reasons.push(None);
        if let Some(waiting) = self
            .waiting_settings
            .remove(&BayId(mac.topic_form().to_string()))
        {
            for change in waiting {
                // Stored settings were valid when made; one that no longer is stays unset.
                let _ = self.apply(now_ms, change);
            }
        }
        index
    }

    /// The limit groups a bay on `circuit` belongs to: the site, its circuit and every
    /// circuit above it.
    fn groups_of(&self, circuit: Option<&str>) -> Vec<usize> {
        let mut groups = vec![0];
        let mut next = circuit.and_then(|c| self.topology.circuit_index(c));
        while let Some(index) = next {
            groups.push(index + 1);
            next = self
                .topology
                .circuits()
                .get(index)
                .and_then(|c| c.parent.as_deref())
                .and_then(|p| self.topology.circuit_index(p));
        }
        groups
    }

    /// The bay a node message is about; a new node becomes a bay unless the site is full.
    fn bay_for(
        &mut self,
        now_ms: u64,
        src: MacAddr,
        msg: &NodeMessage,
        out: &mut Vec<Output>,
    ) -> Option<usize> {
        if let Some(&index) = self.by_mac.get(&src) {
            return Some(index);
        }
        // Only a heartbeat introduces a bay: a stray reply names nobody we asked.
        if !matches!(msg, NodeMessage::Heartbeat(_)) {
            self.reject("unknown_node");
            return None;
        }
        if self.bays.len() >= self.settings.max_bays {
            self.reject("too_many_bays");
            return None;
        }
        let id = BayId(src.topic_form().to_string());
        let total = self.stored_totals.get(&id).copied().unwrap_or(0);
        out.push(Output::Event {
            bay: Some(id.clone()),
            text: "new bay discovered".to_owned(),
        });
        let settings = BaySettings::new(&id);
        Some(self.add_bay(now_ms, src, settings, None, total))
    }

    fn on_mesh(&mut self, now_ms: u64, src: MacAddr, msg: NodeMessage, out: &mut Vec<Output>) {
        let Some(index) = self.bay_for(now_ms, src, &msg, out) else {
            return;
        };
        let voltage = self.settings.voltage;
        let gap = self.settings.heartbeat_timeout_ms;
        let Some(bay) = self.bays.get_mut(index) else {
            return;
        };
        bay.last_heard_ms = Some(now_ms);
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
                let now_in_session = hb.ccss.in_session();
                bay.energy.sample(now_ms, hb.cur, voltage, gap);
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
                if now_in_session && !was_in_session {
                    bay.energy.start_session();
                    bay.session_started_ms = Some(now_ms);
                    bay.ev_phases = None;
                } else if was_in_session && !now_in_session {
                    if let Some(started_ms) = bay.session_started_ms.take() {
                        out.push(Output::SessionEnded {
                            bay: bay.id.clone(),
                            started_ms,
                            ended_ms: now_ms,
                            energy_wh: bay.energy.session_wh(),
                        });
                        out.push(Output::SaveEnergy {
                            bay: bay.id.clone(),
                            total_wh: bay.energy.total_wh_floor(),
                        });
                    }
                    bay.ev_phases = None;
                }
                bay.learn_ev_phases();
                let wiring = wiring(bay);
                self.sequencer.set_wiring(index, wiring);
                let writes = self.sequencer.on_heartbeat(now_ms, index, &measurement);
                self.writes.extend(writes);
            }
            NodeMessage::Status(status) => bay.status = Some(status),
            NodeMessage::System(system) => bay.system = Some(system),
            NodeMessage::AvrSetPar { ok } => {
                let writes = self.sequencer.on_ack(now_ms, index, ok);
                self.writes.extend(writes);
            }
            NodeMessage::Tsync(_)
            | NodeMessage::AvrGetPar { .. }
            | NodeMessage::AvrOta { .. }
            | NodeMessage::AvrImg { .. }
            | NodeMessage::AvrLog { .. } => {}
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        self.mark_silent_offline(now_ms, out);
        self.poll_details(now_ms, out);
        self.press_buttons(now_ms);
        self.allocate(now_ms);
        // Every whole Wh is saved in the cycle it is reached: a crash loses at most one
        // cycle of energy, and only bays that charged cause a write.
        for bay in &mut self.bays {
            let total_wh = bay.energy.total_wh_floor();
            if total_wh != bay.saved_wh {
                bay.saved_wh = total_wh;
                out.push(Output::SaveEnergy {
                    bay: bay.id.clone(),
                    total_wh,
                });
            }
        }
    }

    fn mark_silent_offline(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let timeout = self.settings.heartbeat_timeout_ms;
        for (index, bay) in self.bays.iter_mut().enumerate() {
            let silent = bay
                .last_heard_ms
                .is_none_or(|t| now_ms.saturating_sub(t) > timeout);
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

    fn poll_details(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let interval = self.settings.poll_interval_ms;
        let due = self
            .bays
            .iter_mut()
            .filter(|b| b.online)
            .filter(|b| {
                b.last_poll_ms
                    .is_none_or(|t| now_ms.saturating_sub(t) >= interval)
            })
            .take(POLLS_PER_TICK);
        for bay in due {
            bay.last_poll_ms = Some(now_ms);
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
    fn press_buttons(&mut self, now_ms: u64) {
        let default_mode = self.settings.default_mode;
        for (index, bay) in self.bays.iter_mut().enumerate() {
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
                    let auto_start = idle
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
            let writes = self.sequencer.press_button(now_ms, index);
            self.writes.extend(writes);
        }
    }

    fn allocate(&mut self, now_ms: u64) {
        let started = std::time::Instant::now();
        let default_mode = self.settings.default_mode;
        let offset = self.settings.utc_offset_min;
        let demands: Vec<BayDemand> = self
            .bays
            .iter()
            .enumerate()
            .map(|(index, bay)| {
                let reserved = self.targets.get(index).copied();
                demand::demand(
                    bay,
                    self.circuit_of.get(index).and_then(Option::as_deref),
                    default_mode,
                    reserved,
                    now_ms,
                    offset,
                )
            })
            .collect();
        let params = allocate::Params {
            strategy: self.settings.strategy,
            voltage: self.settings.voltage,
            solar_budget_w: self.solar_budget_w(),
            rotation_period_ms: self.settings.rotation_period_ms,
            min_on_ms: self.settings.min_on_ms,
            min_off_ms: self.settings.min_off_ms,
            ..allocate::Params::default()
        };
        let allocation = self
            .allocator
            .allocate(now_ms, &self.topology, &demands, &params);
        self.targets = allocation.bays.iter().map(|b| b.setpoint).collect();
        self.fail_safe = allocation.bays.iter().map(|b| b.fail_safe).collect();
        self.reasons = allocation.bays.iter().map(describe_allocation).collect();
        let targets: Vec<_> = allocation
            .bays
            .iter()
            .enumerate()
            .map(|(index, b)| {
                let target = setpoint::Target {
                    setpoint: b.setpoint,
                    fail_safe: b.fail_safe,
                };
                (index, target)
            })
            .collect();
        let writes = self.sequencer.set_targets(now_ms, &targets);
        self.writes.extend(writes);
        self.cycle_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    }

    /// Power for solar bays: what the site exports plus what solar bays draw already.
    fn solar_budget_w(&self) -> Option<i32> {
        let grid = self.solar?.grid_w?;
        let default_mode = self.settings.default_mode;
        let solar_bays: i64 = self
            .bays
            .iter()
            .filter(|b| {
                matches!(
                    demand::effective_mode(b, default_mode),
                    allocate::ChargeMode::Pv | allocate::ChargeMode::MinPv
                )
            })
            .map(|b| b.power_w(self.settings.voltage))
            .sum();
        i32::try_from(solar_bays - grid).ok()
    }

    /// Turns the sequencer's parameter writes into mesh commands.
    fn deliver(&mut self, out: &mut Vec<Output>) {
        for write in std::mem::take(&mut self.writes) {
            let Some(bay) = self.bays.get(write.bay) else {
                continue;
            };
            let mut par = ParName::new();
            // Parameter names are short constants; they always fit.
            let _ = par.push_str(write.par.name());
            out.push(Output::Send {
                dst: Address::Node(bay.mac),
                cmd: Command::AvrSetPar {
                    par,
                    val: write.value,
                },
            });
        }
    }

    /// Applies a set of changes, all or nothing.
    ///
    /// # Errors
    /// The first refusal; then nothing was changed.
    pub fn apply_all(
        &mut self,
        now_ms: u64,
        changes: Vec<SettingChange>,
    ) -> Result<Vec<Output>, SettingError> {
        let mut out = Vec::new();
        for change in changes {
            out.extend(self.apply(now_ms, change)?);
        }
        Ok(out)
    }

    /// Validates and applies an operator's change. A refused change leaves everything as it
    /// was; an accepted one takes effect in the next control cycle and is to be persisted.
    ///
    /// # Errors
    /// [`SettingError`] naming the field and the problem.
    pub fn apply(
        &mut self,
        now_ms: u64,
        change: SettingChange,
    ) -> Result<Vec<Output>, SettingError> {
        let index = match change.bay() {
            Some(id) => Some(self.index_of(id)?),
            None => None,
        };
        let bay = index.and_then(|i| self.bays.get_mut(i));
        let mut persist = true;
        match (&change, bay) {
            (SettingChange::Strategy(s), _) => self.settings.strategy = *s,
            (SettingChange::DefaultMode(m), _) => self.settings.default_mode = *m,
            (SettingChange::SiteLimit { phase, amps }, _) => {
                let limit =
                    settings::amps_to_deciamps("site.max_current", *amps, 0.0, 3200.0, "0-3200 A")?;
                let mut limits = self.settings.limits;
                let slot = usize::from(*phase)
                    .checked_sub(1)
                    .and_then(|p| limits.get_mut(p))
                    .ok_or_else(|| SettingError::OutOfRange {
                        field: "site.max_current.phase",
                        value: phase.to_string(),
                        range: "1-3",
                    })?;
                *slot = limit;
                self.topology =
                    Topology::new(limits, self.settings.circuits.clone()).map_err(|e| {
                        SettingError::Invalid {
                            field: "site.max_current",
                            problem: e.to_string(),
                        }
                    })?;
                self.settings.limits = limits;
                // A lower limit only stops raises until the bays are lowered under it.
                let writes = self.sequencer.set_limit(now_ms, 0, limits);
                self.writes.extend(writes);
            }
            (SettingChange::BayName { name, .. }, Some(bay)) => {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 64 {
                    return Err(SettingError::Invalid {
                        field: "name",
                        problem: "must be 1-64 characters".to_owned(),
                    });
                }
                bay.settings.name = name.to_owned();
            }
            (SettingChange::BayMode { mode, .. }, Some(bay)) => bay.settings.mode = Some(*mode),
            (SettingChange::BayMaxCurrent { amps, .. }, Some(bay)) => {
                bay.settings.max_current =
                    settings::amps_to_deciamps("max_current", *amps, 6.0, 80.0, "6-80 A")?;
            }
            (SettingChange::BayPriority { priority, .. }, Some(bay)) => {
                if !(-1000..=1000).contains(priority) {
                    return Err(SettingError::OutOfRange {
                        field: "priority",
                        value: priority.to_string(),
                        range: "-1000..1000",
                    });
                }
                bay.settings.priority = *priority;
            }
            (SettingChange::BayEnabled { enabled, .. }, Some(bay)) => {
                bay.settings.enabled = *enabled;
            }
            (SettingChange::BayDeparture { departure, .. }, Some(bay)) => {
                bay.settings.departure = *departure;
            }
            (SettingChange::BayTargetEnergy { kwh, .. }, Some(bay)) => {
                if !kwh.is_finite() || !(0.0..=settings::TARGET_ENERGY_MAX_KWH).contains(kwh) {
                    return Err(SettingError::OutOfRange {
                        field: "target_energy",
                        value: kwh.to_string(),
                        range: "0-200 kWh",
                    });
                }
                // In range: at most 200,000 Wh.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let wh = (kwh * 1000.0).round() as u32;
                bay.settings.target_energy_wh = (wh > 0).then_some(wh);
            }
            (SettingChange::BayButton { press, .. }, Some(bay)) => {
                bay.button_request = Some(*press);
                persist = false;
            }
            (SettingChange::BayRelease { .. }, Some(bay)) => {
                if bay.online {
                    return Err(SettingError::Invalid {
                        field: "release",
                        problem:
                            "the bay is online; only an offline bay's reservation can be released"
                                .to_owned(),
                    });
                }
                if let Some(i) = index {
                    let writes =
                        self.sequencer
                            .release(now_ms, i)
                            .map_err(|e| SettingError::Invalid {
                                field: "release",
                                problem: e.to_string(),
                            })?;
                    self.writes.extend(writes);
                }
                persist = false;
            }
            (SettingChange::BayForget { .. }, Some(bay)) => {
                if bay.online {
                    return Err(SettingError::Invalid {
                        field: "forget",
                        problem: "the bay is online; it would reappear at its next heartbeat"
                            .to_owned(),
                    });
                }
                let id = bay.id.clone();
                if let Some(i) = index {
                    self.forget(i);
                }
                return Ok(vec![
                    Output::SaveSetting(change),
                    Output::Event {
                        bay: Some(id),
                        text: "forgotten".to_owned(),
                    },
                ]);
            }
            (_, None) => {
                // A bay change whose bay vanished between lookup and here cannot happen: the
                // lookup above returned an index into `bays`.
                return Err(SettingError::Invalid {
                    field: "bay",
                    problem: "no such bay".to_owned(),
                });
            }
        }
        let mut out = vec![Output::Event {
            bay: change.bay().cloned(),
            text: format!("setting changed: {}", describe(&change)),
        }];
        if persist {
            out.push(Output::SaveSetting(change));
        }
        Ok(out)
    }

    fn index_of(&self, id: &BayId) -> Result<usize, SettingError> {
        id.0.parse::<MacAddr>()
            .ok()
            .and_then(|mac| self.by_mac.get(&mac).copied())
            .ok_or_else(|| SettingError::UnknownBay(id.clone()))
    }

    /// Removes an offline bay: its reservation is released and its index reused.
    fn forget(&mut self, index: usize) {
        self.sequencer.remove_bay(index);
        let bay = self.bays.swap_remove(index);
        self.by_mac.remove(&bay.mac);
        self.circuit_of.swap_remove(index);
        self.targets.swap_remove(index);
        self.fail_safe.swap_remove(index);
        self.reasons.swap_remove(index);
        if let Some(moved) = self.bays.get(index) {
            self.by_mac.insert(moved.mac, index);
        }
    }

    /// The picture of the site for the adapters that show it.
    #[must_use]
    pub fn snapshot(&self, now_ms: u64) -> SiteSnapshot {
        let voltage = self.settings.voltage;
        let mut measured = [0i64; 3];
        let bays: Vec<BaySnapshot> = self
            .bays
            .iter()
            .enumerate()
            .map(|(index, bay)| {
                for (bay_phase, current) in Phase::ALL.into_iter().zip(bay.measured()) {
                    let site_phase = bay.settings.rotation[bay_phase.index()];
                    measured[site_phase.index()] += i64::from(current.get().max(0));
                }
                self.bay_snapshot(index, bay)
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
        SiteSnapshot {
            name: self.settings.name.clone(),
            at_ms: now_ms,
            voltage,
            strategy: self.settings.strategy,
            default_mode: self.settings.default_mode,
            limit_a: amps3(self.settings.limits),
            ceiling_a: amps3(self.settings.limits),
            reserved_a: amps3(reserved),
            measured_a,
            ev_power_w: self.bays.iter().map(|b| b.power_w(voltage)).sum(),
            grid_power_w: self.solar.and_then(|s| s.grid_w),
            pv_power_w: self.solar.and_then(|s| s.pv_w),
            battery_power_w: self.solar.and_then(|s| s.battery_w),
            surplus_w: self.solar_budget_w().map(i64::from),
            solar_ok: self.solar.is_some(),
            energy_total_wh: self.bays.iter().map(|b| b.energy.total_wh()).sum(),
            mesh_connected: self.mesh_connected,
            circuits,
            bays,
            rejected: self.rejected.clone(),
            cycle_us: self.cycle_us,
        }
    }

    fn bay_snapshot(&self, index: usize, bay: &Bay) -> BaySnapshot {
        let hb = bay.heartbeat.as_ref();
        let target = self.targets.get(index).copied().unwrap_or_default();
        let mode = demand::effective_mode(bay, self.settings.default_mode);
        BaySnapshot {
            dev: bay.id.0.clone(),
            mac: bay.mac.to_string(),
            name: bay.settings.name.clone(),
            online: bay.online,
            last_heard_ms: bay.last_heard_ms,
            state: bay.ccss().map(|s| s.name().to_owned()),
            ccss: bay.ccss().map(Ccss::code),
            status: user_status(bay),
            plugged: bay.plugged(),
            charging: bay.charging(),
            problem: bay.in_error() || self.sequencer.no_watchdog(index),
            cable_a: hb.filter(|h| h.cmaxcur.get() > 0).map(|h| amps(h.cmaxcur)),
            offered_a: hb.map_or(0.0, |h| amps(h.amaxcur)),
            active_phases: hb.map_or(0, |h| h.aphases.to_digits()),
            current_a: bay.measured().map(amps),
            power_w: bay.power_w(self.settings.voltage),
            session_energy_wh: bay.energy.session_wh(),
            total_energy_wh: bay.energy.total_wh(),
            session_started_ms: bay.session_started_ms,
            allocated_a: amps(target.current),
            allocated_phases: target.phases.to_digits(),
            confirmed_a: self.sequencer.confirmed(index).map(|s| amps(s.current)),
            fail_safe_a: amps(self.fail_safe.get(index).copied().unwrap_or_default()),
            reason: self.reasons.get(index).cloned().flatten(),
            mode,
            ceiling_a: amps(bay.ceiling),
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
        }
    }
}

fn amps(d: Deciamps) -> f64 {
    f64::from(d.get()) / 10.0
}

fn amps3(d: [Deciamps; 3]) -> [f64; 3] {
    d.map(amps)
}

/// The bay's state in OCPP's words (SPEC section 7), shared by Home Assistant and OCPP.
fn user_status(bay: &Bay) -> BayStatus {
    BayStatus::of(
        bay.ccss(),
        bay.online,
        bay.settings.enabled,
        bay.plugged(),
        bay.charging(),
    )
}

fn describe(change: &SettingChange) -> String {
    serde_json::to_string(change).unwrap_or_else(|_| format!("{change:?}"))
}

/// How a bay's setpoints load the site's phases, for the sequencer.
fn wiring(bay: &Bay) -> setpoint::BayWiring {
    setpoint::BayWiring {
        rotation: bay.settings.rotation,
        counted_phases: bay.ev_phases.unwrap_or(PhaseSet::ALL),
    }
}

fn sequencer_params(settings: &SiteSettings) -> setpoint::SequencerParams {
    setpoint::SequencerParams {
        watchdog_secs: i16::try_from(settings.wdtsec).unwrap_or(i16::MAX),
        refresh_interval_ms: settings.setpoint_refresh_ms,
        ack_timeout_ms: settings.ack_timeout_ms,
        startup_grace_ms: settings.heartbeat_timeout_ms,
        ..setpoint::SequencerParams::default()
    }
}

/// The sequencer's limit groups: the site (group 0), then each circuit (group `i + 1`).
/// Bays join them as they appear.
fn limit_groups(topology: &Topology) -> Vec<setpoint::LimitGroup> {
    let site = setpoint::LimitGroup {
        name: "site".to_owned(),
        limit: topology.site_limit(),
        bays: Vec::new(),
    };
    std::iter::once(site)
        .chain(topology.circuits().iter().map(|c| setpoint::LimitGroup {
            name: c.id.clone(),
            limit: c.limit,
            bays: Vec::new(),
        }))
        .collect()
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

#[cfg(test)]
mod tests;
