//! `[mesh]`: how the bridge reaches the mesh root and how it keeps the node watchdogs fed.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use ctrl22_node::params::Param;

/// How the bridge reaches the mesh root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeshTransport {
    /// The root publishes to the `[mqtt]` broker under `/<mesh_id>/...`.
    #[default]
    Mqtt,
    /// The root connects to `tcp_listen` and streams bare JSON objects back to back.
    Tcp,
}

/// `[mesh]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    pub transport: MeshTransport,
    /// The first topic level of the mesh (`/DEMESH/<dev>/heartbeat`).
    pub mesh_id: String,
    pub tcp_listen: SocketAddr,
    /// With `transport = "tcp"`: the only addresses a mesh root may connect from; empty = any.
    /// Whoever holds the connection commands every bay, so a site whose `tcp_listen` is
    /// reachable from more than the root's network should name the root here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp_allow: Vec<IpAddr>,
    /// A bay not heard from for this long is offline.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Node watchdog: a bay falls back to its fail-safe current when no setpoint came for this
    /// many seconds. Written to the node, so it must be in the node's own range
    /// ([`wdtsec_range`]); 0, which disables the node's watchdog, is refused.
    pub wdtsec: u16,
    /// Setpoints are re-sent this often even when unchanged, to feed the node watchdog.
    #[serde(with = "humantime_serde")]
    pub setpoint_refresh: Duration,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            transport: MeshTransport::Mqtt,
            mesh_id: "DEMESH".into(),
            tcp_listen: SocketAddr::from(([0, 0, 0, 0], 8070)),
            tcp_allow: Vec::new(),
            heartbeat_timeout: Duration::from_secs(30),
            wdtsec: 60,
            setpoint_refresh: Duration::from_secs(20),
        }
    }
}

/// The values of `mesh.wdtsec` the bridge accepts: the node's own write range for `wdtsec`
/// without 0 (a disabled watchdog would leave a bay at its last setpoint when the bridge dies).
#[must_use]
pub fn wdtsec_range() -> RangeInclusive<u16> {
    let max = Param::Wdtsec
        .write_range()
        .and_then(|range| u16::try_from(*range.end()).ok())
        .unwrap_or(0);
    1..=max
}
