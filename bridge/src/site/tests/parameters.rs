//! Operators' `getpar`/`setpar` through the site: replies reach whoever asked, the
//! sequencer's own reply is not taken, what the sequencer owns waits for a disabled bay.

use ctrl22_node::mesh::{NodeMessage, ParName};
use ctrl22_node::Ccss;

use super::{bay, heartbeat, site, MAC};
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
    for name in ["smaxcur", "phases", "fsafecur", "wdtsec"] {
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
    // During the start-up grace no reservation may rise, not even for an operator.
    assert_eq!(
        site.request_parameter(Now::at(30), &bay(), par("smaxcur"), Some(60)),
        Err(ParRefusal::NoBudget)
    );
    site.handle(Now::at(4_000), heartbeat(Ccss::Off3, 320));
    site.handle(Now::at(4_000), Input::Tick);
    // Above the site's fuse: the ceilings hold for operators too.
    assert_eq!(
        site.request_parameter(Now::at(4_010), &bay(), par("smaxcur"), Some(400)),
        Err(ParRefusal::NoBudget)
    );
    assert!(site
        .request_parameter(Now::at(4_010), &bay(), par("smaxcur"), Some(60))
        .is_ok());
    let reserved = site.sequencer.reservation(0);
    assert!(
        reserved.0.iter().any(|&a| a >= 60),
        "the raise is reserved from when it is sent: {reserved:?}"
    );
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
