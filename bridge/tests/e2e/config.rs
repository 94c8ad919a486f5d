//! Loading the configuration: defaults, the example file, environment overrides, and errors
//! that name the key at fault.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ctrl22_bridge::bay::{BayId, Deciamps, Phase};
use ctrl22_bridge::config::{
    redact, ChargeMode, Config, ConfigError, MeshTransport, SolarKind, Strategy, REDACTED,
};

fn example_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ctrl22.toml"))
}

fn error_of(toml: &str) -> String {
    match Config::from_toml(toml) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_match_the_spec() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.mesh.transport, MeshTransport::Mqtt);
    assert_eq!(c.mesh.mesh_id, "DEMESH");
    assert_eq!(c.mesh.tcp_listen.to_string(), "0.0.0.0:8070");
    assert_eq!(c.mesh.heartbeat_timeout, Duration::from_secs(30));
    assert_eq!(c.mesh.wdtsec, 60);
    assert_eq!(c.mesh.setpoint_refresh, Duration::from_secs(20));
    assert_eq!(c.site.name, "site");
    assert_eq!(c.site.voltage, 230);
    assert_eq!(c.site.max_current, [Deciamps(320); 3]);
    assert_eq!(c.site.strategy, Strategy::Fair);
    assert_eq!(c.site.default_mode, ChargeMode::Now);
    assert_eq!(c.site.rotation_period, Duration::from_secs(900));
    assert_eq!(c.site.min_on, Duration::from_secs(120));
    assert!(c.homeassistant.enabled);
    assert_eq!(c.homeassistant.discovery_prefix, "homeassistant");
    assert!(!c.ocpp.enabled);
    assert_eq!(c.ocpp.identity, "{dev}");
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.storage.path, Path::new("ctrl22.db"));
    assert!(c.mesh.tcp_allow.is_empty(), "any address by default");
    assert_eq!(c.site.timezone, None);
    assert_eq!(c.site.default_circuit, None);
    assert!(!c.http.protect_reads);
    assert_eq!(c.http.max_connections, 256);
    assert_eq!(c.http.request_timeout, Duration::from_secs(30));
    assert_eq!(c.http.header_timeout, Duration::from_secs(10));
    assert_eq!(c.http.max_sse_clients, 32);
    assert!(c.http.allowed_hosts.is_empty());
}

#[test]
fn the_example_file_parses() {
    let c = Config::from_toml(&std::fs::read_to_string(example_path()).unwrap()).unwrap();
    assert_eq!(c.site.name, "garage-west");
    assert_eq!(c.site.circuits.len(), 2);
    let bay2 = c
        .node(&BayId("d8a01d55a56c".into()))
        .expect("colon key normalised");
    assert_eq!(bay2.max_current, Some(Deciamps(125)));
    assert_eq!(bay2.phase_rotation.site_phase(Phase::L1), Phase::L2);
    assert_eq!(c.nodes["d8a01d55a710"].mode, Some(ChargeMode::Pv));
    assert_eq!(c.solar.sources[0].kind, SolarKind::Fronius);
    assert_eq!(c.solar.sources[0].interval, Duration::from_secs(5));
    assert_eq!(c.ocpp.security_profile, 2);
    assert_eq!(c.mesh.tcp_allow, vec![Ipv4Addr::new(192, 168, 1, 40)]);
    assert_eq!(c.site.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(c.site.time_zone().iana_name(), Some("Europe/Berlin"));
    assert_eq!(c.site.default_circuit.as_deref(), Some("garage"));
    assert_eq!(c.http.max_sse_clients, 32);
}

/// `check-config` of the example with `env` set, in its own process: the environment is
/// the process's, and the other tests of this binary run beside this one.
fn check_config_with(env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctrl22-bridge"))
        .args(["check-config", "--config"])
        .arg(example_path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn environment_overrides_the_file() {
    let (ok, toml, err) = check_config_with(&[
        ("CTRL22_SITE__MAX_CURRENT", "[20, 20, 16.5]"),
        ("CTRL22_MESH__TRANSPORT", "tcp"),
    ]);
    assert!(ok, "{err}");
    let c = Config::from_toml(&toml).unwrap();
    assert_eq!(
        c.site.max_current,
        [Deciamps(200), Deciamps(200), Deciamps(165)]
    );
    assert_eq!(c.mesh.transport, MeshTransport::Tcp);
    assert_eq!(
        c.site.name, "garage-west",
        "the rest of the file still applies"
    );
}

#[test]
fn secrets_from_the_environment_are_text_whatever_they_look_like() {
    // figment would read these as a number and a boolean, and a string key refuses both.
    let (ok, toml, err) = check_config_with(&[
        ("CTRL22_MQTT__PASSWORD", "0123"),
        ("CTRL22_HTTP__TOKEN", "true"),
    ]);
    assert!(ok, "{err}");
    assert!(!toml.contains("0123"), "redacted: {toml}");
}

#[test]
fn a_missing_file_is_an_error_not_defaults() {
    let e = Config::load(Some(Path::new("/nonexistent/ctrl22.toml"))).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/ctrl22.toml"));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let e = error_of("[site]\nmax_curent = [16, 16, 16]\n");
    assert!(e.contains("max_curent"), "{e}");
    assert!(e.contains("site"), "{e}");
    let e = error_of("[sight]\nname = \"x\"\n");
    assert!(e.contains("sight"), "{e}");
}

#[test]
fn type_errors_name_the_key() {
    let e = error_of("[mesh]\nheartbeat_timeout = \"soon\"\n");
    assert!(e.contains("mesh.heartbeat_timeout"), "{e}");
    let e = error_of("[site]\nstrategy = \"random\"\n");
    assert!(e.contains("site.strategy"), "{e}");
}

#[test]
fn bad_rotation_is_rejected() {
    let e = error_of("[nodes.d8a01d55a710]\nphase_rotation = \"112\"\n");
    assert!(e.contains("phase_rotation"), "{e}");
    assert!(e.contains("permutation"), "{e}");
}

#[test]
fn bad_mac_is_rejected() {
    let e = error_of("[nodes.bay1]\nname = \"x\"\n");
    assert!(e.contains("nodes.bay1"), "{e}");
    assert!(e.contains("MAC"), "{e}");
}

#[test]
fn duplicate_node_in_both_forms_is_rejected() {
    let e = error_of(
        "[nodes.d8a01d55a710]\nname = \"a\"\n[nodes.\"d8:a0:1d:55:a7:10\"]\nname = \"b\"\n",
    );
    assert!(e.contains("same node"), "{e}");
}

#[test]
fn limits_below_six_amps_are_rejected() {
    let e = error_of("[site]\nmax_current = [32, 4, 32]\n");
    assert!(e.contains("site.max_current[1]"), "{e}");
    let e = error_of("[nodes.d8a01d55a710]\nmax_current = 5.9\n");
    assert!(e.contains("nodes.d8a01d55a710.max_current"), "{e}");
    assert!(Config::from_toml("[nodes.d8a01d55a710]\nmax_current = 0\n").is_ok());
}

#[test]
fn circuit_parent_must_exist() {
    let e = error_of(
        "[[site.circuits]]\nid = \"a\"\nmax_current = [16,16,16]\n\
         [[site.circuits]]\nid = \"b\"\nparent = \"garage\"\nmax_current = [16,16,16]\n",
    );
    assert!(
        e.contains("site.circuits[1].parent: no circuit \"garage\""),
        "{e}"
    );
}

#[test]
fn circuit_cycles_are_rejected() {
    let e = error_of(
        "[[site.circuits]]\nid = \"a\"\nparent = \"c\"\nmax_current = [16,16,16]\n\
         [[site.circuits]]\nid = \"b\"\nparent = \"a\"\nmax_current = [16,16,16]\n\
         [[site.circuits]]\nid = \"c\"\nparent = \"b\"\nmax_current = [16,16,16]\n",
    );
    assert!(e.contains("site.circuits[0].parent"), "{e}");
    assert!(e.contains("cycle"), "{e}");
    let e = error_of("[[site.circuits]]\nid = \"a\"\nparent = \"a\"\nmax_current = [16,16,16]\n");
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn node_circuit_must_exist() {
    let e = error_of("[nodes.d8a01d55a710]\ncircuit = \"nowhere\"\n");
    assert!(e.contains("nodes.d8a01d55a710.circuit"), "{e}");
}

#[test]
fn url_schemes_are_checked() {
    let e = error_of("[mqtt]\nurl = \"http://broker\"\n");
    assert!(e.contains("mqtt.url"), "{e}");
    let e = error_of(
        "[ocpp]\nenabled = true\nurl = \"ws://csms\"\nsecurity_profile = 2\npassword = \"p\"\n",
    );
    assert!(e.contains("ocpp.url"), "{e}");
    let e = error_of("[[solar.sources]]\nkind = \"fronius\"\n");
    assert!(e.contains("solar.sources[0].url"), "{e}");
    let e = error_of("[ocpp]\nsecurity_profile = 7\n");
    assert!(e.contains("ocpp.security_profile"), "{e}");
}

#[test]
fn redacted_hides_every_secret_and_round_trips() {
    let mut c = Config::from_toml(&std::fs::read_to_string(example_path()).unwrap()).unwrap();
    c.mqtt.url = "mqtts://user:pw@broker.example.net:8883".into();
    let text = c.redacted().to_toml().unwrap();
    for secret in [
        "mqtt-secret",
        "ha-long-lived-token",
        "ocpp-secret",
        "http-secret",
        ":pw@",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains(REDACTED));
    // What check-config prints is itself a valid configuration.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(c.to_toml().unwrap().as_bytes()).unwrap();
    let again = Config::from_toml(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn wdtsec_is_checked_against_the_nodes_range() {
    for bad in [0, 3601, 65535] {
        let e = error_of(&format!("[mesh]\nwdtsec = {bad}\n"));
        assert!(e.contains("mesh.wdtsec"), "{e}");
        assert!(e.contains("1..=3600"), "{e}");
    }
    let c = Config::from_toml("[mesh]\nwdtsec = 3600\n").unwrap();
    assert_eq!(c.mesh.wdtsec, 3600);
}

#[test]
fn tcp_allow_takes_ip_addresses() {
    let c = Config::from_toml("[mesh]\ntcp_allow = [\"10.0.0.2\", \"::1\"]\n").unwrap();
    assert_eq!(c.mesh.tcp_allow.len(), 2);
    let e = error_of("[mesh]\ntcp_allow = [\"root.local\"]\n");
    assert!(e.contains("mesh.tcp_allow"), "{e}");
}

#[test]
fn timezone_is_an_iana_name_from_the_bundled_database() {
    // Bundled into the binary: no /usr/share/zoneinfo needed (distroless containers).
    let c = Config::from_toml("[site]\ntimezone = \"America/New_York\"\n").unwrap();
    let zone = c.site.time_zone();
    assert_eq!(zone.iana_name(), Some("America/New_York"));
    let e = error_of("[site]\ntimezone = \"Mars/Olympus_Mons\"\n");
    assert!(e.contains("site.timezone"), "{e}");
    assert!(e.contains("Mars/Olympus_Mons"), "{e}");
    // Without one: the system's zone, or UTC; never a panic.
    let _ = Config::from_toml("").unwrap().site.time_zone();
}

#[test]
fn default_circuit_must_exist() {
    let e = error_of("[site]\ndefault_circuit = \"nowhere\"\n");
    assert!(e.contains("site.default_circuit"), "{e}");
    let c = Config::from_toml(
        "[site]\ndefault_circuit = \"a\"\n[[site.circuits]]\nid = \"a\"\nmax_current = [16,16,16]\n",
    )
    .unwrap();
    assert_eq!(c.site.default_circuit.as_deref(), Some("a"));
}

#[test]
fn http_bounds_are_checked() {
    let e = error_of("[http]\nmax_connections = 0\n");
    assert!(e.contains("http.max_connections"), "{e}");
    let e = error_of("[http]\nheader_timeout = \"0s\"\n");
    assert!(e.contains("http.header_timeout"), "{e}");
    let e = error_of("[http]\nrequest_timeout = \"soon\"\n");
    assert!(e.contains("http.request_timeout"), "{e}");
    let e = error_of("[http]\nprotect_reads = true\n");
    assert!(
        e.contains("http.protect_reads") && e.contains("http.token"),
        "{e}"
    );
    let c = Config::from_toml(
        "[http]\ntoken = \"t\"\nprotect_reads = true\nmax_sse_clients = 4\nallowed_hosts = [\"ctrl22.lan:8080\"]\n",
    )
    .unwrap();
    assert!(c.http.protect_reads);
    assert_eq!(c.http.max_sse_clients, 4);
    assert_eq!(c.http.allowed_hosts, vec!["ctrl22.lan:8080".to_owned()]);
}

#[test]
fn errors_never_show_url_credentials() {
    let cases = [
        "[mqtt]\nurl = \"http://user:hunter2@broker\"\n",
        "[ocpp]\nenabled = true\nurl = \"http://cp:hunter2@csms\"\n",
        "[[solar.sources]]\nkind = \"fronius\"\nurl = \"ftp://admin:hunter2@inverter\"\n",
    ];
    for toml in cases {
        let e = error_of(toml);
        assert!(!e.contains("hunter2"), "secret in {e}");
        assert!(e.contains(REDACTED), "{e}");
    }
    // A type error of a URL-shaped value (figment may quote values).
    let e = error_of("[mqtt]\nembedded = \"mqtt://u:hunter2@0.0.0.0:1883\"\n");
    assert!(!e.contains("hunter2"), "secret in {e}");
}

#[test]
fn redact_url_hides_only_the_userinfo() {
    assert_eq!(
        redact::url("mqtts://u:p@broker:8883/x"),
        "mqtts://<redacted>@broker:8883/x"
    );
    assert_eq!(redact::url("mqtt://broker:1883"), "mqtt://broker:1883");
}

#[test]
fn an_embedded_broker_login_needs_both_keys() {
    let e = error_of("[mqtt]\nembedded = \"127.0.0.1:1883\"\nusername = \"ctrl22\"\n");
    assert!(e.contains("mqtt.password"), "{e}");
    assert!(Config::from_toml(
        "[mqtt]\nembedded = \"127.0.0.1:1883\"\nusername = \"u\"\npassword = \"p\"\n"
    )
    .is_ok());
}
