//! The checks serde cannot do: limits, phase rotations, MAC addresses, the circuit tree, URL
//! schemes, ranges the nodes accept. Every problem names its key, and all are reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::mesh::wdtsec_range;
use super::nodes::normalise_mac;
use super::{
    redact, CircuitConfig, Config, ConfigError, HttpConfig, Invalid, OcppConfig, OcppLayout,
    SiteConfig, SolarKind, SolarSourceConfig,
};
use crate::bay::Deciamps;

impl Config {
    /// Checks what the types cannot and normalises node keys to topic form.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: String, problem: String| problems.push(Invalid { key, problem });

        check_url(&self.mqtt.url, "mqtt.url", &["mqtt", "mqtts"], &mut bad);
        if !(1..=super::firmware::MAX_PARALLEL).contains(&self.firmware.max_parallel) {
            bad(
                "firmware.max_parallel".into(),
                format!("must be 1 to {}", super::firmware::MAX_PARALLEL),
            );
        }
        let (shortest, longest) = super::firmware::ESP32_TIMEOUT;
        if !(shortest..=longest).contains(&self.firmware.esp32_timeout) {
            bad(
                "firmware.esp32_timeout".into(),
                "must be 10s to 2h".to_owned(),
            );
        }
        if self.mqtt.embedded.is_some()
            && self.mqtt.username.is_some() != self.mqtt.password.is_some()
        {
            let missing = if self.mqtt.username.is_none() {
                "mqtt.username"
            } else {
                "mqtt.password"
            };
            bad(
                missing.into(),
                "is required with the other one when mqtt.embedded is set (the broker's login)"
                    .into(),
            );
        }
        if self.mqtt.client_id.is_empty() {
            bad("mqtt.client_id".into(), "must not be empty".into());
        }
        // The codec's own rule, so a mesh id the config accepts is one the link can use.
        if let Err(e) = ctrl22_node::mesh::check_mesh_id(&self.mesh.mesh_id) {
            bad(
                "mesh.mesh_id".into(),
                format!("{:?}: {e}", self.mesh.mesh_id),
            );
        }
        if self.mesh.heartbeat_timeout.is_zero() {
            bad(
                "mesh.heartbeat_timeout".into(),
                "must be more than 0s".into(),
            );
        }
        let wdtsec = wdtsec_range();
        if !wdtsec.contains(&self.mesh.wdtsec) {
            bad(
                "mesh.wdtsec".into(),
                format!(
                    "{} is outside {}..={} s (the node's watchdog range; 0 would disable it)",
                    self.mesh.wdtsec,
                    wdtsec.start(),
                    wdtsec.end()
                ),
            );
        }
        if self.mesh.setpoint_refresh.is_zero()
            || self.mesh.setpoint_refresh >= Duration::from_secs(u64::from(self.mesh.wdtsec))
        {
            bad(
                "mesh.setpoint_refresh".into(),
                format!(
                    "must be more than 0s and less than mesh.wdtsec ({} s), or the node watchdog trips",
                    self.mesh.wdtsec
                ),
            );
        }

        if !super::site::MAX_BAYS.contains(&self.site.max_bays) {
            bad(
                "site.max_bays".into(),
                format!(
                    "must be {}..={}",
                    super::site::MAX_BAYS.start(),
                    super::site::MAX_BAYS.end()
                ),
            );
        }
        if self.site.voltage == 0 {
            bad("site.voltage".into(), "must be more than 0".into());
        }
        check_limits(&self.site.max_current, "site.max_current", &mut bad);
        check_circuits(&self.site.circuits, &mut bad);
        check_site_extras(&self.site, &mut bad);

        let circuit_ids: BTreeSet<&str> =
            self.site.circuits.iter().map(|c| c.id.as_str()).collect();
        let mut nodes = BTreeMap::new();
        for (key, node) in &self.nodes {
            let Some(dev) = normalise_mac(key) else {
                bad(
                    format!("nodes.{key}"),
                    "is not a MAC address (12 hex digits, with or without colons)".into(),
                );
                continue;
            };
            if let Some(limit) = node.max_current {
                check_limit(limit, &format!("nodes.{key}.max_current"), &mut bad);
            }
            if let Some(circuit) = &node.circuit {
                if !circuit_ids.contains(circuit.as_str()) {
                    bad(
                        format!("nodes.{key}.circuit"),
                        format!("no circuit {circuit:?} in site.circuits"),
                    );
                }
            }
            if nodes.insert(dev.clone(), node.clone()).is_some() {
                bad(
                    format!("nodes.{key}"),
                    format!("the same node as another entry ({dev})"),
                );
            }
        }

        for (i, source) in self.solar.sources.iter().enumerate() {
            check_solar(
                source,
                &format!("solar.sources[{i}]"),
                &circuit_ids,
                &mut bad,
            );
        }
        self.site.check_power(&self.solar, &mut bad);

        if self.homeassistant.discovery_prefix.is_empty()
            || self.homeassistant.discovery_prefix.contains(['+', '#'])
        {
            bad(
                "homeassistant.discovery_prefix".into(),
                "must be a non-empty topic without '+' or '#'".into(),
            );
        }

        check_ocpp(&self.ocpp, &mut bad);
        check_http(&self.http, &mut bad);

        if problems.is_empty() {
            self.nodes = nodes;
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn check_url(url: &str, key: &str, schemes: &[&str], bad: &mut impl FnMut(String, String)) {
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
    if !scheme_ok {
        let allowed: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        bad(
            key.into(),
            format!(
                "{:?} must start with {}",
                redact::url(url),
                allowed.join(" or ")
            ),
        );
    }
}

fn check_limit(limit: Deciamps, key: &str, bad: &mut impl FnMut(String, String)) {
    if !limit.is_valid_offer() {
        bad(
            key.into(),
            format!("{limit} must be 0 or at least 6 A (IEC 61851-1 minimum)"),
        );
    }
}

fn check_limits(limits: &[Deciamps; 3], key: &str, bad: &mut impl FnMut(String, String)) {
    for (i, limit) in limits.iter().enumerate() {
        check_limit(*limit, &format!("{key}[{i}]"), bad);
    }
}

fn check_circuits(circuits: &[CircuitConfig], bad: &mut impl FnMut(String, String)) {
    let mut index = BTreeMap::new();
    for (i, circuit) in circuits.iter().enumerate() {
        if circuit.id.is_empty() {
            bad(format!("site.circuits[{i}].id"), "must not be empty".into());
        } else if index.insert(circuit.id.as_str(), i).is_some() {
            bad(
                format!("site.circuits[{i}].id"),
                format!("duplicate circuit {:?}", circuit.id),
            );
        }
        check_limits(
            &circuit.max_current,
            &format!("site.circuits[{i}].max_current"),
            bad,
        );
    }
    for (i, circuit) in circuits.iter().enumerate() {
        let Some(parent) = &circuit.parent else {
            continue;
        };
        if !index.contains_key(parent.as_str()) {
            bad(
                format!("site.circuits[{i}].parent"),
                format!("no circuit {parent:?}"),
            );
            continue;
        }
        // Walk up; more steps than circuits means we are going round in a cycle.
        let mut at = Some(parent.as_str());
        let mut steps = 0;
        while let Some(id) = at {
            if id == circuit.id || steps > circuits.len() {
                bad(
                    format!("site.circuits[{i}].parent"),
                    format!("circuit {:?} is its own ancestor (cycle)", circuit.id),
                );
                break;
            }
            steps += 1;
            at = index
                .get(id)
                .and_then(|&j| circuits.get(j))
                .and_then(|c| c.parent.as_deref());
        }
    }
}

fn check_solar(
    source: &SolarSourceConfig,
    key: &str,
    circuits: &BTreeSet<&str>,
    bad: &mut impl FnMut(String, String),
) {
    if let Some(url) = &source.url {
        let schemes: &[&str] = match source.kind {
            SolarKind::SmaModbus | SolarKind::Sunspec => &["modbus", "tcp"],
            SolarKind::SmaSpeedwire => &["udp"],
            SolarKind::Mqtt => &["mqtt", "mqtts"],
            _ => &["http", "https"],
        };
        check_url(url, &format!("{key}.url"), schemes, bad);
    }
    super::solar::check_source(source, key, circuits, bad);
}

fn check_ocpp(ocpp: &OcppConfig, bad: &mut impl FnMut(String, String)) {
    if ocpp.security_profile > 3 {
        bad(
            "ocpp.security_profile".into(),
            format!(
                "{} is not an OCPP security profile (0-3)",
                ocpp.security_profile
            ),
        );
    }
    if !ocpp.enabled {
        return;
    }
    match &ocpp.url {
        None => bad(
            "ocpp.url".into(),
            "is required when ocpp.enabled = true".into(),
        ),
        Some(url) => {
            let schemes: &[&str] = if ocpp.security_profile >= 2 {
                &["wss"]
            } else {
                &["ws", "wss"]
            };
            check_url(url, "ocpp.url", schemes, bad);
        }
    }
    if matches!(ocpp.security_profile, 1 | 2) && ocpp.password.is_none() {
        bad(
            "ocpp.password".into(),
            format!(
                "is required for security_profile = {}",
                ocpp.security_profile
            ),
        );
    }
    if ocpp.layout == OcppLayout::PerBay && !ocpp.identity.contains("{dev}") {
        bad(
            "ocpp.identity".into(),
            "must contain \"{dev}\" with layout = \"per-bay\" (one identity per bay)".into(),
        );
    }
    check_ocpp_strings(ocpp, bad);
    if ocpp.security_profile == 3 && (ocpp.client_cert.is_none() || ocpp.client_key.is_none()) {
        bad(
            "ocpp.client_cert".into(),
            "client_cert and client_key are required for security_profile = 3".into(),
        );
    }
    if ocpp.meter_value_sample_interval > Duration::from_secs(86_400) {
        bad(
            "ocpp.meter_value_sample_interval".into(),
            "must be at most 1 day".into(),
        );
    }
    if ocpp.reconnect_max < Duration::from_secs(1) {
        bad("ocpp.reconnect_max".into(), "must be at least 1s".into());
    }
}

/// The strings OCPP bounds (CiString20 in BootNotification and idTag), and an identity that
/// can be a URL path segment (the `{dev}` MAC in topic form, `{site}` the site's name).
fn check_ocpp_strings(ocpp: &OcppConfig, bad: &mut impl FnMut(String, String)) {
    for (key, value) in [
        ("ocpp.vendor", &ocpp.vendor),
        ("ocpp.model", &ocpp.model),
        ("ocpp.id_tag", &ocpp.id_tag),
    ] {
        if value.is_empty() || value.chars().count() > 20 {
            bad(key.into(), format!("{value:?} must be 1-20 characters"));
        }
    }
    let literal = ocpp.identity.replace("{dev}", "").replace("{site}", "");
    let url_safe = |c: char| c.is_ascii_alphanumeric() || "-_.~:{}".contains(c);
    if ocpp.identity.len() > 48 || !literal.chars().all(url_safe) {
        bad(
            "ocpp.identity".into(),
            format!(
                "{:?} must be at most 48 characters of A-Z a-z 0-9 - _ . ~ : besides {{dev}} and {{site}}",
                ocpp.identity
            ),
        );
    }
}

/// `site.timezone` and `site.default_circuit`, which name things outside the file.
fn check_site_extras(site: &SiteConfig, bad: &mut impl FnMut(String, String)) {
    if let Some(name) = &site.timezone {
        if let Err(e) = jiff::tz::TimeZone::get(name) {
            bad(
                "site.timezone".into(),
                format!("{name:?} is not an IANA time zone (e.g. \"Europe/Berlin\"): {e}"),
            );
        }
    }
    if let Some(circuit) = &site.default_circuit {
        if !site.circuits.iter().any(|c| &c.id == circuit) {
            bad(
                "site.default_circuit".into(),
                format!("no circuit {circuit:?} in site.circuits"),
            );
        }
    }
}

fn check_http(http: &HttpConfig, bad: &mut impl FnMut(String, String)) {
    if http.protect_reads && http.token.is_none() {
        bad(
            "http.protect_reads".into(),
            "needs http.token: the token is what a reader logs in with".into(),
        );
    }
    if http.max_connections == 0 {
        bad("http.max_connections".into(), "must be at least 1".into());
    }
    for (key, timeout) in [
        ("http.request_timeout", http.request_timeout),
        ("http.header_timeout", http.header_timeout),
    ] {
        if timeout.is_zero() {
            bad(key.into(), "must be more than 0s".into());
        }
    }
    for (i, host) in http.allowed_hosts.iter().enumerate() {
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            bad(
                format!("http.allowed_hosts[{i}]"),
                format!("{host:?} is not a host name (host or host:port)"),
            );
        }
    }
}
