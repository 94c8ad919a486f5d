//! OCPP frames from the backend to a booted charge point; see `ctrl22_ocpp::fuzzing::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_ocpp::fuzzing::frames(data));
