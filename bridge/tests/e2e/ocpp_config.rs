//! `[ocpp]` in the configuration: defaults and the checks that name the key at fault.

use std::time::Duration;

use ctrl22_bridge::config::{Config, OcppLayout};

fn error_of(toml: &str) -> String {
    match Config::from_toml(toml) {
        Ok(c) => panic!("accepted: {:?}", c.ocpp),
        Err(e) => e.to_string(),
    }
}

const ENABLED: &str = "[ocpp]\nenabled = true\nurl = \"ws://127.0.0.1:9000/ocpp\"\n";

#[test]
fn ocpp_defaults_are_a_charge_point_per_bay() -> anyhow::Result<()> {
    let c = Config::from_toml(ENABLED)?;
    assert_eq!(c.ocpp.identity, "{dev}");
    assert_eq!(c.ocpp.layout, OcppLayout::PerBay);
    assert_eq!(c.ocpp.security_profile, 0);
    assert_eq!(c.ocpp.vendor, "CTRL22");
    assert_eq!(c.ocpp.id_tag, "CTRL22");
    assert_eq!(c.ocpp.meter_value_sample_interval, Duration::from_secs(60));
    assert_eq!(c.ocpp.reconnect_max, Duration::from_secs(300));
    let single = Config::from_toml(&format!(
        "{ENABLED}layout = \"single\"\nidentity = \"{{site}}\"\n"
    ))?;
    assert_eq!(single.ocpp.layout, OcppLayout::Single);
    Ok(())
}

#[test]
fn ocpp_checks_name_the_key() {
    for (extra, key) in [
        (
            "security_profile = 3\nurl = \"wss://x\"\n",
            "ocpp.client_cert",
        ),
        ("security_profile = 1\n", "ocpp.password"),
        (
            "vendor = \"a vendor name longer than twenty\"\n",
            "ocpp.vendor",
        ),
        ("id_tag = \"\"\n", "ocpp.id_tag"),
        ("identity = \"bay/{dev}\"\n", "ocpp.identity"),
        ("identity = \"the-site\"\n", "ocpp.identity"),
        (
            "meter_value_sample_interval = \"2d\"\n",
            "ocpp.meter_value_sample_interval",
        ),
        ("reconnect_max = \"0s\"\n", "ocpp.reconnect_max"),
    ] {
        let toml = if extra.contains("url =") {
            format!("[ocpp]\nenabled = true\n{extra}")
        } else {
            format!("{ENABLED}{extra}")
        };
        let e = error_of(&toml);
        assert!(e.contains(key), "{extra:?}: {e}");
    }
}
