//! When cars come to a bay and leave it: the `--arrivals` modes and each bay's visit
//! schedule, drawn from the bay's own seeded random stream.

use core::fmt;
use core::str::FromStr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ev::{Ev, EvSpec};

/// Random arrivals: share of bays with a car at start, stay and gap lengths.
const START_OCCUPANCY: f64 = 0.4;
const STAY_MS: core::ops::Range<u64> = 3_600_000..36_000_000;
const GAP_MS: core::ops::Range<u64> = 1_800_000..21_600_000;
/// State of charge (%) a car arrives with.
const ARRIVAL_SOC: core::ops::RangeInclusive<u8> = 10..=70;

/// Whether and when cars come to the bays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arrivals {
    /// Cars arrive and leave at random times (some are already there at start).
    #[default]
    Random,
    /// Every bay has a car plugged in at start, and it stays for the whole run (tests rely on
    /// it); a full car simply stops drawing.
    AllPlugged,
    /// No car ever comes.
    None,
}

/// A value of `--arrivals` that is none of `random`, `all-plugged`, `none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownArrivals(pub String);

impl fmt::Display for UnknownArrivals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown arrivals mode {:?} (expected random, all-plugged or none)",
            self.0
        )
    }
}

impl std::error::Error for UnknownArrivals {}

impl FromStr for Arrivals {
    type Err = UnknownArrivals;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "all-plugged" => Ok(Self::AllPlugged),
            "none" => Ok(Self::None),
            other => Err(UnknownArrivals(other.to_owned())),
        }
    }
}

/// When cars come and go at one bay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Visit {
    /// No car; the next one arrives at this time (`None`: never).
    Empty { arrival_ms: Option<u64> },
    /// A car is plugged in and leaves at this time (`None`: stays).
    Plugged { departure_ms: Option<u64> },
}

impl Visit {
    /// The car (if any) at simulated time 0 and the visit it is on.
    pub(super) fn first(arrivals: Arrivals, rng: &mut ChaCha8Rng) -> (Option<Ev>, Self) {
        match arrivals {
            Arrivals::AllPlugged => (
                Some(arriving_car(rng)),
                Self::Plugged { departure_ms: None },
            ),
            Arrivals::None => (None, Self::Empty { arrival_ms: None }),
            Arrivals::Random if rng.gen_bool(START_OCCUPANCY) => (
                Some(arriving_car(rng)),
                Self::Plugged {
                    departure_ms: Some(rng.gen_range(0..STAY_MS.end)),
                },
            ),
            Arrivals::Random => (
                None,
                Self::Empty {
                    arrival_ms: Some(rng.gen_range(0..GAP_MS.end)),
                },
            ),
        }
    }

    /// At `now_ms`: the car leaves or the next one arrives when its time has come.
    pub(super) fn advance(&mut self, now_ms: u64, car: &mut Option<Ev>, rng: &mut ChaCha8Rng) {
        match *self {
            Self::Plugged {
                departure_ms: Some(at),
            } if at <= now_ms => {
                *car = None;
                *self = Self::Empty {
                    arrival_ms: Some(now_ms + rng.gen_range(GAP_MS)),
                };
            }
            Self::Empty {
                arrival_ms: Some(at),
            } if at <= now_ms => {
                *car = Some(arriving_car(rng));
                *self = Self::Plugged {
                    departure_ms: Some(now_ms + rng.gen_range(STAY_MS)),
                };
            }
            _ => {}
        }
    }
}

/// A car from the fleet mix, with a random state of charge.
pub(super) fn arriving_car(rng: &mut ChaCha8Rng) -> Ev {
    let spec = EvSpec::random(rng);
    Ev::new(spec, rng.gen_range(ARRIVAL_SOC))
}
