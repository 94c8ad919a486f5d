//! Load generator and load harness for the bridge (issue 14, items 1, 2 and 5).
//!
//! [`generator`] sends N bays' heartbeats at a paced rate through Mosquitto, fast enough to
//! saturate one broker, and answers the bridge's setpoint writes; [`harness`] starts
//! Mosquitto and the release bridge around it and measures (see BENCHMARKS.md).

pub mod fleet;
pub mod generator;
pub mod harness;
pub mod observe;
pub mod report;
pub mod sink;
pub mod wire;
