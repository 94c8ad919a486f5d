//! The world driven by hand: sessions, fallback, phase refusal, plugging, parameters,
//! restarts and upgrades.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;
use crate::mesh::{Heartbeat, ParName};
use crate::pilot;
use crate::sim::ev::{Ev, EvSpec, OnboardCharger};
use crate::sim::node::NODE_BOARD;
use crate::sim::Arrivals;
use crate::{Ccss, CcssGroup, Deciamps, PhaseSet};

fn world(nodes: usize, arrivals: Arrivals) -> SimWorld {
    SimWorld::new(SimConfig {
        nodes,
        seed: 42,
        heartbeat_ms: 1_000,
        arrivals,
        ..SimConfig::default()
    })
}

fn set(world: &mut SimWorld, now_ms: u64, par: &str, val: i16) -> Vec<(MacAddr, NodeMessage)> {
    let cmd = Command::AvrSetPar {
        par: ParName::try_from(par).unwrap(),
        val,
    };
    world.handle_command(now_ms, &Address::Broadcast, &cmd)
}

fn last_heartbeats(out: &[(MacAddr, NodeMessage)]) -> HashMap<MacAddr, Heartbeat> {
    out.iter()
        .filter_map(|(mac, msg)| match msg {
            NodeMessage::Heartbeat(hb) => Some((*mac, *hb)),
            _ => None,
        })
        .collect()
}

/// Runs until `until_ms` with `smaxcur` re-written every second (a live host).
fn run_fed(
    world: &mut SimWorld,
    from_ms: u64,
    until_ms: u64,
    smaxcur: i16,
) -> Vec<(MacAddr, NodeMessage)> {
    let mut out = Vec::new();
    for t in (from_ms..until_ms).step_by(1_000) {
        out.extend(world.step(t));
        set(world, t, "smaxcur", smaxcur);
    }
    out.extend(world.step(until_ms));
    out
}

fn picky_three_phase_car() -> Ev {
    Ev::new(
        EvSpec {
            battery_wh: 60_000,
            charger: OnboardCharger::ThreePhase,
            max_current: Deciamps::from_amps(16),
            cable: pilot::CableRating::A32,
            refuses_phase_change: true,
        },
        30,
    )
}

#[test]
fn a_session_charges_under_the_setpoint_then_falls_back_to_fsafecur() {
    let mut world = world(3, Arrivals::AllPlugged);
    let replies = set(&mut world, 0, "smaxcur", 100);
    assert_eq!(replies.len(), 3);
    assert!(replies
        .iter()
        .all(|(_, m)| *m == NodeMessage::AvrSetPar { ok: true }));
    set(&mut world, 0, "wdtsec", 20);
    set(&mut world, 0, "fsafecur", 60);
    set(&mut world, 0, "opbutton", 1);
    let out = run_fed(&mut world, 0, 15_000, 100);
    let charging = last_heartbeats(&out);
    assert_eq!(charging.len(), 3);
    for hb in charging.values() {
        assert_eq!(hb.ccss.group(), CcssGroup::C, "{hb:?}");
        assert!(hb.amaxcur <= Deciamps(100));
        assert!(hb.cur.iter().all(|c| *c <= hb.amaxcur));
        assert!(hb.cur.iter().any(|c| c.get() > 50), "{hb:?}");
    }
    // The host goes silent: after wdtsec the bays offer fsafecur.
    let out = world.step(40_000);
    for hb in last_heartbeats(&out).values() {
        assert_eq!(hb.amaxcur, Deciamps(60), "{hb:?}");
        assert!(hb.cur.iter().all(|c| *c <= Deciamps(60)));
    }
}

#[test]
fn a_refused_phase_set_ends_in_w9_and_the_old_set_resumes() {
    let mut world = world(1, Arrivals::None);
    if let Some(bay) = world.bays.first_mut() {
        bay.car = Some(picky_three_phase_car());
        bay.visit = Visit::Plugged { departure_ms: None };
    }
    set(&mut world, 0, "smaxcur", 160);
    set(&mut world, 0, "opbutton", 1);
    let out = run_fed(&mut world, 0, 20_000, 160);
    assert_eq!(
        last_heartbeats(&out).values().next().unwrap().ccss,
        Ccss::C3
    );
    set(&mut world, 20_000, "phases", 1);
    let out = run_fed(&mut world, 20_000, 80_000, 160);
    let states: Vec<Ccss> = last_heartbeats_in_order(&out);
    assert!(states.contains(&Ccss::W9), "{states:?}");
    set(&mut world, 80_000, "phases", 123);
    let out = run_fed(&mut world, 80_000, 120_000, 160);
    let hb = last_heartbeats(&out).into_values().next().unwrap();
    assert_eq!(hb.ccss.group(), CcssGroup::C, "{hb:?}");
    assert_eq!(hb.aphases, PhaseSet::ALL);
}

fn last_heartbeats_in_order(out: &[(MacAddr, NodeMessage)]) -> Vec<Ccss> {
    out.iter()
        .filter_map(|(_, msg)| match msg {
            NodeMessage::Heartbeat(hb) => Some(hb.ccss),
            _ => None,
        })
        .collect()
}

#[test]
fn an_unplugged_car_stops_drawing_and_a_plugged_one_waits_in_a() {
    let mut world = world(2, Arrivals::AllPlugged);
    let mac = world.root_mac();
    set(&mut world, 0, "opbutton", 1);
    run_fed(&mut world, 0, 15_000, 100);
    assert!(world.unplug(mac));
    assert!(!world.unplug(mac), "nothing left to unplug");
    let out = run_fed(&mut world, 15_000, 20_000, 100);
    let hb = last_heartbeats(&out)[&mac];
    assert!(hb.cur.iter().all(|c| c.get() == 0), "{hb:?}");
    assert_eq!(hb.cmaxcur, Deciamps(-1), "no cable: {hb:?}");
    assert!(world.plug(mac));
    assert!(!world.plug(mac), "already plugged");
    assert!(!world.unplug(MacAddr([9; 6])));
    let out = run_fed(&mut world, 20_000, 25_000, 100);
    assert!(last_heartbeats(&out)[&mac].cmaxcur.get() > 0);
}

#[test]
fn parameters_go_through_the_line_protocol() {
    let mut world = world(2, Arrivals::None);
    let root = world.root_mac();
    let get = |world: &mut SimWorld, par: &str| {
        world.handle_command(
            0,
            &Address::Root,
            &Command::AvrGetPar {
                par: ParName::try_from(par).unwrap(),
            },
        )
    };
    let ver = get(&mut world, "ver");
    assert_eq!(
        ver,
        vec![(
            root,
            NodeMessage::AvrGetPar {
                par: ParName::try_from("ver").unwrap(),
                val: Some(crate::controller::FIRMWARE_VERSION)
            }
        )]
    );
    let unknown = get(&mut world, "nosuch");
    assert!(matches!(
        unknown[0].1,
        NodeMessage::AvrGetPar { val: None, .. }
    ));
    let dump = get(&mut world, "");
    assert!(matches!(
        dump[0].1,
        NodeMessage::AvrGetPar { val: None, .. }
    ));
    // Read-only parameters and out-of-range values fail.
    assert_eq!(
        set(&mut world, 0, "ccss", 3)[0].1,
        NodeMessage::AvrSetPar { ok: false }
    );
    assert_eq!(
        set(&mut world, 0, "phases", 4)[0].1,
        NodeMessage::AvrSetPar { ok: false }
    );
}

#[test]
fn restart_silences_a_node_and_hbperiod_changes_its_rate() {
    let mut world = world(1, Arrivals::None);
    let mac = world.root_mac();
    world.handle_command(
        0,
        &Address::Node(mac),
        &Command::HbPeriod { period_ms: 200 },
    );
    let out = world.step(2_000);
    assert!(last_heartbeats_in_order(&out).len() >= 9);
    assert!(world
        .handle_command(2_000, &Address::Root, &Command::Restart)
        .is_empty());
    let out = world.step(12_500);
    let silent = world.step(14_000);
    assert!(!out.is_empty());
    assert!(silent.is_empty(), "booting node is silent");
    assert!(world
        .handle_command(14_000, &Address::Root, &Command::Status)
        .is_empty());
    let back = world.step(20_000);
    // After the reboot the configured period (1 s) applies again.
    assert!((5..=8).contains(&last_heartbeats_in_order(&back).len()));
    let system = world.handle_command(20_000, &Address::Root, &Command::System);
    assert!(matches!(&system[0].1, NodeMessage::System(s) if s.time_ms == 8_000));
}

#[test]
fn upgrade_reboots_every_node_of_the_board_into_the_new_version() {
    let mut world = world(3, Arrivals::None);
    let upgrade = |board: &str| Command::Upgrade {
        version: heapless::String::try_from("3.5").unwrap(),
        board: heapless::String::try_from(board).unwrap(),
    };
    assert!(world
        .handle_command(0, &Address::Root, &upgrade("m5stick"))
        .is_empty());
    assert!(world
        .handle_command(0, &Address::Root, &upgrade(NODE_BOARD))
        .is_empty());
    world.step(70_000);
    let systems = world.handle_command(70_000, &Address::Broadcast, &Command::System);
    assert_eq!(systems.len(), 3);
    for (_, msg) in systems {
        let NodeMessage::System(system) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(system.version.as_str(), "3.5");
        assert_eq!(system.time_ms, 10_000, "rebooted at 60 s");
    }
}

#[test]
fn upgrade_skips_other_boards_and_nodes_that_refuse_it() {
    let mut world = world(4, Arrivals::None);
    let macs: Vec<MacAddr> = world.macs().collect();
    assert!(world.set_board(macs[3], "m5stick"));
    world.set_ota_faults(
        macs[2],
        crate::sim::OtaFaults {
            refuses_esp32_upgrade: true,
            ..crate::sim::OtaFaults::default()
        },
    );
    let upgrade = Command::Upgrade {
        version: heapless::String::try_from("3.6").unwrap(),
        board: heapless::String::try_from(NODE_BOARD).unwrap(),
    };
    world.handle_command(0, &Address::Root, &upgrade);
    world.step(70_000);
    let systems = world.handle_command(70_000, &Address::Broadcast, &Command::System);
    let versions: Vec<(String, String)> = systems
        .into_iter()
        .filter_map(|(_, msg)| match msg {
            NodeMessage::System(s) => Some((s.board.to_string(), s.version.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        versions,
        [
            (NODE_BOARD.to_owned(), "3.6".to_owned()),
            (NODE_BOARD.to_owned(), "3.6".to_owned()),
            (NODE_BOARD.to_owned(), "3.4".to_owned()),
            ("m5stick".to_owned(), "3.4".to_owned()),
        ]
    );
}
