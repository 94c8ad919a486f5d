//! Simulated bays for the end-to-end tests (feature `sim`): the in-process node simulator on
//! the test's broker, every bay with a car plugged in and a heartbeat every second.

use std::sync::{Arc, Mutex};

use crate::Mosquitto;
use ctrl22_node::mesh::MacAddr;
use ctrl22_node::sim::{self, Arrivals, BayTruth, SimConfig, SimWorld};

/// The running simulator; told to stop when dropped.
#[derive(Debug)]
pub struct Simulator {
    /// The bays' addresses, in the simulator's order.
    pub macs: Vec<MacAddr>,
    /// The same addresses in topic form (`d8a01d55a56c`).
    pub devs: Vec<String>,
    /// The world's ground truth after its latest step.
    truth: Arc<Mutex<Vec<BayTruth>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), sim::SimError>>>,
}

impl Simulator {
    /// `bays` bays of mesh `mesh` on `broker`, laid out by `seed`.
    #[must_use]
    pub fn start(broker: &Mosquitto, mesh: &str, bays: usize, seed: u64) -> Self {
        Self::start_with(broker, mesh, bays, seed, |_| {})
    }

    /// Like [`Simulator::start`], with `prepare` changing the world first (failures injected
    /// with [`SimWorld::set_ota_faults`], ...).
    #[must_use]
    pub fn start_with(
        broker: &Mosquitto,
        mesh: &str,
        bays: usize,
        seed: u64,
        prepare: impl FnOnce(&mut SimWorld),
    ) -> Self {
        Self::start_world(broker, mesh, bays, seed, 1_000, prepare)
    }

    /// Like [`Simulator::start_with`], every bay sending a heartbeat every `heartbeat_ms`
    /// (the firmware's `hbperiod`; energy tests use a short one, since the bridge counts
    /// the current of the last report until the next).
    #[must_use]
    pub fn start_world(
        broker: &Mosquitto,
        mesh: &str,
        bays: usize,
        seed: u64,
        heartbeat_ms: u32,
        prepare: impl FnOnce(&mut SimWorld),
    ) -> Self {
        let mut world = SimWorld::new(SimConfig {
            nodes: bays,
            seed,
            heartbeat_ms,
            speed: 1.0,
            arrivals: Arrivals::AllPlugged,
            mesh_id: mesh.to_owned(),
        });
        prepare(&mut world);
        let macs: Vec<MacAddr> = world.macs().collect();
        let devs = macs.iter().map(|m| m.topic_form().to_string()).collect();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let url = broker.url();
        let mesh = mesh.to_owned();
        let truth: Arc<Mutex<Vec<BayTruth>>> = Arc::new(Mutex::new(world.ground_truth().collect()));
        let latest = Arc::clone(&truth);
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            sim::run_mqtt_observed(world, &url, &mesh, 1.0, stopped, |world| {
                if let Ok(mut truth) = latest.lock() {
                    truth.clear();
                    truth.extend(world.ground_truth());
                }
            })
            .await
        });
        Self {
            macs,
            devs,
            truth,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// What every bay has applied and drawn so far ([`SimWorld::ground_truth`]), root first.
    #[must_use]
    pub fn ground_truth(&self) -> Vec<BayTruth> {
        self.truth.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Stops the simulator and waits until it has disconnected.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
