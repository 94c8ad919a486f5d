//! The parts of a discovery payload that describe who is speaking rather than what an entity
//! does: the device in Home Assistant's device registry, the origin (the publishing program)
//! and availability.

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

/// A device registry entry. At least one identifier is required by Home Assistant; the MAC
/// as a connection lets other integrations (a router, say) land on the same device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Device {
    pub identifiers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The identifier of the device this one talks through (a bay through its site bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_url: Option<String>,
}

/// A `[type, value]` pair in a device's `connections`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// A MAC address in colon form, lower case (`d8:a0:1d:55:a7:10`), as the registry
    /// normalises it.
    Mac(String),
}

impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, value) = match self {
            Self::Mac(mac) => ("mac", mac),
        };
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(kind)?;
        seq.serialize_element(value)?;
        seq.end()
    }
}

/// The program that published the discovery message; Home Assistant logs it and shows it in
/// the MQTT info dialog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_url: Option<String>,
}

/// One topic of an availability list. Payloads default to `online` / `offline` in Home
/// Assistant, so they are only written when different.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AvailabilityTopic {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_available: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_not_available: Option<String>,
}

impl AvailabilityTopic {
    /// A topic carrying the default `online` / `offline` payloads.
    #[must_use]
    pub fn online_offline(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            payload_available: None,
            payload_not_available: None,
        }
    }
}

/// How several availability topics combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityMode {
    /// Available only when every topic says so (bridge up and node reachable).
    All,
    Any,
    #[default]
    Latest,
}

/// The availability list of an entity, serialised as the `availability` and
/// `availability_mode` keys (never the single-topic form, which excludes the list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    pub topics: Vec<AvailabilityTopic>,
    pub mode: AvailabilityMode,
}

impl Availability {
    /// Available while every one of `topics` reports `online`.
    #[must_use]
    pub fn all(topics: Vec<AvailabilityTopic>) -> Self {
        Self {
            topics,
            mode: AvailabilityMode::All,
        }
    }

    /// Always available: Home Assistant treats an entity without availability as available.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }
}

/// The serialised form, flattened into an entity payload.
#[derive(Serialize)]
pub(crate) struct AvailabilityKeys<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    availability: Option<&'a [AvailabilityTopic]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_mode: Option<AvailabilityMode>,
}

impl<'a> From<&'a Availability> for AvailabilityKeys<'a> {
    fn from(a: &'a Availability) -> Self {
        if a.is_empty() {
            return Self {
                availability: None,
                availability_mode: None,
            };
        }
        Self {
            availability: Some(&a.topics),
            // `latest` is Home Assistant's default; leave it out to keep payloads short.
            availability_mode: (a.mode != AvailabilityMode::Latest).then_some(a.mode),
        }
    }
}
