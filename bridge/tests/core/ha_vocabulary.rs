//! One vocabulary: the words and bounds Home Assistant is offered (`ctrl22_ha`, which cannot
//! depend on the bridge) are the ones the bridge speaks and accepts. A new state, mode or
//! strategy in the bridge, or a changed bound, fails here until the catalogue follows.

use ctrl22_bridge::allocate::{ChargeMode, Strategy};
use ctrl22_bridge::ha::command;
use ctrl22_bridge::site::settings::TARGET_ENERGY_MAX_KWH;
use ctrl22_bridge::site::BayStatus;
use ctrl22_ha::ctrl22::{self, BayCommand, CommandTarget, SiteCommand};

/// The wire word of a serde enum, as the state payloads carry it.
fn wire(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("not a string enum: {other:?}"),
    }
}

#[test]
fn bay_states_are_the_bridge_statuses() {
    let bridge: Vec<&str> = BayStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(ctrl22::BAY_STATES, bridge.as_slice());
    // The HTTP API and the dashboard serialize the same enum: same words.
    for status in BayStatus::ALL {
        assert_eq!(wire(&status), status.as_str());
    }
}

#[test]
fn charge_modes_are_the_bridge_modes_and_each_parses_back() {
    let bridge: Vec<String> = ChargeMode::ALL.iter().map(wire).collect();
    assert_eq!(ctrl22::CHARGE_MODES, bridge.as_slice());
    let target = CommandTarget::Bay {
        dev: "d8a01d55a710".to_owned(),
        command: BayCommand::Mode,
    };
    for (option, mode) in ctrl22::CHARGE_MODES.iter().zip(ChargeMode::ALL) {
        let change = command::parse(&target, option.as_bytes());
        assert!(
            matches!(change, Ok(ctrl22_bridge::site::SettingChange::BayMode { mode: m, .. }) if m == mode),
            "{option}: {change:?}"
        );
    }
}

#[test]
fn strategies_are_the_bridge_strategies_and_each_parses_back() {
    let bridge: Vec<String> = Strategy::ALL.iter().map(wire).collect();
    assert_eq!(ctrl22::STRATEGIES, bridge.as_slice());
    let target = CommandTarget::Site(SiteCommand::Strategy);
    for (option, strategy) in ctrl22::STRATEGIES.iter().zip(Strategy::ALL) {
        assert_eq!(
            command::parse(&target, option.as_bytes()),
            Ok(ctrl22_bridge::site::SettingChange::Strategy(strategy)),
            "{option}"
        );
    }
}

#[test]
#[allow(clippy::float_cmp)] // the same constant, not a computed value
fn the_target_energy_number_ends_where_the_core_does() {
    assert_eq!(ctrl22::TARGET_ENERGY_MAX_KWH, TARGET_ENERGY_MAX_KWH);
}
