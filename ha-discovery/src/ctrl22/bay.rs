//! The bay device: what a charging bay shows and what Home Assistant may set on it.

use super::builder::{Builder, PHASES};
use super::fields::{BayCommand, BayField};
use super::identity::{bay_device_id, entity_base, origin, site_device_id, MANUFACTURER};
use super::options::{
    BAY_STATES, CHARGE_MODES, DEPARTURE_TIME_PATTERN, MIN_CHARGE_CURRENT_A, TARGET_ENERGY_MAX_KWH,
};
use super::site::SiteInfo;
use super::topics::Topics;
use crate::classes::{BinarySensorClass, EntityCategory, NumberKind, SensorKind, UpdateClass};
use crate::component::{Component, NumberRange, Update};
use crate::device::{Availability, AvailabilityTopic, Connection, Device};
use crate::error::DiscoveryError;
use crate::render::{check_id, DeviceConfig};

/// What the controller's update entity sends to install.
pub const PAYLOAD_INSTALL: &str = "install";

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
    /// The bay's configured ceiling (`nodes.<dev>.max_current`), whole amperes: the upper
    /// bound of its max current number. At 6 A or less there is nothing to choose, and the
    /// number is left out.
    pub ceiling_a: u16,
    pub configuration_url: Option<String>,
}

/// The controller update's state: a JSON object of the update platform's keys.
fn controller_update_template() -> String {
    use BayField as F;
    update_template([
        F::AvrVersion,
        F::AvrLatest,
        F::AvrUpdateInProgress,
        F::AvrUpdatePercent,
        F::AvrReleaseSummary,
    ])
}

/// The node firmware (ESP32) update's state, like the controller's.
fn node_update_template() -> String {
    use BayField as F;
    update_template([
        F::FwVersion,
        F::FwLatest,
        F::FwUpdateInProgress,
        F::FwUpdatePercent,
        F::FwReleaseSummary,
    ])
}

/// An update entity's state from the fields of installed and latest version, progress and
/// summary.
fn update_template(fields: [BayField; 5]) -> String {
    let keys = [
        "installed_version",
        "latest_version",
        "in_progress",
        "update_percentage",
        "release_summary",
    ];
    let pairs = keys
        .into_iter()
        .zip(fields)
        .map(|(key, field)| format!("'{key}': value_json.{}", field.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{{{{ {{{pairs}}} | to_json }}}}")
}

/// The discovery config of one bay.
///
/// # Errors
/// [`DiscoveryError::InvalidId`] for a `dev` or site id outside `[a-zA-Z0-9_-]`.
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
    ]);
    // Up to the configured ceiling only: the site core refuses more, and the slider should
    // not offer what will be refused.
    if let Ok(range) = NumberRange::new(MIN_CHARGE_CURRENT_A, f64::from(bay.ceiling_a), 1.0) {
        components.push(b.number(
            ("max_current", "Max current"),
            (F::MaxCurrentA.as_str(), C::MaxCurrentA),
            NumberKind::current_a(),
            range,
        ));
    }
    components.extend([
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
        // The node's (ESP32) firmware: an install upgrades every node of the bay's board at
        // once (the mesh root distributes it), through the bridge's ESP32 job.
        Component::new(
            "firmware",
            "Firmware",
            Update {
                state_topic: b.state_topic.clone(),
                value_template: Some(node_update_template()),
                latest_version_topic: None,
                latest_version_template: None,
                command_topic: Some(command(C::InstallEsp32)),
                payload_install: Some(PAYLOAD_INSTALL.to_owned()),
                device_class: Some(UpdateClass::Firmware),
            },
        )
        .category(diagnostic),
        // The controller's firmware: installed through the bridge's firmware jobs, one bay
        // at a time, refused while a car charges. The state renders to the JSON object the
        // update platform reads (installed and latest version, progress, summary).
        Component::new(
            "controller_firmware",
            "Controller firmware",
            Update {
                state_topic: b.state_topic.clone(),
                value_template: Some(controller_update_template()),
                latest_version_topic: None,
                latest_version_template: None,
                command_topic: Some(command(C::InstallAvr)),
                payload_install: Some(PAYLOAD_INSTALL.to_owned()),
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
