//! # ctrl22-ha
//!
//! What the CTRL22 bridge shows Home Assistant, as plain data: a typed, IO-free model of
//! Home Assistant's MQTT discovery, and the catalogue built on it (one device per charging
//! bay and one for the site, their topics and the fields of their state payloads). The
//! bridge's Home Assistant adapter (`bridge/src/ha/`) feeds it values from snapshots and
//! publishes the `(topic, payload)` pairs it returns.
//!
//! # Modules
//! - [`classes`]: device classes, state classes and units, typed so that only combinations
//!   Home Assistant accepts can be built (2025.6+/2025.9+ reject the others).
//! - [`device`], [`component`]: device registry info, origin, availability, and the config of
//!   each platform (sensor, binary_sensor, number, select, switch, button, text, update).
//! - [`render`]: device-based discovery (default) or per-entity discovery, and removal.
//! - [`ctrl22`]: the bridge's catalogue, one file per idea:
//!   - `topics`: the topic scheme and parsing command topics back;
//!   - `fields`: state payload fields and command names (the contract with the templates);
//!   - `options`: option lists and fixed bounds, the same words as the bridge's enums;
//!   - `identity`: device ids, origin, entity-id slugs;
//!   - `builder`: one entity reading one field and writing one command;
//!   - `bay`, `site`: the two devices; per-installation bounds (ceilings) come in as values.
//! - [`error`]: why a config cannot be built.
//!
//! # Never
//! - Touch a network, a file or a clock: inputs in, messages out, deterministic.
//! - Depend on the bridge: it holds no bridge types, so the HA contract can be read and
//!   tested on its own; the bridge's tests check that the two vocabularies agree.
//! - Produce a config Home Assistant would refuse or misread: bad ids and ranges are errors
//!   (or, for a bound that leaves no choice, the entity is left out), never a payload.
//! - Offer a number range above what the bridge accepts: the ceilings are passed in.

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
