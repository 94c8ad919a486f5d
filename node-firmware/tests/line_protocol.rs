//! The serial line protocol: request and reply forms, chatter, oversize lines, the controller's
//! answers including the dump, and robustness against arbitrary bytes.

use ctrl22_node::controller::{ChargeController, Config};
use ctrl22_node::line::{
    self, parse_reply, parse_request, LineAssembler, LineError, Reply, Request, MAX_LINE_LEN,
};
use ctrl22_node::params::Param;
use proptest::prelude::*;

fn serve(ctl: &mut ChargeController, request: &str) -> String {
    let mut out = String::new();
    line::serve(ctl, 0, request.as_bytes(), &mut out).expect("String never fails");
    out
}

#[test]
fn request_forms() {
    let cases: [(&str, Request); 6] = [
        ("ccss?", Request::Read(Param::Ccss)),
        ("smaxcur=320\r\n", Request::Write(Param::Smaxcur, 320)),
        ("blinks=-1\n", Request::Write(Param::Blinks, -1)),
        ("opbutton!", Request::Write(Param::Opbutton, 1)),
        ("lock~", Request::Write(Param::Lock, 0)),
        ("?", Request::Dump),
    ];
    for (text, request) in cases {
        assert_eq!(
            parse_request(text.as_bytes()),
            Ok(Some(request)),
            "{text:?}"
        );
    }
}

#[test]
fn malformed_requests_are_typed_errors() {
    let cases: [(&[u8], LineError); 7] = [
        (b"nosuch?", LineError::UnknownParam),
        (b"smaxcur=abc", LineError::BadValue),
        (b"smaxcur=40000", LineError::BadValue),
        (b"smaxcur", LineError::Syntax),
        (b"=5", LineError::Syntax),
        (b"sm axcur?", LineError::Syntax),
        (b"\xff\xfe?", LineError::Syntax),
    ];
    for (bytes, error) in cases {
        assert_eq!(parse_request(bytes), Err(error), "{bytes:?}");
    }
}

#[test]
fn chatter_and_blank_lines_are_ignored() {
    assert_eq!(parse_request(b"% pilot 9012 mV"), Ok(None));
    assert_eq!(parse_reply(b"%debug\r\n"), Ok(None));
    assert_eq!(parse_request(b"\r\n"), Ok(None));
    // Chatter may be as long as it likes.
    assert_eq!(parse_reply(&[b'%'; 300]), Ok(None));
}

#[test]
fn oversized_lines_are_rejected() {
    let long = "smaxcur=".to_owned() + &"0".repeat(MAX_LINE_LEN);
    assert_eq!(
        parse_request(long.as_bytes()),
        Err(LineError::TooLong { len: long.len() })
    );
    let exact = "smaxcur=".to_owned() + &"0".repeat(MAX_LINE_LEN - 9) + "1";
    assert_eq!(exact.len(), MAX_LINE_LEN);
    assert_eq!(
        parse_request(exact.as_bytes()),
        Ok(Some(Request::Write(Param::Smaxcur, 1)))
    );
}

#[test]
fn reply_forms() {
    assert_eq!(
        parse_reply(b" ccss=33\r\n"),
        Ok(Some(Reply::Value(Param::Ccss, 33)))
    );
    assert_eq!(parse_reply(b"parse error"), Ok(Some(Reply::ParseError)));
    assert_eq!(parse_reply(b"[[["), Ok(Some(Reply::DumpBegin)));
    assert_eq!(parse_reply(b"]]]"), Ok(Some(Reply::DumpEnd)));
    assert_eq!(parse_reply(b" ccss?"), Err(LineError::Syntax));
    assert_eq!(Reply::Value(Param::Cmaxcur, -1).to_string(), " cmaxcur=-1");
    assert_eq!(Request::Write(Param::Phases, 12).to_string(), "phases=12");
    assert_eq!(Request::Read(Param::Ver).to_string(), "ver?");
}

#[test]
fn controller_answers_reads_writes_and_refusals() {
    let mut ctl = ChargeController::new(Config::default());
    assert_eq!(serve(&mut ctl, "ver?"), " ver=14\r\n");
    assert_eq!(serve(&mut ctl, "smaxcur=320\r\n"), " smaxcur=320\r\n");
    assert_eq!(serve(&mut ctl, "smaxcur?"), " smaxcur=320\r\n");
    // Written as 321, read back ascending.
    assert_eq!(serve(&mut ctl, "phases=321"), " phases=123\r\n");
    assert_eq!(serve(&mut ctl, "opbutton!"), " opbutton=1\r\n");
    assert_eq!(serve(&mut ctl, "ccss=3"), "parse error\r\n");
    assert_eq!(serve(&mut ctl, "smaxcur=900"), "parse error\r\n");
    assert_eq!(serve(&mut ctl, "opbutton?"), "parse error\r\n");
    assert_eq!(serve(&mut ctl, "bogus"), "parse error\r\n");
    assert_eq!(serve(&mut ctl, "% chatter"), "");
}

#[test]
fn dump_lists_every_readable_parameter_between_brackets() {
    let mut ctl = ChargeController::new(Config::default());
    let dump = serve(&mut ctl, "?");
    let lines: Vec<&str> = dump.split_terminator("\r\n").collect();
    assert_eq!(lines.first(), Some(&"[[["));
    assert_eq!(lines.last(), Some(&"]]]"));
    let readable = Param::ALL.iter().filter(|p| p.access().readable()).count();
    assert_eq!(lines.len(), readable + 2);
    assert!(lines.contains(&" wdtsec=60"));
    assert!(lines.contains(&" fsafecur=0"));
    assert!(!dump.contains("opbutton"));
    // The host side reads it back.
    for text in &lines {
        assert!(parse_reply(text.as_bytes()).is_ok(), "{text}");
    }
}

#[test]
fn assembler_splits_lines_and_flags_overflow() {
    let mut assembler = LineAssembler::default();
    let mut lines = Vec::new();
    let stream = format!(
        "ccss?\r\nsmaxcur=1\n{}\n%{}\nver?\n",
        "x".repeat(70),
        "y".repeat(70)
    );
    for byte in stream.bytes() {
        if let Some(line) = assembler.push(byte) {
            lines.push(line.map(<[u8]>::to_vec));
        }
    }
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], Ok(b"ccss?".to_vec()));
    assert_eq!(lines[1], Ok(b"smaxcur=1".to_vec()));
    assert_eq!(lines[2], Err(LineError::TooLong { len: 70 }));
    assert_eq!(lines[3].as_ref().map(Vec::len), Ok(MAX_LINE_LEN));
    assert_eq!(lines[4], Ok(b"ver?".to_vec()));
}

fn request() -> impl Strategy<Value = Request> {
    let param = prop::sample::select(Param::ALL.to_vec());
    prop_oneof![
        param.clone().prop_map(Request::Read),
        (param, any::<i16>()).prop_map(|(p, v)| Request::Write(p, v)),
        Just(Request::Dump),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_request(&bytes);
        let _ = parse_reply(&bytes);
        let mut ctl = ChargeController::new(Config::default());
        let mut out = String::new();
        let mut assembler = LineAssembler::default();
        for byte in &bytes {
            if let Some(Ok(line)) = assembler.push(*byte) {
                prop_assert!(line.len() <= MAX_LINE_LEN);
                line::serve(&mut ctl, 0, line, &mut out).expect("String never fails");
            }
        }
    }

    #[test]
    fn requests_and_replies_round_trip(request in request(), value in any::<i16>()) {
        let text = request.to_string();
        prop_assert_eq!(parse_request(text.as_bytes()), Ok(Some(request)));
        if let Request::Read(param) = request {
            let reply = Reply::Value(param, value);
            prop_assert_eq!(parse_reply(reply.to_string().as_bytes()), Ok(Some(reply)));
        }
    }

    /// Every reply the controller writes is one the host side parses.
    #[test]
    fn controller_replies_parse(request in request()) {
        let mut ctl = ChargeController::new(Config::default());
        let mut out = String::new();
        line::serve(&mut ctl, 0, request.to_string().as_bytes(), &mut out).expect("String");
        for text in out.split_terminator("\r\n") {
            prop_assert!(matches!(parse_reply(text.as_bytes()), Ok(Some(_))), "{}", text);
        }
    }
}
