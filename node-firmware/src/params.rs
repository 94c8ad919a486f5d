//! The charge controller's parameter table (reference: mesh-protocol.md section 6): names,
//! access and accepted write ranges, and the [`ParameterStore`] trait through which the line
//! protocol and the simulator read and write them. Values are signed 16-bit; currents are in
//! 0.1 A; phase sets are decimal-digit sets.

use core::fmt;
use core::ops::RangeInclusive;

/// Who may do what with a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    #[must_use]
    pub const fn readable(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    #[must_use]
    pub const fn writable(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// One parameter of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// Firmware version (14 = v1.4).
    Ver,
    /// State code.
    Ccss,
    /// Error bit flags.
    Error,
    /// Cable capacity from PP (0.1 A), -1 = no cable.
    Cmaxcur,
    /// Older name of `cmaxcur`.
    Ppilot,
    /// Current signalled to the EV (0.1 A).
    Amaxcur,
    Cur1,
    Cur2,
    Cur3,
    /// The setpoint: current available from the supply (0.1 A).
    Smaxcur,
    /// Phases the supply allows (decimal-digit set).
    Phases,
    /// 1 mimics a button press.
    Opbutton,
    /// LED override, -1 = automatic.
    Blinks,
    /// Raw PWM current while no session runs (test only, 0.1 A, 0 = off).
    Cpcur,
    /// Test switch: close the lock while no session runs.
    Lock,
    /// Test switch for the contactor solid-state relay: only 0 is accepted, since closing a
    /// contactor outside state C is refused by design.
    Ssr,
    /// Test switch for the signal relay: only 0 is accepted, like `ssr`.
    Sigrel,
    /// Hardware test switch for the current measurement; accepted, no effect in this model.
    Rms,
    /// Hardware test switch for the pilot generator; accepted, no effect in this model.
    Pilots,
    /// 1 saves the configuration to EEPROM.
    Save,
    /// 1 soft-resets the controller.
    Reset,
    /// Board temperature (°C).
    Temp,
    /// Controller supply voltage (mV).
    Vcc,
    /// Clock in seconds, wrapping at 32768; writable to set it.
    Time,
    /// Setpoint watchdog period in seconds, 0 = disabled.
    Wdtsec,
    /// Fail-safe current used when the watchdog expires (0.1 A).
    Fsafecur,
}

impl Param {
    /// Every parameter in dump order.
    pub const ALL: [Self; 26] = [
        Self::Ver,
        Self::Ccss,
        Self::Error,
        Self::Cmaxcur,
        Self::Ppilot,
        Self::Amaxcur,
        Self::Cur1,
        Self::Cur2,
        Self::Cur3,
        Self::Smaxcur,
        Self::Phases,
        Self::Opbutton,
        Self::Blinks,
        Self::Cpcur,
        Self::Lock,
        Self::Ssr,
        Self::Sigrel,
        Self::Rms,
        Self::Pilots,
        Self::Save,
        Self::Reset,
        Self::Temp,
        Self::Vcc,
        Self::Time,
        Self::Wdtsec,
        Self::Fsafecur,
    ];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ver => "ver",
            Self::Ccss => "ccss",
            Self::Error => "error",
            Self::Cmaxcur => "cmaxcur",
            Self::Ppilot => "ppilot",
            Self::Amaxcur => "amaxcur",
            Self::Cur1 => "cur1",
            Self::Cur2 => "cur2",
            Self::Cur3 => "cur3",
            Self::Smaxcur => "smaxcur",
            Self::Phases => "phases",
            Self::Opbutton => "opbutton",
            Self::Blinks => "blinks",
            Self::Cpcur => "cpcur",
            Self::Lock => "lock",
            Self::Ssr => "ssr",
            Self::Sigrel => "sigrel",
            Self::Rms => "rms",
            Self::Pilots => "pilots",
            Self::Save => "save",
            Self::Reset => "reset",
            Self::Temp => "temp",
            Self::Vcc => "vcc",
            Self::Time => "time",
            Self::Wdtsec => "wdtsec",
            Self::Fsafecur => "fsafecur",
        }
    }

    /// Looks a parameter up by its exact (lower-case) name.
    ///
    /// # Errors
    /// [`ParError::UnknownName`] for any other string.
    pub fn from_name(name: &str) -> Result<Self, ParError> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or(ParError::UnknownName)
    }

    #[must_use]
    pub const fn access(self) -> Access {
        match self {
            Self::Ver
            | Self::Ccss
            | Self::Error
            | Self::Cmaxcur
            | Self::Ppilot
            | Self::Amaxcur
            | Self::Cur1
            | Self::Cur2
            | Self::Cur3
            | Self::Temp
            | Self::Vcc => Access::Read,
            Self::Opbutton
            | Self::Lock
            | Self::Ssr
            | Self::Sigrel
            | Self::Rms
            | Self::Pilots
            | Self::Save
            | Self::Reset => Access::Write,
            Self::Smaxcur
            | Self::Phases
            | Self::Blinks
            | Self::Cpcur
            | Self::Time
            | Self::Wdtsec
            | Self::Fsafecur => Access::ReadWrite,
        }
    }

    /// The values a write accepts; `None` for read-only parameters. `phases` additionally
    /// requires digits 1-3.
    #[must_use]
    pub fn write_range(self) -> Option<RangeInclusive<i16>> {
        let range = match self.access() {
            Access::Read => return None,
            Access::Write | Access::ReadWrite => match self {
                Self::Smaxcur | Self::Cpcur | Self::Fsafecur => 0..=800,
                Self::Phases => 0..=321,
                Self::Blinks => -1..=20,
                Self::Ssr | Self::Sigrel => 0..=0,
                Self::Time => 0..=i16::MAX,
                Self::Wdtsec => 0..=3_600,
                _ => 0..=1,
            },
        };
        Some(range)
    }

    /// Checks access and range for a write of `value`.
    ///
    /// # Errors
    /// [`ParError::ReadOnly`] or [`ParError::OutOfRange`].
    pub fn check_write(self, value: i16) -> Result<(), ParError> {
        let range = self.write_range().ok_or(ParError::ReadOnly(self))?;
        if range.contains(&value) {
            Ok(())
        } else {
            Err(ParError::OutOfRange { param: self, value })
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a parameter read or write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParError {
    /// No parameter has this name.
    UnknownName,
    ReadOnly(Param),
    WriteOnly(Param),
    OutOfRange {
        param: Param,
        value: i16,
    },
    /// A test switch written while a session runs.
    InSession(Param),
}

impl fmt::Display for ParError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownName => f.write_str("unknown parameter"),
            Self::ReadOnly(p) => write!(f, "{p} is read-only"),
            Self::WriteOnly(p) => write!(f, "{p} is write-only"),
            Self::OutOfRange { param, value } => write!(f, "{value} is out of range for {param}"),
            Self::InSession(p) => write!(f, "{p} is a test switch and a session is running"),
        }
    }
}

/// Something that holds the parameter registers: the charge controller, or a stand-in.
pub trait ParameterStore {
    /// Reads a parameter.
    ///
    /// # Errors
    /// [`ParError::WriteOnly`] for parameters that cannot be read.
    fn get(&self, param: Param) -> Result<i16, ParError>;

    /// Writes a parameter at time `now_ms`.
    ///
    /// # Errors
    /// [`ParError::ReadOnly`], [`ParError::OutOfRange`], [`ParError::InSession`].
    fn set(&mut self, now_ms: u64, param: Param, value: i16) -> Result<(), ParError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for param in Param::ALL {
            assert_eq!(Param::from_name(param.name()), Ok(param));
        }
        assert_eq!(Param::from_name("SMAXCUR"), Err(ParError::UnknownName));
        assert_eq!(Param::from_name(""), Err(ParError::UnknownName));
    }

    #[test]
    fn only_writable_parameters_have_a_range() {
        for param in Param::ALL {
            assert_eq!(
                param.write_range().is_some(),
                param.access().writable(),
                "{param}"
            );
        }
        assert_eq!(
            Param::Ccss.check_write(3),
            Err(ParError::ReadOnly(Param::Ccss))
        );
        assert_eq!(Param::Blinks.check_write(-1), Ok(()));
        assert!(Param::Blinks.check_write(-2).is_err());
        assert!(Param::Ssr.check_write(1).is_err());
    }
}
