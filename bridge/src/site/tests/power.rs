//! Power readings and outside signals in the site core: they only lower, a circuit's
//! external limit lowers that circuit, nonsense is counted, a silent signal keeps its
//! value, and a meter that answers again brings the house-load limit back.

use ctrl22_node::Deciamps;

use super::super::power::{ExternalLimit, LimitScope, PowerReading, PowerSettings, SourceId};
use super::super::{Input, Site, SiteSettings, Stored};
use crate::allocate::Circuit;
use crate::clock::Now;

fn site(house_reserve: Option<[Deciamps; 3]>) -> Site {
    let settings = SiteSettings {
        limits: [Deciamps(400); 3],
        circuits: vec![Circuit {
            id: "garage".to_owned(),
            parent: None,
            limit: [Deciamps(250); 3],
        }],
        power: PowerSettings {
            house_reserve,
            house_raise_hold_ms: 0,
            ..PowerSettings::default()
        },
        ..SiteSettings::default()
    };
    Site::new(settings, Stored::default(), Now::at(0)).expect("valid site")
}

fn external(scope: LimitScope, limit: Option<ExternalLimit>) -> Input {
    Input::ExternalLimit {
        source: SourceId(2),
        scope,
        limit,
    }
}

#[test]
fn an_external_limit_lowers_its_circuit_and_keeps_when_its_source_goes_silent() {
    let mut site = site(None);
    let amps = ExternalLimit::Amps([Deciamps(100), Deciamps(900), Deciamps(100)]);
    site.handle(
        Now::at(0),
        external(LimitScope::Circuit("garage".into()), Some(amps)),
    );
    let snapshot = site.snapshot(Now::at(0));
    // Never above the configured 25 A, whatever the signal says.
    assert_eq!(snapshot.circuits[0].limit_a, [10.0, 25.0, 10.0]);
    assert_eq!(snapshot.limit_a, [40.0; 3]);
    site.handle(
        Now::at(1_000),
        Input::PowerLost {
            source: SourceId(2),
            error: "broker gone".to_owned(),
        },
    );
    site.handle(Now::at(60_000), Input::Tick);
    assert_eq!(
        site.snapshot(Now::at(60_000)).circuits[0].limit_a,
        [10.0, 25.0, 10.0]
    );
    site.handle(
        Now::at(61_000),
        external(LimitScope::Circuit("garage".into()), None),
    );
    assert_eq!(
        site.snapshot(Now::at(61_000)).circuits[0].limit_a,
        [25.0; 3]
    );
    // A circuit the site does not have is refused and counted.
    site.handle(
        Now::at(62_000),
        external(LimitScope::Circuit("attic".into()), Some(amps)),
    );
    let snapshot = site.snapshot(Now::at(62_000));
    assert_eq!(
        snapshot.rejected.get("external_limit_unknown_circuit"),
        Some(&1)
    );
    assert!(snapshot.power.external.is_empty());
}

#[test]
fn the_house_reserve_holds_until_the_meter_answers_and_again_when_it_falls_silent() {
    let mut site = site(Some([Deciamps(150); 3]));
    assert_eq!(site.snapshot(Now::at(0)).limit_a, [25.0; 3]);
    let reading = PowerReading {
        grid_phase_a: Some([5.0, -20.0, 5.0]),
        grid_w: Some(-2_000),
        pv_w: Some(6_000),
        ..PowerReading::default()
    };
    site.handle(
        Now::at(1_000),
        Input::Power {
            source: SourceId(0),
            reading,
        },
    );
    site.handle(
        Now::at(2_000),
        Input::Power {
            source: SourceId(0),
            reading,
        },
    );
    let snapshot = site.snapshot(Now::at(2_000));
    // 5 A of house load and the 2 A margin; the exporting phase gets the fuse, no more.
    assert_eq!(snapshot.limit_a, [33.0, 38.0, 33.0]);
    assert_eq!(snapshot.power.house_load_a, Some([5.0, 0.0, 5.0]));
    assert_eq!(snapshot.power.budget_w, Some(2_000));
    assert!(snapshot.solar_ok);
    let timeout = PowerSettings::default().reading_timeout_ms;
    site.handle(Now::at(2_000 + timeout + 1), Input::Tick);
    let snapshot = site.snapshot(Now::at(2_000 + timeout + 1));
    assert_eq!(snapshot.limit_a, [25.0; 3]);
    assert!(snapshot.power.house_fallback);
    assert_eq!(snapshot.power.budget_w, None);
    assert!(!snapshot.solar_ok);
}
