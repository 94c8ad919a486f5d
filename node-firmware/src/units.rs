//! Quantities as the hardware states them: currents in tenths of an ampere and phase sets
//! written as decimal-digit sets (`123` = L1+L2+L3, `1` = L1, `0` = none).

use core::fmt;

/// A current in 0.1 A, as every CTRL22 register and message carries it (`320` = 32.0 A).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Deciamps(pub i16);

impl Deciamps {
    pub const ZERO: Self = Self(0);
    /// IEC 61851-1: no charging below 6.0 A.
    pub const MIN_CHARGE: Self = Self(60);

    #[must_use]
    pub const fn from_amps(amps: i16) -> Self {
        Self(amps.saturating_mul(10))
    }

    #[must_use]
    pub const fn get(self) -> i16 {
        self.0
    }

    /// This current in amperes, for people and JSON.
    #[must_use]
    pub fn as_amps(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// Amperes to 0.1 A, rounded to the nearest; `None` for NaN, infinities and values
    /// outside what 0.1 A in an `i16` can hold. The one conversion from outside numbers.
    #[must_use]
    pub fn try_from_amps(amps: f64) -> Option<Self> {
        if !amps.is_finite() {
            return None;
        }
        let tenths = amps * 10.0;
        if !(f64::from(i16::MIN)..=f64::from(i16::MAX)).contains(&tenths) {
            return None;
        }
        // No `f64::round` without std: round half away from zero by hand. In range, so
        // the cast cannot overflow.
        let rounded = if tenths >= 0.0 {
            tenths + 0.5
        } else {
            tenths - 0.5
        };
        #[allow(clippy::cast_possible_truncation)]
        Some(Self(rounded as i16))
    }

    /// Whether a vehicle may be offered this current: zero (pause) or at least 6.0 A.
    #[must_use]
    pub const fn is_valid_offer(self) -> bool {
        self.0 == 0 || self.0 >= Self::MIN_CHARGE.0
    }
}

impl fmt::Display for Deciamps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{} A", abs / 10, abs % 10)
    }
}

/// One phase of a three-phase supply.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Phase {
    L1,
    L2,
    L3,
}

impl Phase {
    pub const ALL: [Self; 3] = [Self::L1, Self::L2, Self::L3];

    /// 0 for L1, 1 for L2, 2 for L3: the index into per-phase arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Self::L1 => 0,
            Self::L2 => 1,
            Self::L3 => 2,
        }
    }

    #[must_use]
    pub const fn from_index(index: usize) -> Option<Self> {
        match index {
            0 => Some(Self::L1),
            1 => Some(Self::L2),
            2 => Some(Self::L3),
            _ => None,
        }
    }

    /// The digit of this phase in a decimal-digit phase set (`1`, `2`, `3`).
    #[must_use]
    pub const fn digit(self) -> u8 {
        self.index() as u8 + 1
    }
}

/// A set of phases. On the wire a decimal-digit set: `123`, `12`, `3`, `0` (empty).
///
/// Digits are accepted in any order and repeated digits are tolerated on input (`321`, `11`);
/// output is always ascending (`123`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhaseSet(u8);

/// A decimal-digit phase set that names something other than phases 1 to 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidPhaseSet(pub i32);

impl fmt::Display for InvalidPhaseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a phase set (digits 1-3, or 0 for none)",
            self.0
        )
    }
}

impl PhaseSet {
    pub const NONE: Self = Self(0);
    pub const L1: Self = Self(0b001);
    pub const ALL: Self = Self(0b111);

    #[must_use]
    pub const fn contains(self, phase: Phase) -> bool {
        self.0 & (1 << phase.index()) != 0
    }

    #[must_use]
    pub const fn with(self, phase: Phase) -> Self {
        Self(self.0 | (1 << phase.index()))
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub const fn len(self) -> u8 {
        self.0.count_ones() as u8
    }

    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// The phases in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Phase> {
        Phase::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// The decimal-digit form: `123`, `12`, `3`, `0`.
    #[must_use]
    pub fn to_digits(self) -> i16 {
        self.iter()
            .fold(0i16, |acc, p| acc * 10 + i16::from(p.digit()))
    }

    /// Parses the decimal-digit form; every digit must be 1, 2 or 3 (or the whole value 0).
    ///
    /// # Errors
    /// [`InvalidPhaseSet`] for negative values or digits other than 1-3.
    pub fn from_digits(value: i32) -> Result<Self, InvalidPhaseSet> {
        if value < 0 {
            return Err(InvalidPhaseSet(value));
        }
        let mut rest = value;
        let mut set = Self::NONE;
        while rest > 0 {
            let phase = usize::try_from(rest % 10)
                .ok()
                .and_then(|d| d.checked_sub(1))
                .and_then(Phase::from_index)
                .ok_or(InvalidPhaseSet(value))?;
            set = set.with(phase);
            rest /= 10;
        }
        Ok(set)
    }
}

impl fmt::Display for PhaseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_digits())
    }
}

impl serde::Serialize for PhaseSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i16(self.to_digits())
    }
}

impl<'de> serde::Deserialize<'de> for PhaseSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i32::deserialize(deserializer)?;
        Self::from_digits(value).map_err(|_| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Signed(i64::from(value)),
                &"a phase set of digits 1-3, or 0",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amperes_convert_once_and_refuse_garbage() {
        assert_eq!(Deciamps::try_from_amps(16.0), Some(Deciamps(160)));
        assert_eq!(Deciamps::try_from_amps(6.04), Some(Deciamps(60)));
        assert_eq!(Deciamps::try_from_amps(6.05), Some(Deciamps(61)));
        assert_eq!(Deciamps::try_from_amps(-1.25), Some(Deciamps(-13)));
        for bad in [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e9, -1e9, 3276.8] {
            assert_eq!(Deciamps::try_from_amps(bad), None, "{bad}");
        }
        assert!((Deciamps(325).as_amps() - 32.5).abs() < f64::EPSILON);
    }

    #[test]
    fn phase_sets_round_trip_in_ascending_order() {
        for (input, digits) in [(123, 123), (321, 123), (1, 1), (31, 13), (0, 0), (22, 2)] {
            let set = PhaseSet::from_digits(input).expect("valid set");
            assert_eq!(set.to_digits(), digits);
        }
    }

    #[test]
    fn phase_sets_reject_foreign_digits() {
        for bad in [4, 10, 104, -1, 1234] {
            assert!(PhaseSet::from_digits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deciamps_display_and_offer_validity() {
        assert_eq!(format!("{}", Deciamps(158)), "15.8 A");
        assert!(Deciamps(0).is_valid_offer());
        assert!(!Deciamps(59).is_valid_offer());
        assert!(Deciamps(60).is_valid_offer());
    }
}
