//! Smart charging: the installed charging profiles and what they allow.
//!
//! The output is a cap ([`ChargingLimit`]) per connector and for the whole charge point, in
//! the units the profiles used (A per phase and/or W total): converting W to A needs the
//! bay's phases and the site's voltage, which only the caller knows. A cap only ever lowers
//! what the local allocation gives.

mod composite;
mod profiles;
mod schedule;

pub use composite::{
    composite_schedule, limit_at, ChargingLimit, LimitAt, ScheduleQuery, TxContext,
};
pub use profiles::{ClearFilter, InstallError, InstalledProfile, Profiles};
pub use schedule::{evaluate, Evaluation};
