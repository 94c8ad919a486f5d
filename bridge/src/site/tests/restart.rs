//! A restart forgets nothing that matters for the limit: what each bay may be drawing is
//! persisted before a raise goes out and reserved at start until the bay is heard again,
//! and the start-up grace runs from "mesh link up", again after every loss of the link.

use ctrl22_node::mesh::{MacAddr, NodeMessage};
use ctrl22_node::Ccss;

use super::{heartbeat_from, link_up};
use crate::bay::BayId;
use crate::clock::Now;
use crate::site::{Input, Output, SettingChange, Site, SiteSettings, Stored};

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0xc2, 0x22, 0, 0, i])
}

fn id(i: u8) -> BayId {
    BayId(mac(i).topic_form().to_string())
}

fn settings() -> SiteSettings {
    SiteSettings {
        heartbeat_timeout_ms: 3_000,
        ..SiteSettings::default()
    }
}

fn ack(i: u8) -> Input {
    Input::Mesh {
        src: mac(i),
        msg: NodeMessage::AvrSetPar { ok: true },
    }
}

/// Runs bays `1..=n` charging for `seconds`, every write acknowledged; returns the outputs.
fn charge(site: &mut Site, from_s: u64, seconds: u64, bays: &[u8]) -> Vec<Output> {
    let mut out = Vec::new();
    for s in from_s..from_s + seconds {
        let now = Now::at(s * 1_000);
        for &i in bays {
            out.extend(site.handle(now, heartbeat_from(mac(i), Ccss::C3, 320, 0)));
        }
        out.extend(site.handle(now, Input::Tick));
        for &i in bays {
            out.extend(site.handle(now, ack(i)));
        }
    }
    out
}

#[test]
fn a_raised_reservation_is_saved_before_the_write_that_raises_it() {
    let mut site = Site::new(settings(), Stored::default(), Now::at(0)).expect("valid");
    site.handle(Now::at(0), link_up());
    let mut raise_seen = false;
    for s in 0..30u64 {
        let now = Now::at(s * 1_000);
        let mut out = site.handle(now, heartbeat_from(mac(1), Ccss::C3, 320, 0));
        out.extend(site.handle(now, Input::Tick));
        // Within one batch: a risen reservation comes before any Send.
        let first_send = out.iter().position(|o| matches!(o, Output::Send { .. }));
        for (i, o) in out.iter().enumerate() {
            if let Output::SaveReservation { raised: true, .. } = o {
                raise_seen = true;
                assert!(first_send.is_none_or(|f| i < f), "{out:?}");
            }
        }
        site.handle(now, ack(1));
    }
    assert!(raise_seen, "the bay was raised and its reservation saved");
}

#[test]
fn no_raise_before_the_link_is_up_and_the_grace_after_it() {
    let mut site = Site::new(settings(), Stored::default(), Now::at(0)).expect("valid");
    // Link down: heartbeats arrive (a broker that relays retained ones), nothing is raised.
    let out = charge(&mut site, 0, 10, &[1]);
    let raised = |out: &[Output]| {
        writes_of(out)
            .iter()
            .any(|(par, val)| par == "smaxcur" && *val > 0)
    };
    assert!(!raised(&out), "{:?}", writes_of(&out));
    site.handle(Now::at(10_000), link_up());
    // Within the grace (3 s, the heartbeat timeout) still none.
    assert!(!raised(&charge(&mut site, 10, 3, &[1])));
    assert!(raised(&charge(&mut site, 13, 5, &[1])));
    // The link drops and comes back: the grace runs again.
    site.handle(
        Now::at(18_000),
        Input::MeshLink {
            up: false,
            reply_deadline_ms: 3_000,
        },
    );
    site.handle(Now::at(18_500), link_up());
    site.apply(
        Now::at(18_500),
        SettingChange::SiteLimit {
            phase: 1,
            amps: 32.0,
        },
    )
    .expect("valid");
    let again = charge(&mut site, 19, 2, &[1]);
    assert!(
        writes_of(&again)
            .iter()
            .all(|(par, val)| par != "smaxcur" || *val <= site_confirmed(&site)),
        "{:?}",
        writes_of(&again)
    );
}

fn site_confirmed(site: &Site) -> i16 {
    site.snapshot(Now::at(0)).bays[0]
        .confirmed_a
        .and_then(ctrl22_node::Deciamps::try_from_amps)
        .map_or(0, ctrl22_node::Deciamps::get)
}

fn writes_of(out: &[Output]) -> Vec<(String, i16)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                cmd: ctrl22_node::mesh::Command::AvrSetPar { par, val },
                ..
            } => Some((par.to_string(), *val)),
            _ => None,
        })
        .collect()
}

#[test]
fn reservations_of_bays_not_heard_after_a_restart_are_kept_until_they_are() {
    // Before the restart: bays 1 and 2 charge on 3x32 A; collect what was persisted.
    let mut before = Site::new(settings(), Stored::default(), Now::at(0)).expect("valid");
    before.handle(Now::at(0), link_up());
    let mut stored = Stored::default();
    for o in charge(&mut before, 0, 60, &[1, 2]) {
        if let Output::SaveReservation { bay, load, .. } = o {
            stored.reservations.insert(bay, load);
        }
    }
    let reserved_before = before.snapshot(Now::at(60_000)).reserved_a;
    assert!(reserved_before[0] >= 30.0, "{reserved_before:?}");
    assert_eq!(stored.reservations.len(), 2);
    // After: bay 2 stays silent. Bay 1 may have only what bay 2's reservation leaves.
    let mut after = Site::new(settings(), stored, Now::at(0)).expect("valid");
    after.handle(Now::at(0), link_up());
    let snapshot = after.snapshot(Now::at(0));
    assert_eq!(
        snapshot.bays.len(),
        2,
        "the silent bay is known from the store"
    );
    let bay2 = snapshot
        .bays
        .iter()
        .find(|b| b.dev == id(2).0)
        .expect("restored");
    assert!(!bay2.online);
    let held = bay2.reserved_a;
    assert!(held[0] > 0.0);
    charge(&mut after, 0, 120, &[1]);
    let snapshot = after.snapshot(Now::at(120_000));
    for p in 0..3 {
        assert!(snapshot.reserved_a[p] <= 32.0, "{:?}", snapshot.reserved_a);
    }
    let bay1 = snapshot
        .bays
        .iter()
        .find(|b| b.dev == id(1).0)
        .expect("bay 1");
    assert!(
        bay1.confirmed_a.unwrap_or(0.0) + held[0] <= 32.0 + 1e-9,
        "bay 1 {:?} beside the silent bay's {held:?}",
        bay1.confirmed_a
    );
    // Only the operator's release gives it back, and that is logged.
    let out = after
        .apply(Now::at(120_000), SettingChange::BayRelease { bay: id(2) })
        .expect("offline bay");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event { text, .. } if text.contains("released"))));
    // Its zero reservation is stored with the answer (the release goes out at once).
    assert!(out.iter().any(
        |o| matches!(o, Output::SaveReservation { bay, load, .. } if *bay == id(2) && *load == [0; 3])
    ));
}
