//! # ctrl22-bridge
//!
//! The site controller for a parking lot of CTRL22 charging bays behind one grid
//! connection: it splits the site's current among the cars, phase by phase and circuit by
//! circuit, delivers setpoints over the nodes' mesh, shows everything in Home Assistant,
//! serves an HTTP API and dashboard, and never trips the fuse.
//!
//! Decisions are sans-IO state machines driven by events and an injected [`clock`]; the
//! async edges only translate bytes to events and back. One task owns the site state.
//!
//! | module | what it is |
//! |---|---|
//! | [`site`] | the core: bays, the control cycle, settings under the ceilings, bay events, snapshots |
//! | [`allocate`] | who gets how much: fair, fcfs, priority, schedule; circuits, phases, rotation |
//! | [`setpoint`] | safe delivery: lower first, confirm, then raise; reservations, fail-safe currents |
//! | [`ota`] | firmware updates as state machines (the AVR flasher) |
//! | [`clock`] | monotonic time for timers, wall time for people |
//! | [`handle`] | what adapters hold: requests to the site task, snapshots, the bay event stream |
//! | [`runtime`] | the wiring: the site task, store thread, command forwarding (no module imports it) |
//! | [`mesh`] | the mesh links (MQTT topics of the root, its TCP uplink) and the `mesh` CLI |
//! | [`ha`] | Home Assistant discovery, state and commands |
//! | [`ocpp`] | OCPP 1.6-J: each bay (or the site) a charge point of a backend |
//! | [`http`] | HTTP API, dashboard, metrics |
//! | [`store`] | SQLite: settings, sessions, energy, reservations, bay events, OCPP queue |
//! | [`solar`] | power sources: inverter and meter APIs, external limits, the demo's simulated PV |
//! | [`config`] | the TOML configuration: sections, loading, validation, redaction |
//! | [`broker`], [`broker_client`] | the embedded MQTT broker; how the bridge reaches a broker |
//! | `runtime::demo` | feature `demo`: everything in one process with simulated bays |
//!
//! It must never: send a node a setpoint the sequencer did not release, let any runtime
//! input lift a limit above the configuration, panic on outside input, or log a secret.

pub mod allocate;
pub mod bay;
pub mod broker;
pub mod broker_client;
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod ha;
pub mod handle;
pub mod healthcheck;
pub mod http;
pub mod mesh;
pub mod ocpp;
pub mod ota;
pub mod runtime;
pub mod setpoint;
pub mod site;
pub mod solar;
pub mod store;
