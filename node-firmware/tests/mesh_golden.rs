//! Golden tests of the mesh wire protocol: every example shape of
//! `shared/reference/mesh-protocol.md` (sections 2-5) decodes to the expected value and
//! encodes back byte for byte; malformed input yields the expected typed error.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ctrl22_node::mesh::{
    avr_chunk_crc, decode_command_mqtt, decode_command_tcp, decode_uplink_mqtt, decode_uplink_tcp,
    encode_command, encode_command_tcp, encode_command_tcp_vec, encode_uplink_mqtt,
    encode_uplink_mqtt_vec, encode_uplink_tcp, encode_uplink_tcp_vec, topic, Address, Command,
    Heartbeat, JsonError, MacAddr, NodeMessage, OtaState, ProtocolError, StatusReply, SystemReply,
    TopicKind, TsyncReply, MAX_AVR_CHUNK, MAX_MESSAGE_LEN,
};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};

const MESH: &str = "DEMESH";
/// The node of the reference's heartbeat example.
const NODE: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa5, 0x6c]);
const OTHER: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa7, 0x10]);

fn s<const N: usize>(text: &str) -> heapless::String<N> {
    heapless::String::try_from(text).unwrap()
}

fn reference_heartbeat() -> Heartbeat {
    Heartbeat {
        rssi: -72,
        ccss: Ccss::C0,
        amaxcur: Deciamps(160),
        cmaxcur: Deciamps(320),
        aphases: PhaseSet::ALL,
        cur: [Deciamps(158), Deciamps(157), Deciamps(160)],
    }
}

/// A 128-byte chunk whose CRC-32 is negative as a signed integer (checked with Python's
/// `zlib.crc32`), so the sign convention of `avrcrc` is pinned.
fn chunk() -> Vec<u8> {
    (0..128u32)
        .map(|i| u8::try_from((i * 7 + 5) & 0xff).unwrap())
        .collect()
}
const CHUNK_BASE64: &str = "BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QAHDhUcIyoxOD9GTVRbYmlwd34=";
const CHUNK_CRC: i32 = -1_128_617_694;

/// (mtype-free MQTT body after `"dev":..,`, TCP body after `"src":..,`, message) for every
/// node message shape of the reference.
fn node_messages() -> Vec<(&'static str, NodeMessage)> {
    vec![
        (
            r#""mtype":"heartbeat","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160"#,
            NodeMessage::Heartbeat(reference_heartbeat()),
        ),
        (
            r#""mtype":"heartbeat","rssi":-40,"ccss":3,"amaxcur":0,"cmaxcur":-1,"aphases":0,"cur1":0,"cur2":0,"cur3":0"#,
            NodeMessage::Heartbeat(Heartbeat {
                rssi: -40,
                ccss: Ccss::Off3,
                amaxcur: Deciamps(0),
                cmaxcur: Deciamps(-1),
                aphases: PhaseSet::NONE,
                cur: [Deciamps(0); 3],
            }),
        ),
        (
            r#""mtype":"status","parent":"d8:a0:1d:55:a7:10","rssi":-61,"layer":2,"nodes":7,"plat":14"#,
            NodeMessage::Status(StatusReply {
                parent: OTHER,
                rssi: -61,
                layer: 2,
                nodes: 7,
                plat: 14,
            }),
        ),
        (
            r#""mtype":"system","time":3599999,"version":"3.5","board":"m5stick","avrver":13"#,
            NodeMessage::System(SystemReply {
                time_ms: 3_599_999,
                version: s("3.5"),
                board: s("m5stick"),
                avrver: 13,
            }),
        ),
        (
            r#""mtype":"system","time":0,"version":"3.4","board":"agccs12","avrver":0"#,
            NodeMessage::System(SystemReply {
                time_ms: 0,
                version: s("3.4"),
                board: s("agccs12"),
                avrver: 0,
            }),
        ),
        (
            r#""mtype":"tsync","tsync1":1000,"tsync2":1012,"tsync3":1025"#,
            NodeMessage::Tsync(TsyncReply {
                tsync1: 1000,
                tsync2: 1012,
                tsync3: 1025,
            }),
        ),
        (
            r#""mtype":"avrsetpar","avrpar":"ok""#,
            NodeMessage::AvrSetPar { ok: true },
        ),
        (
            r#""mtype":"avrsetpar","avrpar":"fail""#,
            NodeMessage::AvrSetPar { ok: false },
        ),
        (
            r#""mtype":"avrgetpar","avrpar":"ver","avrval":14"#,
            NodeMessage::AvrGetPar {
                par: s("ver"),
                val: Some(14),
            },
        ),
        (
            r#""mtype":"avrgetpar","avrpar":"blinks","avrval":-1"#,
            NodeMessage::AvrGetPar {
                par: s("blinks"),
                val: Some(-1),
            },
        ),
        (
            r#""mtype":"avrgetpar","avrpar":"ver","avrval":"fail""#,
            NodeMessage::AvrGetPar {
                par: s("ver"),
                val: None,
            },
        ),
        (
            r#""mtype":"avrota","state":"recimg""#,
            NodeMessage::AvrOta {
                state: OtaState::RecImg,
            },
        ),
        (
            r#""mtype":"avrota","state":"running""#,
            NodeMessage::AvrOta {
                state: OtaState::Running,
            },
        ),
        (
            r#""mtype":"avrota","state":"halted""#,
            NodeMessage::AvrOta {
                state: OtaState::Halted,
            },
        ),
        (
            r#""mtype":"avrimg","avraddr":0,"avrcrc":"ok""#,
            NodeMessage::AvrImg { addr: 0, ok: true },
        ),
        (
            r#""mtype":"avrimg","avraddr":128,"avrcrc":"error""#,
            NodeMessage::AvrImg {
                addr: 128,
                ok: false,
            },
        ),
        (
            r#""mtype":"avrlog","line":"ccss C0 -> C1 \"pwm\" 26.7%\tok""#,
            NodeMessage::AvrLog {
                line: s("ccss C0 -> C1 \"pwm\" 26.7%\tok"),
            },
        ),
    ]
}

/// The MQTT body: `dev` in topic form, `mtype` only on the acknowledge topic.
fn mqtt_body(fields: &str, msg: &NodeMessage) -> String {
    let fields = if msg.topic_kind() == TopicKind::Acknowledge {
        fields.to_owned()
    } else {
        // `"mtype":"heartbeat",` / `"mtype":"avrlog",` are dropped on MQTT.
        fields.split_once(',').unwrap().1.to_owned()
    };
    format!(r#"{{"dev":"{}",{fields}}}"#, NODE.topic_form())
}

fn tcp_line(fields: &str) -> String {
    format!("{{\"src\":\"{NODE}\",{fields}}}\r\n")
}

#[test]
fn reference_heartbeat_on_mqtt_is_byte_exact() {
    let topic = "/DEMESH/d8a01d55a56c/heartbeat";
    let body = br#"{"dev":"d8a01d55a56c","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#;
    let (src, msg) = decode_uplink_mqtt(MESH, topic, body).unwrap();
    assert_eq!(src, NODE);
    assert_eq!(msg, NodeMessage::Heartbeat(reference_heartbeat()));

    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let (t, len) = encode_uplink_mqtt(MESH, NODE, &msg, &mut buf).unwrap();
    assert_eq!(t.as_str(), topic);
    assert_eq!(
        std::str::from_utf8(&buf[..len]).unwrap(),
        std::str::from_utf8(body).unwrap()
    );
}

#[test]
fn every_message_round_trips_byte_exact_on_both_uplinks() {
    let mut buf = [0u8; MAX_MESSAGE_LEN + 2];
    for (fields, expected) in node_messages() {
        // MQTT
        let body = mqtt_body(fields, &expected);
        let kind = expected.topic_kind();
        let topic = topic(MESH, &Address::Node(NODE), kind);
        let decoded = decode_uplink_mqtt(MESH, &topic, body.as_bytes());
        assert_eq!(decoded, Ok((NODE, expected.clone())), "MQTT {body}");
        let (t, len) = encode_uplink_mqtt(MESH, NODE, &expected, &mut buf).unwrap();
        assert_eq!(t, topic);
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), body);
        let (t_vec, body_vec) = encode_uplink_mqtt_vec(MESH, NODE, &expected).unwrap();
        assert_eq!(
            (t_vec.as_str(), body_vec.as_slice()),
            (topic.as_str(), body.as_bytes())
        );

        // TCP
        let line = tcp_line(fields);
        assert_eq!(
            decode_uplink_tcp(line.as_bytes()),
            Ok((NODE, expected.clone())),
            "TCP {line}"
        );
        let len = encode_uplink_tcp(NODE, &expected, &mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), line);
        assert_eq!(
            encode_uplink_tcp_vec(NODE, &expected).unwrap(),
            line.as_bytes()
        );
    }
}

#[test]
fn older_heartbeat_fields_are_accepted() {
    let old = br#"{"dev":"d8a01d55a56c","rssi":-72,"ccss":30,"smaxcur":160,"cmaxcur":320,"phases":123,"cur1":158,"cur2":157,"cur3":160}"#;
    let (_, msg) = decode_uplink_mqtt(MESH, "/DEMESH/d8a01d55a56c/heartbeat", old).unwrap();
    assert_eq!(msg, NodeMessage::Heartbeat(reference_heartbeat()));
    let old_tcp = b"{\"src\":\"d8:a0:1d:55:a5:6c\",\"mtype\":\"heartbeat\",\"rssi\":-72,\"ccss\":30,\"smaxcur\":160,\"cmaxcur\":320,\"phases\":123,\"cur1\":158,\"cur2\":157,\"cur3\":160}\r\n";
    assert_eq!(
        decode_uplink_tcp(old_tcp),
        Ok((NODE, NodeMessage::Heartbeat(reference_heartbeat())))
    );
}

#[test]
fn lenient_inputs_are_accepted() {
    // Colon-form dev, mtype on the heartbeat topic, no dev at all, unknown keys, whitespace,
    // upper-case MAC, no line end on TCP.
    let topic = "/DEMESH/d8a01d55a56c/heartbeat";
    let expected = Ok((NODE, NodeMessage::Heartbeat(reference_heartbeat())));
    for body in [
        r#"{"dev":"d8:a0:1d:55:a5:6c","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#,
        r#"{"dev":"d8a01d55a56c","mtype":"heartbeat","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#,
        r#"{"rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#,
        r#" { "dev" : "D8A01D55A56C", "rssi":-72, "error":0, "x":[1,{"y":null}], "ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":321,"cur1":158,"cur2":157,"cur3":160 } "#,
    ] {
        assert_eq!(
            decode_uplink_mqtt(MESH, topic, body.as_bytes()),
            expected,
            "{body}"
        );
    }
    assert_eq!(
        decode_uplink_mqtt(MESH, "/DEMESH/D8:A0:1D:55:A5:6C/heartbeat", br#"{"rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#),
        expected
    );
    assert_eq!(
        decode_uplink_tcp(br#"{"src":"d8a01d55a56c","mtype":"heartbeat","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#),
        expected
    );
    // An avrlog body may carry its mtype on MQTT as well.
    assert_eq!(
        decode_uplink_mqtt(
            MESH,
            "/DEMESH/d8a01d55a56c/avrlog",
            br#"{"dev":"d8a01d55a56c","mtype":"avrlog","line":"x"}"#
        ),
        Ok((NODE, NodeMessage::AvrLog { line: s("x") }))
    );
}

/// (MQTT body, destination for the TCP form, command) for every command of section 4.
fn commands() -> Vec<(String, Address, Command)> {
    let node = Address::Node(OTHER);
    vec![
        (r#"{"cmd":"status"}"#.into(), node, Command::Status),
        (
            r#"{"cmd":"system"}"#.into(),
            Address::Broadcast,
            Command::System,
        ),
        (r#"{"cmd":"tsync"}"#.into(), Address::Root, Command::Tsync),
        (
            r#"{"cmd":"restart"}"#.into(),
            Address::Broadcast,
            Command::Restart,
        ),
        (
            r#"{"cmd":"hbperiod","val":5000}"#.into(),
            Address::Broadcast,
            Command::HbPeriod { period_ms: 5000 },
        ),
        (
            r#"{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":320}"#.into(),
            node,
            Command::AvrSetPar {
                par: s("smaxcur"),
                val: 320,
            },
        ),
        (
            r#"{"cmd":"avrsetpar","avrpar":"blinks","avrval":-1}"#.into(),
            node,
            Command::AvrSetPar {
                par: s("blinks"),
                val: -1,
            },
        ),
        (
            r#"{"cmd":"avrgetpar","avrpar":"ver"}"#.into(),
            node,
            Command::AvrGetPar { par: s("ver") },
        ),
        (
            r#"{"cmd":"upgrade","version":"3.5","board":"m5stick"}"#.into(),
            Address::Root,
            Command::Upgrade {
                version: s("3.5"),
                board: s("m5stick"),
            },
        ),
        (
            r#"{"cmd":"avrota","state":"recimg"}"#.into(),
            node,
            Command::AvrOtaRecImg,
        ),
        (
            format!(
                r#"{{"cmd":"avrimg","avraddr":128,"avrdata":"{CHUNK_BASE64}","avrcrc":{CHUNK_CRC}}}"#
            ),
            node,
            Command::AvrImg {
                addr: 128,
                data: heapless::Vec::from_slice(&chunk()).unwrap(),
                crc: CHUNK_CRC,
            },
        ),
        (
            r#"{"cmd":"avrota","state":"flash","avrimgcnt":27904}"#.into(),
            node,
            Command::AvrOtaFlash { image_len: 27904 },
        ),
    ]
}

#[test]
fn every_command_round_trips_byte_exact_on_both_uplinks() {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    for (body, dst, cmd) in commands() {
        // MQTT: destination in the topic.
        let control = topic(MESH, &dst, TopicKind::Control);
        assert_eq!(
            decode_command_mqtt(MESH, &control, body.as_bytes()),
            Ok((dst, cmd.clone())),
            "{body}"
        );
        let len = encode_command(&cmd, &mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), body);
        assert_eq!(cmd.to_json_string(), body);

        // TCP: `dst` first, no terminator.
        let tcp = format!(r#"{{"dst":"{dst}",{}"#, &body[1..]);
        assert_eq!(
            decode_command_tcp(tcp.as_bytes()),
            Ok((dst, cmd.clone())),
            "{tcp}"
        );
        let len = encode_command_tcp(&dst, &cmd, &mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), tcp);
        assert_eq!(encode_command_tcp_vec(&dst, &cmd).unwrap(), tcp.as_bytes());
    }
}

#[test]
fn special_destinations_and_topics() {
    assert_eq!(
        topic(MESH, &Address::Broadcast, TopicKind::Control).as_str(),
        "/DEMESH/*/control"
    );
    assert_eq!(
        topic(MESH, &Address::Root, TopicKind::Control).as_str(),
        "/DEMESH/root/control"
    );
    assert_eq!(
        topic(MESH, &Address::Node(OTHER), TopicKind::Control).as_str(),
        "/DEMESH/d8a01d55a710/control"
    );
    assert_eq!(
        encode_command_tcp_vec(&Address::Broadcast, &Command::Restart).unwrap(),
        br#"{"dst":"*","cmd":"restart"}"#
    );
    assert_eq!(
        encode_command_tcp_vec(&Address::Root, &Command::Status).unwrap(),
        br#"{"dst":"root","cmd":"status"}"#
    );
    assert_eq!(
        encode_command_tcp_vec(&Address::Node(OTHER), &Command::Status).unwrap(),
        br#"{"dst":"d8:a0:1d:55:a7:10","cmd":"status"}"#
    );
    // Topic-form dst is accepted on input.
    assert_eq!(
        decode_command_tcp(br#"{"dst":"d8a01d55a710","cmd":"status"}"#),
        Ok((Address::Node(OTHER), Command::Status))
    );
}

#[test]
fn avrimg_chunk_crc_is_zlib_signed() {
    let data = chunk();
    assert_eq!(avr_chunk_crc(&data), CHUNK_CRC);
    let cmd = Command::avr_img(128, &data).unwrap();
    assert_eq!(
        cmd,
        Command::AvrImg {
            addr: 128,
            data: heapless::Vec::from_slice(&data).unwrap(),
            crc: CHUNK_CRC
        }
    );
    assert_eq!(cmd.name(), "avrimg");
    assert!(cmd.expects_reply());
    // Unsigned spelling of the same CRC is accepted.
    let unsigned = i64::from(CHUNK_CRC) + (1 << 32);
    let body = format!(
        r#"{{"cmd":"avrimg","avraddr":128,"avrdata":"{CHUNK_BASE64}","avrcrc":{unsigned}}}"#
    );
    assert_eq!(
        decode_command_mqtt(MESH, "/DEMESH/root/control", body.as_bytes()),
        Ok((Address::Root, cmd))
    );
    assert_eq!(
        Command::avr_img(0, &[0u8; MAX_AVR_CHUNK + 1]),
        Err(ProtocolError::OutOfRange { field: "avrdata" })
    );
}

#[test]
fn largest_command_and_message_fit() {
    let full = Command::avr_img(u32::MAX, &[0xffu8; MAX_AVR_CHUNK]).unwrap();
    let tcp = encode_command_tcp_vec(&Address::Broadcast, &full).unwrap();
    assert!(tcp.len() < 800, "{}", tcp.len());
    assert_eq!(decode_command_tcp(&tcp), Ok((Address::Broadcast, full)));

    // A log line of 256 quote characters escapes to 512 bytes: fits.
    let quotes = NodeMessage::AvrLog {
        line: s(&"\"".repeat(256)),
    };
    let line = encode_uplink_tcp_vec(NODE, &quotes).unwrap();
    assert_eq!(decode_uplink_tcp(&line), Ok((NODE, quotes)));
    // 256 control characters escape to 1536 bytes: refused rather than sent undecodable.
    let controls = NodeMessage::AvrLog {
        line: s(&"\u{1}".repeat(256)),
    };
    assert_eq!(
        encode_uplink_tcp_vec(NODE, &controls),
        Err(ProtocolError::TooLong)
    );
}

#[test]
fn malformed_uplinks_give_typed_errors() {
    let hb = "/DEMESH/d8a01d55a56c/heartbeat";
    let ack = "/DEMESH/d8a01d55a56c/acknowledge";
    let valid = r#"{"dev":"d8a01d55a56c","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#;
    let with = |from: &str, to: &str| valid.replacen(from, to, 1);
    let cases: Vec<(&str, String, ProtocolError)> = vec![
        (hb, valid[..40].into(), ProtocolError::Json(JsonError::UnexpectedEnd)),
        (hb, String::new(), ProtocolError::Json(JsonError::UnexpectedEnd)),
        (hb, "[]".into(), ProtocolError::Json(JsonError::WrongType)),
        (hb, format!("{valid}x"), ProtocolError::Json(JsonError::TrailingCharacters)),
        (hb, with("-72", "\"-72\""), ProtocolError::Json(JsonError::WrongType)),
        (hb, with("158", "15.8"), ProtocolError::Json(JsonError::Syntax)),
        (hb, with("\"ccss\":30", "\"ccss\":12"), ProtocolError::OutOfRange { field: "ccss" }),
        (hb, with("158", "99999"), ProtocolError::OutOfRange { field: "cur1" }),
        (hb, with("157", "801"), ProtocolError::OutOfRange { field: "cur2" }),
        (hb, with("160,\"cmaxcur", "-5,\"cmaxcur"), ProtocolError::OutOfRange { field: "amaxcur" }),
        (hb, with("320", "-2"), ProtocolError::OutOfRange { field: "cmaxcur" }),
        (hb, with("123", "124"), ProtocolError::OutOfRange { field: "aphases" }),
        (hb, with("-72", "-200"), ProtocolError::OutOfRange { field: "rssi" }),
        (hb, with("\"cur3\":160", "\"x\":1"), ProtocolError::MissingField { field: "cur3" }),
        (hb, with("\"amaxcur\"", "\"bmaxcur\""), ProtocolError::MissingField { field: "amaxcur" }),
        (hb, with("d8a01d55a56c", "d8a01d55a56d"), ProtocolError::BadAddress),
        (hb, with("d8a01d55a56c", "d8a01d55a5zz"), ProtocolError::BadAddress),
        (hb, with("{", r#"{"mtype":"status","#), ProtocolError::BadTopic),
        (hb, with("{", r#"{"mtype":"bogus","#), ProtocolError::UnknownMessageType),
        (ack, valid.into(), ProtocolError::MissingField { field: "mtype" }),
        (ack, with("{", r#"{"mtype":"heartbeat","#), ProtocolError::BadTopic),
        (ack, r#"{"mtype":"avrgetpar","avrpar":"ver","avrval":"nope"}"#.into(), ProtocolError::InvalidValue { field: "avrval" }),
        (ack, r#"{"mtype":"avrgetpar","avrpar":"ver","avrval":40000}"#.into(), ProtocolError::OutOfRange { field: "avrval" }),
        (ack, r#"{"mtype":"avrgetpar","avrpar":"ver"}"#.into(), ProtocolError::MissingField { field: "avrval" }),
        (ack, r#"{"mtype":"avrgetpar","avrpar":"averyveryverylongname","avrval":1}"#.into(), ProtocolError::OutOfRange { field: "avrpar" }),
        (ack, r#"{"mtype":"avrsetpar","avrpar":"maybe"}"#.into(), ProtocolError::InvalidValue { field: "avrpar" }),
        (ack, r#"{"mtype":"avrota","state":"flash"}"#.into(), ProtocolError::InvalidValue { field: "state" }),
        (ack, r#"{"mtype":"avrimg","avraddr":-1,"avrcrc":"ok"}"#.into(), ProtocolError::OutOfRange { field: "avraddr" }),
        (ack, r#"{"mtype":"avrimg","avraddr":0,"avrcrc":5}"#.into(), ProtocolError::Json(JsonError::WrongType)),
        (ack, r#"{"mtype":"system","time":3600000,"version":"3.5","board":"m5stick","avrver":13}"#.into(), ProtocolError::OutOfRange { field: "time" }),
        (ack, r#"{"mtype":"system","time":1,"version":"3.5.12345678901234","board":"m5stick","avrver":13}"#.into(), ProtocolError::OutOfRange { field: "version" }),
        (ack, r#"{"mtype":"status","parent":"router","rssi":-1,"layer":1,"nodes":1,"plat":0}"#.into(), ProtocolError::BadAddress),
        (ack, r#"{"mtype":"status","parent":"d8:a0:1d:55:a7:10","rssi":-1,"layer":256,"nodes":1,"plat":0}"#.into(), ProtocolError::OutOfRange { field: "layer" }),
        (ack, r#"{"mtype":"tsync","tsync1":1,"tsync2":2,"tsync3":1e3}"#.into(), ProtocolError::Json(JsonError::Syntax)),
        (ack, r#"{"mtype":"tsync","tsync1":1,"tsync1":2}"#.into(), ProtocolError::Json(JsonError::Malformed)),
        (ack, r#"{"mtype":"avrlog","line":"bad \q escape"}"#.into(), ProtocolError::BadTopic),
        ("/DEMESH/d8a01d55a56c/avrlog", r#"{"line":"bad \q escape"}"#.into(), ProtocolError::Json(JsonError::BadString)),
        ("/DEMESH/d8a01d55a56c/avrlog", format!(r#"{{"line":"{}"}}"#, "x".repeat(257)), ProtocolError::OutOfRange { field: "line" }),
        (hb, format!("{}{valid}{}", "[".repeat(20), "]".repeat(20)), ProtocolError::Json(JsonError::TooDeep)),
        (hb, format!("{valid}{}", " ".repeat(MAX_MESSAGE_LEN)), ProtocolError::TooLong),
        ("/DEMESH/d8a01d55a56c/control", valid.into(), ProtocolError::BadTopic),
        ("/OTHER/d8a01d55a56c/heartbeat", valid.into(), ProtocolError::BadTopic),
        ("/DEMESH/*/heartbeat", valid.into(), ProtocolError::BadAddress),
        ("/DEMESH/d8a01d55a5/heartbeat", valid.into(), ProtocolError::BadAddress),
    ];
    for (topic, body, error) in cases {
        assert_eq!(
            decode_uplink_mqtt(MESH, topic, body.as_bytes()),
            Err(error),
            "{topic} {body}"
        );
    }
    // TCP needs src and mtype.
    assert_eq!(
        decode_uplink_tcp(br#"{"mtype":"avrsetpar","avrpar":"ok"}"#),
        Err(ProtocolError::MissingField { field: "src" })
    );
    assert_eq!(
        decode_uplink_tcp(br#"{"src":"d8:a0:1d:55:a5:6c","avrpar":"ok"}"#),
        Err(ProtocolError::MissingField { field: "mtype" })
    );
}

#[test]
fn malformed_commands_give_typed_errors() {
    let control = "/DEMESH/d8a01d55a710/control";
    let cases: Vec<(String, ProtocolError)> = vec![
        (r#"{"cmd":"reboot"}"#.into(), ProtocolError::UnknownCommand),
        (
            r#"{"cmd":"averyveryverylongcommand"}"#.into(),
            ProtocolError::UnknownCommand,
        ),
        (
            r#"{"val":5}"#.into(),
            ProtocolError::MissingField { field: "cmd" },
        ),
        (
            r#"{"cmd":"hbperiod"}"#.into(),
            ProtocolError::MissingField { field: "val" },
        ),
        (
            r#"{"cmd":"hbperiod","val":-1}"#.into(),
            ProtocolError::OutOfRange { field: "val" },
        ),
        (
            r#"{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":99999}"#.into(),
            ProtocolError::OutOfRange { field: "avrval" },
        ),
        (
            r#"{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":"320"}"#.into(),
            ProtocolError::Json(JsonError::WrongType),
        ),
        (
            r#"{"cmd":"avrota","state":"burn"}"#.into(),
            ProtocolError::InvalidValue { field: "state" },
        ),
        (
            r#"{"cmd":"avrota","state":"flash"}"#.into(),
            ProtocolError::MissingField { field: "avrimgcnt" },
        ),
        (
            r#"{"cmd":"avrimg","avraddr":0,"avrdata":"!!!!","avrcrc":0}"#.into(),
            ProtocolError::BadBase64,
        ),
        (
            format!(
                r#"{{"cmd":"avrimg","avraddr":0,"avrdata":"{}","avrcrc":0}}"#,
                "A".repeat(688)
            ),
            ProtocolError::OutOfRange { field: "avrdata" },
        ),
        (
            r#"{"cmd":"avrimg","avraddr":0,"avrdata":"AA==","avrcrc":4294967296}"#.into(),
            ProtocolError::OutOfRange { field: "avrcrc" },
        ),
        (
            r#"{"cmd":"upgrade","version":"3.5"}"#.into(),
            ProtocolError::MissingField { field: "board" },
        ),
        (
            r#"{"dst":"d8:a0:1d:55:a7:11","cmd":"status"}"#.into(),
            ProtocolError::BadAddress,
        ),
        (
            r#"{"cmd":"status""#.into(),
            ProtocolError::Json(JsonError::UnexpectedEnd),
        ),
    ];
    for (body, error) in cases {
        assert_eq!(
            decode_command_mqtt(MESH, control, body.as_bytes()),
            Err(error),
            "{body}"
        );
    }
    assert_eq!(
        decode_command_mqtt(
            MESH,
            "/DEMESH/d8a01d55a710/heartbeat",
            br#"{"cmd":"status"}"#
        ),
        Err(ProtocolError::BadTopic)
    );
    assert_eq!(
        decode_command_tcp(br#"{"cmd":"status"}"#),
        Err(ProtocolError::MissingField { field: "dst" })
    );
    assert_eq!(
        decode_command_tcp(br#"{"dst":"everyone","cmd":"status"}"#),
        Err(ProtocolError::BadAddress)
    );
}

#[test]
fn encoders_refuse_values_no_node_sends() {
    let mut hb = reference_heartbeat();
    hb.cur[2] = Deciamps(9999);
    assert_eq!(
        encode_uplink_tcp_vec(NODE, &NodeMessage::Heartbeat(hb)),
        Err(ProtocolError::OutOfRange { field: "cur3" })
    );
    let system = NodeMessage::System(SystemReply {
        time_ms: 3_600_000,
        version: s("3.5"),
        board: s("m5stick"),
        avrver: 13,
    });
    assert_eq!(
        encode_uplink_mqtt_vec(MESH, NODE, &system),
        Err(ProtocolError::OutOfRange { field: "time" })
    );
    assert_eq!(
        encode_uplink_mqtt_vec("DE/MESH", NODE, &NodeMessage::AvrSetPar { ok: true }),
        Err(ProtocolError::BadTopic)
    );
    let mut small = [0u8; 15];
    assert_eq!(
        encode_command(&Command::Status, &mut small),
        Err(ProtocolError::BufferTooSmall)
    );
    let mut exact = [0u8; 16];
    assert_eq!(encode_command(&Command::Status, &mut exact), Ok(16));
    // The line end needs its two bytes too.
    let line = encode_uplink_tcp_vec(NODE, &NodeMessage::AvrSetPar { ok: true }).unwrap();
    let mut short = vec![0u8; line.len() - 1];
    assert_eq!(
        encode_uplink_tcp(NODE, &NodeMessage::AvrSetPar { ok: true }, &mut short),
        Err(ProtocolError::BufferTooSmall)
    );
}

#[test]
fn errors_name_the_problem() {
    assert_eq!(
        ProtocolError::OutOfRange { field: "ccss" }.to_string(),
        "field `ccss` out of range"
    );
    assert_eq!(
        ProtocolError::Json(JsonError::UnexpectedEnd).to_string(),
        "invalid JSON: unexpected end of input"
    );
    assert_eq!(
        ProtocolError::TooLong.to_string(),
        "message longer than 1024 bytes"
    );
}
