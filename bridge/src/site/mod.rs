//! The site: the one owner of all bay and site state.
//!
//! [`Site`] is a plain, deterministic state machine: the runtime feeds it [`Input`]s with the
//! time ([`Now`]: monotonic for every timer, wall time for people) and carries out the
//! [`Output`]s it returns. It never touches a socket, a file or a clock, so every decision
//! can be tested with simulated time.
//!
//! Each control cycle ([`Input::Tick`]) it marks silent bays offline, polls node details,
//! presses start/stop where the state calls for it, asks the allocator for targets and hands
//! them to the setpoint sequencer, which alone decides what may be written when (SPEC
//! section 4: lower first, confirm, then raise). Between cycles a change that matters (a car
//! unplugged, a lowered limit) asks for an allocation of its own a few ms later
//! ([`Site::poll_timeout`], [`Input::Timeout`]; see `pending.rs`).
//!
//! | file | idea |
//! |---|---|
//! | `registry.rs` | the bays, one [`registry::BaySlot`] each |
//! | `node_messages.rs` | what a node's heartbeat or reply changes |
//! | `cycle.rs` | the control cycle: offline, polls, buttons, allocation, delivery |
//! | `pending.rs` | event-driven allocation: which changes ask for one, coalesced |
//! | `traffic.rs` | what the core counts for `/metrics`: messages, writes, allocations |
//! | `apply.rs` | operator settings: validated once, all or nothing, under the ceilings |
//! | `view.rs` | the snapshot adapters read |
//! | `limits.rs` | ceilings and the dynamic limits below them |
//! | `events.rs` | the ordered stream of bay events |
//! | `status.rs` | a bay's state in OCPP's words |
//! | `ota.rs` | firmware jobs: a bay held while flashed, learned afresh after |
//! | `phase_switch.rs` | automatic 1-phase <-> 3-phase switching of surplus bays |
//! | `record.rs`, `demand.rs`, `energy.rs`, `settings.rs`, `snapshot.rs` | one bay's live record, its demand, its meter, settings, the snapshot's types |
//!
//! It must never: send a write the sequencer did not release, let a runtime input lift a
//! limit above the configuration, or read a clock.

mod apply;
mod caps;
mod cycle;
pub mod demand;
pub mod energy;
pub mod events;
mod external;
mod house_load;
pub mod limits;
mod node_messages;
mod ota;
pub mod parameters;
mod pending;
pub mod phase_switch;
pub mod power;
mod power_flow;
pub mod record;
pub mod registry;
pub mod settings;
pub mod snapshot;
pub mod status;
mod surplus;
pub mod traffic;
mod view;

use std::collections::BTreeMap;

use ctrl22_node::mesh::{Address, Command, MacAddr, NodeMessage, ParName};
use ctrl22_node::PhaseSet;

use crate::allocate::{self, Allocator, Topology};
use crate::bay::BayId;
use crate::clock::Now;
use crate::setpoint::{self, PhaseLoad, Sequencer, SetparCommand};
pub use events::{BayEvent, BayEventKind};
use limits::PhaseLimits;
pub use power::{ExternalLimit, LimitScope, PowerReading, PowerSettings, SourceId};
use record::{Bay, BaySettings};
use registry::{BaySlot, Placement, Registry};
pub use settings::{SettingChange, SettingError, SiteSettings};
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
    /// The mesh link (broker or root connection) went up or down. A link knows how long a
    /// reply to a write may take on it (its queue and pacing included).
    MeshLink { up: bool, reply_deadline_ms: u64 },
    /// A reading of one power source (inverter, meter).
    Power {
        source: SourceId,
        reading: PowerReading,
    },
    /// A power source stopped answering or answered nonsense: what relied on it falls back.
    PowerLost { source: SourceId, error: String },
    /// An external limit signal changed (`None`: lifted).
    ExternalLimit {
        source: SourceId,
        scope: LimitScope,
        limit: Option<ExternalLimit>,
    },
    /// An OCPP backend's cap for a bay, in A (`None`: lifted); only ever lowers.
    BayCap { bay: BayId, cap_a: Option<f64> },
    /// An OCPP backend's limit on the site's phases, in A (`None`: lifted).
    OcppSiteLimit { limit_a: Option<[f64; 3]> },
    /// The control cycle: allocate and deliver.
    Tick,
    /// The moment [`Site::poll_timeout`] named has come: the allocation a change asked for
    /// runs (early or repeated ones do nothing).
    Timeout,
}

/// Something the runtime must do.
// Commands are moved once from the core to the link; see `Input`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Persist what a bay may be drawing per site phase (0.1 A), so that a restart reserves
    /// it until the bay is heard again. `raised` ones must be on disk before any `Send`
    /// after them in the same batch goes out.
    SaveReservation {
        bay: BayId,
        load: [i32; 3],
        raised: bool,
    },
    /// Send a command to a node over the mesh.
    Send { dst: Address, cmd: Command },
    /// Persist a bay's lifetime energy.
    SaveEnergy { bay: BayId, total_wh: u64 },
    /// Something happened to a bay (in order; the store keeps sessions from these).
    Bay(BayEvent),
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

/// What the store kept for the core across a restart.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// Lifetime energy per bay, Wh.
    pub totals_wh: BTreeMap<BayId, u64>,
    /// What each bay may have been drawing per site phase (0.1 A) when the bridge stopped.
    pub reservations: BTreeMap<BayId, [i32; 3]>,
}

/// The site core.
#[derive(Debug)]
pub struct Site {
    settings: SiteSettings,
    limits: PhaseLimits,
    caps: caps::BayCaps,
    topology: Topology,
    allocator: Allocator,
    sequencer: Sequencer,
    registry: Registry,
    /// Parameter writes the sequencer released, to go out at the end of this input.
    writes: Vec<SetparCommand>,
    rejected: BTreeMap<String, u64>,
    mesh_connected: bool,
    power: power_flow::PowerState,
    /// Stored settings of bays not heard from yet, applied when they appear.
    waiting_settings: BTreeMap<BayId, Vec<SettingChange>>,
    /// Outputs made outside an input (settings replayed for a bay that appeared), handed
    /// out with the next input's.
    deferred: Vec<Output>,
    cycle_us: u64,
    /// Lifetime totals loaded from storage, for bays that appear later.
    stored_totals: BTreeMap<BayId, u64>,
    /// Firmware jobs; their bays are held (see `ota.rs`).
    ota: crate::ota::jobs::OtaJobs,
    /// ESP32 upgrades of whole boards (no hold, see `ota/esp32.rs`).
    esp32: crate::ota::esp32::Esp32Jobs,
    firmware_catalogue: Vec<crate::ota::folder::FolderImage>,
    /// Operators' `getpar`/`setpar` waiting for their node (see `parameters.rs`).
    operator_pars: parameters::OperatorPars,
    /// The allocation a change asked for (see `pending.rs`).
    pending: pending::Pending,
    traffic: traffic::Traffic,
}

impl Site {
    /// A site with its configured bays (offline until heard), stored energy totals and the
    /// reservations of every bay that may still be drawing. No raise goes out before the
    /// mesh link is up and the start-up grace after it has passed.
    ///
    /// # Errors
    /// When the circuit tree is invalid.
    pub fn new(settings: SiteSettings, stored: Stored, now: Now) -> Result<Self, SiteError> {
        let limits = PhaseLimits::new(settings.limits);
        let topology = Topology::new(limits.effective(), settings.circuits.clone())?;
        let mut sequencer = Sequencer::new(
            now.mono_ms,
            sequencer_params(&settings),
            limit_groups(&topology),
            Vec::new(),
        )?;
        sequencer.on_link(now.mono_ms, false);
        let mut site = Self {
            limits,
            caps: caps::BayCaps::default(),
            topology,
            allocator: Allocator::default(),
            sequencer,
            registry: Registry::default(),
            writes: Vec::new(),
            rejected: BTreeMap::new(),
            mesh_connected: false,
            power: power_flow::PowerState::new(settings.power.clone(), settings.limits),
            waiting_settings: BTreeMap::new(),
            deferred: Vec::new(),
            cycle_us: 0,
            stored_totals: stored.totals_wh,
            ota: crate::ota::jobs::OtaJobs::default(),
            esp32: crate::ota::esp32::Esp32Jobs::default(),
            firmware_catalogue: Vec::new(),
            operator_pars: parameters::OperatorPars::default(),
            pending: pending::Pending::default(),
            traffic: traffic::Traffic::default(),
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
                site.add_bay(now, mac, bay_settings, Placement::Placed(circuit));
            }
        }
        // The house reserve is in force until the grid meter's first reading.
        site.refresh_limits(now);
        for (id, load) in stored.reservations {
            let index = match site.registry.index_of(&id) {
                Some(index) => index,
                None => {
                    let Ok(mac) = id.0.parse::<MacAddr>() else {
                        continue;
                    };
                    let placement = site.placement_of_unconfigured();
                    site.add_bay(now, mac, BaySettings::new(&id), placement)
                }
            };
            site.sequencer.restore_reservation(index, PhaseLoad(load));
        }
        Ok(site)
    }

    /// Replays settings saved at runtime (Home Assistant, HTTP) over the configuration, in
    /// the order they were made. Those of bays not heard from yet wait for them; a stored
    /// value above a (since lowered) ceiling is clamped to it, with a warning; a stored
    /// setting the core now refuses otherwise is skipped and reported.
    pub fn restore_settings(&mut self, now: Now, stored: Vec<SettingChange>) -> Vec<Output> {
        let mut out = Vec::new();
        for change in stored {
            if let Some(id) = change.bay() {
                if self.registry.index_of(id).is_none() {
                    self.waiting_settings
                        .entry(id.clone())
                        .or_default()
                        .push(change);
                    continue;
                }
            }
            out.extend(self.restore_one(now, change));
        }
        out
    }

    /// Feeds one input; returns what the runtime must do.
    pub fn handle(&mut self, now: Now, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Mesh { src, msg } => {
                self.traffic.count_message(&msg);
                self.ota_on_mesh(now, src, &msg, &mut out);
                self.on_mesh(now, src, msg, &mut out);
            }
            Input::Rejected { kind } => self.count_rejected(kind),
            Input::MeshLink {
                up,
                reply_deadline_ms,
            } => {
                self.mesh_connected = up;
                if up {
                    self.sequencer.set_ack_timeout(reply_deadline_ms);
                }
                // Bays not heard since the link came back may be drawing anything they
                // were allowed: the start-up grace runs from here, and again after every
                // loss of the link.
                self.sequencer.on_link(now.mono_ms, up);
                out.push(Output::Event {
                    bay: None,
                    text: if up {
                        "mesh link up; no raises during the start-up grace".to_owned()
                    } else {
                        "mesh link down; no raises until it is back".to_owned()
                    },
                });
            }
            Input::Power { source, reading } => {
                let before = self.limits_in_force();
                self.on_power(now, source, reading, &mut out);
                self.allocate_if_lowered(now, &before);
            }
            Input::PowerLost { source, error } => {
                let before = self.limits_in_force();
                self.on_power_lost(now, source, &error, &mut out);
                self.allocate_if_lowered(now, &before);
            }
            Input::ExternalLimit {
                source,
                scope,
                limit,
            } => {
                self.on_external_limit(now, source, scope, limit, &mut out);
                self.allocation_needed(now);
            }
            Input::BayCap { bay, cap_a } => {
                self.set_bay_cap(bay, cap_a);
                self.allocation_needed(now);
            }
            Input::OcppSiteLimit { limit_a } => {
                self.set_ocpp_site_limit(now, limit_a);
                self.allocation_needed(now);
            }
            Input::Timeout => self.on_timeout(now),
            Input::Tick => {
                self.poll_ota(now, &mut out);
                self.expire_parameter_requests(now);
                self.tick(now, &mut out);
                // Timeouts, refreshes and raises that became possible: once per cycle, as
                // it looks at every bay.
                let polled = self.sequencer.poll(now.mono_ms);
                self.writes.extend(polled);
            }
        }
        self.note_raises(now);
        self.deliver(&mut out);
        out
    }

    /// Counts refused input by kind (for `/metrics`); the runtime calls it too, for what it
    /// refuses outside any input (a full command queue).
    pub fn count_rejected(&mut self, kind: &str) {
        *self.rejected.entry(kind.to_owned()).or_insert(0) += 1;
    }

    /// Where a bay the configuration does not name hangs.
    fn placement_of_unconfigured(&self) -> Placement {
        match &self.settings.default_circuit {
            Some(circuit) => Placement::Placed(Some(circuit.clone())),
            None if self.topology.circuits().is_empty() => Placement::Placed(None),
            None => Placement::Unplaced,
        }
    }

    fn add_bay(
        &mut self,
        now: Now,
        mac: MacAddr,
        settings: BaySettings,
        placement: Placement,
    ) -> usize {
        let id = BayId(mac.topic_form().to_string());
        let total = self.stored_totals.get(&id).copied().unwrap_or(0);
        let bay = Bay::new(mac, settings, total);
        let groups = self.groups_of(&placement);
        self.sequencer.add_bay(wiring(&bay), &groups);
        let index = self.registry.push(BaySlot::new(bay, placement));
        if let Some(waiting) = self.waiting_settings.remove(&id) {
            for change in waiting {
                // Stored settings were valid when made; one above a lowered ceiling is
                // clamped (and saved so), one refused otherwise is reported.
                let out = self.restore_one(now, change);
                self.deferred.extend(out);
            }
        }
        index
    }

    /// The limit groups a bay belongs to: the site, its circuit and every circuit above it;
    /// every circuit for an unplaced bay.
    fn groups_of(&self, placement: &Placement) -> Vec<usize> {
        let circuit = match placement {
            Placement::Unplaced => return (0..=self.topology.circuits().len()).collect(),
            Placement::Placed(circuit) => circuit.as_deref(),
        };
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

    /// Removes an offline bay: its reservation is released and its index reused.
    fn forget(&mut self, index: usize) {
        self.sequencer.remove_bay(index);
        self.registry.swap_remove(index);
    }

    /// Turns the sequencer's reservation changes and parameter writes into outputs: the
    /// reservations first, so the runtime can put a raised one on disk before the write
    /// that raised it goes out.
    pub(super) fn deliver(&mut self, out: &mut Vec<Output>) {
        out.append(&mut self.deferred);
        for (index, load, raised) in self.sequencer.take_reservation_changes() {
            if let Some(slot) = self.registry.get(index) {
                out.push(Output::SaveReservation {
                    bay: slot.bay.id.clone(),
                    load: load.0,
                    raised,
                });
            }
        }
        self.traffic.setpoint_writes += self.writes.len() as u64;
        for write in std::mem::take(&mut self.writes) {
            let Some(slot) = self.registry.get(write.bay) else {
                continue;
            };
            let mut par = ParName::new();
            // Parameter names are short constants; they always fit.
            let _ = par.push_str(write.par.name());
            out.push(Output::Send {
                dst: Address::Node(slot.bay.mac),
                cmd: Command::AvrSetPar {
                    par,
                    val: write.value,
                },
            });
        }
    }
}

/// How a bay's setpoints load the site's phases, for the sequencer. Every bay phase counts:
/// the reservation narrows to fewer phases only through a `phases` write the node confirmed
/// (the allocator writes the phases a car was seen drawing on), never on evidence alone; a
/// 3-phase car that shows one phase for a while may load all three again at any moment.
fn wiring(bay: &Bay) -> setpoint::BayWiring {
    setpoint::BayWiring {
        rotation: bay.settings.rotation,
        counted_phases: PhaseSet::ALL,
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

#[cfg(test)]
mod tests;
