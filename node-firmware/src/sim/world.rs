//! The whole simulated site, sans-IO: every bay's charge controller, its car, its mesh node
//! (heartbeats, command handling, restarts, AVR OTA) and the mesh tree, advanced by
//! [`SimWorld::step`] and addressed by [`SimWorld::handle_command`] with a simulated clock.
//!
//! Each bay starts like a freshly flashed AVR: the controller's [`Config::default`], i.e.
//! `smaxcur` 0 (nothing is offered until a host allocates), `phases` 123, `wdtsec` 60 and
//! `fsafecur` 0. Parameter commands go through the real serial line protocol
//! ([`crate::line::serve`]) as on the node, so the replies are the firmware's.

use core::fmt::Write as _;
use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ev::{Ev, EvDemand, EvSpec, EvSupply};
use super::meshtree::{MeshNode, MeshTree};
use super::{Arrivals, SimConfig};
use crate::controller::{ChargeController, Config, Inputs, LockCommand, Outputs};
use crate::line::{self, Reply};
use crate::mesh::{
    avr_chunk_crc, Address, Command, Heartbeat, MacAddr, NodeMessage, OtaState, ParName,
    StatusReply, SystemReply, TsyncReply,
};
use crate::pilot::{self, VehicleState};
use crate::Ccss;

/// The world advances in steps of at most this much simulated time, so the controller's
/// timers (0.5 s contactor delay and up) see every state they would on hardware.
const SUBSTEP_MS: u64 = 100;
/// A node reboots this long after `restart`, and is silent this long while booting.
const RESTART_DELAY_MS: u64 = 10_000;
const BOOT_MS: u64 = 3_000;
/// How long the root takes to fetch and distribute node firmware after `upgrade`.
const UPGRADE_MS: u64 = 60_000;
/// How long flashing the AVR takes before `running` / `halted` is reported.
const FLASH_MS: u64 = 5_000;
/// Largest AVR image a node buffers (the ATmega2560's flash).
const MAX_IMAGE_LEN: usize = 256 * 1024;
/// Node firmware and board the simulated nodes report.
const NODE_VERSION: &str = "3.4";
const NODE_BOARD: &str = "agccs12";
/// Random arrivals: share of bays with a car at start, stay and gap lengths.
const START_OCCUPANCY: f64 = 0.4;
const STAY_MS: core::ops::Range<u64> = 3_600_000..36_000_000;
const GAP_MS: core::ops::Range<u64> = 1_800_000..21_600_000;
/// State of charge (%) a car arrives with.
const ARRIVAL_SOC: core::ops::RangeInclusive<u8> = 10..=70;

/// Something a node does later.
#[derive(Clone, Debug)]
enum Scheduled {
    Reboot {
        version: Option<heapless::String<16>>,
    },
    /// Flashing the AVR finished: it restarts on the new image and reports `running`.
    Flashed,
}

/// When cars come and go at one bay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Visit {
    /// No car; the next one arrives at this time (`None`: never).
    Empty { arrival_ms: Option<u64> },
    /// A car is plugged in and leaves at this time (`None`: stays).
    Plugged { departure_ms: Option<u64> },
}

/// The ESP32 side of a bay.
#[derive(Clone, Debug)]
struct Node {
    boot_ms: u64,
    /// Silent (booting) until then.
    up_at_ms: u64,
    heartbeat_ms: u32,
    next_heartbeat_ms: u64,
    last_reported: Option<Ccss>,
    version: heapless::String<16>,
    /// AVR image being received after `avrota recimg`.
    image: Option<Vec<u8>>,
}

/// One bay: node, controller and the car behind it.
#[derive(Clone, Debug)]
struct Bay {
    node: Node,
    controller: ChargeController,
    /// What `save` put in EEPROM; a reset or a reflash starts from it.
    eeprom: Config,
    outputs: Outputs,
    inputs: Inputs,
    car: Option<Ev>,
    visit: Visit,
    rng: ChaCha8Rng,
}

/// N simulated bays behind one mesh root. Deterministic: the same [`SimConfig::seed`] and the
/// same calls give the same messages.
#[derive(Debug)]
pub struct SimWorld {
    config: SimConfig,
    mesh: MeshTree,
    bays: Vec<Bay>,
    by_mac: HashMap<MacAddr, usize>,
    scheduled: Vec<(u64, usize, Scheduled)>,
    now_ms: u64,
}

impl SimWorld {
    /// Builds the site at simulated time 0.
    #[must_use]
    pub fn new(config: SimConfig) -> Self {
        let mut mesh_rng = ChaCha8Rng::seed_from_u64(config.seed);
        mesh_rng.set_stream(u64::MAX);
        let mesh = MeshTree::generate(config.nodes, config.seed, &mut mesh_rng);
        let bays: Vec<Bay> = (0..config.nodes)
            .map(|index| Bay::new(&config, index))
            .collect();
        let by_mac = mesh
            .nodes()
            .iter()
            .enumerate()
            .map(|(index, node)| (node.mac, index))
            .collect();
        Self {
            config,
            mesh,
            bays,
            by_mac,
            scheduled: Vec::new(),
            now_ms: 0,
        }
    }

    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    #[must_use]
    pub fn mesh(&self) -> &MeshTree {
        &self.mesh
    }

    #[must_use]
    pub fn bay_count(&self) -> usize {
        self.bays.len()
    }

    /// The root node's MAC (the first bay); a world without bays answers the all-zero MAC.
    #[must_use]
    pub fn root_mac(&self) -> MacAddr {
        self.mesh.nodes().first().map_or(MacAddr([0; 6]), |n| n.mac)
    }

    /// Every bay's MAC, root first.
    pub fn macs(&self) -> impl Iterator<Item = MacAddr> + '_ {
        self.mesh.nodes().iter().map(|n| n.mac)
    }

    /// Simulated time of the last step.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Advances every bay to `now_ms` (in sub-steps of at most 100 ms) and returns what the
    /// nodes sent meanwhile: heartbeats (periodic and on every `ccss` change) and delayed
    /// replies. A `now_ms` in the past is treated as no time passing.
    pub fn step(&mut self, now_ms: u64) -> Vec<(MacAddr, NodeMessage)> {
        let mut out = Vec::new();
        while self.now_ms < now_ms {
            let t = now_ms.min(self.now_ms + SUBSTEP_MS);
            let dt_ms = t - self.now_ms;
            self.now_ms = t;
            self.run_scheduled(t, &mut out);
            for (bay, node) in self.bays.iter_mut().zip(self.mesh.nodes()) {
                if let Some(heartbeat) = bay.advance(t, dt_ms, node) {
                    out.push((node.mac, NodeMessage::Heartbeat(heartbeat)));
                }
            }
        }
        out
    }

    /// Delivers a command from the host to `dst` at `now_ms` and returns the immediate
    /// replies, exactly as the firmware sends them. Commands for unknown nodes or booting nodes
    /// get no reply, nor do malformed ones (the codec already dropped those).
    ///
    /// The bays are not advanced: what the command changes shows from the next
    /// [`Self::step`] on. A `now_ms` before the last step counts as the time of the last step.
    pub fn handle_command(
        &mut self,
        now_ms: u64,
        dst: &Address,
        cmd: &Command,
    ) -> Vec<(MacAddr, NodeMessage)> {
        let now_ms = now_ms.max(self.now_ms);
        let targets: Vec<usize> = match dst {
            Address::Broadcast => (0..self.bays.len()).collect(),
            Address::Root => (!self.bays.is_empty()).then_some(0).into_iter().collect(),
            Address::Node(mac) => self.by_mac.get(mac).copied().into_iter().collect(),
        };
        let mut out = Vec::new();
        for index in targets {
            let (Some(bay), Some(node)) = (self.bays.get_mut(index), self.mesh.nodes().get(index))
            else {
                continue;
            };
            if now_ms < bay.node.up_at_ms {
                continue;
            }
            if let Command::Upgrade { version, board } = cmd {
                if index == 0 {
                    self.schedule_upgrade(now_ms, version, board);
                }
                continue;
            }
            let size = self.mesh.size();
            let (reply, later) = bay.handle(now_ms, cmd, node, size);
            if let Some(reply) = reply {
                out.push((node.mac, reply));
            }
            if let Some((delay_ms, what)) = later {
                self.scheduled.push((now_ms + delay_ms, index, what));
            }
        }
        out
    }

    /// The car at bay `mac` leaves now and no other comes (the test's hand on the cable).
    /// `false` when there is no such bay or no car was plugged in.
    pub fn unplug(&mut self, mac: MacAddr) -> bool {
        let Some(bay) = self.by_mac.get(&mac).and_then(|&i| self.bays.get_mut(i)) else {
            return false;
        };
        let had_car = bay.car.take().is_some();
        bay.visit = Visit::Empty { arrival_ms: None };
        had_car
    }

    /// A new car (random, from the bay's seed) arrives at bay `mac` now and stays. `false` when
    /// there is no such bay or a car is already plugged in.
    pub fn plug(&mut self, mac: MacAddr) -> bool {
        let Some(bay) = self.by_mac.get(&mac).and_then(|&i| self.bays.get_mut(i)) else {
            return false;
        };
        if bay.car.is_some() {
            return false;
        }
        bay.car = Some(arriving_car(&mut bay.rng));
        bay.visit = Visit::Plugged { departure_ms: None };
        true
    }

    /// The root fetches the image (the simulated firmware server always has it) and every
    /// node of that board reboots into it.
    fn schedule_upgrade(&mut self, now_ms: u64, version: &heapless::String<16>, board: &str) {
        if board != NODE_BOARD {
            return;
        }
        for index in 0..self.bays.len() {
            self.scheduled.push((
                now_ms + UPGRADE_MS,
                index,
                Scheduled::Reboot {
                    version: Some(version.clone()),
                },
            ));
        }
    }

    fn run_scheduled(&mut self, now_ms: u64, out: &mut Vec<(MacAddr, NodeMessage)>) {
        if self.scheduled.iter().all(|(due, _, _)| *due > now_ms) {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = core::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|(due, _, _)| *due <= now_ms);
        self.scheduled = later;
        for (_, index, what) in due {
            let (Some(bay), Some(node)) = (self.bays.get_mut(index), self.mesh.nodes().get(index))
            else {
                continue;
            };
            match what {
                Scheduled::Reboot { version } => bay.reboot_node(now_ms, version, &self.config),
                Scheduled::Flashed => {
                    bay.restart_avr();
                    out.push((
                        node.mac,
                        NodeMessage::AvrOta {
                            state: OtaState::Running,
                        },
                    ));
                }
            }
        }
    }
}

impl Bay {
    fn new(config: &SimConfig, index: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(index as u64);
        let (car, visit) = match config.arrivals {
            Arrivals::AllPlugged => (
                Some(arriving_car(&mut rng)),
                Visit::Plugged { departure_ms: None },
            ),
            Arrivals::None => (None, Visit::Empty { arrival_ms: None }),
            Arrivals::Random if rng.gen_bool(START_OCCUPANCY) => (
                Some(arriving_car(&mut rng)),
                Visit::Plugged {
                    departure_ms: Some(rng.gen_range(0..STAY_MS.end)),
                },
            ),
            Arrivals::Random => (
                None,
                Visit::Empty {
                    arrival_ms: Some(rng.gen_range(0..GAP_MS.end)),
                },
            ),
        };
        let heartbeat_ms = config.heartbeat_ms;
        let mut version = heapless::String::new();
        let _ = version.push_str(NODE_VERSION);
        let eeprom = Config::default();
        Self {
            node: Node {
                boot_ms: 0,
                up_at_ms: 0,
                heartbeat_ms,
                // Staggered, so that a large mesh does not report in lockstep.
                next_heartbeat_ms: rng.gen_range(0..u64::from(heartbeat_ms).max(1)),
                last_reported: None,
                version,
                image: None,
            },
            controller: ChargeController::new(eeprom),
            eeprom,
            outputs: Outputs::default(),
            inputs: Inputs::default(),
            car,
            visit,
            rng,
        }
    }

    /// One sub-step: cars come and go, the car reacts to the last outputs, the controller
    /// reacts to the car. Returns a heartbeat when one is due.
    fn advance(&mut self, now_ms: u64, dt_ms: u64, mesh: &MeshNode) -> Option<Heartbeat> {
        self.update_visit(now_ms);
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
        self.heartbeat_if_due(now_ms, mesh)
    }

    fn update_visit(&mut self, now_ms: u64) {
        match self.visit {
            Visit::Plugged {
                departure_ms: Some(at),
            } if at <= now_ms => {
                self.car = None;
                self.visit = Visit::Empty {
                    arrival_ms: Some(now_ms + self.rng.gen_range(GAP_MS)),
                };
            }
            Visit::Empty {
                arrival_ms: Some(at),
            } if at <= now_ms => {
                self.car = Some(arriving_car(&mut self.rng));
                self.visit = Visit::Plugged {
                    departure_ms: Some(now_ms + self.rng.gen_range(STAY_MS)),
                };
            }
            _ => {}
        }
    }

    fn heartbeat_if_due(&mut self, now_ms: u64, mesh: &MeshNode) -> Option<Heartbeat> {
        let node = &mut self.node;
        if now_ms < node.up_at_ms {
            return None;
        }
        let changed = node.last_reported != Some(self.outputs.ccss);
        let periodic = node.heartbeat_ms > 0 && now_ms >= node.next_heartbeat_ms;
        if periodic {
            let period = u64::from(node.heartbeat_ms);
            node.next_heartbeat_ms = (node.next_heartbeat_ms + period).max(now_ms + 1);
        }
        if !(changed || periodic) {
            return None;
        }
        node.last_reported = Some(self.outputs.ccss);
        Some(Heartbeat {
            rssi: mesh.rssi_dbm + self.rng.gen_range(-2..=2),
            ccss: self.outputs.ccss,
            amaxcur: self.outputs.offered,
            cmaxcur: pilot::cmaxcur(self.inputs.pp_ohms),
            aphases: self.outputs.contactors,
            cur: self.inputs.currents,
        })
    }

    /// Handles a command addressed to this node: the immediate reply and what happens later.
    fn handle(
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
                time_ms: self.uptime_ms(now_ms),
                version: self.node.version.clone(),
                board: board(),
                avrver: self.read_par(now_ms, "ver").unwrap_or(0),
            }),
            Command::Tsync => {
                let t = self.uptime_ms(now_ms);
                NodeMessage::Tsync(TsyncReply {
                    tsync1: t,
                    tsync2: t,
                    tsync3: t.wrapping_add(1),
                })
            }
            Command::Restart => {
                return (
                    None,
                    Some((RESTART_DELAY_MS, Scheduled::Reboot { version: None })),
                )
            }
            Command::HbPeriod { period_ms } => {
                self.node.heartbeat_ms = *period_ms;
                self.node.next_heartbeat_ms = now_ms + u64::from(*period_ms);
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
            Command::AvrImg { addr, data, crc } => NodeMessage::AvrImg {
                addr: *addr,
                ok: self.receive_chunk(*addr, data, *crc),
            },
            Command::AvrOtaFlash { image_len } => {
                let complete = self.node.image.take().is_some_and(|image| {
                    !image.is_empty() && u32::try_from(image.len()).ok() == Some(*image_len)
                });
                if complete {
                    return (None, Some((FLASH_MS, Scheduled::Flashed)));
                }
                NodeMessage::AvrOta {
                    state: OtaState::Halted,
                }
            }
        };
        (Some(reply), None)
    }

    fn uptime_ms(&self, now_ms: u64) -> u32 {
        let wrapped =
            now_ms.saturating_sub(self.node.boot_ms) % u64::from(SystemReply::TIME_WRAP_MS);
        u32::try_from(wrapped).unwrap_or(0)
    }

    /// Stores a chunk if its CRC matches and it continues (or repeats a tail of) the image.
    fn receive_chunk(&mut self, addr: u32, data: &[u8], crc: i32) -> bool {
        let Some(image) = self.node.image.as_mut() else {
            return false;
        };
        let Ok(addr) = usize::try_from(addr) else {
            return false;
        };
        if avr_chunk_crc(data) != crc || addr > image.len() || addr + data.len() > MAX_IMAGE_LEN {
            return false;
        }
        image.truncate(addr);
        image.extend_from_slice(data);
        true
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

    fn reboot_node(
        &mut self,
        now_ms: u64,
        version: Option<heapless::String<16>>,
        config: &SimConfig,
    ) {
        self.node.boot_ms = now_ms;
        self.node.up_at_ms = now_ms + BOOT_MS;
        self.node.heartbeat_ms = config.heartbeat_ms;
        self.node.next_heartbeat_ms = now_ms + BOOT_MS;
        self.node.last_reported = None;
        self.node.image = None;
        if let Some(version) = version {
            self.node.version = version;
        }
    }

    /// The AVR restarts (soft reset or new image): a fresh controller from EEPROM. The car
    /// sees the contactors open at once.
    fn restart_avr(&mut self) {
        self.controller = ChargeController::new(self.eeprom);
        self.outputs = Outputs::default();
    }
}

fn arriving_car(rng: &mut ChaCha8Rng) -> Ev {
    let spec = EvSpec::random(rng);
    Ev::new(spec, rng.gen_range(ARRIVAL_SOC))
}

fn board() -> heapless::String<32> {
    let mut board = heapless::String::new();
    let _ = board.push_str(NODE_BOARD);
    board
}

/// Parameter names are short words; anything else would be a different line-protocol request
/// (an empty name reads as `?`, the dump).
fn is_par_name(par: &str) -> bool {
    !par.is_empty() && par.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sim::ev::OnboardCharger;
    use crate::{CcssGroup, Deciamps, PhaseSet};

    fn world(nodes: usize, arrivals: Arrivals) -> SimWorld {
        SimWorld::new(SimConfig {
            nodes,
            seed: 42,
            heartbeat_ms: 1_000,
            arrivals,
            ..SimConfig::default()
        })
    }

    fn set(world: &mut SimWorld, now_ms: u64, par: &str, val: i16) -> Vec<(MacAddr, NodeMessage)> {
        let cmd = Command::AvrSetPar {
            par: ParName::try_from(par).unwrap(),
            val,
        };
        world.handle_command(now_ms, &Address::Broadcast, &cmd)
    }

    fn last_heartbeats(out: &[(MacAddr, NodeMessage)]) -> HashMap<MacAddr, Heartbeat> {
        out.iter()
            .filter_map(|(mac, msg)| match msg {
                NodeMessage::Heartbeat(hb) => Some((*mac, *hb)),
                _ => None,
            })
            .collect()
    }

    /// Runs until `until_ms` with `smaxcur` re-written every second (a live host).
    fn run_fed(
        world: &mut SimWorld,
        from_ms: u64,
        until_ms: u64,
        smaxcur: i16,
    ) -> Vec<(MacAddr, NodeMessage)> {
        let mut out = Vec::new();
        for t in (from_ms..until_ms).step_by(1_000) {
            out.extend(world.step(t));
            set(world, t, "smaxcur", smaxcur);
        }
        out.extend(world.step(until_ms));
        out
    }

    fn picky_three_phase_car() -> Ev {
        Ev::new(
            EvSpec {
                battery_wh: 60_000,
                charger: OnboardCharger::ThreePhase,
                max_current: Deciamps::from_amps(16),
                cable: pilot::CableRating::A32,
                refuses_phase_change: true,
            },
            30,
        )
    }

    #[test]
    fn a_session_charges_under_the_setpoint_then_falls_back_to_fsafecur() {
        let mut world = world(3, Arrivals::AllPlugged);
        let replies = set(&mut world, 0, "smaxcur", 100);
        assert_eq!(replies.len(), 3);
        assert!(replies
            .iter()
            .all(|(_, m)| *m == NodeMessage::AvrSetPar { ok: true }));
        set(&mut world, 0, "wdtsec", 20);
        set(&mut world, 0, "fsafecur", 60);
        set(&mut world, 0, "opbutton", 1);
        let out = run_fed(&mut world, 0, 15_000, 100);
        let charging = last_heartbeats(&out);
        assert_eq!(charging.len(), 3);
        for hb in charging.values() {
            assert_eq!(hb.ccss.group(), CcssGroup::C, "{hb:?}");
            assert!(hb.amaxcur <= Deciamps(100));
            assert!(hb.cur.iter().all(|c| *c <= hb.amaxcur));
            assert!(hb.cur.iter().any(|c| c.get() > 50), "{hb:?}");
        }
        // The host goes silent: after wdtsec the bays offer fsafecur.
        let out = world.step(40_000);
        for hb in last_heartbeats(&out).values() {
            assert_eq!(hb.amaxcur, Deciamps(60), "{hb:?}");
            assert!(hb.cur.iter().all(|c| *c <= Deciamps(60)));
        }
    }

    #[test]
    fn a_refused_phase_set_ends_in_w9_and_the_old_set_resumes() {
        let mut world = world(1, Arrivals::None);
        if let Some(bay) = world.bays.first_mut() {
            bay.car = Some(picky_three_phase_car());
            bay.visit = Visit::Plugged { departure_ms: None };
        }
        set(&mut world, 0, "smaxcur", 160);
        set(&mut world, 0, "opbutton", 1);
        let out = run_fed(&mut world, 0, 20_000, 160);
        assert_eq!(
            last_heartbeats(&out).values().next().unwrap().ccss,
            Ccss::C3
        );
        set(&mut world, 20_000, "phases", 1);
        let out = run_fed(&mut world, 20_000, 80_000, 160);
        let states: Vec<Ccss> = last_heartbeats_in_order(&out);
        assert!(states.contains(&Ccss::W9), "{states:?}");
        set(&mut world, 80_000, "phases", 123);
        let out = run_fed(&mut world, 80_000, 120_000, 160);
        let hb = last_heartbeats(&out).into_values().next().unwrap();
        assert_eq!(hb.ccss.group(), CcssGroup::C, "{hb:?}");
        assert_eq!(hb.aphases, PhaseSet::ALL);
    }

    fn last_heartbeats_in_order(out: &[(MacAddr, NodeMessage)]) -> Vec<Ccss> {
        out.iter()
            .filter_map(|(_, msg)| match msg {
                NodeMessage::Heartbeat(hb) => Some(hb.ccss),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_unplugged_car_stops_drawing_and_a_plugged_one_waits_in_a() {
        let mut world = world(2, Arrivals::AllPlugged);
        let mac = world.root_mac();
        set(&mut world, 0, "opbutton", 1);
        run_fed(&mut world, 0, 15_000, 100);
        assert!(world.unplug(mac));
        assert!(!world.unplug(mac), "nothing left to unplug");
        let out = run_fed(&mut world, 15_000, 20_000, 100);
        let hb = last_heartbeats(&out)[&mac];
        assert!(hb.cur.iter().all(|c| c.get() == 0), "{hb:?}");
        assert_eq!(hb.cmaxcur, Deciamps(-1), "no cable: {hb:?}");
        assert!(world.plug(mac));
        assert!(!world.plug(mac), "already plugged");
        assert!(!world.unplug(MacAddr([9; 6])));
        let out = run_fed(&mut world, 20_000, 25_000, 100);
        assert!(last_heartbeats(&out)[&mac].cmaxcur.get() > 0);
    }

    #[test]
    fn parameters_go_through_the_line_protocol() {
        let mut world = world(2, Arrivals::None);
        let root = world.root_mac();
        let get = |world: &mut SimWorld, par: &str| {
            world.handle_command(
                0,
                &Address::Root,
                &Command::AvrGetPar {
                    par: ParName::try_from(par).unwrap(),
                },
            )
        };
        let ver = get(&mut world, "ver");
        assert_eq!(
            ver,
            vec![(
                root,
                NodeMessage::AvrGetPar {
                    par: ParName::try_from("ver").unwrap(),
                    val: Some(crate::controller::FIRMWARE_VERSION)
                }
            )]
        );
        let unknown = get(&mut world, "nosuch");
        assert!(matches!(
            unknown[0].1,
            NodeMessage::AvrGetPar { val: None, .. }
        ));
        let dump = get(&mut world, "");
        assert!(matches!(
            dump[0].1,
            NodeMessage::AvrGetPar { val: None, .. }
        ));
        // Read-only parameters and out-of-range values fail.
        assert_eq!(
            set(&mut world, 0, "ccss", 3)[0].1,
            NodeMessage::AvrSetPar { ok: false }
        );
        assert_eq!(
            set(&mut world, 0, "phases", 4)[0].1,
            NodeMessage::AvrSetPar { ok: false }
        );
    }

    #[test]
    fn restart_silences_a_node_and_hbperiod_changes_its_rate() {
        let mut world = world(1, Arrivals::None);
        let mac = world.root_mac();
        world.handle_command(
            0,
            &Address::Node(mac),
            &Command::HbPeriod { period_ms: 200 },
        );
        let out = world.step(2_000);
        assert!(last_heartbeats_in_order(&out).len() >= 9);
        assert!(world
            .handle_command(2_000, &Address::Root, &Command::Restart)
            .is_empty());
        let out = world.step(12_500);
        let silent = world.step(14_000);
        assert!(!out.is_empty());
        assert!(silent.is_empty(), "booting node is silent");
        assert!(world
            .handle_command(14_000, &Address::Root, &Command::Status)
            .is_empty());
        let back = world.step(20_000);
        // After the reboot the configured period (1 s) applies again.
        assert!((5..=8).contains(&last_heartbeats_in_order(&back).len()));
        let system = world.handle_command(20_000, &Address::Root, &Command::System);
        assert!(matches!(&system[0].1, NodeMessage::System(s) if s.time_ms == 8_000));
    }

    #[test]
    fn upgrade_reboots_every_node_of_the_board_into_the_new_version() {
        let mut world = world(3, Arrivals::None);
        let upgrade = |board: &str| Command::Upgrade {
            version: heapless::String::try_from("3.5").unwrap(),
            board: heapless::String::try_from(board).unwrap(),
        };
        assert!(world
            .handle_command(0, &Address::Root, &upgrade("m5stick"))
            .is_empty());
        assert!(world
            .handle_command(0, &Address::Root, &upgrade(NODE_BOARD))
            .is_empty());
        world.step(70_000);
        let systems = world.handle_command(70_000, &Address::Broadcast, &Command::System);
        assert_eq!(systems.len(), 3);
        for (_, msg) in systems {
            let NodeMessage::System(system) = msg else {
                panic!("{msg:?}")
            };
            assert_eq!(system.version.as_str(), "3.5");
            assert_eq!(system.time_ms, 10_000, "rebooted at 60 s");
        }
    }
}
