//! Fuzzes the serial line protocol: arbitrary bytes through the line assembler, both parsers
//! and the controller's request handler must never panic, and every parsed request or reply
//! must format back to a line that parses to the same value.
#![no_main]

use ctrl22_node::controller::{ChargeController, Config};
use ctrl22_node::line::{self, LineAssembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = line::parse_reply(data);
    if let Ok(Some(request)) = line::parse_request(data) {
        let text = request.to_string();
        assert_eq!(line::parse_request(text.as_bytes()), Ok(Some(request)));
    }
    if let Ok(Some(reply)) = line::parse_reply(data) {
        let text = reply.to_string();
        assert_eq!(line::parse_reply(text.as_bytes()), Ok(Some(reply)));
    }
    let mut controller = ChargeController::new(Config::default());
    let mut assembler = LineAssembler::default();
    let mut out = String::new();
    for (now_ms, byte) in (0u64..).zip(data.iter().copied()) {
        if let Some(Ok(request)) = assembler.push(byte) {
            let _ = line::serve(&mut controller, now_ms, request, &mut out);
        }
    }
});
