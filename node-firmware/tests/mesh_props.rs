//! Property tests of the mesh wire protocol: no decoder panics on any bytes (random, or valid
//! messages with random damage), and every valid message and command survives an
//! encode/decode round trip on both uplinks.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ctrl22_node::mesh::{
    decode_command_mqtt, decode_command_tcp, decode_uplink_mqtt, decode_uplink_tcp, encode_command,
    encode_command_tcp, encode_uplink_mqtt, encode_uplink_tcp, parse_topic, topic, Address,
    Command, Heartbeat, MacAddr, NodeMessage, OtaState, ProtocolError, StatusReply, SystemReply,
    TopicKind, TsyncReply, MAX_AVR_CHUNK, MAX_MESSAGE_LEN,
};
use ctrl22_node::{Ccss, Deciamps, Phase, PhaseSet};
use proptest::prelude::*;

const MESH: &str = "DEMESH";

/// Fills a bounded string with as many of `chars` as fit.
fn bounded<const N: usize>(chars: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in chars.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// Text that exercises escaping: quotes, backslashes, control characters, non-ASCII.
fn text<const N: usize>() -> impl Strategy<Value = heapless::String<N>> {
    prop_oneof![
        "[a-z0-9.]{0,40}",
        "[\"\\\\/\u{0}-\u{1f} a-zA-Z0-9äöü€😀]{0,40}",
        any::<String>(),
    ]
    .prop_map(|s| bounded(&s))
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        mac().prop_map(Address::Node),
        Just(Address::Broadcast),
        Just(Address::Root),
    ]
}

fn deciamps(min: i16) -> impl Strategy<Value = Deciamps> {
    (min..=800i16).prop_map(Deciamps)
}

fn phase_set() -> impl Strategy<Value = PhaseSet> {
    proptest::sample::subsequence(Phase::ALL.to_vec(), 0..=3)
        .prop_map(|phases| phases.into_iter().fold(PhaseSet::NONE, PhaseSet::with))
}

fn rssi() -> impl Strategy<Value = i16> {
    any::<i8>().prop_map(i16::from)
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        rssi(),
        proptest::sample::select(Ccss::ALL.to_vec()),
        deciamps(0),
        deciamps(-1),
        phase_set(),
        [deciamps(0), deciamps(0), deciamps(0)],
    )
        .prop_map(|(rssi, ccss, amaxcur, cmaxcur, aphases, cur)| Heartbeat {
            rssi,
            ccss,
            amaxcur,
            cmaxcur,
            aphases,
            cur,
        })
}

fn node_message() -> impl Strategy<Value = NodeMessage> {
    prop_oneof![
        heartbeat().prop_map(NodeMessage::Heartbeat),
        (mac(), rssi(), any::<u8>(), any::<u16>(), any::<u32>()).prop_map(
            |(parent, rssi, layer, nodes, plat)| NodeMessage::Status(StatusReply {
                parent,
                rssi,
                layer,
                nodes,
                plat
            })
        ),
        (0..SystemReply::TIME_WRAP_MS, text(), text(), any::<i16>()).prop_map(
            |(time_ms, version, board, avrver)| NodeMessage::System(SystemReply {
                time_ms,
                version,
                board,
                avrver
            })
        ),
        any::<[u32; 3]>().prop_map(|[tsync1, tsync2, tsync3]| NodeMessage::Tsync(TsyncReply {
            tsync1,
            tsync2,
            tsync3
        })),
        any::<bool>().prop_map(|ok| NodeMessage::AvrSetPar { ok }),
        (text(), any::<Option<i16>>()).prop_map(|(par, val)| NodeMessage::AvrGetPar { par, val }),
        proptest::sample::select(OtaState::ALL.to_vec())
            .prop_map(|state| NodeMessage::AvrOta { state }),
        (any::<u32>(), any::<bool>()).prop_map(|(addr, ok)| NodeMessage::AvrImg { addr, ok }),
        prop_oneof!["[ -~]{0,300}", "\\PC{0,300}", any::<String>()].prop_map(|line| {
            NodeMessage::AvrLog {
                line: bounded(&line),
            }
        }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Status),
        Just(Command::System),
        Just(Command::Tsync),
        Just(Command::Restart),
        any::<u32>().prop_map(|period_ms| Command::HbPeriod { period_ms }),
        (text(), any::<i16>()).prop_map(|(par, val)| Command::AvrSetPar { par, val }),
        text().prop_map(|par| Command::AvrGetPar { par }),
        (text(), text()).prop_map(|(version, board)| Command::Upgrade { version, board }),
        Just(Command::AvrOtaRecImg),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_AVR_CHUNK),
            any::<i32>()
        )
            .prop_map(|(addr, data, crc)| Command::AvrImg {
                addr,
                data: heapless::Vec::from_slice(&data).unwrap(),
                crc
            }),
        any::<u32>().prop_map(|image_len| Command::AvrOtaFlash { image_len }),
    ]
}

/// Topics near the real ones, plus noise.
fn any_topic() -> impl Strategy<Value = String> {
    prop_oneof![
        (address(), proptest::sample::select(TopicKind::ALL.to_vec()))
            .prop_map(|(addr, kind)| topic(MESH, &addr, kind).as_str().to_owned()),
        "/DEMESH/[0-9a-fA-F:*+#/]{0,20}/[a-z]{0,12}",
        any::<String>(),
    ]
}

/// Every decoder on the same bytes; only absence of panics is checked.
fn decode_everything(topic: &str, bytes: &[u8]) {
    let _ = decode_uplink_mqtt(MESH, topic, bytes);
    let _ = decode_uplink_tcp(bytes);
    let _ = decode_command_mqtt(MESH, topic, bytes);
    let _ = decode_command_tcp(bytes);
    let _ = parse_topic(MESH, topic);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = parse_topic(text, topic);
        let _ = text.parse::<MacAddr>();
        let _ = text.parse::<Address>();
    }
}

/// Valid encodings of random messages and commands, to be damaged.
fn valid_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (mac(), node_message()).prop_filter_map("encodable", |(src, msg)| {
            let mut buf = [0u8; MAX_MESSAGE_LEN + 2];
            let len = encode_uplink_tcp(src, &msg, &mut buf).ok()?;
            Some(buf[..len].to_vec())
        }),
        (mac(), node_message()).prop_filter_map("encodable", |(src, msg)| {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let (_, len) = encode_uplink_mqtt(MESH, src, &msg, &mut buf).ok()?;
            Some(buf[..len].to_vec())
        }),
        (address(), command()).prop_map(|(dst, cmd)| {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let len = encode_command_tcp(&dst, &cmd, &mut buf).unwrap();
            buf[..len].to_vec()
        }),
    ]
}

/// Damage: overwrite, delete or insert bytes (biased toward JSON punctuation), or truncate.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Delete(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        proptest::sample::select(b"{}[]\":,\\-0123456789e.ntfu ".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Set(at, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len().max(1);
    match *edit {
        Edit::Set(at, b) => {
            if let Some(slot) = bytes.get_mut(at % len) {
                *slot = b;
            }
        }
        Edit::Delete(at) => {
            if at % len < bytes.len() {
                bytes.remove(at % len);
            }
        }
        Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        Edit::Truncate(at) => bytes.truncate(at % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(topic in any_topic(), bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        decode_everything(&topic, &bytes);
    }

    #[test]
    fn damaged_messages_never_panic(
        topic in any_topic(),
        mut bytes in valid_bytes(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        for e in &edits {
            apply(&mut bytes, e);
        }
        decode_everything(&topic, &bytes);
    }

    #[test]
    fn topic_building_never_panics(mesh_id in any::<String>(), addr in address()) {
        for kind in TopicKind::ALL {
            let t = topic(&mesh_id, &addr, kind);
            if ctrl22_node::mesh::check_mesh_id(&mesh_id).is_ok() {
                prop_assert_eq!(parse_topic(&mesh_id, &t), Ok((addr, kind)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn node_messages_round_trip_on_both_uplinks(src in mac(), msg in node_message()) {
        let mut buf = [0u8; MAX_MESSAGE_LEN + 2];
        match encode_uplink_mqtt(MESH, src, &msg, &mut buf) {
            Ok((t, len)) => {
                prop_assert!(len <= MAX_MESSAGE_LEN);
                prop_assert_eq!(decode_uplink_mqtt(MESH, &t, &buf[..len]), Ok((src, msg.clone())));
            }
            // Only a log line full of escapes can outgrow the limit.
            Err(e) => prop_assert!(matches!((e, &msg), (ProtocolError::TooLong, NodeMessage::AvrLog { .. })), "{:?}", e),
        }
        match encode_uplink_tcp(src, &msg, &mut buf) {
            Ok(len) => {
                prop_assert!(buf[..len].ends_with(b"\r\n"));
                prop_assert_eq!(decode_uplink_tcp(&buf[..len]), Ok((src, msg.clone())));
            }
            Err(e) => prop_assert!(matches!((e, &msg), (ProtocolError::TooLong, NodeMessage::AvrLog { .. })), "{:?}", e),
        }
    }

    #[test]
    fn commands_round_trip_on_both_uplinks(dst in address(), cmd in command()) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let len = encode_command(&cmd, &mut buf).unwrap();
        let control = topic(MESH, &dst, TopicKind::Control);
        prop_assert_eq!(decode_command_mqtt(MESH, &control, &buf[..len]), Ok((dst, cmd.clone())));
        prop_assert_eq!(cmd.to_json_string().into_bytes(), buf[..len].to_vec());

        let len = encode_command_tcp(&dst, &cmd, &mut buf).unwrap();
        prop_assert_eq!(decode_command_tcp(&buf[..len]), Ok((dst, cmd)));
    }

    #[test]
    fn macs_round_trip_in_both_forms(mac in mac()) {
        prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        prop_assert_eq!(mac.topic_form().to_string().parse::<MacAddr>(), Ok(mac));
        prop_assert_eq!(mac.to_string().to_uppercase().parse::<MacAddr>(), Ok(mac));
    }
}
