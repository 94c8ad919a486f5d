//! A bay's state in OCPP 1.6's words (SPEC section 7): the one vocabulary Home Assistant,
//! the HTTP API, the dashboard, metrics and the OCPP adapter all show.

use ctrl22_node::{Ccss, CcssGroup};
use serde::Serialize;

/// What a bay is doing, as a charge point's connector status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BayStatus {
    /// No car.
    Available,
    /// A car is plugged in, not charging yet (OFF with cable, A, B).
    Preparing,
    /// Contactors closed and the car draws current.
    Charging,
    /// Contactors closed, the car draws nothing.
    SuspendedEv,
    /// The bay holds the car back (paused, waiting for phases).
    SuspendedEvse,
    /// A session ended, the car is still plugged (OFF9).
    Finishing,
    /// The controller reports an error.
    Faulted,
    /// Offline, disabled or never heard.
    #[default]
    Unavailable,
}

impl BayStatus {
    /// Every status, in the order Home Assistant lists them.
    pub const ALL: [Self; 8] = [
        Self::Available,
        Self::Preparing,
        Self::Charging,
        Self::SuspendedEv,
        Self::SuspendedEvse,
        Self::Finishing,
        Self::Faulted,
        Self::Unavailable,
    ];

    /// The word on the wire (`suspended_evse`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Preparing => "preparing",
            Self::Charging => "charging",
            Self::SuspendedEv => "suspended_ev",
            Self::SuspendedEvse => "suspended_evse",
            Self::Finishing => "finishing",
            Self::Faulted => "faulted",
            Self::Unavailable => "unavailable",
        }
    }

    /// The status of a bay in `state` (`None`: never heard). `online` and `enabled` make
    /// a bay unavailable when false; `plugged` and `drawing` tell the OFF and C states apart.
    #[must_use]
    pub fn of(
        state: Option<Ccss>,
        online: bool,
        enabled: bool,
        plugged: bool,
        drawing: bool,
    ) -> Self {
        let Some(state) = state else {
            return Self::Unavailable;
        };
        if !online || !enabled {
            return Self::Unavailable;
        }
        match state.group() {
            CcssGroup::Off if state == Ccss::Off9 => Self::Finishing,
            CcssGroup::Off if plugged => Self::Preparing,
            CcssGroup::Off => Self::Available,
            CcssGroup::A | CcssGroup::B => Self::Preparing,
            CcssGroup::C if drawing => Self::Charging,
            CcssGroup::C => Self::SuspendedEv,
            CcssGroup::P | CcssGroup::W => Self::SuspendedEvse,
            CcssGroup::Err => Self::Faulted,
        }
    }
}

impl std::fmt::Display for BayStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
