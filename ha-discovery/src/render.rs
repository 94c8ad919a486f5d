//! Turning a [`DeviceConfig`] into discovery messages (topic + JSON payload).
//!
//! Two shapes, same entities, same unique ids (so Home Assistant keeps its registry entries
//! when a site switches):
//! - device-based (Home Assistant 2024.11+, the default): one retained message
//!   `<prefix>/device/<id>/config` with `dev`, `o`, the device's availability (shared by
//!   every component that does not override it) and `cmps` (one component per entity, each
//!   with `p` = platform and `default_entity_id`);
//! - per-entity (older Home Assistant): `<prefix>/<platform>/<id>/<key>/config`, each with
//!   the device, origin, availability and both `object_id` (up to 2026.3) and
//!   `default_entity_id` (2025.10+; the newer key wins where both are known).
//!
//! Publish every message retained at QoS 1; an empty retained payload removes.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::classes::EntityCategory;
use crate::component::{Component, Platform};
use crate::device::{Availability, AvailabilityKeys, Device, Origin};
use crate::error::DiscoveryError;

/// Which discovery shape to publish (`[homeassistant] discovery = "device" | "entity"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    #[default]
    Device,
    Entity,
}

/// One MQTT message to publish retained. An empty payload removes what the topic announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryMessage {
    pub topic: String,
    pub payload: String,
}

/// Everything Home Assistant needs to know about one device and its entities.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    id: String,
    entity_id_base: String,
    device: Device,
    origin: Origin,
    availability: Availability,
    components: Vec<Component>,
}

/// True for the characters Home Assistant allows in discovery topic ids and object ids.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn check_id(what: &'static str, value: &str) -> Result<(), DiscoveryError> {
    if is_id(value) {
        Ok(())
    } else {
        Err(DiscoveryError::InvalidId {
            what,
            value: value.to_owned(),
        })
    }
}

impl DeviceConfig {
    /// `id` names the device in topics and prefixes every unique id (`<id>_<key>`);
    /// `entity_id_base` prefixes every entity id (`sensor.<entity_id_base>_<key>`);
    /// `availability` applies to every component that does not bring its own.
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidId`] when `id` or `entity_id_base` has characters outside
    /// `[a-zA-Z0-9_-]`.
    pub fn new(
        id: impl Into<String>,
        entity_id_base: impl Into<String>,
        device: Device,
        origin: Origin,
        availability: Availability,
    ) -> Result<Self, DiscoveryError> {
        let id = id.into();
        let entity_id_base = entity_id_base.into();
        check_id("device id", &id)?;
        check_id("entity id base", &entity_id_base)?;
        Ok(Self {
            id,
            entity_id_base,
            device,
            origin,
            availability,
            components: Vec::new(),
        })
    }

    /// Adds an entity.
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidId`] for a key outside `[a-zA-Z0-9_-]`,
    /// [`DiscoveryError::DuplicateKey`] for a key already used on this device.
    pub fn push(&mut self, component: Component) -> Result<(), DiscoveryError> {
        check_id("component key", &component.key)?;
        if self.components.iter().any(|c| c.key == component.key) {
            return Err(DiscoveryError::DuplicateKey {
                device: self.id.clone(),
                key: component.key,
            });
        }
        self.components.push(component);
        Ok(())
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    #[must_use]
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// `<id>_<key>`: never changes while the device and key stay, whatever the names.
    #[must_use]
    pub fn unique_id(&self, component: &Component) -> String {
        format!("{}_{}", self.id, component.key)
    }

    /// `<platform>.<entity_id_base>_<key>`, the entity id Home Assistant is asked to use.
    #[must_use]
    pub fn default_entity_id(&self, component: &Component) -> String {
        format!(
            "{}.{}",
            component.platform.name(),
            self.object_id(component)
        )
    }

    fn object_id(&self, component: &Component) -> String {
        format!("{}_{}", self.entity_id_base, component.key)
    }
}

/// The keys of one entity, in either shape.
#[derive(Serialize)]
struct EntityPayload<'a> {
    #[serde(rename = "p", skip_serializing_if = "Option::is_none")]
    platform_name: Option<&'static str>,
    name: &'a str,
    unique_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<String>,
    default_entity_id: String,
    #[serde(flatten)]
    config: &'a Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_category: Option<EntityCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a str>,
    /// Written only when false; true is Home Assistant's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled_by_default: Option<bool>,
    #[serde(flatten)]
    availability: AvailabilityKeys<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a Device>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a Origin>,
}

impl<'a> EntityPayload<'a> {
    fn common(cfg: &'a DeviceConfig, c: &'a Component) -> Self {
        Self {
            platform_name: None,
            name: &c.name,
            unique_id: cfg.unique_id(c),
            object_id: None,
            default_entity_id: cfg.default_entity_id(c),
            config: &c.platform,
            entity_category: c.category,
            icon: c.icon.as_deref(),
            enabled_by_default: (!c.enabled_by_default).then_some(false),
            availability: c.availability.as_ref().unwrap_or(&cfg.availability).into(),
            device: None,
            origin: None,
        }
    }
}

/// `cmps`: components keyed by their key, in catalogue order.
struct Components<'a> {
    cfg: &'a DeviceConfig,
    /// The device's availability is written once at the top level; components then carry
    /// only overrides.
    shared_availability: bool,
}

impl Serialize for Components<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cfg = self.cfg;
        let none = Availability::default();
        let mut map = s.serialize_map(Some(cfg.components.len()))?;
        for c in &cfg.components {
            let mut entity = EntityPayload::common(cfg, c);
            entity.platform_name = Some(c.platform.name());
            if self.shared_availability && c.availability.is_none() {
                entity.availability = (&none).into();
            }
            map.serialize_entry(&c.key, &entity)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct DevicePayload<'a> {
    #[serde(rename = "dev")]
    device: &'a Device,
    #[serde(rename = "o")]
    origin: &'a Origin,
    #[serde(flatten)]
    availability: AvailabilityKeys<'a>,
    #[serde(rename = "cmps")]
    components: Components<'a>,
}

fn device_topic(prefix: &str, cfg: &DeviceConfig) -> String {
    format!("{prefix}/device/{}/config", cfg.id)
}

fn entity_topic(prefix: &str, cfg: &DeviceConfig, c: &Component) -> String {
    format!("{prefix}/{}/{}/{}/config", c.platform.name(), cfg.id, c.key)
}

/// The device-based discovery message of `cfg`.
///
/// # Errors
/// [`DiscoveryError::Serialize`], which the types of this crate cannot trigger.
pub fn device_discovery(
    prefix: &str,
    cfg: &DeviceConfig,
) -> Result<DiscoveryMessage, DiscoveryError> {
    // A component may override the shared availability, but cannot drop it: a component
    // that must always be available forces per-component availability for the device.
    let shared_availability = !cfg
        .components
        .iter()
        .any(|c| c.availability.as_ref().is_some_and(Availability::is_empty));
    let none = Availability::default();
    let payload = DevicePayload {
        device: &cfg.device,
        origin: &cfg.origin,
        availability: if shared_availability {
            &cfg.availability
        } else {
            &none
        }
        .into(),
        components: Components {
            cfg,
            shared_availability,
        },
    };
    Ok(DiscoveryMessage {
        topic: device_topic(prefix, cfg),
        payload: serde_json::to_string(&payload)?,
    })
}

/// One per-entity discovery message per component of `cfg`.
///
/// # Errors
/// [`DiscoveryError::Serialize`], which the types of this crate cannot trigger.
pub fn entity_discovery(
    prefix: &str,
    cfg: &DeviceConfig,
) -> Result<Vec<DiscoveryMessage>, DiscoveryError> {
    cfg.components
        .iter()
        .map(|c| {
            let mut entity = EntityPayload::common(cfg, c);
            entity.object_id = Some(cfg.object_id(c));
            entity.device = Some(&cfg.device);
            entity.origin = Some(&cfg.origin);
            Ok(DiscoveryMessage {
                topic: entity_topic(prefix, cfg, c),
                payload: serde_json::to_string(&entity)?,
            })
        })
        .collect()
}

/// The messages announcing `cfg` in `mode`.
///
/// # Errors
/// [`DiscoveryError::Serialize`], which the types of this crate cannot trigger.
pub fn discovery(
    mode: DiscoveryMode,
    prefix: &str,
    cfg: &DeviceConfig,
) -> Result<Vec<DiscoveryMessage>, DiscoveryError> {
    match mode {
        DiscoveryMode::Device => Ok(vec![device_discovery(prefix, cfg)?]),
        DiscoveryMode::Entity => entity_discovery(prefix, cfg),
    }
}

/// The empty retained messages that remove what [`discovery`] announced in `mode`. Publish
/// those of the other mode after switching modes, so no stale duplicate stays retained.
#[must_use]
pub fn removal(mode: DiscoveryMode, prefix: &str, cfg: &DeviceConfig) -> Vec<DiscoveryMessage> {
    let empty = |topic| DiscoveryMessage {
        topic,
        payload: String::new(),
    };
    match mode {
        DiscoveryMode::Device => vec![empty(device_topic(prefix, cfg))],
        DiscoveryMode::Entity => cfg
            .components
            .iter()
            .map(|c| empty(entity_topic(prefix, cfg, c)))
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::classes::SensorKind;
    use crate::component::{Button, Sensor};
    use crate::device::AvailabilityTopic;
    use serde_json::{json, Value};

    fn config() -> DeviceConfig {
        let device = Device {
            identifiers: vec!["dev1".into()],
            name: "Dev 1".into(),
            ..Device::default()
        };
        let origin = Origin {
            name: "test".into(),
            sw_version: None,
            support_url: None,
        };
        let avail = Availability::all(vec![
            AvailabilityTopic::online_offline("a/status"),
            AvailabilityTopic::online_offline("a/dev1/availability"),
        ]);
        let mut cfg = DeviceConfig::new("dev1", "dev_1", device, origin, avail).unwrap();
        cfg.push(Component::new(
            "power",
            "Power",
            Sensor {
                state_topic: "a/dev1/state".into(),
                value_template: Some("{{ value_json.power_w }}".into()),
                kind: SensorKind::power_w(),
                suggested_display_precision: Some(0),
            },
        ))
        .unwrap();
        cfg.push(
            Component::new(
                "stop",
                "Stop",
                Button {
                    command_topic: "a/dev1/set/stop".into(),
                    payload_press: None,
                    device_class: None,
                },
            )
            .availability(Availability::default())
            .disabled_by_default(),
        )
        .unwrap();
        cfg
    }

    #[test]
    fn device_payload_has_dev_o_and_components_with_platforms() {
        let msg = device_discovery("homeassistant", &config()).unwrap();
        assert_eq!(msg.topic, "homeassistant/device/dev1/config");
        let v: Value = serde_json::from_str(&msg.payload).unwrap();
        assert_eq!(v["dev"]["identifiers"], json!(["dev1"]));
        assert_eq!(v["o"]["name"], "test");
        let power = &v["cmps"]["power"];
        assert_eq!(power["p"], "sensor");
        assert_eq!(power["unique_id"], "dev1_power");
        assert_eq!(power["default_entity_id"], "sensor.dev_1_power");
        assert_eq!(power["unit_of_measurement"], "W");
        // The stop button must stay available, so nothing is shared at the top level.
        assert!(v.get("availability").is_none());
        assert_eq!(power["availability_mode"], "all");
        assert!(power.get("object_id").is_none());
        let stop = &v["cmps"]["stop"];
        assert_eq!(stop["enabled_by_default"], false);
        assert!(
            stop.get("availability").is_none(),
            "an empty override means always available"
        );
    }

    #[test]
    fn device_payload_shares_availability_and_keeps_overrides() {
        let mut cfg = config();
        let bridge = Availability::all(vec![AvailabilityTopic::online_offline("a/status")]);
        cfg.components[1].availability = Some(bridge);
        let msg = device_discovery("ha", &cfg).unwrap();
        let v: Value = serde_json::from_str(&msg.payload).unwrap();
        assert_eq!(v["availability"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["availability_mode"], "all");
        assert!(v["cmps"]["power"].get("availability").is_none());
        assert_eq!(
            v["cmps"]["stop"]["availability"],
            json!([{"topic": "a/status"}])
        );
    }

    #[test]
    fn entity_payloads_carry_device_origin_and_both_entity_id_keys() {
        let msgs = entity_discovery("ha", &config()).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].topic, "ha/sensor/dev1/power/config");
        assert_eq!(msgs[1].topic, "ha/button/dev1/stop/config");
        let v: Value = serde_json::from_str(&msgs[0].payload).unwrap();
        assert_eq!(v["object_id"], "dev_1_power");
        assert_eq!(v["default_entity_id"], "sensor.dev_1_power");
        assert_eq!(v["device"]["name"], "Dev 1");
        assert!(v.get("p").is_none());
    }

    #[test]
    fn removal_empties_exactly_the_announced_topics() {
        let cfg = config();
        for mode in [DiscoveryMode::Device, DiscoveryMode::Entity] {
            let announced: Vec<_> = discovery(mode, "ha", &cfg)
                .unwrap()
                .into_iter()
                .map(|m| m.topic)
                .collect();
            let removed = removal(mode, "ha", &cfg);
            assert!(removed.iter().all(|m| m.payload.is_empty()));
            let removed: Vec<_> = removed.into_iter().map(|m| m.topic).collect();
            assert_eq!(announced, removed);
        }
    }

    #[test]
    fn bad_ids_and_duplicate_keys_are_refused() {
        let mut cfg = config();
        let dup = cfg.components()[0].clone();
        assert!(matches!(
            cfg.push(dup),
            Err(DiscoveryError::DuplicateKey { .. })
        ));
        let mut bad = cfg.components()[0].clone();
        bad.key = "a b".into();
        assert!(matches!(
            cfg.push(bad),
            Err(DiscoveryError::InvalidId { .. })
        ));
        let r = DeviceConfig::new(
            "x/y",
            "x",
            Device::default(),
            cfg.origin.clone(),
            Availability::default(),
        );
        assert!(matches!(r, Err(DiscoveryError::InvalidId { .. })));
    }

    #[test]
    fn discovery_mode_reads_from_config_words() {
        #[derive(Deserialize)]
        struct C {
            discovery: DiscoveryMode,
        }
        let c: C = serde_json::from_str(r#"{"discovery":"entity"}"#).unwrap();
        assert_eq!(c.discovery, DiscoveryMode::Entity);
    }
}
