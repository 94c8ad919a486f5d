//! Charge-controller state codes (`ccss`), exactly as the CTRL22 AVR firmware reports them.

use core::fmt;

/// The charge controller's state. The numeric code is what travels in heartbeats and the
/// `ccss` register; the name (`C3`, `OFF9`, ...) is what people read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Ccss {
    /// Off, waiting for the operator button.
    Off0 = 0,
    Off1 = 1,
    Off2 = 2,
    /// Idle, lock open.
    Off3 = 3,
    /// Stopped after a timeout or an EV-side stop; the button returns to OFF0.
    Off9 = 9,
    /// Waiting for a vehicle (CP 9 V and valid PP within 30 s).
    A0 = 10,
    A1 = 11,
    /// Vehicle present: lock, then offer current.
    B0 = 20,
    B1 = 21,
    /// Charging. C2 = first 10 s, checking the EV accepts the phases.
    C0 = 30,
    C1 = 31,
    C2 = 32,
    C3 = 33,
    /// Pausing: PWM to 0, contactors open after 10 s.
    P0 = 40,
    P1 = 41,
    /// Waiting after a pause.
    W0 = 50,
    W1 = 51,
    /// Waiting for a valid allocation (smaxcur >= 6 A and phases != 0).
    W6 = 56,
    /// EV rejected the PWM; waiting for >= 10 A.
    W7 = 57,
    /// Phase change requested; resumes as W6.
    W8 = 58,
    /// EV rejected the phase set; waiting for a different one.
    W9 = 59,
    /// Error; see the `error` bit flags.
    Err0 = 90,
}

/// A `ccss` code the firmware never sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCcss(pub i32);

impl fmt::Display for UnknownCcss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown charge-controller state code {}", self.0)
    }
}

/// The coarse phase of a session a state belongs to (the letter of its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CcssGroup {
    Off,
    A,
    B,
    C,
    P,
    W,
    Err,
}

impl Ccss {
    pub const ALL: [Self; 22] = [
        Self::Off0,
        Self::Off1,
        Self::Off2,
        Self::Off3,
        Self::Off9,
        Self::A0,
        Self::A1,
        Self::B0,
        Self::B1,
        Self::C0,
        Self::C1,
        Self::C2,
        Self::C3,
        Self::P0,
        Self::P1,
        Self::W0,
        Self::W1,
        Self::W6,
        Self::W7,
        Self::W8,
        Self::W9,
        Self::Err0,
    ];

    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// # Errors
    /// [`UnknownCcss`] for codes the firmware does not define.
    pub fn from_code(code: i32) -> Result<Self, UnknownCcss> {
        Self::ALL
            .into_iter()
            .find(|s| i32::from(s.code()) == code)
            .ok_or(UnknownCcss(code))
    }

    #[must_use]
    pub const fn group(self) -> CcssGroup {
        match self.code() {
            0..=9 => CcssGroup::Off,
            10..=19 => CcssGroup::A,
            20..=29 => CcssGroup::B,
            30..=39 => CcssGroup::C,
            40..=49 => CcssGroup::P,
            50..=59 => CcssGroup::W,
            _ => CcssGroup::Err,
        }
    }

    /// The name the firmware documentation uses: `OFF0`, `A1`, `C3`, `W6`, `ERR0`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off0 => "OFF0",
            Self::Off1 => "OFF1",
            Self::Off2 => "OFF2",
            Self::Off3 => "OFF3",
            Self::Off9 => "OFF9",
            Self::A0 => "A0",
            Self::A1 => "A1",
            Self::B0 => "B0",
            Self::B1 => "B1",
            Self::C0 => "C0",
            Self::C1 => "C1",
            Self::C2 => "C2",
            Self::C3 => "C3",
            Self::P0 => "P0",
            Self::P1 => "P1",
            Self::W0 => "W0",
            Self::W1 => "W1",
            Self::W6 => "W6",
            Self::W7 => "W7",
            Self::W8 => "W8",
            Self::W9 => "W9",
            Self::Err0 => "ERR0",
        }
    }

    /// Whether a session is under way (A, B, C, P or W): the operator button would end it.
    #[must_use]
    pub const fn in_session(self) -> bool {
        matches!(
            self.group(),
            CcssGroup::A | CcssGroup::B | CcssGroup::C | CcssGroup::P | CcssGroup::W
        )
    }
}

impl fmt::Display for Ccss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Ccss {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Ccss {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = i32::deserialize(deserializer)?;
        Self::from_code(code).map_err(|_| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Signed(i64::from(code)),
                &"a ccss state code",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for state in Ccss::ALL {
            assert_eq!(Ccss::from_code(i32::from(state.code())), Ok(state));
        }
        assert!(Ccss::from_code(12).is_err());
        assert!(Ccss::from_code(-1).is_err());
    }

    #[test]
    fn groups_follow_the_names() {
        for state in Ccss::ALL {
            let first = state.name().as_bytes()[0];
            let expected = match state.group() {
                CcssGroup::Off => b'O',
                CcssGroup::A => b'A',
                CcssGroup::B => b'B',
                CcssGroup::C => b'C',
                CcssGroup::P => b'P',
                CcssGroup::W => b'W',
                CcssGroup::Err => b'E',
            };
            assert_eq!(first, expected, "{state}");
        }
    }
}
