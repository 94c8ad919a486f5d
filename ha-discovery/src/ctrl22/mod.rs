//! What the CTRL22 bridge shows Home Assistant: one device per bay, one for the site, their
//! entities, topics, and the JSON fields of the state payloads they read.
//!
//! # Topics
//! | topic | retained | payload |
//! |---|---|---|
//! | `ctrl22/<site>/status` | yes (and last will) | `online` / `offline` |
//! | `ctrl22/<site>/node/<dev>/availability` | yes | `online` / `offline` (node reachable in the mesh) |
//! | `ctrl22/<site>/node/<dev>/state` | yes | JSON, fields [`BayField`] |
//! | `ctrl22/<site>/node/<dev>/set/<field>` | no | commands [`BayCommand`] |
//! | `ctrl22/<site>/site/state` | yes | JSON, fields [`SiteField`] |
//! | `ctrl22/<site>/site/set/<field>` | no | commands [`SiteCommand`] |
//!
//! # Bay state (`ctrl22/<site>/node/<dev>/state`): the contract
//! The bridge publishes exactly these fields, every time, in one JSON object. Numbers may be
//! `null` when unknown (Home Assistant then shows "unknown"); booleans are always `true` or
//! `false`; strings are never `null`.
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `state` | string, one of [`BAY_STATES`] | what the bay is doing (OCPP-like) |
//! | `current_l1_a`, `current_l2_a`, `current_l3_a` | number, A | measured current per bay phase |
//! | `power_w` | number, W | charging power |
//! | `session_energy_kwh` | number, kWh | energy of the running (or last) session; restarts at 0 |
//! | `total_energy_kwh` | number, kWh | lifetime energy of the bay; never decreases |
//! | `allocated_current_a` | number, A | what the bridge allows now (0 = paused) |
//! | `cable_capacity_a` | number, A | capacity of the plugged cable (0 = none) |
//! | `plugged` | bool | a vehicle is connected |
//! | `charging` | bool | current flows (state C) |
//! | `problem` | bool | the controller reports an error |
//! | `online` | bool | the node answers in the mesh |
//! | `mode` | string, one of [`CHARGE_MODES`] | charge mode |
//! | `max_current_a` | number, A | the bay's own maximum, set by the user |
//! | `enabled` | bool | charging allowed at all |
//! | `departure_time` | string, `HH:MM` or `""` | when the car must be charged (`schedule`) |
//! | `target_energy_kwh` | number, kWh | energy wanted by departure (`schedule`); 0 = none |
//! | `rssi_dbm` | number, dBm | signal to the mesh parent |
//! | `mesh_layer` | number | hops from the root (1 = root) |
//! | `mesh_parent` | string | MAC of the mesh parent, colon form |
//! | `fw_version` | string | node firmware (`"3.5"`) |
//! | `fw_latest` | string | newest node firmware the bridge knows for the board; `fw_version` when unknown |
//! | `avr_version` | string | charge controller firmware (`"1.3"`; `""` without AVR) |
//! | `avr_latest` | string | newest controller image in the bridge's firmware folder for the board; `avr_version` when none |
//! | `avr_update_in_progress` | bool | a firmware job flashes the controller now |
//! | `avr_update_percent` | number or `null` | its progress, percent; `null` when none runs |
//! | `avr_release_summary` | string | the image to install, or why the last install failed or was refused |
//! | `ccss` | string | raw charge-controller state name (`"C3"`, `"OFF9"`) |
//!
//! # Site state (`ctrl22/<site>/site/state`): the contract
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `grid_power_w` | number, W | grid exchange, positive = import |
//! | `pv_power_w` | number, W | PV production |
//! | `surplus_w` | number, W | power available for charging from solar |
//! | `ev_power_w` | number, W | sum of all bays |
//! | `current_l1_a`, `current_l2_a`, `current_l3_a` | number, A | site current per phase |
//! | `limit_l1_a`, `limit_l2_a`, `limit_l3_a` | number, A | the site's per-phase limit in force |
//! | `strategy` | string, one of [`STRATEGIES`] | how current is shared |
//! | `solar_ok` | bool | every solar source answers with fresh data |
//! | `ev_energy_kwh` | number, kWh | energy delivered to all bays; never decreases |
//! | `battery_power_w` | number, W, or null | home battery, positive = discharge |
//! | `battery_soc_pct` | number, %, or null | home battery state of charge |
//! | `budget_w` | number, W, or null | what `pv`/`minpv` bays may draw from the sun; null without a fresh grid reading |
//! | `house_load_l1_a`, `house_load_l2_a`, `house_load_l3_a` | number, A, or null | the house's own load per phase, net of PV (grid meter minus the cars); null without a grid meter or while it is stale |
//! | `house_fallback` | bool | the grid meter is stale and `site.house_reserve` is assumed |
//! | `external_limit_w` | number, W, or null | the lowest external power limit on the site (a grid operator's dimming); null when none |
//!
//! # Commands
//! Payloads as Home Assistant sends them: select = the option; number = decimal text
//! (`"16"`, `"7.5"`); switch = `ON` / `OFF`; button = `PRESS`; text = the text; update =
//! [`PAYLOAD_INSTALL`] (`install_avr`: flash the newest controller image of the folder).
//!
//! # Ids
//! Bay device `ctrl22_<dev>`, unique ids `ctrl22_<dev>_<key>`, entity ids
//! `<platform>.<slug of bay name>_<key>`; site device `ctrl22_site_<site>`, unique ids
//! `ctrl22_site_<site>_<key>`, entity ids `<platform>.<slug of site name>_<key>`. Entity ids
//! are only proposals: Home Assistant keeps a user's renames, and appends `_2` when two bays
//! share a name.
//!
//! # Publishing
//! Publish the site device before the bays (a bay's `via_device` must already be known), all
//! retained at QoS 1, again whenever `homeassistant/status` says `online`. A bay's
//! device message is about 10 kB (more with long names): raise the MQTT client's packet size
//! limit (rumqttc defaults to 10 KiB).

mod bay;
mod builder;
mod fields;
mod identity;
mod options;
mod site;
mod topics;

#[cfg(test)]
mod tests;

pub use bay::{bay_device, BayInfo, PAYLOAD_INSTALL};
pub use fields::{BayCommand, BayField, SiteCommand, SiteField};
pub use identity::{bay_device_id, site_device_id, slug};
pub use options::{
    BAY_STATES, CHARGE_MODES, DEPARTURE_TIME_PATTERN, MIN_CHARGE_CURRENT_A, STRATEGIES,
    TARGET_ENERGY_MAX_KWH,
};
pub use site::{site_device, SiteInfo};
pub use topics::{CommandTarget, Topics};
