//! Property and scenario tests of the decisions, one binary, no broker and no sleep: the
//! allocator, the setpoint sequencer against an independent node model, the site core and the
//! simulated bays on one simulated clock (the pair harness), and the vocabulary Home
//! Assistant is given.

mod allocate_props;
mod fuzz_corpus;
mod ha_vocabulary;
mod house_load_days;
mod metered;
mod pair;
mod pair_props;
mod phase_days;
mod setpoint_props;
mod solar_days;
