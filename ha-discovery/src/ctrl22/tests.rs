//! The catalogue's contract: every template reads a declared field, every command topic is
//! a declared command, units pass Home Assistant's rules, ids stay stable.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::component::Platform;
use crate::device::Connection;
use crate::error::DiscoveryError;
use crate::render::DeviceConfig;
use std::collections::BTreeSet;

fn site() -> SiteInfo {
    SiteInfo {
        site_id: "lot7".into(),
        name: "Lot 7".into(),
        bridge_version: "0.1.0".into(),
        ceiling_a: [32, 32, 25],
        configuration_url: None,
    }
}

fn bay() -> BayInfo {
    BayInfo {
        dev: "d8a01d55a710".into(),
        mac: "D8:A0:1D:55:A7:10".into(),
        name: "Bay 1 (Müller)".into(),
        board: Some("agccs12".into()),
        sw_version: Some("3.5".into()),
        avr_version: Some("1.3".into()),
        ceiling_a: 20,
        configuration_url: None,
    }
}

/// The `value_json.<field>` names a component's templates read.
fn fields_read(platform: &Platform) -> Vec<String> {
    let templates = match platform {
        Platform::Sensor(c) => vec![&c.value_template],
        Platform::BinarySensor(c) => vec![&c.value_template],
        Platform::Number(c) => vec![&c.value_template],
        Platform::Select(c) => vec![&c.value_template],
        Platform::Switch(c) => vec![&c.value_template],
        Platform::Text(c) => vec![&c.value_template],
        Platform::Update(c) => vec![&c.value_template, &c.latest_version_template],
        Platform::Button(_) => vec![],
    };
    templates
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t.split("value_json.")
                .skip(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn command_fields(cfg: &DeviceConfig) -> BTreeSet<String> {
    cfg.components()
        .iter()
        .filter_map(|c| match &c.platform {
            Platform::Number(p) => Some(p.command_topic.clone()),
            Platform::Select(p) => Some(p.command_topic.clone()),
            Platform::Switch(p) => Some(p.command_topic.clone()),
            Platform::Button(p) => Some(p.command_topic.clone()),
            Platform::Text(p) => Some(p.command_topic.clone()),
            Platform::Update(p) => p.command_topic.clone(),
            Platform::Sensor(_) | Platform::BinarySensor(_) => None,
        })
        .filter_map(|t| t.rsplit('/').next().map(str::to_owned))
        .collect()
}

fn read(cfg: &DeviceConfig) -> BTreeSet<String> {
    cfg.components()
        .iter()
        .flat_map(|c| fields_read(&c.platform))
        .collect()
}

#[test]
fn bay_entities_read_exactly_the_bay_fields_and_command_exactly_the_bay_commands() {
    let cfg = bay_device(&site(), &bay()).unwrap();
    let declared: BTreeSet<String> = BayField::ALL
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(read(&cfg), declared);
    let commands: BTreeSet<String> = BayCommand::ALL
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(command_fields(&cfg), commands);
}

#[test]
fn site_entities_read_exactly_the_site_fields_and_command_exactly_the_site_commands() {
    let cfg = site_device(&site()).unwrap();
    let declared: BTreeSet<String> = SiteField::ALL
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(read(&cfg), declared);
    let commands: BTreeSet<String> = SiteCommand::ALL
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    assert_eq!(command_fields(&cfg), commands);
}

#[test]
fn every_catalogue_entity_passes_home_assistant_unit_rules() {
    use crate::classes::rules::{check_number, check_sensor};
    use crate::classes::{NumberDeviceClass, SensorDeviceClass, StateClass, Unit};
    let configs = [
        site_device(&site()).unwrap(),
        bay_device(&site(), &bay()).unwrap(),
    ];
    for cfg in &configs {
        for c in cfg.components() {
            let r = match &c.platform {
                Platform::Sensor(s) => check_sensor(
                    s.kind.device_class().map(SensorDeviceClass::as_str),
                    s.kind.state_class().map(StateClass::as_str),
                    s.kind.unit().map(Unit::symbol),
                    s.kind.options(),
                ),
                Platform::Number(n) => check_number(
                    n.kind.device_class().map(NumberDeviceClass::as_str),
                    n.kind.unit().map(Unit::symbol),
                ),
                _ => Ok(()),
            };
            assert_eq!(r, Ok(()), "{}", c.key);
            let eid = cfg.default_entity_id(c);
            let (domain, object) = eid.split_once('.').unwrap();
            assert_eq!(domain, c.platform.name());
            assert!(object
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}

#[test]
fn every_command_topic_parses_back_to_its_command() {
    let topics = Topics::new("lot7").unwrap();
    for c in BayCommand::ALL {
        assert_eq!(
            topics.parse_command(&topics.bay_command("d8a01d55a710", *c)),
            Some(CommandTarget::Bay {
                dev: "d8a01d55a710".into(),
                command: *c
            })
        );
    }
    for c in SiteCommand::ALL {
        assert_eq!(
            topics.parse_command(&topics.site_command(*c)),
            Some(CommandTarget::Site(*c))
        );
    }
    for other in [
        "ctrl22/lot7/node/x/state",
        "ctrl22/lot7/node//set/mode",
        "ctrl22/lot8/site/set/strategy",
        "ctrl22/lot7/site/set/bogus",
        "ctrl22/lot7/node/x/set/mode/extra",
    ] {
        assert_eq!(topics.parse_command(other), None, "{other}");
    }
}

#[test]
fn ids_are_stable_and_entity_ids_follow_the_bay_name() {
    let cfg = bay_device(&site(), &bay()).unwrap();
    let power = cfg.components().iter().find(|c| c.key == "power").unwrap();
    assert_eq!(cfg.unique_id(power), "ctrl22_d8a01d55a710_power");
    assert_eq!(cfg.default_entity_id(power), "sensor.bay_1_muller_power");
    assert_eq!(
        cfg.device().connections,
        vec![Connection::Mac("d8:a0:1d:55:a7:10".into())]
    );
    assert_eq!(cfg.device().via_device.as_deref(), Some("ctrl22_site_lot7"));
    let renamed = BayInfo {
        name: "Garage".into(),
        ..bay()
    };
    let cfg2 = bay_device(&site(), &renamed).unwrap();
    let power2 = cfg2.components().iter().find(|c| c.key == "power").unwrap();
    assert_eq!(cfg2.unique_id(power2), cfg.unique_id(power));
}

#[test]
fn slug_matches_home_assistant_for_latin_names() {
    assert_eq!(slug("Bay 1"), "bay_1");
    assert_eq!(slug("  Straße / Süd #3 "), "strasse_sud_3");
    assert_eq!(slug("Ladepunkt-Ost"), "ladepunkt_ost");
    assert_eq!(slug("日本"), "");
    let nameless = BayInfo {
        name: "日本".into(),
        ..bay()
    };
    let cfg = bay_device(&site(), &nameless).unwrap();
    let c = &cfg.components()[0];
    assert_eq!(cfg.default_entity_id(c), "sensor.ctrl22_d8a01d55a710_state");
}

#[test]
fn bad_inputs_are_refused_not_published() {
    let bad_site = SiteInfo {
        site_id: "lot/7".into(),
        ..site()
    };
    assert!(matches!(
        site_device(&bad_site),
        Err(DiscoveryError::InvalidId { .. })
    ));
    let bad_bay = BayInfo {
        dev: "d8+a0".into(),
        ..bay()
    };
    assert!(matches!(
        bay_device(&site(), &bad_bay),
        Err(DiscoveryError::InvalidId { .. })
    ));
}

/// The number's `(min, max)` of the component `key`.
fn range_of(cfg: &DeviceConfig, key: &str) -> Option<(f64, f64)> {
    cfg.components()
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| match &c.platform {
            Platform::Number(n) => Some((n.range.min(), n.range.max())),
            _ => None,
        })
}

#[test]
fn numbers_end_at_the_configured_ceilings() {
    let cfg = site_device(&site()).unwrap();
    assert_eq!(range_of(&cfg, "limit_l1"), Some((0.0, 32.0)));
    assert_eq!(range_of(&cfg, "limit_l3"), Some((0.0, 25.0)));
    let cfg = bay_device(&site(), &bay()).unwrap();
    assert_eq!(range_of(&cfg, "max_current"), Some((6.0, 20.0)));
    assert_eq!(
        range_of(&cfg, "target_energy"),
        Some((0.0, TARGET_ENERGY_MAX_KWH))
    );
}

#[test]
fn a_ceiling_that_leaves_no_choice_leaves_the_number_out() {
    // A bay wired for 6 A has no maximum to choose; a single-phase site has no L2 and L3.
    let fixed = BayInfo {
        ceiling_a: 6,
        ..bay()
    };
    let cfg = bay_device(&site(), &fixed).unwrap();
    assert_eq!(range_of(&cfg, "max_current"), None);
    assert!(cfg.components().iter().any(|c| c.key == "charge_mode"));
    let single_phase = SiteInfo {
        ceiling_a: [32, 0, 0],
        ..site()
    };
    let cfg = site_device(&single_phase).unwrap();
    assert_eq!(range_of(&cfg, "limit_l1"), Some((0.0, 32.0)));
    assert_eq!(range_of(&cfg, "limit_l2"), None);
    assert_eq!(range_of(&cfg, "limit_l3"), None);
}
