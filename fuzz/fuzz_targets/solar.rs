//! Power source answers (inverters, meters, Home Assistant, MQTT, Modbus, Speedwire); see
//! `ctrl22_bridge::fuzzing::solar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_bridge::fuzzing::solar(data));
