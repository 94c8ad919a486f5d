//! Configuration text; see `ctrl22_bridge::fuzzing::config_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_bridge::fuzzing::config_toml(data));
