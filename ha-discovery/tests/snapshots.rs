//! Golden payloads of a bay and the site, in both discovery modes (insta snapshots under
//! `tests/snapshots/`), plus an ignored test that dumps them for the Home Assistant schema
//! check in `validate/` (see `validate/README.md`).

#![allow(clippy::unwrap_used)]

use ctrl22_ha::ctrl22::{bay_device, site_device, BayInfo, SiteInfo};
use ctrl22_ha::{discovery, DeviceConfig, DiscoveryMessage, DiscoveryMode};
use serde_json::{json, Value};

const PREFIX: &str = "homeassistant";

fn site() -> SiteInfo {
    SiteInfo {
        site_id: "lot7".into(),
        name: "Lot 7".into(),
        bridge_version: "0.1.0".into(),
        ceiling_a: [32, 32, 32],
        configuration_url: Some("http://192.168.1.20:8080/".into()),
    }
}

fn bay(dev: &str, mac: &str, name: &str) -> BayInfo {
    BayInfo {
        dev: dev.into(),
        mac: mac.into(),
        name: name.into(),
        board: Some("agccs12".into()),
        sw_version: Some("3.5".into()),
        avr_version: Some("1.3".into()),
        ceiling_a: 32,
        configuration_url: Some(format!("http://192.168.1.20:8080/#/nodes/{dev}")),
    }
}

fn devices() -> Vec<DeviceConfig> {
    vec![
        site_device(&site()).unwrap(),
        bay_device(&site(), &bay("d8a01d55a710", "d8:a0:1d:55:a7:10", "Bay 1")).unwrap(),
        bay_device(&site(), &bay("d8a01d55a56c", "d8:a0:1d:55:a5:6c", "Bay 2")).unwrap(),
    ]
}

/// Topic and parsed payload, the form both the snapshots and the validator read.
fn as_json(messages: &[DiscoveryMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| json!({"topic": m.topic, "payload": serde_json::from_str::<Value>(&m.payload).unwrap()}))
        .collect()
}

fn render(mode: DiscoveryMode, cfg: &DeviceConfig) -> Vec<Value> {
    as_json(&discovery(mode, PREFIX, cfg).unwrap())
}

#[test]
fn bay_device_discovery() {
    insta::assert_json_snapshot!(render(DiscoveryMode::Device, &devices()[1]));
}

#[test]
fn bay_entity_discovery() {
    insta::assert_json_snapshot!(render(DiscoveryMode::Entity, &devices()[1]));
}

#[test]
fn site_device_discovery() {
    insta::assert_json_snapshot!(render(DiscoveryMode::Device, &devices()[0]));
}

#[test]
fn site_entity_discovery() {
    insta::assert_json_snapshot!(render(DiscoveryMode::Entity, &devices()[0]));
}

/// Writes `discovery-device.jsonl` and `discovery-entity.jsonl` (one `{"topic", "payload"}`
/// per line) for the site and two bays into `$CTRL22_HA_DUMP_DIR` (default `target/ha-dump`).
#[test]
#[ignore = "writes files; run by validate/README.md"]
fn dump_discovery() {
    let dir = std::env::var("CTRL22_HA_DUMP_DIR").unwrap_or_else(|_| "target/ha-dump".into());
    std::fs::create_dir_all(&dir).unwrap();
    for (mode, file) in [
        (DiscoveryMode::Device, "discovery-device.jsonl"),
        (DiscoveryMode::Entity, "discovery-entity.jsonl"),
    ] {
        let lines: Vec<String> = devices()
            .iter()
            .flat_map(|cfg| render(mode, cfg))
            .map(|v| v.to_string())
            .collect();
        let path = std::path::Path::new(&dir).join(file);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        println!("wrote {} messages to {}", lines.len(), path.display());
    }
}
