//! Solar: where PV, grid and battery power come from. Each source kind gets a file; the
//! site core only sees [`crate::site::PowerReading`]s and uses them to size what `pv` and
//! `minpv` bays may draw. A source that stops answering is reported as lost, which can only
//! lower what solar bays get.
//!
//! Today: the simulated PV day of `demo`. Inverter and meter APIs come with the solar issue.

pub mod simulated;
