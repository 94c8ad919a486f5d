//! `[solar]`: inverter and meter APIs that report grid, PV and battery power.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[solar]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolarConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SolarSourceConfig>,
}

/// The kinds of inverter and meter APIs the bridge can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolarKind {
    Fronius,
    Solaredge,
    Envoy,
    SmaModbus,
    SmaSpeedwire,
    Shelly,
    Tasmota,
    Homeassistant,
    Mqtt,
    Http,
}

/// What a source reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Power at the grid connection (positive = import).
    Grid,
    /// PV production.
    Pv,
    /// Battery power (positive = discharge).
    Battery,
}

/// `[[solar.sources]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolarSourceConfig {
    pub kind: SolarKind,
    /// Address of the device API (`http://...`, `modbus://host:502`, `udp://...`); for `mqtt`
    /// and `homeassistant` sources the broker of `[mqtt]` is used and this may be omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `kind = "mqtt"`: the topic carrying the power value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `kind = "homeassistant"`: the sensor entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default = "default_solar_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// What this source measures; at least one of `grid`, `pv`, `battery`.
    #[serde(default = "default_measures")]
    pub measures: Vec<Measure>,
}

fn default_solar_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_measures() -> Vec<Measure> {
    vec![Measure::Grid]
}
