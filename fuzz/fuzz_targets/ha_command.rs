//! Home Assistant command topics and payloads; see `ctrl22_bridge::fuzzing::ha_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_bridge::fuzzing::ha_command(data));
