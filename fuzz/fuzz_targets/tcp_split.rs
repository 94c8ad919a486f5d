//! The mesh root's TCP uplink stream; see `ctrl22_bridge::fuzzing::tcp_split`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrl22_bridge::fuzzing::tcp_split(data));
