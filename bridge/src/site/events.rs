//! The ordered stream of what happened to each bay, out of the core.
//!
//! Snapshots show the latest picture; these events say every change in order, so that a
//! session that starts and stops between two snapshots still reaches the store (and through
//! its records, an OCPP backend). The core emits them as [`super::Output::Bay`]; the runtime
//! hands each one to the durable subscribers (the store: every event, in order, with
//! back-pressure) and to the view subscribers (bounded; a slow one is told it lagged and
//! resyncs from a snapshot).

use serde::Serialize;

use super::status::BayStatus;
use crate::bay::{BayId, Setpoint};

/// One thing that happened to a bay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BayEvent {
    pub bay: BayId,
    /// Wall-clock Unix ms when the core saw it.
    pub at_ms: u64,
    pub kind: BayEventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum BayEventKind {
    /// The status in OCPP's words changed.
    StatusChanged { status: BayStatus },
    /// A cable went in.
    Plugged,
    /// The cable came out.
    Unplugged,
    /// A charging session began; `meter_wh` is the bay's lifetime register then.
    SessionStarted { meter_wh: u64 },
    /// The session ended; `energy_wh` was delivered in it, `meter_wh` is the register now.
    /// `uncounted_ms` > 0: the bay was offline that long during the session, so
    /// `energy_wh` misses what flowed then (the session is incomplete).
    SessionStopped {
        started_ms: u64,
        energy_wh: f64,
        meter_wh: u64,
        uncounted_ms: u64,
    },
    /// The node confirmed a new setpoint.
    SetpointConfirmed { current_a: f64, phases: i16 },
    /// A problem appeared (`what` names it: controller error, no watchdog, unplaced...).
    ProblemRaised { what: &'static str },
    /// It went away.
    ProblemCleared { what: &'static str },
    /// A firmware job of the bay was queued, progressed or ended.
    Firmware { job: crate::ota::jobs::JobView },
    /// An ESP32 upgrade of the bay's board was queued, started, reached the bay or ended.
    Esp32Firmware { job: crate::ota::esp32::Esp32BayJob },
}

impl BayEventKind {
    /// A short name for logs and the event table.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::StatusChanged { .. } => "status_changed",
            Self::Plugged => "plugged",
            Self::Unplugged => "unplugged",
            Self::SessionStarted { .. } => "session_started",
            Self::SessionStopped { .. } => "session_stopped",
            Self::SetpointConfirmed { .. } => "setpoint_confirmed",
            Self::ProblemRaised { .. } => "problem_raised",
            Self::ProblemCleared { .. } => "problem_cleared",
            Self::Firmware { .. } => "firmware",
            Self::Esp32Firmware { .. } => "esp32_firmware",
        }
    }
}

/// Setpoint as the event carries it.
#[must_use]
pub fn confirmed(setpoint: Setpoint) -> BayEventKind {
    BayEventKind::SetpointConfirmed {
        current_a: setpoint.current.as_amps(),
        phases: setpoint.phases.to_digits(),
    }
}
