//! The whole simulated site, sans-IO: every bay ([`super::bay`]) and the mesh tree,
//! advanced by [`SimWorld::step`] and addressed by [`SimWorld::handle_command`] with a
//! simulated clock; commands for later (reboots, flashing) wait in a schedule here.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::arrivals::{arriving_car, Visit};
use super::bay::{Bay, BayTruth};
use super::fw_fetch::Fetch;
use super::meshtree::MeshTree;
use super::node::{Scheduled, UPGRADE_AFTER_FETCH_MS, UPGRADE_MS, UPGRADE_STAGGER_MS};
use super::SimConfig;
use crate::mesh::{Address, Command, MacAddr, NodeMessage, OtaState};

/// The world advances in steps of at most this much simulated time, so the controller's
/// timers (0.5 s contactor delay and up) see every state they would on hardware.
const SUBSTEP_MS: u64 = 100;

/// N simulated bays behind one mesh root. Deterministic: the same [`SimConfig::seed`] and the
/// same calls give the same messages.
#[derive(Debug)]
pub struct SimWorld {
    config: SimConfig,
    mesh: MeshTree,
    bays: Vec<Bay>,
    by_mac: HashMap<MacAddr, usize>,
    scheduled: Vec<(u64, usize, Scheduled)>,
    /// Bays whose radio link is down until this simulated time (a fault a test injected).
    link_down_until_ms: HashMap<usize, u64>,
    now_ms: u64,
    /// Where the root downloads ESP32 firmware (`host:port`); none: it always has it.
    fw_server: Option<String>,
    fetches: Vec<Fetch>,
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
            link_down_until_ms: HashMap::new(),
            now_ms: 0,
            fw_server: None,
            fetches: Vec::new(),
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

    /// What every bay has applied and what its car draws right now, root first: the
    /// simulation's ground truth, for checks that must not trust the nodes' reports.
    pub fn ground_truth(&self) -> impl Iterator<Item = BayTruth> + '_ {
        self.bays
            .iter()
            .zip(self.mesh.nodes())
            .map(|(bay, node)| bay.truth(self.now_ms, node.mac))
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
        self.poll_fetches(now_ms.max(self.now_ms));
        while self.now_ms < now_ms {
            let t = now_ms.min(self.now_ms + SUBSTEP_MS);
            let dt_ms = t - self.now_ms;
            self.now_ms = t;
            let from = out.len();
            self.run_scheduled(t, &mut out);
            for (bay, node) in self.bays.iter_mut().zip(self.mesh.nodes()) {
                if let Some(heartbeat) = bay.advance(t, dt_ms, node) {
                    out.push((node.mac, NodeMessage::Heartbeat(heartbeat)));
                }
            }
            if !self.link_down_until_ms.is_empty() {
                let sent = out.split_off(from);
                out.extend(sent.into_iter().filter(|(mac, _)| !self.link_down(*mac)));
                self.link_down_until_ms.retain(|_, until| *until > t);
            }
        }
        out
    }

    /// Cuts bay `mac`'s radio link for `duration_ms` from the last step on: what it sends
    /// is lost and commands do not reach it, while the bay itself runs on (its car charges,
    /// its watchdog counts). `false` when there is no such bay.
    pub fn drop_link(&mut self, mac: MacAddr, duration_ms: u64) -> bool {
        let Some(&index) = self.by_mac.get(&mac) else {
            return false;
        };
        self.link_down_until_ms
            .insert(index, self.now_ms.saturating_add(duration_ms));
        true
    }

    fn link_down(&self, mac: MacAddr) -> bool {
        self.by_mac.get(&mac).is_some_and(|index| {
            self.link_down_until_ms
                .get(index)
                .is_some_and(|&until| until > self.now_ms)
        })
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
            if !bay.node.is_up(now_ms)
                || self
                    .link_down_until_ms
                    .get(&index)
                    .is_some_and(|&until| until > now_ms)
            {
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

    /// Injects failures into the AVR updates of bay `mac`; `false` when there is no such bay.
    pub fn set_ota_faults(&mut self, mac: MacAddr, faults: super::OtaFaults) -> bool {
        let Some(bay) = self.by_mac.get(&mac).and_then(|&i| self.bays.get_mut(i)) else {
            return false;
        };
        bay.ota_faults = faults;
        true
    }

    /// Makes bay `mac` report `board` in `system` (a site of mixed boards); `false` when
    /// there is no such bay or the name is too long.
    pub fn set_board(&mut self, mac: MacAddr, board: &str) -> bool {
        let Some(bay) = self.by_mac.get(&mac).and_then(|&i| self.bays.get_mut(i)) else {
            return false;
        };
        match heapless::String::try_from(board) {
            Ok(board) => {
                bay.node.board = board;
                true
            }
            Err(_) => false,
        }
    }

    /// The root downloads ESP32 firmware over HTTP from `server` (`host:port`, the bridge's
    /// image server) after an `upgrade`; `None`: it always has the image, after
    /// [`UPGRADE_MS`].
    pub fn set_fw_server(&mut self, server: Option<String>) {
        self.fw_server = server;
    }

    /// The root gets the image and every node of that board reboots into it, except those
    /// that refuse it ([`super::OtaFaults::refuses_esp32_upgrade`]).
    fn schedule_upgrade(&mut self, now_ms: u64, version: &heapless::String<16>, board: &str) {
        match &self.fw_server {
            Some(server) => {
                // One upgrade at a time, as on the real root.
                if self.fetches.is_empty() {
                    self.fetches.push(Fetch::start(server, board, version));
                }
            }
            None => self.distribute(now_ms + UPGRADE_MS, 0, version, board),
        }
    }

    /// The nodes of `board` reboot into `version` from `first_ms` on, `stagger_ms` apart.
    fn distribute(
        &mut self,
        first_ms: u64,
        stagger_ms: u64,
        version: &heapless::String<16>,
        board: &str,
    ) {
        let mut at_ms = first_ms;
        for (index, bay) in self.bays.iter().enumerate() {
            if bay.node.board.as_str() != board || bay.ota_faults.refuses_esp32_upgrade {
                continue;
            }
            self.scheduled.push((
                at_ms,
                index,
                Scheduled::Reboot {
                    version: Some(version.clone()),
                },
            ));
            at_ms += stagger_ms;
        }
    }

    /// Downloads that finished: the image goes to the board's nodes, or nowhere.
    fn poll_fetches(&mut self, now_ms: u64) {
        let mut finished = Vec::new();
        self.fetches.retain(|fetch| match fetch.poll() {
            Some(result) => {
                finished.push((fetch.board.clone(), fetch.version.clone(), result));
                false
            }
            None => true,
        });
        for (board, version, result) in finished {
            match result {
                Ok(bytes) => {
                    tracing::info!(%board, %version, bytes, "root: firmware downloaded");
                    self.distribute(
                        now_ms + UPGRADE_AFTER_FETCH_MS,
                        UPGRADE_STAGGER_MS,
                        &version,
                        &board,
                    );
                }
                Err(e) => tracing::warn!(%board, %version, "root: upgrade failed: {e}"),
            }
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
                Scheduled::Reboot { version } => {
                    bay.node.reboot(now_ms, version, self.config.heartbeat_ms);
                }
                Scheduled::Flashed { version } => {
                    bay.restart_avr();
                    if version.is_some() {
                        bay.avr_version = version;
                    }
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

#[cfg(test)]
mod tests;
