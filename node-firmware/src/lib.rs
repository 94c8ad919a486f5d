//! # ctrl22-node
//!
//! The logic of one CTRL22 charging bay: the AVR charge controller (IEC 61851-1 pilot
//! signalling, the `ccss` state machine, the setpoint watchdog, the serial parameter line
//! protocol) and the ESP32 mesh node's wire protocol (commands, replies, heartbeats, MQTT topic
//! scheme). The bridge and the simulator use these very types, so nothing else in the project
//! parses mesh JSON.
//!
//! The core is `no_std` and needs no allocator. It never allocates current among bays (that is
//! the bridge's job) and never closes a contactor outside state C or with less than 6 A offered.
//!
//! | module | what it is |
//! |---|---|
//! | [`pilot`] | control pilot voltage bands, PWM duty <-> current, proximity pilot cable capacity |
//! | [`ccss`] | the controller's state codes (`OFF0`..`ERR0`) and their groups |
//! | [`controller`] | the charge controller state machine, its registers and the setpoint watchdog |
//! | [`params`], [`line`] | the controller's parameters and the serial line protocol |
//! | [`mesh`] | the mesh wire protocol: addresses, commands, node messages, both uplinks' framing |
//! | [`units`] | 0.1 A currents and phase sets, the one conversion from outside numbers |
//! | `sim` | feature `sim`: the bay simulator (nodes, cars, mesh tree, MQTT and TCP uplinks) |
//!
//! Features: `std` (default) adds `serde_json` conveniences; `sim` adds the bay simulator
//! (`ctrl22-node-sim`).
#![cfg_attr(not(feature = "std"), no_std)]

pub mod ccss;
pub mod units;

pub use ccss::{Ccss, CcssGroup};
pub use units::{Deciamps, Phase, PhaseSet};
pub mod controller;
pub mod line;
pub mod mesh;
pub mod params;
pub mod pilot;
#[cfg(feature = "sim")]
pub mod sim;
