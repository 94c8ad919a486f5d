//! What the CTRL22 bridge shows Home Assistant: one device per bay, one for the site, their
//! entities, topics, and the JSON fields of the state payloads they read.
//!
//! # Topics
//! | topic | retained | payload |
//! |---|---|---|
//! | `ctrl22/<site>/status` | yes (and last will) | `online` / `offline` |
//! | `ctrl22/<site>/node/<dev>/availability` | yes | `online` / `offline` (node reachable in the mesh) |
//! | `ctrl22/<site>/node/<dev>/state` | yes | JSON, fields [`BayField`] |
//! | `ctrl22/<site>/node/<dev>/set/<field>` | no | commands [`BayCommand`] |
//! | `ctrl22/<site>/site/state` | yes | JSON, fields [`SiteField`] |
//! | `ctrl22/<site>/site/set/<field>` | no | commands [`SiteCommand`] |
//!
//! # Bay state (`ctrl22/<site>/node/<dev>/state`): the contract
//! The bridge publishes exactly these fields, every time, in one JSON object. Numbers may be
//! `null` when unknown (Home Assistant then shows "unknown"); booleans are always `true` or
//! `false`; strings are never `null`.
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `state` | string, one of [`BAY_STATES`] | what the bay is doing (OCPP-like) |
//! | `current_l1_a`, `current_l2_a`, `current_l3_a` | number, A | measured current per bay phase |
//! | `power_w` | number, W | charging power |
//! | `session_energy_kwh` | number, kWh | energy of the running (or last) session; restarts at 0 |
//! | `total_energy_kwh` | number, kWh | lifetime energy of the bay; never decreases |
//! | `allocated_current_a` | number, A | what the bridge allows now (0 = paused) |
//! | `cable_capacity_a` | number, A | capacity of the plugged cable (0 = none) |
//! | `plugged` | bool | a vehicle is connected |
//! | `charging` | bool | current flows (state C) |
//! | `problem` | bool | the controller reports an error |
//! | `online` | bool | the node answers in the mesh |
//! | `mode` | string, one of [`CHARGE_MODES`] | charge mode |
//! | `max_current_a` | number, A | the bay's own maximum, set by the user |
//! | `enabled` | bool | charging allowed at all |
//! | `departure_time` | string, `HH:MM` or `""` | when the car must be charged (`schedule`) |
//! | `target_energy_kwh` | number, kWh | energy wanted by departure (`schedule`); 0 = none |
//! | `rssi_dbm` | number, dBm | signal to the mesh parent |
//! | `mesh_layer` | number | hops from the root (1 = root) |
//! | `mesh_parent` | string | MAC of the mesh parent, colon form |
//! | `fw_version` | string | node firmware (`"3.5"`) |
//! | `fw_latest` | string | newest node firmware the bridge knows for the board; `fw_version` when unknown |
//! | `avr_version` | string | charge controller firmware (`"1.3"`; `""` without AVR) |
//! | `ccss` | string | raw charge-controller state name (`"C3"`, `"OFF9"`) |
//!
//! # Site state (`ctrl22/<site>/site/state`): the contract
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `grid_power_w` | number, W | grid exchange, positive = import |
//! | `pv_power_w` | number, W | PV production |
//! | `surplus_w` | number, W | power available for charging from solar |
//! | `ev_power_w` | number, W | sum of all bays |
//! | `current_l1_a`, `current_l2_a`, `current_l3_a` | number, A | site current per phase |
//! | `limit_l1_a`, `limit_l2_a`, `limit_l3_a` | number, A | the site's per-phase limit in force |
//! | `strategy` | string, one of [`STRATEGIES`] | how current is shared |
//! | `solar_ok` | bool | every solar source answers with fresh data |
//! | `ev_energy_kwh` | number, kWh | energy delivered to all bays; never decreases |
//!
//! # Commands
//! Payloads as Home Assistant sends them: select = the option; number = decimal text
//! (`"16"`, `"7.5"`); switch = `ON` / `OFF`; button = `PRESS`; text = the text.
//!
//! # Ids
//! Bay device `ctrl22_<dev>`, unique ids `ctrl22_<dev>_<key>`, entity ids
//! `<platform>.<slug of bay name>_<key>`; site device `ctrl22_site_<site>`, unique ids
//! `ctrl22_site_<site>_<key>`, entity ids `<platform>.<slug of site name>_<key>`. Entity ids
//! are only proposals: Home Assistant keeps a user's renames, and appends `_2` when two bays
//! share a name.
//!
//! # Publishing
//! Publish the site device before the bays (a bay's `via_device` must already be known), all
//! retained at QoS 1, again whenever `homeassistant/status` says `online`. A bay's
//! device message is about 10 kB (more with long names): raise the MQTT client's packet size
//! limit (rumqttc defaults to 10 KiB).

use crate::classes::{BinarySensorClass, EntityCategory, NumberKind, SensorKind, UpdateClass};
use crate::component::{
    BinarySensor, Button, Component, Number, NumberMode, NumberRange, Select, Sensor, Switch, Text,
    Update,
};
use crate::device::{Availability, AvailabilityTopic, Connection, Device, Origin};
use crate::error::DiscoveryError;
use crate::render::{check_id, DeviceConfig};

const MANUFACTURER: &str = "CTRL22";
const ORIGIN_NAME: &str = "ctrl22-bridge";

/// Values of the bay `state` field.
pub const BAY_STATES: &[&str] = &[
    "available",
    "preparing",
    "charging",
    "suspended_ev",
    "suspended_evse",
    "finishing",
    "faulted",
    "unavailable",
];

/// Values of the bay `mode` field and the charge mode select.
pub const CHARGE_MODES: &[&str] = &["off", "now", "minpv", "pv", "schedule"];

/// Values of the site `strategy` field and the strategy select.
pub const STRATEGIES: &[&str] = &["fair", "fcfs", "priority", "schedule"];

/// `HH:MM` (24 h) or empty to clear; Home Assistant's frontend enforces it on input.
pub const DEPARTURE_TIME_PATTERN: &str = "^$|^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// Upper bound of the target energy number: above any car battery sold today.
const TARGET_ENERGY_MAX_KWH: f64 = 150.0;
/// A bay never gets less than this when it charges (IEC 61851).
const MIN_CHARGE_CURRENT_A: f64 = 6.0;

/// Declares a set of field names with `as_str`, `parse` and `ALL`.
macro_rules! field_names {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }

            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.as_str() == s)
            }
        }
    };
}

field_names!(
    /// JSON fields of the bay state payload (see the module docs for types and meaning).
    BayField {
        State = "state",
        CurrentL1A = "current_l1_a",
        CurrentL2A = "current_l2_a",
        CurrentL3A = "current_l3_a",
        PowerW = "power_w",
        SessionEnergyKwh = "session_energy_kwh",
        TotalEnergyKwh = "total_energy_kwh",
        AllocatedCurrentA = "allocated_current_a",
        CableCapacityA = "cable_capacity_a",
        Plugged = "plugged",
        Charging = "charging",
        Problem = "problem",
        Online = "online",
        Mode = "mode",
        MaxCurrentA = "max_current_a",
        Enabled = "enabled",
        DepartureTime = "departure_time",
        TargetEnergyKwh = "target_energy_kwh",
        RssiDbm = "rssi_dbm",
        MeshLayer = "mesh_layer",
        MeshParent = "mesh_parent",
        FwVersion = "fw_version",
        FwLatest = "fw_latest",
        AvrVersion = "avr_version",
        Ccss = "ccss",
    }
);

field_names!(
    /// Commands to a bay: `ctrl22/<site>/node/<dev>/set/<field>`.
    BayCommand {
        Mode = "mode",
        MaxCurrentA = "max_current_a",
        Enabled = "enabled",
        Start = "start",
        Stop = "stop",
        DepartureTime = "departure_time",
        TargetEnergyKwh = "target_energy_kwh",
    }
);

field_names!(
    /// JSON fields of the site state payload (see the module docs for types and meaning).
    SiteField {
        GridPowerW = "grid_power_w",
        PvPowerW = "pv_power_w",
        SurplusW = "surplus_w",
        EvPowerW = "ev_power_w",
        CurrentL1A = "current_l1_a",
        CurrentL2A = "current_l2_a",
        CurrentL3A = "current_l3_a",
        LimitL1A = "limit_l1_a",
        LimitL2A = "limit_l2_a",
        LimitL3A = "limit_l3_a",
        Strategy = "strategy",
        SolarOk = "solar_ok",
        EvEnergyKwh = "ev_energy_kwh",
    }
);

field_names!(
    /// Commands to the site: `ctrl22/<site>/site/set/<field>`.
    SiteCommand {
        LimitL1A = "limit_l1_a",
        LimitL2A = "limit_l2_a",
        LimitL3A = "limit_l3_a",
        Strategy = "strategy",
    }
);

/// A command topic, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandTarget {
    Bay { dev: String, command: BayCommand },
    Site(SiteCommand),
}

/// The bridge's MQTT topic scheme for one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Topics {
    /// # Errors
    /// [`DiscoveryError::InvalidId`] when `site_id` is not one topic level of
    /// `[a-zA-Z0-9_-]` (it also names the site device in discovery topics).
    pub fn new(site_id: &str) -> Result<Self, DiscoveryError> {
        check_id("site id", site_id)?;
        Ok(Self {
            root: format!("ctrl22/{site_id}"),
        })
    }

    /// Bridge availability, also its last will.
    #[must_use]
    pub fn bridge_status(&self) -> String {
        format!("{}/status", self.root)
    }

    #[must_use]
    pub fn bay_state(&self, dev: &str) -> String {
        format!("{}/node/{dev}/state", self.root)
    }

    #[must_use]
    pub fn bay_availability(&self, dev: &str) -> String {
        format!("{}/node/{dev}/availability", self.root)
    }

    #[must_use]
    pub fn bay_command(&self, dev: &str, command: BayCommand) -> String {
        format!("{}/node/{dev}/set/{}", self.root, command.as_str())
    }

    #[must_use]
    pub fn site_state(&self) -> String {
        format!("{}/site/state", self.root)
    }

    #[must_use]
    pub fn site_command(&self, command: SiteCommand) -> String {
        format!("{}/site/set/{}", self.root, command.as_str())
    }

    /// What to subscribe to for every command of this site.
    #[must_use]
    pub fn command_filters(&self) -> [String; 2] {
        [
            format!("{}/node/+/set/+", self.root),
            format!("{}/site/set/+", self.root),
        ]
    }

    /// The target of a command topic of this site; `None` for anything else.
    #[must_use]
    pub fn parse_command(&self, topic: &str) -> Option<CommandTarget> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["node", dev, "set", field] if !dev.is_empty() => Some(CommandTarget::Bay {
                dev: (*dev).to_owned(),
                command: BayCommand::parse(field)?,
            }),
            ["site", "set", field] => SiteCommand::parse(field).map(CommandTarget::Site),
            _ => None,
        }
    }
}

/// What the catalogue needs to know about the site; plain values, no bridge types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInfo {
    /// Topic level `<site>`, `[a-zA-Z0-9_-]`.
    pub site_id: String,
    pub name: String,
    pub bridge_version: String,
    /// Per-phase fuse limit: the upper bound of the site limit numbers.
    pub fuse_limit_a: [u16; 3],
    /// The bridge's dashboard, shown as "Visit" in Home Assistant.
    pub configuration_url: Option<String>,
}

/// What the catalogue needs to know about a bay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BayInfo {
    /// The node's MAC in topic form (`d8a01d55a710`).
    pub dev: String,
    /// The same MAC in colon form, lower case (`d8:a0:1d:55:a7:10`).
    pub mac: String,
    pub name: String,
    /// Node board (`m5stick`, `agccs12`), shown as the model.
    pub board: Option<String>,
    /// Node firmware (`"3.5"`).
    pub sw_version: Option<String>,
    /// Charge controller firmware (`"1.3"`), shown as the hardware version.
    pub avr_version: Option<String>,
    /// The most the bay may ever draw: upper bound of its max current number (> 6).
    pub max_current_a: u16,
    pub configuration_url: Option<String>,
}

/// Entity-id form of a name, as Home Assistant's `slugify` makes it for Latin text: lower
/// case, common accented letters folded, every other run of characters one `_`.
#[must_use]
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_sep = false;
    for ch in name.chars().flat_map(char::to_lowercase) {
        let folded: &str = match ch {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'æ' => "ae",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            c if c.is_ascii_alphanumeric() => {
                if pending_sep && !out.is_empty() {
                    out.push('_');
                }
                pending_sep = false;
                out.push(c);
                continue;
            }
            _ => {
                pending_sep = true;
                continue;
            }
        };
        if pending_sep && !out.is_empty() {
            out.push('_');
        }
        pending_sep = false;
        out.push_str(folded);
    }
    out
}

fn value_of(field: &str) -> Option<String> {
    Some(format!("{{{{ value_json.{field} }}}}"))
}

/// JSON booleans onto Home Assistant's default `ON` / `OFF` payloads.
fn on_off_of(field: &str) -> Option<String> {
    Some(format!("{{{{ 'ON' if value_json.{field} else 'OFF' }}}}"))
}

fn origin(site: &SiteInfo) -> Origin {
    Origin {
        name: ORIGIN_NAME.to_owned(),
        sw_version: Some(site.bridge_version.clone()),
        support_url: None,
    }
}

/// The site device's identifier, which every bay names as `via_device`.
#[must_use]
pub fn site_device_id(site_id: &str) -> String {
    format!("ctrl22_site_{site_id}")
}

/// The bay device's identifier.
#[must_use]
pub fn bay_device_id(dev: &str) -> String {
    format!("ctrl22_{dev}")
}

/// The entity-id base of a name, or `fallback` when the name has no letters or digits.
fn entity_base(name: &str, fallback: &str) -> String {
    let s = slug(name);
    if s.is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

/// Builds the entities of one device, all reading one state topic; `command_topic` maps a
/// command onto its topic.
struct Builder<'a, C> {
    state_topic: String,
    command_topic: &'a dyn Fn(C) -> String,
}

impl<C> Builder<'_, C> {
    fn sensor(
        &self,
        key: &str,
        name: &str,
        field: &str,
        kind: SensorKind,
        precision: Option<u8>,
    ) -> Component {
        Component::new(
            key,
            name,
            Sensor {
                state_topic: self.state_topic.clone(),
                value_template: value_of(field),
                kind,
                suggested_display_precision: precision,
            },
        )
    }

    fn binary(
        &self,
        key: &str,
        name: &str,
        field: &str,
        class: Option<BinarySensorClass>,
    ) -> Component {
        Component::new(
            key,
            name,
            BinarySensor {
                state_topic: self.state_topic.clone(),
                value_template: on_off_of(field),
                device_class: class,
            },
        )
    }

    fn number(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        kind: NumberKind,
        range: NumberRange,
    ) -> Component {
        Component::new(
            key,
            name,
            Number {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                kind,
                range,
                mode: NumberMode::Box,
            },
        )
    }

    fn select(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        options: &[&str],
    ) -> Component {
        Component::new(
            key,
            name,
            Select {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                options: options.iter().map(|o| (*o).to_owned()).collect(),
            },
        )
    }

    fn switch(&self, (key, name): (&str, &str), (field, command): (&str, C)) -> Component {
        Component::new(
            key,
            name,
            Switch {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: on_off_of(field),
            },
        )
    }

    fn text(
        &self,
        (key, name): (&str, &str),
        (field, command): (&str, C),
        max_len: u8,
        pattern: &str,
    ) -> Component {
        Component::new(
            key,
            name,
            Text {
                command_topic: (self.command_topic)(command),
                state_topic: Some(self.state_topic.clone()),
                value_template: value_of(field),
                min: 0,
                max: max_len,
                pattern: Some(pattern.to_owned()),
            },
        )
    }

    fn button(&self, key: &str, name: &str, command: C) -> Component {
        Component::new(
            key,
            name,
            Button {
                command_topic: (self.command_topic)(command),
                payload_press: None,
                device_class: None,
            },
        )
    }
}

const PHASES: [(&str, &str); 3] = [("l1", "L1"), ("l2", "L2"), ("l3", "L3")];

/// The discovery config of one bay.
///
/// # Errors
/// [`DiscoveryError::InvalidId`] for a `dev` or site id outside `[a-zA-Z0-9_-]`,
/// [`DiscoveryError::InvalidRange`] when `max_current_a` is not above 6 A.
pub fn bay_device(site: &SiteInfo, bay: &BayInfo) -> Result<DeviceConfig, DiscoveryError> {
    use BayCommand as C;
    use BayField as F;

    let topics = Topics::new(&site.site_id)?;
    check_id("bay dev", &bay.dev)?;
    let id = bay_device_id(&bay.dev);
    let device = Device {
        identifiers: vec![id.clone()],
        connections: vec![Connection::Mac(bay.mac.to_ascii_lowercase())],
        name: bay.name.clone(),
        manufacturer: Some(MANUFACTURER.to_owned()),
        model: bay.board.clone(),
        hw_version: bay.avr_version.as_ref().map(|v| format!("AVR {v}")),
        sw_version: bay.sw_version.clone(),
        serial_number: Some(bay.dev.clone()),
        via_device: Some(site_device_id(&site.site_id)),
        configuration_url: bay.configuration_url.clone(),
    };
    let bridge_only = Availability::all(vec![AvailabilityTopic::online_offline(
        topics.bridge_status(),
    )]);
    let availability = Availability::all(vec![
        AvailabilityTopic::online_offline(topics.bridge_status()),
        AvailabilityTopic::online_offline(topics.bay_availability(&bay.dev)),
    ]);
    let mut cfg = DeviceConfig::new(
        id.clone(),
        entity_base(&bay.name, &id),
        device,
        origin(site),
        availability,
    )?;

    let command = |c: BayCommand| topics.bay_command(&bay.dev, c);
    let b = Builder {
        state_topic: topics.bay_state(&bay.dev),
        command_topic: &command,
    };
    let diagnostic = EntityCategory::Diagnostic;
    let per_phase = [F::CurrentL1A, F::CurrentL2A, F::CurrentL3A];

    let mut components = vec![b
        .sensor(
            "state",
            "State",
            F::State.as_str(),
            SensorKind::enumeration(BAY_STATES),
            None,
        )
        .icon("mdi:ev-station")];
    for ((key, label), field) in PHASES.iter().zip(per_phase) {
        components.push(b.sensor(
            &format!("current_{key}"),
            &format!("Current {label}"),
            field.as_str(),
            SensorKind::current_a(),
            Some(1),
        ));
    }
    components.extend([
        b.sensor(
            "power",
            "Power",
            F::PowerW.as_str(),
            SensorKind::power_w(),
            Some(0),
        ),
        b.sensor(
            "session_energy",
            "Session energy",
            F::SessionEnergyKwh.as_str(),
            SensorKind::energy_kwh_total_increasing(),
            Some(2),
        ),
        b.sensor(
            "total_energy",
            "Total energy",
            F::TotalEnergyKwh.as_str(),
            SensorKind::energy_kwh_total_increasing(),
            Some(1),
        ),
        b.sensor(
            "allocated_current",
            "Allocated current",
            F::AllocatedCurrentA.as_str(),
            SensorKind::current_a(),
            Some(1),
        ),
        b.sensor(
            "cable_capacity",
            "Cable capacity",
            F::CableCapacityA.as_str(),
            SensorKind::current_a(),
            Some(0),
        )
        .icon("mdi:cable-data"),
        b.binary(
            "plugged",
            "Plugged",
            F::Plugged.as_str(),
            Some(BinarySensorClass::Plug),
        ),
        b.binary(
            "charging",
            "Charging",
            F::Charging.as_str(),
            Some(BinarySensorClass::BatteryCharging),
        ),
        b.binary(
            "problem",
            "Problem",
            F::Problem.as_str(),
            Some(BinarySensorClass::Problem),
        ),
        // Only the bridge's availability: this entity must stay readable (off) when the node
        // is gone, or it could never show that.
        b.binary(
            "online",
            "Online",
            F::Online.as_str(),
            Some(BinarySensorClass::Connectivity),
        )
        .category(diagnostic)
        .availability(bridge_only),
        b.select(
            ("charge_mode", "Charge mode"),
            (F::Mode.as_str(), C::Mode),
            CHARGE_MODES,
        )
        .icon("mdi:car-electric"),
        b.number(
            ("max_current", "Max current"),
            (F::MaxCurrentA.as_str(), C::MaxCurrentA),
            NumberKind::current_a(),
            NumberRange::new(MIN_CHARGE_CURRENT_A, f64::from(bay.max_current_a), 1.0)?,
        ),
        b.switch(("enabled", "Enabled"), (F::Enabled.as_str(), C::Enabled))
            .icon("mdi:ev-plug-type2"),
        b.button("start", "Start", C::Start).icon("mdi:play"),
        b.button("stop", "Stop", C::Stop).icon("mdi:stop"),
        b.text(
            ("departure_time", "Departure time"),
            (F::DepartureTime.as_str(), C::DepartureTime),
            5,
            DEPARTURE_TIME_PATTERN,
        )
        .icon("mdi:clock-end"),
        b.number(
            ("target_energy", "Target energy"),
            (F::TargetEnergyKwh.as_str(), C::TargetEnergyKwh),
            NumberKind::energy_kwh(),
            NumberRange::new(0.0, TARGET_ENERGY_MAX_KWH, 0.5)?,
        ),
        b.sensor(
            "rssi",
            "RSSI",
            F::RssiDbm.as_str(),
            SensorKind::signal_dbm(),
            Some(0),
        )
        .category(diagnostic),
        b.sensor(
            "mesh_layer",
            "Mesh layer",
            F::MeshLayer.as_str(),
            SensorKind::count(),
            Some(0),
        )
        .category(diagnostic)
        .icon("mdi:lan"),
        b.sensor(
            "mesh_parent",
            "Mesh parent",
            F::MeshParent.as_str(),
            SensorKind::text(),
            None,
        )
        .category(diagnostic)
        .icon("mdi:access-point-network"),
        b.sensor(
            "firmware_version",
            "Firmware version",
            F::FwVersion.as_str(),
            SensorKind::text(),
            None,
        )
        .category(diagnostic)
        .icon("mdi:chip"),
        b.sensor(
            "avr_version",
            "AVR version",
            F::AvrVersion.as_str(),
            SensorKind::text(),
            None,
        )
        .category(diagnostic)
        .icon("mdi:chip"),
        b.sensor(
            "controller_state",
            "Controller state",
            F::Ccss.as_str(),
            SensorKind::text(),
            None,
        )
        .category(diagnostic)
        .icon("mdi:state-machine"),
        // Read-only: a mesh upgrade replaces the firmware of every node of a board at once,
        // so installing stays an operator action (`ctrl22-bridge mesh upgrade`).
        Component::new(
            "firmware",
            "Firmware",
            Update {
                state_topic: b.state_topic.clone(),
                value_template: value_of(F::FwVersion.as_str()),
                latest_version_topic: Some(b.state_topic.clone()),
                latest_version_template: value_of(F::FwLatest.as_str()),
                command_topic: None,
                payload_install: None,
                device_class: Some(UpdateClass::Firmware),
            },
        )
        .category(diagnostic),
    ]);
    for c in components {
        cfg.push(c)?;
    }
    Ok(cfg)
}

/// The discovery config of the site.
///
/// # Errors
/// [`DiscoveryError::InvalidId`] for a site id outside `[a-zA-Z0-9_-]`,
/// [`DiscoveryError::InvalidRange`] when a fuse limit is 0.
pub fn site_device(site: &SiteInfo) -> Result<DeviceConfig, DiscoveryError> {
    use SiteCommand as C;
    use SiteField as F;

    let topics = Topics::new(&site.site_id)?;
    let id = site_device_id(&site.site_id);
    let device = Device {
        identifiers: vec![id.clone()],
        name: site.name.clone(),
        manufacturer: Some(MANUFACTURER.to_owned()),
        model: Some(ORIGIN_NAME.to_owned()),
        sw_version: Some(site.bridge_version.clone()),
        configuration_url: site.configuration_url.clone(),
        ..Device::default()
    };
    let availability = Availability::all(vec![AvailabilityTopic::online_offline(
        topics.bridge_status(),
    )]);
    let mut cfg = DeviceConfig::new(
        id.clone(),
        entity_base(&site.name, &id),
        device,
        origin(site),
        availability,
    )?;

    let command = |c: SiteCommand| topics.site_command(c);
    let b = Builder {
        state_topic: topics.site_state(),
        command_topic: &command,
    };
    let power = |key, name, field: SiteField, icon| {
        b.sensor(key, name, field.as_str(), SensorKind::power_w(), Some(0))
            .icon(icon)
    };
    let mut components = vec![
        power(
            "grid_power",
            "Grid power",
            F::GridPowerW,
            "mdi:transmission-tower",
        ),
        power("pv_power", "PV power", F::PvPowerW, "mdi:solar-power"),
        power("surplus", "Surplus", F::SurplusW, "mdi:solar-power-variant"),
        power("ev_power", "EV power", F::EvPowerW, "mdi:ev-station"),
    ];
    let currents = [F::CurrentL1A, F::CurrentL2A, F::CurrentL3A];
    let limits = [
        (F::LimitL1A, C::LimitL1A),
        (F::LimitL2A, C::LimitL2A),
        (F::LimitL3A, C::LimitL3A),
    ];
    for (((key, label), current), ((limit_field, limit_command), fuse_a)) in PHASES
        .iter()
        .zip(currents)
        .zip(limits.into_iter().zip(site.fuse_limit_a))
    {
        components.push(b.sensor(
            &format!("current_{key}"),
            &format!("Current {label}"),
            current.as_str(),
            SensorKind::current_a(),
            Some(1),
        ));
        // Up to the fuse only: Home Assistant cannot raise a limit past what the wiring takes.
        components.push(
            b.number(
                (&format!("limit_{key}"), &format!("Limit {label}")),
                (limit_field.as_str(), limit_command),
                NumberKind::current_a(),
                NumberRange::new(0.0, f64::from(fuse_a), 1.0)?,
            )
            .category(EntityCategory::Config),
        );
    }
    components.extend([
        b.select(
            ("strategy", "Strategy"),
            (F::Strategy.as_str(), C::Strategy),
            STRATEGIES,
        )
        .icon("mdi:scale-balance"),
        b.binary(
            "solar_ok",
            "Solar source",
            F::SolarOk.as_str(),
            Some(BinarySensorClass::Connectivity),
        )
        .category(EntityCategory::Diagnostic),
        b.sensor(
            "ev_energy",
            "EV energy",
            F::EvEnergyKwh.as_str(),
            SensorKind::energy_kwh_total_increasing(),
            Some(1),
        ),
    ]);
    for c in components {
        cfg.push(c)?;
    }
    Ok(cfg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::component::Platform;
    use std::collections::BTreeSet;

    fn site() -> SiteInfo {
        SiteInfo {
            site_id: "lot7".into(),
            name: "Lot 7".into(),
            bridge_version: "0.1.0".into(),
            fuse_limit_a: [32, 32, 25],
            configuration_url: None,
        }
    }

    fn bay() -> BayInfo {
        BayInfo {
            dev: "d8a01d55a710".into(),
            mac: "D8:A0:1D:55:A7:10".into(),
            name: "Bay 1 (Müller)".into(),
            board: Some("agccs12".into()),
            sw_version: Some("3.5".into()),
            avr_version: Some("1.3".into()),
            max_current_a: 32,
            configuration_url: None,
        }
    }

    /// The `value_json.<field>` names a component's templates read.
    fn fields_read(platform: &Platform) -> Vec<String> {
        let templates = match platform {
            Platform::Sensor(c) => vec![&c.value_template],
            Platform::BinarySensor(c) => vec![&c.value_template],
            Platform::Number(c) => vec![&c.value_template],
            Platform::Select(c) => vec![&c.value_template],
            Platform::Switch(c) => vec![&c.value_template],
            Platform::Text(c) => vec![&c.value_template],
            Platform::Update(c) => vec![&c.value_template, &c.latest_version_template],
            Platform::Button(_) => vec![],
        };
        templates
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let rest = t.split("value_json.").nth(1)?;
                Some(
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect(),
                )
            })
            .collect()
    }

    fn command_fields(cfg: &DeviceConfig) -> BTreeSet<String> {
        cfg.components()
            .iter()
            .filter_map(|c| match &c.platform {
                Platform::Number(p) => Some(p.command_topic.clone()),
                Platform::Select(p) => Some(p.command_topic.clone()),
                Platform::Switch(p) => Some(p.command_topic.clone()),
                Platform::Button(p) => Some(p.command_topic.clone()),
                Platform::Text(p) => Some(p.command_topic.clone()),
                Platform::Update(p) => p.command_topic.clone(),
                Platform::Sensor(_) | Platform::BinarySensor(_) => None,
            })
            .filter_map(|t| t.rsplit('/').next().map(str::to_owned))
            .collect()
    }

    fn read(cfg: &DeviceConfig) -> BTreeSet<String> {
        cfg.components()
            .iter()
            .flat_map(|c| fields_read(&c.platform))
            .collect()
    }

    #[test]
    fn bay_entities_read_exactly_the_bay_fields_and_command_exactly_the_bay_commands() {
        let cfg = bay_device(&site(), &bay()).unwrap();
        let declared: BTreeSet<String> = BayField::ALL
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(read(&cfg), declared);
        let commands: BTreeSet<String> = BayCommand::ALL
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(command_fields(&cfg), commands);
    }

    #[test]
    fn site_entities_read_exactly_the_site_fields_and_command_exactly_the_site_commands() {
        let cfg = site_device(&site()).unwrap();
        let declared: BTreeSet<String> = SiteField::ALL
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(read(&cfg), declared);
        let commands: BTreeSet<String> = SiteCommand::ALL
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(command_fields(&cfg), commands);
    }

    #[test]
    fn every_catalogue_entity_passes_home_assistant_unit_rules() {
        use crate::classes::rules::{check_number, check_sensor};
        use crate::classes::{NumberDeviceClass, SensorDeviceClass, StateClass, Unit};
        let configs = [
            site_device(&site()).unwrap(),
            bay_device(&site(), &bay()).unwrap(),
        ];
        for cfg in &configs {
            for c in cfg.components() {
                let r = match &c.platform {
                    Platform::Sensor(s) => check_sensor(
                        s.kind.device_class().map(SensorDeviceClass::as_str),
                        s.kind.state_class().map(StateClass::as_str),
                        s.kind.unit().map(Unit::symbol),
                        s.kind.options(),
                    ),
                    Platform::Number(n) => check_number(
                        n.kind.device_class().map(NumberDeviceClass::as_str),
                        n.kind.unit().map(Unit::symbol),
                    ),
                    _ => Ok(()),
                };
                assert_eq!(r, Ok(()), "{}", c.key);
                let eid = cfg.default_entity_id(c);
                let (domain, object) = eid.split_once('.').unwrap();
                assert_eq!(domain, c.platform.name());
                assert!(object
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            }
        }
    }

    #[test]
    fn every_command_topic_parses_back_to_its_command() {
        let topics = Topics::new("lot7").unwrap();
        for c in BayCommand::ALL {
            assert_eq!(
                topics.parse_command(&topics.bay_command("d8a01d55a710", *c)),
                Some(CommandTarget::Bay {
                    dev: "d8a01d55a710".into(),
                    command: *c
                })
            );
        }
        for c in SiteCommand::ALL {
            assert_eq!(
                topics.parse_command(&topics.site_command(*c)),
                Some(CommandTarget::Site(*c))
            );
        }
        for other in [
            "ctrl22/lot7/node/x/state",
            "ctrl22/lot7/node//set/mode",
            "ctrl22/lot8/site/set/strategy",
            "ctrl22/lot7/site/set/bogus",
            "ctrl22/lot7/node/x/set/mode/extra",
        ] {
            assert_eq!(topics.parse_command(other), None, "{other}");
        }
    }

    #[test]
    fn ids_are_stable_and_entity_ids_follow_the_bay_name() {
        let cfg = bay_device(&site(), &bay()).unwrap();
        let power = cfg.components().iter().find(|c| c.key == "power").unwrap();
        assert_eq!(cfg.unique_id(power), "ctrl22_d8a01d55a710_power");
        assert_eq!(cfg.default_entity_id(power), "sensor.bay_1_muller_power");
        assert_eq!(
            cfg.device().connections,
            vec![Connection::Mac("d8:a0:1d:55:a7:10".into())]
        );
        assert_eq!(cfg.device().via_device.as_deref(), Some("ctrl22_site_lot7"));
        let renamed = BayInfo {
            name: "Garage".into(),
            ..bay()
        };
        let cfg2 = bay_device(&site(), &renamed).unwrap();
        let power2 = cfg2.components().iter().find(|c| c.key == "power").unwrap();
        assert_eq!(cfg2.unique_id(power2), cfg.unique_id(power));
    }

    #[test]
    fn slug_matches_home_assistant_for_latin_names() {
        assert_eq!(slug("Bay 1"), "bay_1");
        assert_eq!(slug("  Straße / Süd #3 "), "strasse_sud_3");
        assert_eq!(slug("Ladepunkt-Ost"), "ladepunkt_ost");
        assert_eq!(slug("日本"), "");
        let nameless = BayInfo {
            name: "日本".into(),
            ..bay()
        };
        let cfg = bay_device(&site(), &nameless).unwrap();
        let c = &cfg.components()[0];
        assert_eq!(cfg.default_entity_id(c), "sensor.ctrl22_d8a01d55a710_state");
    }

    #[test]
    fn bad_inputs_are_refused_not_published() {
        let bad_site = SiteInfo {
            site_id: "lot/7".into(),
            ..site()
        };
        assert!(matches!(
            site_device(&bad_site),
            Err(DiscoveryError::InvalidId { .. })
        ));
        let bad_bay = BayInfo {
            dev: "d8+a0".into(),
            ..bay()
        };
        assert!(matches!(
            bay_device(&site(), &bad_bay),
            Err(DiscoveryError::InvalidId { .. })
        ));
        let tiny = BayInfo {
            max_current_a: 6,
            ..bay()
        };
        assert!(matches!(
            bay_device(&site(), &tiny),
            Err(DiscoveryError::InvalidRange { .. })
        ));
        let no_fuse = SiteInfo {
            fuse_limit_a: [32, 0, 32],
            ..site()
        };
        assert!(matches!(
            site_device(&no_fuse),
            Err(DiscoveryError::InvalidRange { .. })
        ));
    }
}
