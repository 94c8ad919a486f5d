//! The site: the one owner of all bay and site state.

pub mod energy;
