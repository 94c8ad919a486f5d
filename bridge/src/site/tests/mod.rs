//! The site core driven by hand with simulated time: discovery, offline reservation,
//! release and forget, refused settings, auto-start.

use ctrl22_node::mesh::{Address, Command, Heartbeat, MacAddr, NodeMessage};
use ctrl22_node::{Ccss, Deciamps, PhaseSet};

use super::{Input, Output, SettingChange, SettingError, Site, SiteSettings, Stored};
use crate::bay::BayId;
use crate::clock::Now;

const MAC: MacAddr = MacAddr([0x02, 0xc2, 0x22, 0, 0, 1]);

fn heartbeat(ccss: Ccss, cable: i16) -> Input {
    heartbeat_offering(ccss, cable, 0)
}

/// A heartbeat of the test bay signalling `amaxcur` (0.1 A) to its car.
fn heartbeat_offering(ccss: Ccss, cable: i16, amaxcur: i16) -> Input {
    heartbeat_from(MAC, ccss, cable, amaxcur)
}

fn heartbeat_from(src: MacAddr, ccss: Ccss, cable: i16, amaxcur: i16) -> Input {
    Input::Mesh {
        src,
        msg: NodeMessage::Heartbeat(Heartbeat {
            rssi: -60,
            ccss,
            amaxcur: Deciamps(amaxcur),
            cmaxcur: Deciamps(cable),
            aphases: PhaseSet::NONE,
            cur: [Deciamps::ZERO; 3],
        }),
    }
}

fn link_up() -> Input {
    Input::MeshLink {
        up: true,
        reply_deadline_ms: 3_000,
    }
}

fn writes(outputs: &[Output]) -> Vec<(String, i16)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                dst: Address::Node(mac),
                cmd: Command::AvrSetPar { par, val },
            } if *mac == MAC => Some((par.to_string(), *val)),
            _ => None,
        })
        .collect()
}

fn site() -> Site {
    let settings = SiteSettings {
        heartbeat_timeout_ms: 3_000,
        ..SiteSettings::default()
    };
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid site");
    site.handle(Now::at(0), link_up());
    site
}

fn bay() -> BayId {
    BayId("02c222000001".to_owned())
}

/// The writes of six one-second cycles from `from_ms` on, every write answered at once.
fn six_cycles(site: &mut Site, from_ms: u64) -> Vec<(String, i16)> {
    let mut sent = Vec::new();
    for t in (from_ms + 1_000..=from_ms + 6_000).step_by(1_000) {
        let out = site.handle(Now::at(t), Input::Tick);
        sent.extend(writes(&out));
        // Every write is answered at once.
        let acked = site.handle(
            Now::at(t + 10),
            Input::Mesh {
                src: MAC,
                msg: NodeMessage::AvrSetPar { ok: true },
            },
        );
        sent.extend(writes(&acked));
    }
    sent
}

#[test]
fn a_heartbeat_makes_a_bay_that_gets_its_watchdog_and_is_started() {
    let mut site = site();
    let mut sent = writes(&site.handle(Now::at(0), heartbeat(Ccss::Off3, 320)));
    assert_eq!(site.snapshot(Now::at(0)).bays.len(), 1);
    sent.extend(six_cycles(&mut site, 0));
    assert!(sent.contains(&("wdtsec".to_owned(), 60)), "{sent:?}");
    assert!(
        sent.contains(&("opbutton".to_owned(), 1)),
        "plugged and idle: started; {sent:?}"
    );
}

#[test]
fn without_autostart_a_plugged_car_waits_for_a_start_press() {
    let settings = SiteSettings {
        heartbeat_timeout_ms: 3_000,
        autostart: false,
        ..SiteSettings::default()
    };
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid site");
    site.handle(Now::at(0), link_up());
    let mut sent = writes(&site.handle(Now::at(0), heartbeat(Ccss::Off3, 320)));
    sent.extend(six_cycles(&mut site, 0));
    assert!(
        !sent.contains(&("opbutton".to_owned(), 1)),
        "held until authorised; {sent:?}"
    );
    let start = SettingChange::BayButton {
        bay: bay(),
        press: crate::site::record::ButtonRequest::Start,
    };
    assert!(site.apply(Now::at(6_500), start).is_ok());
    let sent = six_cycles(&mut site, 6_500);
    assert!(sent.contains(&("opbutton".to_owned(), 1)), "{sent:?}");
}

#[test]
fn an_online_bay_is_neither_released_nor_forgotten_an_offline_one_is() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::C3, 320));
    for change in [
        SettingChange::BayRelease { bay: bay() },
        SettingChange::BayForget { bay: bay() },
    ] {
        assert!(matches!(
            site.apply(Now::at(100), change),
            Err(SettingError::Invalid { .. })
        ));
    }
    site.handle(Now::at(10_000), Input::Tick);
    assert!(
        !site.snapshot(Now::at(10_000)).bays[0].online,
        "silent for longer than the timeout"
    );
    assert!(site
        .apply(Now::at(10_000), SettingChange::BayRelease { bay: bay() })
        .is_ok());
    assert!(site
        .apply(Now::at(10_000), SettingChange::BayForget { bay: bay() })
        .is_ok());
    assert!(site.snapshot(Now::at(10_000)).bays.is_empty());
    // It comes back as a new bay when heard again.
    site.handle(Now::at(11_000), heartbeat(Ccss::Off3, -1));
    assert_eq!(site.snapshot(Now::at(11_000)).bays.len(), 1);
}

#[test]
fn nonsense_settings_change_nothing() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    let before = site.snapshot(Now::at(0)).bays[0].settings.clone();
    for change in [
        SettingChange::BayMaxCurrent {
            bay: bay(),
            amps: 5.0,
        },
        SettingChange::BayMaxCurrent {
            bay: bay(),
            amps: f64::NAN,
        },
        SettingChange::BayTargetEnergy {
            bay: bay(),
            kwh: -1.0,
        },
        SettingChange::BayName {
            bay: bay(),
            name: "  ".to_owned(),
        },
        SettingChange::BayPriority {
            bay: bay(),
            priority: 1_000_000,
        },
        SettingChange::SiteLimit {
            phase: 4,
            amps: 16.0,
        },
        SettingChange::SiteLimit {
            phase: 1,
            amps: f64::INFINITY,
        },
        SettingChange::BayMode {
            bay: BayId("001122334455".to_owned()),
            mode: crate::allocate::ChargeMode::Off,
        },
    ] {
        assert!(
            site.apply(Now::at(0), change.clone()).is_err(),
            "{change:?}"
        );
    }
    assert_eq!(site.snapshot(Now::at(0)).bays[0].settings, before);
    assert_eq!(site.snapshot(Now::at(0)).limit_a, [32.0; 3]);
}

#[test]
fn a_stray_reply_from_an_unknown_node_is_counted_not_a_bay() {
    let mut site = site();
    site.handle(
        Now::at(0),
        Input::Mesh {
            src: MAC,
            msg: NodeMessage::AvrSetPar { ok: true },
        },
    );
    let snapshot = site.snapshot(Now::at(0));
    assert!(snapshot.bays.is_empty());
    assert_eq!(snapshot.rejected.get("unknown_node"), Some(&1));
}

mod envelope;
mod events;
mod parameters;
mod power;
mod restart;
