//! Operators' `getpar`/`setpar` through the site: replies reach whoever asked, the
//! sequencer's own reply is not taken, what the sequencer owns waits for a disabled bay.

use ctrl22_node::mesh::{NodeMessage, ParName};
use ctrl22_node::Ccss;

use super::{bay, heartbeat, site, six_cycles, writes, MAC};
use crate::clock::Now;
use crate::site::parameters::{ParAnswer, ParRefusal};
use crate::site::{Input, SettingChange};

fn par(name: &str) -> ParName {
    ParName::try_from(name).expect("short name")
}

fn set_reply(ok: bool) -> Input {
    Input::Mesh {
        src: MAC,
        msg: NodeMessage::AvrSetPar { ok },
    }
}

#[test]
fn an_operator_write_is_answered_after_the_sequencer_write_before_it() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    assert!(site.sequencer.awaits_ack(0), "the watchdog write is out");
    let (id, out) = site
        .request_parameter(Now::at(10), &bay(), par("blinks"), Some(3))
        .expect("not owned by the sequencer");
    assert_eq!(out.len(), 1);
    site.handle(Now::at(20), set_reply(true));
    assert!(
        site.take_parameter_answers().is_empty(),
        "the sequencer's reply"
    );
    assert!(!site.sequencer.awaits_ack(0), "the sequencer got its reply");
    site.handle(Now::at(30), set_reply(true));
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Ok(ParAnswer::Written))]
    );
}

#[test]
fn sequencer_parameters_are_the_operators_only_on_a_disabled_bay() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    for name in ["smaxcur", "phases", "fsafecur"] {
        assert_eq!(
            site.request_parameter(Now::at(10), &bay(), par(name), Some(60)),
            Err(ParRefusal::SequencerOwned(name.to_owned()))
        );
    }
    site.apply(
        Now::at(20),
        SettingChange::BayEnabled {
            bay: bay(),
            enabled: false,
        },
    )
    .expect("a known bay");
    site.handle(Now::at(25), set_reply(true));
    assert!(!site.sequencer.awaits_ack(0), "the watchdog write answered");
    // During the start-up grace no reservation may rise, not even for an operator.
    assert_eq!(
        site.request_parameter(Now::at(30), &bay(), par("smaxcur"), Some(60)),
        Err(ParRefusal::NoBudget)
    );
    site.handle(Now::at(4_000), heartbeat(Ccss::Off3, 320));
    site.handle(Now::at(4_000), Input::Tick);
    // Above the bay's cable: the ceilings hold for operators too.
    assert_eq!(
        site.request_parameter(Now::at(4_010), &bay(), par("smaxcur"), Some(400)),
        Err(ParRefusal::AboveCeiling {
            par: "smaxcur".to_owned(),
            value: 400,
            ceiling: 320
        })
    );
    // The sequencer stops the bay (smaxcur 0, phases 0), one write at a time; an operator's
    // write waits for that. (That a raise on a bay with phases is reserved from when it is
    // sent is `bridge/tests/e2e/parameters_disabled.rs`'s wire check.)
    for _ in 0..4 {
        if site.sequencer.awaits_ack(0) {
            site.handle(Now::at(4_005), set_reply(true));
        }
    }
    let admitted = site.request_parameter(Now::at(4_010), &bay(), par("smaxcur"), Some(60));
    assert!(admitted.is_ok(), "{admitted:?}");
    assert_eq!(
        site.request_parameter(Now::at(4_020), &bay(), par("ver"), None),
        Err(ParRefusal::Busy)
    );
}

#[test]
fn a_read_gets_its_value_or_no_reply_after_the_timeout() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    let (id, _) = site
        .request_parameter(Now::at(10), &bay(), par("ver"), None)
        .expect("a known bay");
    site.handle(
        Now::at(20),
        Input::Mesh {
            src: MAC,
            msg: NodeMessage::AvrGetPar {
                par: par("ver"),
                val: Some(14),
            },
        },
    );
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Ok(ParAnswer::Value(14)))]
    );
    let (id, _) = site
        .request_parameter(Now::at(30), &bay(), par("temp"), None)
        .expect("a known bay");
    site.handle(Now::at(2_000), heartbeat(Ccss::Off3, 320));
    site.handle(Now::at(6_000), Input::Tick);
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Err(ParRefusal::NoReply))]
    );
    assert_eq!(
        site.request_parameter(
            Now::at(6_000),
            &crate::bay::BayId("nobay".into()),
            par("ver"),
            None
        ),
        Err(ParRefusal::UnknownBay)
    );
}

/// A site past its start-up grace with the test bay disabled, its stop (`smaxcur 0`)
/// confirmed, the bay's cable `cable` (0.1 A).
fn disabled_bay(cable: i16) -> crate::site::Site {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, cable));
    six_cycles(&mut site, 0);
    site.apply(
        Now::at(6_100),
        SettingChange::BayEnabled {
            bay: bay(),
            enabled: false,
        },
    )
    .expect("a known bay");
    site.handle(Now::at(6_200), heartbeat(Ccss::Off3, cable));
    six_cycles(&mut site, 6_200);
    assert!(!site.sequencer.awaits_ack(0), "every write answered");
    site
}

#[test]
fn an_operator_current_is_0_or_6_a_up_to_the_cable_and_the_bay_maximum() {
    let mut site = disabled_bay(130);
    let refused = |value: i16, ceiling: i16| {
        Err(ParRefusal::AboveCeiling {
            par: "smaxcur".to_owned(),
            value,
            ceiling,
        })
    };
    for value in [160, 320, 131, 59, 1, -1, i16::MIN, i16::MAX] {
        assert_eq!(
            site.request_parameter(Now::at(13_000), &bay(), par("smaxcur"), Some(value)),
            refused(value, 130),
            "{value} on a 13 A cable"
        );
    }
    assert!(matches!(
        site.request_parameter(Now::at(13_000), &bay(), par("fsafecur"), Some(200)),
        Err(ParRefusal::AboveCeiling { ceiling: 130, .. })
    ));
    site.apply(
        Now::at(13_000),
        SettingChange::BayMaxCurrent {
            bay: bay(),
            amps: 10.0,
        },
    )
    .expect("a known bay");
    assert_eq!(
        site.request_parameter(Now::at(13_000), &bay(), par("smaxcur"), Some(130)),
        refused(130, 100),
        "the bay's own maximum is below its cable"
    );
    assert!(site
        .request_parameter(Now::at(13_000), &bay(), par("smaxcur"), Some(100))
        .is_ok());
}

#[test]
fn an_operator_write_waits_for_the_sequencer_and_the_sequencer_for_it() {
    let mut site = disabled_bay(320);
    let (id, _) = site
        .request_parameter(Now::at(13_000), &bay(), par("phases"), Some(123))
        .expect("a disabled bay");
    site.handle(Now::at(13_010), set_reply(true));
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Ok(ParAnswer::Written))]
    );
    // The sequencer's own next write (back to its target, or a refresh) waits for its reply.
    let mut t = 13_010;
    while !site.sequencer.awaits_ack(0) {
        t += 1_000;
        assert!(t < 60_000, "the sequencer writes to the bay");
        site.handle(Now::at(t), heartbeat(Ccss::Off3, 320));
        site.handle(Now::at(t), Input::Tick);
    }
    assert_eq!(
        site.request_parameter(Now::at(t), &bay(), par("smaxcur"), Some(160)),
        Err(ParRefusal::Busy),
        "the sequencer's reply would confirm its write over the operator's"
    );
    site.handle(Now::at(t + 10), set_reply(true));
    assert!(!site.sequencer.awaits_ack(0));
    let (id, _) = site
        .request_parameter(Now::at(t + 20), &bay(), par("smaxcur"), Some(160))
        .expect("the sequencer's write is answered");
    // Until the node answered the operator, the sequencer sends nothing to the bay (it
    // wants its 0 back), so the next reply is the operator's.
    for later in (t + 500..t + 4_500).step_by(500) {
        site.handle(Now::at(later), heartbeat(Ccss::Off3, 320));
        let out = site.handle(Now::at(later), Input::Tick);
        assert_eq!(writes(&out), Vec::new(), "at {later}");
    }
    assert!(!site.sequencer.awaits_ack(0));
    let out = site.handle(Now::at(t + 4_600), set_reply(true));
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Ok(ParAnswer::Written))]
    );
    assert_eq!(
        writes(&out),
        vec![("smaxcur".to_owned(), 0)],
        "then the sequencer stops the disabled bay again"
    );
}

#[test]
fn an_enabled_bay_takes_only_harmless_writes_and_never_a_watchdog_period() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    six_cycles(&mut site, 0);
    for name in [
        "cpcur", "ssr", "sigrel", "lock", "rms", "pilots", "reset", "save", "opbutton", "foo",
    ] {
        assert_eq!(
            site.request_parameter(Now::at(7_000), &bay(), par(name), Some(1)),
            Err(ParRefusal::NotWhileEnabled(name.to_owned())),
            "{name}"
        );
    }
    assert_eq!(
        site.request_parameter(Now::at(7_000), &bay(), par("wdtsec"), Some(600)),
        Err(ParRefusal::Watchdog)
    );
    assert!(site
        .request_parameter(Now::at(7_000), &bay(), par("time"), Some(5))
        .is_ok());
    let mut site = disabled_bay(320);
    assert_eq!(
        site.request_parameter(Now::at(13_000), &bay(), par("wdtsec"), Some(600)),
        Err(ParRefusal::Watchdog),
        "the fail-safe watchdog is the bridge's on a disabled bay too"
    );
}

#[test]
fn a_reset_of_a_disabled_bay_has_it_learned_afresh_with_its_reservation_kept() {
    let mut site = disabled_bay(320);
    let reserved = site.sequencer.reservation(0);
    let (id, _) = site
        .request_parameter(Now::at(13_000), &bay(), par("reset"), Some(1))
        .expect("a disabled bay");
    assert_eq!(site.sequencer.reservation(0), reserved);
    site.handle(Now::at(13_100), set_reply(true));
    assert_eq!(
        site.take_parameter_answers(),
        vec![(id, Ok(ParAnswer::Written))]
    );
    // The restarted controller is a node never heard: its watchdog is written anew.
    let mut sent = writes(&site.handle(Now::at(13_200), heartbeat(Ccss::Off3, 320)));
    sent.extend(six_cycles(&mut site, 13_200));
    assert!(sent.contains(&("wdtsec".to_owned(), 60)), "{sent:?}");
}
