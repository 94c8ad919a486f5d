//! # ctrl22-ha
//!
//! A typed, IO-free model of Home Assistant MQTT discovery.
