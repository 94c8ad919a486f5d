//! The safety envelope against runtime input: configured limits are the ceiling, a set of
//! changes is all or nothing, stored values above a lowered ceiling are clamped, unplaced
//! bays count against every circuit, and a stepped wall clock moves no timer.

use ctrl22_node::mesh::MacAddr;
use ctrl22_node::{Ccss, Deciamps, Phase};
use proptest::prelude::*;

use super::{bay, heartbeat, link_up, site, writes, MAC};
use crate::allocate::Circuit;
use crate::bay::BayId;
use crate::clock::Now;
use crate::site::record::BaySettings;
use crate::site::{
    BayEventKind, Input, Output, SettingChange, SettingError, Site, SiteSettings, Stored,
};

fn limit(phase: u8, amps: f64) -> SettingChange {
    SettingChange::SiteLimit { phase, amps }
}

fn max_current(amps: f64) -> SettingChange {
    SettingChange::BayMaxCurrent { bay: bay(), amps }
}

#[test]
fn values_above_the_configured_ceilings_are_refused_naming_the_ceiling() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    for change in [
        limit(1, 3200.0),
        limit(3, 32.1),
        max_current(80.0),
        max_current(1e9),
    ] {
        match site.apply(Now::at(0), change.clone()) {
            Err(e @ SettingError::AboveCeiling { .. }) => {
                assert!(e.to_string().contains("ceiling of 32 A"), "{e}");
            }
            other => panic!("{change:?}: {other:?}"),
        }
    }
    let snapshot = site.snapshot(Now::at(0));
    assert_eq!(snapshot.limit_a, [32.0; 3]);
    assert_eq!(snapshot.bays[0].settings.max_current, Deciamps(320));
    // At and below the ceiling: accepted, and the limit in force says who set it.
    site.apply(Now::at(0), limit(2, 20.0))
        .expect("below the ceiling");
    site.apply(Now::at(0), max_current(32.0))
        .expect("at the ceiling");
    let snapshot = site.snapshot(Now::at(0));
    assert_eq!(snapshot.limit_a, [32.0, 20.0, 32.0]);
    assert_eq!(snapshot.ceiling_a, [32.0; 3]);
    assert_eq!(
        snapshot.limit_binding[1],
        crate::site::limits::LimitSource::Operator
    );
}

#[test]
fn a_configured_bay_maximum_is_its_ceiling() {
    let id = bay();
    let mut settings = SiteSettings::default();
    let mut bay_settings = BaySettings::new(&id);
    bay_settings.max_current = Deciamps(160);
    settings.nodes.insert(id.clone(), (bay_settings, None));
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid");
    assert!(matches!(
        site.apply(Now::at(0), max_current(80.0)),
        Err(SettingError::AboveCeiling { .. })
    ));
    site.apply(Now::at(0), max_current(10.0)).expect("below");
    assert_eq!(site.snapshot(Now::at(0)).bays[0].ceiling_a, 16.0);
}

#[test]
fn a_set_of_changes_is_all_or_nothing() {
    let mut site = site();
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    let refused = site.apply_all(
        Now::at(0),
        vec![
            limit(1, 10.0),
            SettingChange::BayPriority {
                bay: bay(),
                priority: 5,
            },
            max_current(99.0),
        ],
    );
    assert!(refused.is_err());
    let snapshot = site.snapshot(Now::at(0));
    assert_eq!(
        snapshot.limit_a, [32.0; 3],
        "the first change was not applied"
    );
    assert_eq!(snapshot.bays[0].settings.priority, 0);
}

#[test]
fn stored_values_above_a_lowered_ceiling_are_clamped_with_one_warning() {
    let mut settings = SiteSettings {
        limits: [Deciamps(250); 3],
        ..SiteSettings::default()
    };
    let id = bay();
    settings
        .nodes
        .insert(id.clone(), (BaySettings::new(&id), None));
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid");
    // Saved while the ceiling was 32 A.
    let out = site.restore_settings(
        Now::at(0),
        vec![limit(1, 30.0), limit(2, 20.0), max_current(40.0)],
    );
    let warnings: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, Output::Event { text, .. } if text.contains("clamped")))
        .collect();
    assert_eq!(warnings.len(), 2, "{out:?}");
    // The clamped values are saved, so the warning is not repeated at the next start.
    assert!(
        out.contains(&Output::SaveSetting(limit(1, 25.0))),
        "{out:?}"
    );
    let snapshot = site.snapshot(Now::at(0));
    assert_eq!(snapshot.limit_a, [25.0, 20.0, 25.0]);
    assert_eq!(snapshot.bays[0].settings.max_current, Deciamps(320));
}

fn circuits_site(default_circuit: Option<&str>) -> Site {
    let settings = SiteSettings {
        limits: [Deciamps(630); 3],
        circuits: vec![
            Circuit {
                id: "garage".to_owned(),
                parent: None,
                limit: [Deciamps(320); 3],
            },
            Circuit {
                id: "yard".to_owned(),
                parent: None,
                limit: [Deciamps(160); 3],
            },
        ],
        default_circuit: default_circuit.map(str::to_owned),
        heartbeat_timeout_ms: 3_000,
        ..SiteSettings::default()
    };
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid");
    site.handle(Now::at(0), link_up());
    site
}

#[test]
fn a_bay_the_configuration_does_not_place_counts_against_every_circuit() {
    let mut site = circuits_site(None);
    site.handle(Now::at(0), heartbeat(Ccss::C3, 320));
    let snapshot = site.snapshot(Now::at(0));
    assert!(snapshot.bays[0].problems.contains(&"unplaced"));
    // What it evidently offers (nothing yet, 0 A) is reserved in both circuits.
    let reserved: Vec<_> = snapshot.circuits.iter().map(|c| c.reserved_a).collect();
    assert_eq!(reserved[0], reserved[1]);
    assert_eq!(reserved[0], snapshot.reserved_a);
    // With a default circuit it hangs there, and only there.
    let mut site = circuits_site(Some("yard"));
    site.handle(Now::at(0), super::heartbeat_offering(Ccss::C3, 320, 100));
    let snapshot = site.snapshot(Now::at(0));
    assert!(snapshot.bays[0].problems.is_empty());
    assert_eq!(snapshot.circuits[0].reserved_a, [0.0; 3]);
    assert_eq!(snapshot.circuits[1].reserved_a, [10.0; 3]);
}

#[test]
fn an_unplaced_bay_offering_current_is_reserved_in_every_circuit() {
    let mut site = circuits_site(None);
    site.handle(Now::at(0), super::heartbeat_offering(Ccss::C3, 320, 100));
    let snapshot = site.snapshot(Now::at(0));
    for circuit in &snapshot.circuits {
        assert_eq!(circuit.reserved_a, [10.0; 3], "{}", circuit.id);
    }
}

/// Drives one bay through plug, charge and unplug with every write acknowledged at once;
/// the wall clock is `wall(t)` for monotonic time `t`.
fn run_with_wall(wall: impl Fn(u64) -> u64) -> (Vec<(u64, String, i16)>, Vec<BayEventKind>) {
    let mut site = site();
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut record = |t: u64, out: Vec<Output>, sent: &mut Vec<(u64, String, i16)>| {
        for (par, val) in writes(&out) {
            sent.push((t, par, val));
        }
        for o in out {
            if let Output::Bay(e) = o {
                events.push(e.kind);
            }
        }
    };
    for second in 0..600u64 {
        let t = second * 1_000;
        let now = Now {
            mono_ms: t,
            wall_ms: wall(t),
        };
        let state = if second < 400 { Ccss::C3 } else { Ccss::Off1 };
        let out = site.handle(now, super::heartbeat_offering(state, 320, 160));
        record(t, out, &mut sent);
        let out = site.handle(now, Input::Tick);
        record(t, out, &mut sent);
        let out = site.handle(
            now,
            Input::Mesh {
                src: MAC,
                msg: ctrl22_node::mesh::NodeMessage::AvrSetPar { ok: true },
            },
        );
        record(t, out, &mut sent);
    }
    (sent, events)
}

#[test]
fn a_stepped_wall_clock_moves_no_timer() {
    const HOUR: u64 = 3_600_000;
    let base = 1_767_225_600_000; // 2026-01-01 00:00 UTC
    let steady = run_with_wall(|t| base + t);
    let forward = run_with_wall(|t| {
        if t < 200_000 {
            base + t
        } else {
            base + t + HOUR
        }
    });
    let back = run_with_wall(|t| {
        if t < 200_000 {
            base + t
        } else {
            base + t - HOUR
        }
    });
    assert!(!steady.0.is_empty());
    // The same writes at the same monotonic moments: no refresh early, none frozen.
    assert_eq!(steady.0, forward.0, "wall clock +1 h");
    assert_eq!(steady.0, back.0, "wall clock -1 h");
    let names = |events: &[BayEventKind]| events.iter().map(BayEventKind::name).collect::<Vec<_>>();
    assert_eq!(names(&steady.1), names(&forward.1));
    assert_eq!(names(&steady.1), names(&back.1));
    assert!(names(&steady.1).contains(&"session_started"));
    assert!(names(&steady.1).contains(&"session_stopped"));
}

proptest! {
    /// No sequence of operator inputs, however absurd, lifts what the allocation targets or
    /// the sequencer reserves above the configured limits.
    #[test]
    fn no_runtime_input_lifts_anything_above_the_configuration(
        inputs in proptest::collection::vec((0u8..4, 1u8..4, -1e4f64..1e4, 0usize..4), 1..60),
    ) {
        let macs: Vec<MacAddr> = (1..=4).map(|i| MacAddr([0x02, 0xc2, 0x22, 0, 0, i])).collect();
        let mut site = site();
        let mut t = 0;
        for (kind, phase, amps, which) in inputs {
            t += 1_000;
            let now = Now::at(t);
            let mac = macs[which];
            let id = BayId(mac.topic_form().to_string());
            let change = match kind {
                0 => Some(SettingChange::SiteLimit { phase, amps }),
                1 => Some(SettingChange::BayMaxCurrent { bay: id, amps }),
                _ => None,
            };
            if let Some(change) = change {
                let _ = site.apply(now, change);
            }
            site.handle(now, super::heartbeat_from(mac, Ccss::C3, 320, 0));
            site.handle(now, Input::Tick);
            site.handle(now, Input::Mesh { src: mac, msg: ctrl22_node::mesh::NodeMessage::AvrSetPar { ok: true } });
            let snapshot = site.snapshot(now);
            for p in Phase::ALL {
                prop_assert!(snapshot.limit_a[p.index()] <= 32.0);
                prop_assert!(snapshot.reserved_a[p.index()] <= 32.0, "{:?}", snapshot.reserved_a);
                let digit = char::from(b'1' + u8::try_from(p.index()).unwrap_or(0));
                let allocated: f64 = snapshot
                    .bays
                    .iter()
                    .filter(|b| b.allocated_phases.to_string().contains(digit))
                    .map(|b| b.allocated_a)
                    .sum();
                prop_assert!(allocated <= 32.0 + 1e-9, "{allocated} A on {p:?}");
            }
            for b in &snapshot.bays {
                prop_assert!(b.settings.max_current <= Deciamps(320));
                prop_assert!(b.allocated_a <= 32.0);
            }
        }
    }
}

#[test]
fn a_forgotten_configured_bay_comes_back_with_its_configuration() {
    let id = bay();
    let mut settings = SiteSettings {
        heartbeat_timeout_ms: 3_000,
        ..SiteSettings::default()
    };
    let mut bay_settings = BaySettings::new(&id);
    bay_settings.max_current = Deciamps(160);
    settings.nodes.insert(id.clone(), (bay_settings, None));
    let mut site = Site::new(settings, Stored::default(), Now::at(0)).expect("valid");
    site.handle(Now::at(0), link_up());
    site.handle(Now::at(0), heartbeat(Ccss::Off3, 320));
    site.handle(Now::at(10_000), Input::Tick);
    site.apply(Now::at(10_000), SettingChange::BayForget { bay: id })
        .expect("offline");
    site.handle(Now::at(11_000), heartbeat(Ccss::Off3, 320));
    let snapshot = site.snapshot(Now::at(11_000));
    assert_eq!(snapshot.bays.len(), 1);
    assert_eq!(
        snapshot.bays[0].ceiling_a, 16.0,
        "the file's ceiling, not 32 A"
    );
    assert!(matches!(
        site.apply(Now::at(11_000), max_current(20.0)),
        Err(SettingError::AboveCeiling { .. })
    ));
}
