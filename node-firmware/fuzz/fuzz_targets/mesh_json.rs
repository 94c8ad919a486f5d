//! Fuzzes the mesh wire protocol: arbitrary bytes through every decoder (MQTT and TCP, node
//! messages and commands, topics and addresses) must never panic, and whatever decodes must
//! encode back to bytes that decode to the same value (or be refused as too long, when
//! re-escaping raw control characters outgrows the limit).
#![no_main]

use ctrl22_node::mesh::{
    decode_command_mqtt, decode_command_tcp, decode_uplink_mqtt, decode_uplink_tcp, encode_command,
    encode_command_tcp, encode_uplink_mqtt, encode_uplink_tcp, parse_topic, topic, Address,
    MacAddr, ProtocolError, TopicKind, MAX_MESSAGE_LEN,
};
use libfuzzer_sys::fuzz_target;

const MESH: &str = "DEMESH";
const NODE: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa5, 0x6c]);

fn check_uplink_mqtt(topic: &str, payload: &[u8]) {
    let Ok((src, msg)) = decode_uplink_mqtt(MESH, topic, payload) else {
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    match encode_uplink_mqtt(MESH, src, &msg, &mut buf) {
        Ok((t, len)) => assert_eq!(decode_uplink_mqtt(MESH, &t, &buf[..len]), Ok((src, msg))),
        Err(e) => assert_eq!(e, ProtocolError::TooLong),
    }
}

fn check_uplink_tcp(line: &[u8]) {
    let Ok((src, msg)) = decode_uplink_tcp(line) else {
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN + 2];
    match encode_uplink_tcp(src, &msg, &mut buf) {
        Ok(len) => assert_eq!(decode_uplink_tcp(&buf[..len]), Ok((src, msg))),
        Err(e) => assert_eq!(e, ProtocolError::TooLong),
    }
}

fn check_command_mqtt(topic: &str, payload: &[u8]) {
    let Ok((dst, cmd)) = decode_command_mqtt(MESH, topic, payload) else {
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let len = encode_command(&cmd, &mut buf).expect("every command fits");
    assert_eq!(
        decode_command_mqtt(MESH, topic, &buf[..len]),
        Ok((dst, cmd))
    );
}

fn check_command_tcp(bytes: &[u8]) {
    let Ok((dst, cmd)) = decode_command_tcp(bytes) else {
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let len = encode_command_tcp(&dst, &cmd, &mut buf).expect("every command fits");
    assert_eq!(decode_command_tcp(&buf[..len]), Ok((dst, cmd)));
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a well-formed topic, so bodies reach the body decoders.
    let (selector, payload) = data.split_first().map_or((0, data), |(s, p)| (*s, p));
    let kind = TopicKind::ALL[usize::from(selector) % TopicKind::ALL.len()];
    let addr = match selector / 4 % 3 {
        0 => Address::Node(NODE),
        1 => Address::Broadcast,
        _ => Address::Root,
    };
    let topic = topic(MESH, &addr, kind);
    check_uplink_mqtt(&topic, payload);
    check_command_mqtt(&topic, payload);
    check_uplink_tcp(data);
    check_command_tcp(data);

    // Free-form topics: `<topic>\n<payload>`.
    if let Some(split) = data.iter().position(|&b| b == b'\n') {
        if let Ok(free_topic) = std::str::from_utf8(&data[..split]) {
            let _ = parse_topic(MESH, free_topic);
            let _ = free_topic.parse::<MacAddr>();
            let _ = free_topic.parse::<Address>();
            check_uplink_mqtt(free_topic, &data[split + 1..]);
            check_command_mqtt(free_topic, &data[split + 1..]);
        }
    }
});
