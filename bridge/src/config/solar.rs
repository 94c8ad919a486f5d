//! `[solar]`: inverter and meter APIs that report grid, PV and battery power, and outside
//! parties (grid operator, energy manager) that limit what the cars may draw.

use std::collections::BTreeSet;
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
    /// Fronius Solar API v1 (`GetPowerFlowRealtimeData.fcgi`).
    Fronius,
    /// A Fronius Smart Meter through the inverter's Solar API v1
    /// (`GetMeterRealtimeData.cgi`): grid power with per-phase currents and powers.
    FroniusMeter,
    /// SolarEdge monitoring API (`currentPowerFlow`, site id and API key).
    Solaredge,
    /// Enphase IQ Gateway local API (`/production.json`), bearer token.
    #[serde(alias = "enphase")]
    Envoy,
    /// Any SunSpec Modbus TCP device (models 1, 101-103, 201-204).
    Sunspec,
    /// SMA inverters over the SMA Modbus profile (unit 3).
    SmaModbus,
    /// SMA Energy Meter / Sunny Home Manager Speedwire multicast.
    SmaSpeedwire,
    /// Shelly energy meters (Gen1 `/status`, Gen2+ `EM.GetStatus`/`EM1.GetStatus`).
    Shelly,
    /// Tasmota energy plugs and SML readers (`Status 10`).
    Tasmota,
    /// A Home Assistant entity over REST.
    Homeassistant,
    /// An MQTT topic carrying a number or JSON.
    Mqtt,
    /// Any HTTP JSON API (URL, JSON pointer, scale, sign).
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
    /// Home battery state of charge (%).
    Soc,
    /// An external limit for the cars (grid operator dimming, energy manager).
    Limit,
}

/// The unit of an external limit's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitUnit {
    /// Total active power for the cars in the scope.
    W,
    /// Current per phase.
    A,
}

/// What a stale external limit turns into: `"keep"` (its last value) or a safe value in
/// the limit's unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OnStale {
    Keep(KeepWord),
    Value(f64),
}

/// The word `keep` of [`OnStale`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepWord {
    Keep,
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
    /// Bearer token (Enphase, Home Assistant) or API key (SolarEdge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `kind = "mqtt"`: the topic carrying the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `kind = "homeassistant"`: the sensor entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// `kind = "solaredge"`: the monitoring site id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// Modbus unit id (`sunspec` default 1, `sma-modbus` default 3); Shelly EM1 / Tasmota
    /// channel index; `fronius-meter` `DeviceId` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<u8>,
    /// `kind = "sma-speedwire"`: only datagrams from this meter serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// RFC 6901 JSON pointer to the value (`http`, `mqtt` with JSON; Tasmota SML field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Multiplier applied to a single value (`http`, `mqtt`, `homeassistant`), e.g. 1000 for kW.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Flips the sign of a single value (a meter that reports export as positive).
    #[serde(default)]
    pub invert: bool,
    #[serde(default = "default_solar_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long one request may take; for `mqtt`/`sma-speedwire`, how long without a message
    /// before the source counts as stale. Default 5 s (60 s for pushed sources).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// What this source measures; at least one of `grid`, `pv`, `battery`, `soc`, `limit`.
    #[serde(default = "default_measures")]
    pub measures: Vec<Measure>,
    /// `measures = ["limit"]`: `"site"` or a circuit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<String>,
    /// `measures = ["limit"]`: the value's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<LimitUnit>,
    /// `measures = ["limit"]`: a relay or binary sensor; when on, this limit applies (in
    /// `unit`), when off, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_on: Option<f64>,
    /// `measures = ["limit"]`: what a stale source means; default `"keep"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_stale: Option<OnStale>,
}

impl SolarSourceConfig {
    /// The request (or silence) timeout, with the kind's default.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(match self.kind {
            SolarKind::Mqtt | SolarKind::SmaSpeedwire => Duration::from_secs(60),
            _ => Duration::from_secs(5),
        })
    }

    /// Whether the source carries an external limit instead of power readings.
    #[must_use]
    pub fn is_limit(&self) -> bool {
        self.measures.contains(&Measure::Limit)
    }

    /// Kinds that carry one number (with pointer, scale, sign) instead of a device's reading.
    #[must_use]
    pub fn is_single_value(&self) -> bool {
        matches!(
            self.kind,
            SolarKind::Http | SolarKind::Mqtt | SolarKind::Homeassistant
        )
    }
}

/// Largest accepted polling interval or timeout: beyond it a reading is too old to steer by.
const MAX_PERIOD: Duration = Duration::from_secs(3600);

/// Checks one `[[solar.sources]]` entry: what serde cannot (kind-specific keys, ranges).
pub(super) fn check_source(
    source: &SolarSourceConfig,
    key: &str,
    circuits: &BTreeSet<&str>,
    bad: &mut impl FnMut(String, String),
) {
    // An `mqtt` source without a URL uses the broker of `[mqtt]`, `solaredge` the cloud API.
    if !matches!(source.kind, SolarKind::Mqtt | SolarKind::Solaredge) && source.url.is_none() {
        bad(format!("{key}.url"), "is required for this kind".into());
    }
    let needs = |what: bool, name: &str, bad: &mut dyn FnMut(String, String)| {
        if !what {
            bad(
                format!("{key}.{name}"),
                format!("is required for kind {:?}", source.kind.name()),
            );
        }
    };
    match source.kind {
        SolarKind::Mqtt => needs(source.topic.is_some(), "topic", bad),
        SolarKind::Homeassistant => {
            needs(source.entity.is_some(), "entity", bad);
            needs(source.token.is_some(), "token", bad);
        }
        SolarKind::Solaredge => {
            needs(source.site_id.is_some(), "site_id", bad);
            needs(source.token.is_some(), "token", bad);
        }
        SolarKind::Http => needs(source.pointer.is_some(), "pointer", bad),
        _ => {}
    }
    if let Some(pointer) = &source.pointer {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            bad(
                format!("{key}.pointer"),
                format!("{pointer:?} is not a JSON pointer (RFC 6901: empty or starting with '/')"),
            );
        }
    }
    if !source.scale.is_finite() || source.scale == 0.0 || source.scale.abs() > 1e6 {
        bad(
            format!("{key}.scale"),
            format!(
                "{} must be a finite, non-zero factor up to 1e6",
                source.scale
            ),
        );
    }
    if source.interval.is_zero() || source.interval > MAX_PERIOD {
        bad(
            format!("{key}.interval"),
            "must be more than 0s and at most 1h".into(),
        );
    }
    let timeout = source.timeout();
    if timeout.is_zero() || timeout > MAX_PERIOD {
        bad(
            format!("{key}.timeout"),
            "must be more than 0s and at most 1h".into(),
        );
    }
    if source.measures.is_empty() {
        bad(
            format!("{key}.measures"),
            "must list at least one of \"grid\", \"pv\", \"battery\", \"soc\", \"limit\"".into(),
        );
    }
    if source.is_single_value() && source.measures.len() > 1 {
        bad(
            format!("{key}.measures"),
            "this kind carries one value: name exactly one measure (one source per value)".into(),
        );
    }
    if source.is_limit() {
        check_limit(source, key, circuits, bad);
    } else {
        for (name, set) in [
            ("applies_to", source.applies_to.is_some()),
            ("unit", source.unit.is_some()),
            ("when_on", source.when_on.is_some()),
            ("on_stale", source.on_stale.is_some()),
        ] {
            if set {
                bad(
                    format!("{key}.{name}"),
                    "only applies to measures = [\"limit\"]".into(),
                );
            }
        }
    }
}

fn check_limit(
    source: &SolarSourceConfig,
    key: &str,
    circuits: &BTreeSet<&str>,
    bad: &mut impl FnMut(String, String),
) {
    if !source.is_single_value() {
        bad(
            format!("{key}.measures"),
            "\"limit\" comes from kind \"http\", \"mqtt\" or \"homeassistant\"".into(),
        );
    }
    match source.applies_to.as_deref() {
        None => bad(
            format!("{key}.applies_to"),
            "is required with measures = [\"limit\"]: \"site\" or a circuit id".into(),
        ),
        Some("site") => {}
        Some(circuit) if circuits.contains(circuit) => {}
        Some(other) => bad(
            format!("{key}.applies_to"),
            format!("{other:?} is neither \"site\" nor a circuit in site.circuits"),
        ),
    }
    let Some(unit) = source.unit else {
        bad(
            format!("{key}.unit"),
            "is required with measures = [\"limit\"]: \"W\" or \"A\"".into(),
        );
        return;
    };
    let (max, name) = match unit {
        LimitUnit::W => (crate::solar::validate::MAX_POWER_W, "W"),
        LimitUnit::A => (crate::solar::validate::MAX_CURRENT_A, "A"),
    };
    let in_range = |v: f64| v.is_finite() && (0.0..=max).contains(&v);
    if let Some(v) = source.when_on {
        if !in_range(v) {
            bad(
                format!("{key}.when_on"),
                format!("{v} is outside 0..={max} {name}"),
            );
        }
    }
    if let Some(OnStale::Value(v)) = source.on_stale {
        if !in_range(v) {
            bad(
                format!("{key}.on_stale"),
                format!("{v} is outside 0..={max} {name} (or write \"keep\")"),
            );
        }
    }
}

impl SolarKind {
    /// The kind's name as in the configuration file.
    #[must_use]
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

fn default_scale() -> f64 {
    1.0
}

fn default_solar_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_measures() -> Vec<Measure> {
    vec![Measure::Grid]
}
