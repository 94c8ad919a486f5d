//! The bridge's end-to-end tests, one binary (one link of the whole bridge instead of a
//! dozen): the bridge binary, a real Mosquitto, the simulator, SQLite, Home Assistant and
//! headless Chromium, each module one area.

use std::path::Path;

mod bad_input;
mod cli;
mod config;
mod dashboard_browser;
mod dashboard_fleet;
mod event_driven;
mod faults;
mod ha;
mod ha_common;
mod ha_live;
mod healthcheck;
mod http;
mod mesh;
mod mesh_link;
mod mesh_tree;
mod mqtt_site;
mod ocpp_authorization;
mod ocpp_config;
mod ocpp_durability;
mod ocpp_firmware;
mod ocpp_peer;
mod ocpp_reset;
mod ocpp_security;
mod ocpp_session;
mod ocpp_single;
mod ota;
mod ota_esp32;
mod ota_parameters;
mod parameters_disabled;
mod solar_bridge;
mod solar_common;
mod solar_house_load;
mod solar_http;
mod solar_modbus;
mod solar_mqtt;
mod store;
mod tcp;
mod tcp_framing;
mod unplug;

/// The bridge binary the tests run.
fn bridge_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ctrl22-bridge"))
}
