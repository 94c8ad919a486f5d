//! The entity platforms a charger needs, one config struct each, with the keys Home Assistant's
//! MQTT platform schemas use. `None` fields are left out of the payload so Home Assistant's
//! defaults apply.

use serde::Serialize;

use crate::classes::{
    BinarySensorClass, ButtonClass, EntityCategory, NumberKind, SensorKind, UpdateClass,
};
use crate::device::Availability;
use crate::error::DiscoveryError;

/// A read-only value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sensor {
    pub state_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    #[serde(flatten)]
    pub kind: SensorKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_display_precision: Option<u8>,
}

/// An on/off reading. Payloads default to `ON` / `OFF`; templates map JSON booleans onto them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BinarySensor {
    pub state_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<BinarySensorClass>,
}

/// The interval a number may take. Home Assistant's default is 0..100, which silently rejects
/// anything above, so every number carries its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NumberRange {
    min: f64,
    max: f64,
    step: f64,
}

impl NumberRange {
    /// Home Assistant's smallest step.
    const MIN_STEP: f64 = 0.001;

    /// # Errors
    /// [`DiscoveryError::InvalidRange`] unless `min < max` (Home Assistant refuses equal
    /// bounds) and `step >= 0.001`.
    pub fn new(min: f64, max: f64, step: f64) -> Result<Self, DiscoveryError> {
        if min < max && step >= Self::MIN_STEP {
            Ok(Self { min, max, step })
        } else {
            Err(DiscoveryError::InvalidRange { min, max, step })
        }
    }

    #[must_use]
    pub const fn min(&self) -> f64 {
        self.min
    }

    #[must_use]
    pub const fn max(&self) -> f64 {
        self.max
    }
}

/// How the frontend offers a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberMode {
    Auto,
    Box,
    Slider,
}

/// A settable number; Home Assistant sends it as text (`"16"`, `"7.5"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Number {
    pub command_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    #[serde(flatten)]
    pub kind: NumberKind,
    #[serde(flatten)]
    pub range: NumberRange,
    pub mode: NumberMode,
}

/// One of a fixed list of options; Home Assistant sends the option string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Select {
    pub command_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    pub options: Vec<String>,
}

/// An on/off control; commands are `ON` / `OFF`, and the state template must yield the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Switch {
    pub command_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
}

/// A stateless action; Home Assistant sends `payload_press` (default `PRESS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Button {
    pub command_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_press: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<ButtonClass>,
}

/// Free text with a length range and an optional regular expression the frontend enforces;
/// MQTT has no `time` platform, so times of day are text with a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Text {
    pub command_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    pub min: u8,
    pub max: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// Installed versus latest firmware, with an optional install command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Update {
    pub state_topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_version_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_version_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_install: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<UpdateClass>,
}

/// A platform's own configuration; serialises as that platform's keys only.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Platform {
    Sensor(Sensor),
    BinarySensor(BinarySensor),
    Number(Number),
    Select(Select),
    Switch(Switch),
    Button(Button),
    Text(Text),
    Update(Update),
}

impl Platform {
    /// The platform's name: the `<component>` of a discovery topic, the `p` of a device
    /// discovery component and the domain of the entity id.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Sensor(_) => "sensor",
            Self::BinarySensor(_) => "binary_sensor",
            Self::Number(_) => "number",
            Self::Select(_) => "select",
            Self::Switch(_) => "switch",
            Self::Button(_) => "button",
            Self::Text(_) => "text",
            Self::Update(_) => "update",
        }
    }
}

macro_rules! platform_from {
    ($($ty:ident),+) => {
        $(impl From<$ty> for Platform {
            fn from(c: $ty) -> Self {
                Self::$ty(c)
            }
        })+
    };
}
platform_from!(
    Sensor,
    BinarySensor,
    Number,
    Select,
    Switch,
    Button,
    Text,
    Update
);

/// One entity of a device: a platform config plus what every entity has.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// Stable short key (`current_l1`): the tail of the unique id and of the entity id, and
    /// the component id in device discovery.
    pub key: String,
    /// Entity name without the device name (Home Assistant prefixes the device name).
    pub name: String,
    pub platform: Platform,
    pub category: Option<EntityCategory>,
    pub icon: Option<String>,
    pub enabled_by_default: bool,
    /// Overrides the device's availability for this entity (`None` = the device's).
    pub availability: Option<Availability>,
}

impl Component {
    #[must_use]
    pub fn new(
        key: impl Into<String>,
        name: impl Into<String>,
        platform: impl Into<Platform>,
    ) -> Self {
        Self {
            key: key.into(),
            name: name.into(),
            platform: platform.into(),
            category: None,
            icon: None,
            enabled_by_default: true,
            availability: None,
        }
    }

    #[must_use]
    pub fn category(mut self, category: EntityCategory) -> Self {
        self.category = Some(category);
        self
    }

    #[must_use]
    pub fn icon(mut self, icon: impl Into<String>) -> Self {
        self.icon = Some(icon.into());
        self
    }

    /// Registered but hidden until a user enables it (noisy diagnostics).
    #[must_use]
    pub fn disabled_by_default(mut self) -> Self {
        self.enabled_by_default = false;
        self
    }

    #[must_use]
    pub fn availability(mut self, availability: Availability) -> Self {
        self.availability = Some(availability);
        self
    }
}
