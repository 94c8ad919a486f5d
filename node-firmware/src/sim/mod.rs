//! The bay simulator: N charging bays, each running the real [`crate::controller`] state
//! machine with a simulated car ([`ev`]) behind it, joined in a simulated mesh ([`meshtree`])
//! whose root talks to a host over MQTT ([`run_mqtt`]) or the plain TCP uplink
//! ([`run_tcp`]), byte for byte like the firmware.
//!
//! [`SimWorld`] holds every decision and is sans-IO: it is driven by `step(now_ms)` and
//! `handle_command(now_ms, ..)` with a simulated clock and is fully deterministic for a seed.
//! The drivers only own the socket and the wall clock. [`SimWorld::ground_truth`] shows what
//! every bay has applied and what its car draws, for checks that must not trust the reports. The `ctrl22-node-sim` binary and the
//! bridge's `demo` command both run a [`SimWorld`] through these drivers:
//!
//! ```no_run
//! # async fn demo() -> Result<(), ctrl22_node::sim::SimError> {
//! use ctrl22_node::sim::{run_mqtt, Arrivals, SimConfig, SimWorld};
//! let config = SimConfig { nodes: 20, arrivals: Arrivals::AllPlugged, ..SimConfig::default() };
//! let world = SimWorld::new(config.clone());
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! run_mqtt(world, "mqtt://127.0.0.1:1883", &config.mesh_id, config.speed, shutdown).await
//! # }
//! ```
//!
//! This module never allocates current among bays; whatever allocates must be the host.

mod arrivals;
mod bay;
mod clock;
pub mod ev;
mod fw_fetch;
pub mod meshtree;
mod node;
mod ota;
mod uplink_mqtt;
mod uplink_tcp;
mod world;

use core::fmt;

pub use arrivals::{Arrivals, UnknownArrivals};
pub use bay::BayTruth;
pub use ota::OtaFaults;
pub use uplink_mqtt::{run_mqtt, run_mqtt_observed};
pub use uplink_tcp::run_tcp;
pub use world::SimWorld;

/// Everything that shapes a simulated site.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of bays (= mesh nodes; node 0 is the root).
    pub nodes: usize,
    /// Seed of every random choice: MACs, cars, arrivals, link quality.
    pub seed: u64,
    /// Heartbeat period of every node at boot (the firmware's `hbperiod`), ms.
    pub heartbeat_ms: u32,
    /// Simulated time runs this many times faster than wall time (drivers only).
    pub speed: f64,
    pub arrivals: Arrivals,
    /// Mesh id = MQTT topic root (drivers only).
    pub mesh_id: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 10,
            seed: 1,
            heartbeat_ms: 10_000,
            speed: 1.0,
            arrivals: Arrivals::Random,
            mesh_id: "DEMESH".to_owned(),
        }
    }
}

/// Why a driver could not run.
#[derive(Debug)]
pub enum SimError {
    /// The broker URL is not `mqtt://host[:port]`.
    BrokerUrl(String),
    /// The mesh id cannot be a topic root (empty, too long, `/`, `+`, `#`).
    MeshId(String),
    /// The TCP uplink address is not `host:port` (optionally with `tcp://`).
    UplinkAddr(String),
    /// The speed factor is not a positive finite number.
    Speed(f64),
    /// The MQTT client's event loop stopped.
    MqttClosed,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BrokerUrl(url) => {
                write!(f, "broker URL {url:?} is not mqtt://HOST[:PORT]")
            }
            Self::UplinkAddr(addr) => {
                write!(f, "uplink address {addr:?} is not tcp://HOST:PORT")
            }
            Self::MeshId(id) => write!(f, "mesh id {id:?} cannot be an MQTT topic root"),
            Self::Speed(speed) => write!(f, "speed {speed} is not a positive number"),
            Self::MqttClosed => f.write_str("the MQTT client stopped"),
        }
    }
}

impl std::error::Error for SimError {}
