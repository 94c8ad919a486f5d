//! IEC 61851-1 pilot signalling as the CTRL22 controller implements it: the control pilot (CP)
//! voltage tells the vehicle's state, the CP PWM duty tells the vehicle how much current it may
//! draw, and the proximity pilot (PP) resistor tells the cable's capacity.
//!
//! All arithmetic is integer: CP in millivolts, duty in 0.1 % ([`DutyPermille`]), currents in
//! [`Deciamps`], PP in ohms. Conversions round towards the safe side: a vehicle decoding an
//! encoded duty never reads more current than was meant.

use core::fmt;

use crate::units::Deciamps;

/// The vehicle's state as the CP voltage (the positive PWM level) shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VehicleState {
    /// +12 V: no vehicle.
    A,
    /// +9 V: vehicle connected, not asking for current.
    B,
    /// +6 V: vehicle ready to charge.
    C,
    /// +3 V: ready, ventilation required.
    D,
    /// 0 V: short circuit / pilot error.
    E,
    /// -12 V: the supply equipment is unavailable (or the CP line is pulled down).
    F,
}

/// Half-width of each CP band. IEC 61851-1 allows ±1 V around the nominal levels; the bands here
/// are ±1.5 V so that they touch each other (A..E), and only readings outside every band or
/// between E and F are unclassifiable.
const CP_BAND_HALF_WIDTH_MV: i32 = 1_500;

impl VehicleState {
    pub const ALL: [Self; 6] = [Self::A, Self::B, Self::C, Self::D, Self::E, Self::F];

    /// The nominal CP level of this state, in millivolts. A simulated vehicle feeds this as
    /// [`crate::controller::Inputs::cp_mv`].
    #[must_use]
    pub const fn nominal_cp_mv(self) -> i32 {
        match self {
            Self::A => 12_000,
            Self::B => 9_000,
            Self::C => 6_000,
            Self::D => 3_000,
            Self::E => 0,
            Self::F => -12_000,
        }
    }

    /// Classifies a CP reading. Each state owns `nominal ± 1.5 V`; a reading on a boundary
    /// belongs to the higher-voltage state (the less demanding one, so a marginal reading
    /// never looks like a vehicle asking for current).
    ///
    /// # Errors
    /// [`PilotError::CpOutOfBand`] for readings no band covers (above 13.5 V, between -1.5 V
    /// and -10.5 V, below -13.5 V).
    pub fn from_cp_mv(cp_mv: i32) -> Result<Self, PilotError> {
        Self::ALL
            .into_iter()
            .find(|state| {
                let nominal = state.nominal_cp_mv();
                cp_mv > nominal - CP_BAND_HALF_WIDTH_MV && cp_mv <= nominal + CP_BAND_HALF_WIDTH_MV
            })
            .ok_or(PilotError::CpOutOfBand(cp_mv))
    }
}

impl fmt::Display for VehicleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self {
            Self::A => "A",
            Self::B => "B",
            Self::C => "C",
            Self::D => "D",
            Self::E => "E",
            Self::F => "F",
        };
        f.write_str(letter)
    }
}

/// A PWM duty cycle in 0.1 % (`850` = 85.0 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DutyPermille(pub u16);

impl fmt::Display for DutyPermille {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} %", self.0 / 10, self.0 % 10)
    }
}

/// The highest current the pilot can signal: 80 A.
pub const MAX_SIGNALLED: Deciamps = Deciamps(800);
/// Up to 51 A the duty is `I / 0.6 A`; above it `I / 2.5 A + 64 %`.
const LOW_RANGE_MAX: Deciamps = Deciamps(510);
/// The lowest duty that signals a current: 10 % = 6 A.
pub const MIN_DUTY: DutyPermille = DutyPermille(100);
/// 85 %: the top of the low formula range (51 A).
const LOW_RANGE_MAX_DUTY: DutyPermille = DutyPermille(850);
/// The highest duty that signals a current: 96 % = 80 A.
pub const MAX_DUTY: DutyPermille = DutyPermille(960);

/// Why a pilot quantity cannot be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PilotError {
    /// Below 6 A no charging is allowed, so there is no duty for it.
    CurrentBelowMinimum(Deciamps),
    /// Above 80 A the pilot has no duty for it.
    CurrentAboveMaximum(Deciamps),
    /// Outside 10 %..96 % the duty signals no current.
    DutyOutOfRange(DutyPermille),
    /// A CP voltage that matches no vehicle state.
    CpOutOfBand(i32),
    /// A PP resistance that matches no cable rating and is not open.
    PpOutOfBand(u32),
}

impl fmt::Display for PilotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CurrentBelowMinimum(i) => write!(f, "{i} is below the 6.0 A charging minimum"),
            Self::CurrentAboveMaximum(i) => write!(f, "{i} is above the 80.0 A pilot maximum"),
            Self::DutyOutOfRange(d) => write!(f, "duty {d} signals no current (10-96 %)"),
            Self::CpOutOfBand(mv) => write!(f, "CP at {mv} mV matches no vehicle state"),
            Self::PpOutOfBand(ohms) => write!(f, "PP at {ohms} ohm matches no cable rating"),
        }
    }
}

/// The duty that offers `current` to the vehicle, rounded down (never offers more).
///
/// 6 A..=51 A: `duty = I / 0.6 A`; above 51 A..=80 A: `duty = I / 2.5 A + 64 %`. Note that
/// 51.1 A..52.4 A encode to duties just below 85 %, which decode with the low formula to about
/// 51 A: the vehicle takes a little less than offered, never more.
///
/// # Errors
/// [`PilotError::CurrentBelowMinimum`] under 6 A, [`PilotError::CurrentAboveMaximum`] over 80 A.
pub fn duty_for_current(current: Deciamps) -> Result<DutyPermille, PilotError> {
    if current < Deciamps::MIN_CHARGE {
        return Err(PilotError::CurrentBelowMinimum(current));
    }
    if current > MAX_SIGNALLED {
        return Err(PilotError::CurrentAboveMaximum(current));
    }
    // Both branches are within 100..=960 for 60..=800 dA, so the casts cannot truncate.
    let deciamps = current.get().unsigned_abs();
    let permille = if current <= LOW_RANGE_MAX {
        // duty % = (dA / 10) / 0.6  =>  duty ‰ = dA * 10 / 6
        deciamps * 5 / 3
    } else {
        // duty % = (dA / 10) / 2.5 + 64  =>  duty ‰ = dA * 2 / 5 + 640
        deciamps * 2 / 5 + 640
    };
    Ok(DutyPermille(permille))
}

/// The current a vehicle may draw at `duty`, rounded down.
///
/// 10 %..=85 %: `I = duty * 0.6 A`; above 85 %..=96 %: `I = (duty - 64 %) * 2.5 A`.
///
/// # Errors
/// [`PilotError::DutyOutOfRange`] outside 10 %..=96 %.
pub fn current_for_duty(duty: DutyPermille) -> Result<Deciamps, PilotError> {
    if duty < MIN_DUTY || duty > MAX_DUTY {
        return Err(PilotError::DutyOutOfRange(duty));
    }
    let permille = i32::from(duty.0);
    let deciamps = if duty <= LOW_RANGE_MAX_DUTY {
        permille * 3 / 5
    } else {
        (permille - 640) * 5 / 2
    };
    // 100..=960 ‰ maps into 60..=800 dA.
    i16::try_from(deciamps)
        .map(Deciamps)
        .map_err(|_| PilotError::DutyOutOfRange(duty))
}

/// The current rating a PP resistor codes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CableRating {
    /// 1.5 kOhm.
    A13,
    /// 680 Ohm.
    A20,
    /// 220 Ohm.
    A32,
    /// 100 Ohm.
    A63,
}

/// The PP reading when no cable is plugged in: an open circuit.
pub const PP_OPEN_OHMS: u32 = u32::MAX;
/// Readings below this are a short circuit, not a cable.
const PP_SHORT_MAX_OHMS: u32 = 49;
/// Readings above this are an open circuit: no cable.
const PP_OPEN_MIN_OHMS: u32 = 4_000;

impl CableRating {
    pub const ALL: [Self; 4] = [Self::A13, Self::A20, Self::A32, Self::A63];

    /// The resistor a cable of this rating carries; a simulated cable feeds this as
    /// [`crate::controller::Inputs::pp_ohms`].
    #[must_use]
    pub const fn nominal_ohms(self) -> u32 {
        match self {
            Self::A13 => 1_500,
            Self::A20 => 680,
            Self::A32 => 220,
            Self::A63 => 100,
        }
    }

    #[must_use]
    pub const fn capacity(self) -> Deciamps {
        match self {
            Self::A13 => Deciamps(130),
            Self::A20 => Deciamps(200),
            Self::A32 => Deciamps(320),
            Self::A63 => Deciamps(630),
        }
    }

    /// The band each rating accepts. The boundaries sit roughly at the geometric mean of
    /// neighbouring resistors, which leaves far more margin than IEC 61851-1 asks for.
    const fn band_ohms(self) -> (u32, u32) {
        match self {
            Self::A63 => (PP_SHORT_MAX_OHMS + 1, 150),
            Self::A32 => (151, 400),
            Self::A20 => (401, 1_000),
            Self::A13 => (1_001, 2_700),
        }
    }

    /// Classifies a PP reading: `Ok(None)` is an open circuit (no cable).
    ///
    /// # Errors
    /// [`PilotError::PpOutOfBand`] for a short (< 50 Ohm) or a reading between 2.7 kOhm and
    /// 4 kOhm, which is neither a known resistor nor open.
    pub fn from_pp_ohms(pp_ohms: u32) -> Result<Option<Self>, PilotError> {
        if pp_ohms >= PP_OPEN_MIN_OHMS {
            return Ok(None);
        }
        Self::ALL
            .into_iter()
            .find(|rating| {
                let (low, high) = rating.band_ohms();
                (low..=high).contains(&pp_ohms)
            })
            .map(Some)
            .ok_or(PilotError::PpOutOfBand(pp_ohms))
    }
}

/// The `cmaxcur` register value for a PP reading: the cable capacity in 0.1 A, or `-1` when
/// there is no usable cable (open circuit or a reading that matches no rating).
#[must_use]
pub fn cmaxcur(pp_ohms: u32) -> Deciamps {
    match CableRating::from_pp_ohms(pp_ohms) {
        Ok(Some(rating)) => rating.capacity(),
        Ok(None) | Err(_) => Deciamps(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_levels_classify_as_their_state() {
        for state in VehicleState::ALL {
            assert_eq!(VehicleState::from_cp_mv(state.nominal_cp_mv()), Ok(state));
        }
    }

    #[test]
    fn nominal_resistors_classify_as_their_rating() {
        for rating in CableRating::ALL {
            assert_eq!(
                CableRating::from_pp_ohms(rating.nominal_ohms()),
                Ok(Some(rating))
            );
        }
        assert_eq!(CableRating::from_pp_ohms(PP_OPEN_OHMS), Ok(None));
    }
}
