//! What the charge controller reads from its hardware each step ([`Inputs`]) and what it
//! drives ([`Outputs`]). Both are plain data so that a simulator can build a vehicle model on
//! top of them and a test can script them.

use core::fmt;

use crate::ccss::Ccss;
use crate::pilot::{self, CableRating, DutyPermille, VehicleState, PP_OPEN_OHMS};
use crate::units::{Deciamps, PhaseSet};

/// One sample of the controller's sensors.
///
/// `Default` is an empty bay: CP at +12 V (no vehicle), PP open (no cable), lock open, no
/// current, no button press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The operator button went down since the previous step (an edge, not a level).
    pub button_pressed: bool,
    /// The positive level of the control pilot, in millivolts.
    pub cp_mv: i32,
    /// The proximity pilot resistance in ohms; [`PP_OPEN_OHMS`] when open.
    pub pp_ohms: u32,
    /// Lock feedback: the socket's cable lock reports itself closed.
    pub lock_closed: bool,
    /// Measured RMS current per phase (index [`crate::Phase::index`]).
    pub currents: [Deciamps; 3],
    /// Board temperature in °C (diagnostics only).
    pub temp_c: i16,
    /// Supply voltage of the controller in millivolts (diagnostics only).
    pub vcc_mv: i16,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            button_pressed: false,
            cp_mv: VehicleState::A.nominal_cp_mv(),
            pp_ohms: PP_OPEN_OHMS,
            lock_closed: false,
            currents: [Deciamps::ZERO; 3],
            temp_c: 25,
            vcc_mv: 5_000,
        }
    }
}

impl Inputs {
    /// These inputs with CP at the nominal level of `state`: how a simulated vehicle drives
    /// the pilot.
    #[must_use]
    pub const fn with_vehicle(mut self, state: VehicleState) -> Self {
        self.cp_mv = state.nominal_cp_mv();
        self
    }

    /// These inputs with PP showing `cable` (`None` = unplugged).
    #[must_use]
    pub const fn with_cable(mut self, cable: Option<CableRating>) -> Self {
        self.pp_ohms = match cable {
            Some(rating) => rating.nominal_ohms(),
            None => PP_OPEN_OHMS,
        };
        self
    }
}

/// What the controller commands the lock to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LockCommand {
    #[default]
    Open,
    Closed,
}

/// The status LED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LedPattern {
    /// OFF0..OFF3: idle.
    #[default]
    Idle,
    /// OFF9: stopped; press the button to acknowledge.
    Stopped,
    /// A: waiting for a vehicle to be plugged in.
    WaitingForVehicle,
    /// B: vehicle connected, not charging yet.
    Connected,
    /// C: charging.
    Charging,
    /// P, W: session paused.
    Paused,
    /// ERR0.
    Error,
    /// Overridden through the `blinks` register: blink this many times per period.
    Blinks(u8),
}

/// The `error` register: bit flags that explain ERR0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ErrorFlags(u8);

impl ErrorFlags {
    pub const NONE: Self = Self(0);
    /// The lock did not reach the commanded position in time.
    pub const LOCK_JAMMED: Self = Self(1);
    /// The vehicle broke the pilot protocol (CP at D, E, F or unreadable during a session).
    pub const PROTOCOL: Self = Self(2);
    /// The stored configuration could not be read at boot; defaults are in use.
    pub const CONFIG_READ: Self = Self(4);

    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for ErrorFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the controller drives after a step.
///
/// `Default` is a controller at rest: OFF3, nothing offered, contactors open, lock open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outputs {
    pub ccss: Ccss,
    pub error: ErrorFlags,
    /// The current signalled to the vehicle by the CP PWM (`amaxcur`); zero = no PWM (CP held
    /// at a steady +12 V level).
    pub offered: Deciamps,
    /// Phases whose contactors are closed (`aphases`). Empty outside C1..C3 and whenever less
    /// than 6 A is offered.
    pub contactors: PhaseSet,
    pub lock: LockCommand,
    pub led: LedPattern,
    /// Set for one step after a `save` write: persist [`super::ChargeController::config`].
    pub save_config: bool,
    /// Set for one step after a `reset` write: rebuild the controller from the stored config.
    pub soft_reset: bool,
}

impl Default for Outputs {
    fn default() -> Self {
        Self {
            ccss: Ccss::Off3,
            error: ErrorFlags::NONE,
            offered: Deciamps::ZERO,
            contactors: PhaseSet::NONE,
            lock: LockCommand::Open,
            led: LedPattern::Idle,
            save_config: false,
            soft_reset: false,
        }
    }
}

impl Outputs {
    /// The PWM duty for [`Self::offered`]; `None` when no PWM is generated (nothing offered, or
    /// a raw test current that the pilot cannot signal).
    #[must_use]
    pub fn pwm_duty(&self) -> Option<DutyPermille> {
        pilot::duty_for_current(self.offered).ok()
    }
}
