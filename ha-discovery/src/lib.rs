//! # ctrl22-ha
//!
//! A typed, IO-free model of Home Assistant MQTT discovery, and the catalogue of what the
//! CTRL22 bridge shows: one device per charging bay and one for the site.
//!
//! - [`classes`]: device classes, state classes and units, typed so that only combinations
//!   Home Assistant accepts can be built (2025.6+/2025.9+ reject the others).
//! - [`device`], [`component`]: device registry info, origin, availability, and the config of
//!   each platform (sensor, binary_sensor, number, select, switch, button, text, update).
//! - [`render`]: device-based discovery (default) or per-entity discovery, and removal.
//! - [`ctrl22`]: the bridge's entities, topics and state JSON fields (the contract).
//!
//! This crate never touches a network or a clock: it turns plain inputs into
//! `(topic, payload)` pairs; the bridge publishes them.

pub mod classes;
pub mod component;
pub mod ctrl22;
pub mod device;
pub mod error;
pub mod render;

pub use error::DiscoveryError;
pub use render::{
    device_discovery, discovery, entity_discovery, removal, DeviceConfig, DiscoveryMessage,
    DiscoveryMode,
};
