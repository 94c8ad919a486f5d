//! HTTP API `PUT` bodies; see `ctrl22_bridge::fuzzing::api_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_bridge::fuzzing::api_body(data));
