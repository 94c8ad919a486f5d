//! The site a pair runs: bays, circuits and limits, given once and turned both into the
//! core's settings and into the independent check's envelope.

use std::collections::{BTreeMap, HashMap};

use ctrl22_bridge::allocate::{ChargeMode, Circuit};
use ctrl22_bridge::bay::BayId;
use ctrl22_bridge::site::record::BaySettings;
use ctrl22_bridge::site::{PowerSettings, SiteSettings};
use ctrl22_node::mesh::MacAddr;
use ctrl22_node::sim::Arrivals;
use ctrl22_node::{Deciamps, Phase};
use ctrl22_testkit::safety::{BayLimit, CircuitLimit, Envelope};

/// A circuit directly below the site connection, feeding a run of bays.
#[derive(Clone, Debug)]
pub struct CircuitLayout {
    pub name: String,
    pub limit_a: i16,
    /// Indices of its bays (simulator order).
    pub bays: std::ops::Range<usize>,
}

/// Everything that shapes one run.
#[derive(Clone, Debug)]
pub struct Layout {
    pub bays: usize,
    /// The configured site limit per phase (the ceiling), A.
    pub site_limit_a: i16,
    pub circuits: Vec<CircuitLayout>,
    /// Every bay's own maximum, A.
    pub bay_max_a: i16,
    /// Bay `i` is wired with its phases rotated by `i % 3`, as sites balance one-phase cars.
    pub rotate_phases: bool,
    pub heartbeat_ms: u32,
    pub arrivals: Arrivals,
    /// Bay `i` charges in `modes[i % len]`; empty: the site's default mode.
    pub modes: Vec<ChargeMode>,
    /// Grid meter, surplus and `pv` timing.
    pub power: PowerSettings,
}

impl Layout {
    /// `bays` bays, every car plugged, straight below a 3 x `site_limit_a` connection.
    pub fn plugged(bays: usize, site_limit_a: i16) -> Self {
        Self {
            bays,
            site_limit_a,
            circuits: Vec::new(),
            bay_max_a: 32,
            rotate_phases: false,
            heartbeat_ms: 2_000,
            arrivals: Arrivals::AllPlugged,
            modes: Vec::new(),
            power: PowerSettings::default(),
        }
    }

    fn rotation(&self, index: usize) -> [Phase; 3] {
        let mut rotation = Phase::ALL;
        if self.rotate_phases {
            rotation.rotate_left(index % 3);
        }
        rotation
    }

    fn circuit_of(&self, index: usize) -> Option<&CircuitLayout> {
        self.circuits.iter().find(|c| c.bays.contains(&index))
    }

    /// The core's settings, every bay configured under its circuit.
    pub fn settings(&self, macs: &[MacAddr]) -> SiteSettings {
        let nodes: BTreeMap<BayId, (BaySettings, Option<String>)> = macs
            .iter()
            .enumerate()
            .map(|(index, mac)| {
                let id = BayId(mac.topic_form().to_string());
                let mut bay = BaySettings::new(&id);
                bay.rotation = self.rotation(index);
                bay.max_current = Deciamps::from_amps(self.bay_max_a);
                if !self.modes.is_empty() {
                    bay.mode = self.modes.get(index % self.modes.len()).copied();
                }
                let circuit = self.circuit_of(index).map(|c| c.name.clone());
                (id, (bay, circuit))
            })
            .collect();
        SiteSettings {
            limits: [Deciamps::from_amps(self.site_limit_a); 3],
            circuits: self
                .circuits
                .iter()
                .map(|c| Circuit {
                    id: c.name.clone(),
                    parent: None,
                    limit: [Deciamps::from_amps(c.limit_a); 3],
                })
                .collect(),
            nodes,
            power: self.power.clone(),
            ..SiteSettings::default()
        }
    }

    /// The same limits for the independent check.
    pub fn envelope(&self, macs: &[MacAddr]) -> Envelope {
        let deciamps = |a: i16| i32::from(a) * 10;
        Envelope {
            site: [deciamps(self.site_limit_a); 3],
            circuits: self
                .circuits
                .iter()
                .map(|c| CircuitLimit {
                    name: c.name.clone(),
                    limit: [deciamps(c.limit_a); 3],
                    bays: macs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| c.bays.contains(i))
                        .map(|(_, mac)| *mac)
                        .collect(),
                })
                .collect(),
            bays: macs
                .iter()
                .enumerate()
                .map(|(index, mac)| {
                    let limit = BayLimit {
                        rotation: self.rotation(index),
                        max_current: deciamps(self.bay_max_a),
                    };
                    (*mac, limit)
                })
                .collect::<HashMap<_, _>>(),
        }
    }
}
