//! One simulated bay: its ESP32 node, the real AVR charge controller and the car behind it,
//! and how a mesh command reaches them (parameters go through the serial line protocol,
//! [`crate::line::serve`], as on the node, so the replies are the firmware's).

use core::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arrivals::Visit;
use super::ev::{Ev, EvDemand, EvSupply};
use super::meshtree::MeshNode;
use super::node::{self, Node, Scheduled};
use super::ota::{self, ChunkFate, OtaFaults};
use super::SimConfig;
use crate::controller::{ChargeController, Config, Inputs, LockCommand, Outputs};
use crate::line::{self, Reply};
use crate::mesh::{
    Command, Heartbeat, MacAddr, NodeMessage, OtaState, ParName, StatusReply, SystemReply,
    TsyncReply,
};
use crate::pilot::{self, VehicleState};
use crate::{Ccss, Deciamps, PhaseSet};

/// What one bay has applied and what its car draws, read straight from the simulation (not
/// from what the node reports): the ground truth an independent safety check holds the host
/// to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BayTruth {
    pub mac: MacAddr,
    /// The `smaxcur` register: the last setpoint written.
    pub smaxcur: Deciamps,
    /// The `fsafecur` register: the watchdog's fallback.
    pub fsafecur: Deciamps,
    /// The `wdtsec` register; zero disables the watchdog.
    pub wdtsec: i16,
    /// The watchdog ran out: the bay acts on `min(smaxcur, fsafecur)`.
    pub watchdog_expired: bool,
    /// The `phases` register: the phases the contactors may close.
    pub phases: PhaseSet,
    /// The current the controller may offer now whatever car comes (the watchdog's view of
    /// the setpoint, capped by what the pilot can signal), before the cable's cap.
    pub allowed: Deciamps,
    /// The current the pilot signals right now (`amaxcur`); zero = no PWM.
    pub offered: Deciamps,
    /// Phases whose contactors are closed.
    pub contactors: PhaseSet,
    /// What the car draws per bay phase.
    pub draw: [Deciamps; 3],
    /// The plugged cable's capacity; `None` without a cable.
    pub cable: Option<Deciamps>,
    /// The bay phases the plugged car's charger can draw on; `None` without a car.
    pub car_phases: Option<PhaseSet>,
    pub ccss: Ccss,
    /// Charge the car drew since the world started, summed over the bay's phases, in
    /// deciamp-milliseconds: times the voltage, the energy a perfect meter would show.
    pub delivered_deciamp_ms: u64,
}

/// One bay: node, controller and the car behind it.
#[derive(Clone, Debug)]
pub(super) struct Bay {
    pub(super) node: Node,
    controller: ChargeController,
    /// What `save` put in EEPROM; a reset or a reflash starts from it.
    eeprom: Config,
    outputs: Outputs,
    inputs: Inputs,
    pub(super) car: Option<Ev>,
    pub(super) visit: Visit,
    pub(super) rng: ChaCha8Rng,
    /// Failures a test injected into AVR updates.
    pub(super) ota_faults: OtaFaults,
    /// `avrimg` chunks received so far (what the faults count).
    chunks_received: u32,
    /// The `ver` of a flashed image that says; the controller's own otherwise.
    pub(super) avr_version: Option<i16>,
    /// See [`BayTruth::delivered_deciamp_ms`].
    delivered_deciamp_ms: u64,
}

impl Bay {
    /// Bay `index` as a freshly flashed AVR: the controller's [`Config::default`], i.e.
    /// `smaxcur` 0 (nothing is offered until a host allocates), `phases` 123, `wdtsec` 60
    /// and `fsafecur` 0.
    pub(super) fn new(config: &SimConfig, index: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(index as u64);
        let (car, visit) = Visit::first(config.arrivals, &mut rng);
        let node = Node::new(config.heartbeat_ms, &mut rng);
        let eeprom = Config::default();
        Self {
            node,
            controller: ChargeController::new(eeprom),
            eeprom,
            outputs: Outputs::default(),
            inputs: Inputs::default(),
            car,
            visit,
            rng,
            ota_faults: OtaFaults::default(),
            chunks_received: 0,
            avr_version: None,
            delivered_deciamp_ms: 0,
        }
    }

    /// One sub-step: cars come and go, the car reacts to the last outputs, the controller
    /// reacts to the car. Returns a heartbeat when one is due.
    pub(super) fn advance(
        &mut self,
        now_ms: u64,
        dt_ms: u64,
        mesh: &MeshNode,
    ) -> Option<Heartbeat> {
        self.visit.advance(now_ms, &mut self.car, &mut self.rng);
        let supply = EvSupply {
            offered: self.outputs.offered,
            energized: self.outputs.contactors,
        };
        let (vehicle, cable, demand) = match self.car.as_mut() {
            Some(car) => {
                let demand = car.step(dt_ms, supply, &mut self.rng);
                let vehicle = if demand.ready {
                    VehicleState::C
                } else {
                    VehicleState::B
                };
                (vehicle, Some(car.spec().cable), demand)
            }
            None => (VehicleState::A, None, EvDemand::default()),
        };
        let deciamps: u64 = demand
            .draw
            .iter()
            .map(|c| u64::from(c.get().max(0).unsigned_abs()))
            .sum();
        self.delivered_deciamp_ms = self
            .delivered_deciamp_ms
            .saturating_add(deciamps.saturating_mul(dt_ms));
        self.inputs = Inputs {
            currents: demand.draw,
            // The lock motor is quick; the controller allows it 3 s.
            lock_closed: self.outputs.lock == LockCommand::Closed,
            ..Inputs::default()
        }
        .with_vehicle(vehicle)
        .with_cable(cable);
        self.outputs = self.controller.step(now_ms, &self.inputs);
        if self.outputs.save_config {
            self.eeprom = self.controller.config();
        }
        if self.outputs.soft_reset {
            self.restart_avr();
        }
        self.node.heartbeat_if_due(
            now_ms,
            &self.outputs,
            self.inputs.pp_ohms,
            self.inputs.currents,
            mesh,
            &mut self.rng,
        )
    }

    /// The bay as it is at `now_ms` (the time of the last step).
    pub(super) fn truth(&self, now_ms: u64, mac: MacAddr) -> BayTruth {
        let watchdog = self.controller.watchdog();
        let smaxcur = self.controller.smaxcur();
        let cable = pilot::cmaxcur(self.inputs.pp_ohms);
        BayTruth {
            mac,
            smaxcur,
            fsafecur: watchdog.fail_safe(),
            wdtsec: watchdog.timeout_s(),
            watchdog_expired: watchdog.expired(now_ms),
            phases: self.controller.phases(),
            allowed: watchdog
                .effective(now_ms, smaxcur)
                .min(pilot::MAX_SIGNALLED),
            offered: self.outputs.offered,
            contactors: self.outputs.contactors,
            draw: self.inputs.currents,
            cable: (cable.get() > 0).then_some(cable),
            car_phases: self.car.as_ref().map(|car| car.spec().charger.phases()),
            ccss: self.outputs.ccss,
            delivered_deciamp_ms: self.delivered_deciamp_ms,
        }
    }

    /// Handles a command addressed to this node: the immediate reply and what happens later.
    pub(super) fn handle(
        &mut self,
        now_ms: u64,
        cmd: &Command,
        mesh: &MeshNode,
        mesh_size: u16,
    ) -> (Option<NodeMessage>, Option<(u64, Scheduled)>) {
        let reply = match cmd {
            Command::Status => NodeMessage::Status(StatusReply {
                parent: mesh.parent,
                rssi: mesh.rssi_dbm + self.rng.gen_range(-2..=2),
                layer: mesh.layer,
                nodes: mesh_size,
                plat: mesh.plat_ms,
            }),
            Command::System => NodeMessage::System(SystemReply {
                time_ms: self.node.uptime_ms(now_ms),
                version: self.node.version.clone(),
                board: self.node.board.clone(),
                avrver: self.read_par(now_ms, "ver").unwrap_or(0),
            }),
            Command::Tsync => {
                let t = self.node.uptime_ms(now_ms);
                NodeMessage::Tsync(TsyncReply {
                    tsync1: t,
                    tsync2: t,
                    tsync3: t.wrapping_add(1),
                })
            }
            Command::Restart => {
                return (
                    None,
                    Some((node::RESTART_DELAY_MS, Scheduled::Reboot { version: None })),
                )
            }
            Command::HbPeriod { period_ms } => {
                self.node.set_heartbeat_period(now_ms, *period_ms);
                return (None, None);
            }
            Command::AvrSetPar { par, val } => NodeMessage::AvrSetPar {
                ok: self.write_par(now_ms, par, *val),
            },
            Command::AvrGetPar { par } => NodeMessage::AvrGetPar {
                par: par.clone(),
                val: self.read_par(now_ms, par),
            },
            // Only the root acts on `upgrade`; see `SimWorld::schedule_upgrade`.
            Command::Upgrade { .. } => return (None, None),
            Command::AvrOtaRecImg => {
                self.node.image = Some(Vec::new());
                NodeMessage::AvrOta {
                    state: OtaState::RecImg,
                }
            }
            Command::AvrImg { addr, data, crc } => {
                self.chunks_received = self.chunks_received.saturating_add(1);
                let ok = match self.ota_faults.fate(self.chunks_received) {
                    ChunkFate::Delivered => self.node.receive_chunk(*addr, data, *crc),
                    ChunkFate::Corrupted => false,
                    ChunkFate::Lost => return (None, None),
                    ChunkFate::DropOff => {
                        return (None, Some((0, Scheduled::Reboot { version: None })));
                    }
                };
                NodeMessage::AvrImg { addr: *addr, ok }
            }
            Command::AvrOtaFlash { image_len } => {
                let image = self.node.image.take().filter(|image| {
                    !image.is_empty() && u32::try_from(image.len()).ok() == Some(*image_len)
                });
                let board = self.node.board.clone();
                if let Some(image) = image.filter(|i| !ota::wrong_board(i, &board)) {
                    let version = ota::image_version(&image);
                    return (None, Some((node::FLASH_MS, Scheduled::Flashed { version })));
                }
                NodeMessage::AvrOta {
                    state: OtaState::Halted,
                }
            }
        };
        (Some(reply), None)
    }

    /// `par=val` over the serial line; `ok` when the controller echoes the parameter.
    fn write_par(&mut self, now_ms: u64, par: &ParName, val: i16) -> bool {
        let mut request: heapless::String<48> = heapless::String::new();
        if !is_par_name(par) || write!(request, "{par}={val}").is_err() {
            return false;
        }
        matches!(self.serial(now_ms, &request), Some(Reply::Value(..)))
    }

    /// `par?` over the serial line.
    fn read_par(&mut self, now_ms: u64, par: &str) -> Option<i16> {
        if let Some(version) = self.avr_version.filter(|_| par == "ver") {
            return Some(version);
        }
        let mut request: heapless::String<48> = heapless::String::new();
        if !is_par_name(par) || write!(request, "{par}?").is_err() {
            return None;
        }
        match self.serial(now_ms, &request)? {
            Reply::Value(_, value) => Some(value),
            _ => None,
        }
    }

    /// One request line to the controller and its reply line.
    fn serial(&mut self, now_ms: u64, request: &str) -> Option<Reply> {
        let mut reply: heapless::String<128> = heapless::String::new();
        line::serve(&mut self.controller, now_ms, request.as_bytes(), &mut reply).ok()?;
        line::parse_reply(reply.as_bytes()).ok().flatten()
    }

    /// The AVR restarts (soft reset or new image): a fresh controller from EEPROM. The car
    /// sees the contactors open at once.
    pub(super) fn restart_avr(&mut self) {
        self.controller = ChargeController::new(self.eeprom);
        self.outputs = Outputs::default();
    }
}

/// Parameter names are short words; anything else would be a different line-protocol request
/// (an empty name reads as `?`, the dump).
fn is_par_name(par: &str) -> bool {
    !par.is_empty() && par.bytes().all(|b| b.is_ascii_alphanumeric())
}
