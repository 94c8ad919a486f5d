//! Dynamic load management: the cars get what the fuse leaves after the house.
//!
//! With a grid meter at the site connection, the house's own load on a phase is what the
//! meter measures there minus what the cars draw on it; the cars may then have
//! `ceiling - max(0, house) - margin`, never more than the ceiling (PV feeding a phase makes
//! no room beyond the fuse). A lower value applies with the reading that shows it; a higher
//! one only after the readings allowed it for the hold time, so a house load that swings
//! does not make the cars chase it. Without per-phase data the whole house load is assumed
//! on every phase. Without a fresh reading the house is assumed to draw its configured
//! reserve per phase.

use ctrl22_node::{Deciamps, Phase};

use super::power::PowerReading;

/// What the cars draw per site phase (A): as the bays last reported it, and at most, with
/// raises they have not reported yet.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CarsDraw {
    pub reported_a: [f64; 3],
    pub possible_a: [f64; 3],
}

impl CarsDraw {
    /// Cars whose reports are up to date.
    #[cfg(test)]
    #[must_use]
    pub fn reported(a: [f64; 3]) -> Self {
        Self {
            reported_a: a,
            possible_a: a,
        }
    }
}

/// The house-load limit of one site connection.
#[derive(Clone, Debug, PartialEq)]
pub struct HouseLoad {
    reserve: [Deciamps; 3],
    margin: Deciamps,
    hold_ms: u64,
    /// What the cars may draw together per phase now.
    limit: [Deciamps; 3],
    /// Per phase: since when the readings would allow more, and the least they allowed since.
    rising: [Option<(u64, Deciamps)>; 3],
    /// The house's own load per phase (A) from the last reading; `None` while in fallback.
    house_a: Option<[f64; 3]>,
}

impl HouseLoad {
    /// Starts in fallback (no reading yet): the house is assumed to draw `reserve`.
    #[must_use]
    pub fn new(
        ceiling: [Deciamps; 3],
        reserve: [Deciamps; 3],
        margin: Deciamps,
        hold_ms: u64,
    ) -> Self {
        Self {
            reserve,
            margin: margin.max(Deciamps::ZERO),
            hold_ms,
            limit: fallback_limit(ceiling, reserve),
            rising: [None; 3],
            house_a: None,
        }
    }

    /// What the cars may draw together per phase.
    #[must_use]
    pub fn limit(&self) -> [Deciamps; 3] {
        self.limit
    }

    /// The measured house load per phase (A); `None` while the fallback is in force.
    #[must_use]
    pub fn house_a(&self) -> Option<[f64; 3]> {
        self.house_a
    }

    /// Whether the meter is silent and the reserve is assumed.
    #[must_use]
    pub fn in_fallback(&self) -> bool {
        self.house_a.is_none()
    }

    /// A grid reading while the cars draw `cars` per site phase. Returns `false` when the
    /// reading says nothing about the grid (a PV-only source).
    ///
    /// A raise the bays have not reported yet makes the house look heavier by what the cars
    /// took since; it is not taken for house load as long as the house load it would
    /// explain stays within what was measured before (so a raise never pauses cars for
    /// nothing, and a car that takes less than it was given does not hide house load).
    pub fn on_reading(
        &mut self,
        now_ms: u64,
        ceiling: [Deciamps; 3],
        reading: &PowerReading,
        cars: CarsDraw,
        voltage: u16,
    ) -> bool {
        let Some(heavy) = house_per_phase(reading, cars.reported_a, voltage) else {
            return false;
        };
        let light = house_per_phase(reading, cars.possible_a, voltage).unwrap_or(heavy);
        let house = match self.house_a {
            Some(before) => Phase::ALL.map(|p| {
                let i = p.index();
                light[i].max(heavy[i].min(before[i]))
            }),
            None => heavy,
        };
        let was_fallback = self.in_fallback();
        self.house_a = Some(house);
        for phase in Phase::ALL {
            let i = phase.index();
            let available = available(ceiling[i], house[i], self.margin);
            let current = self.limit[i];
            if available < current {
                self.limit[i] = available;
                self.rising[i] = None;
            } else if available > current {
                let (since, least) = match self.rising[i] {
                    Some((since, least)) => (since, least.min(available)),
                    None => (now_ms, available),
                };
                if now_ms.saturating_sub(since) >= self.hold_ms && !was_fallback {
                    self.limit[i] = least;
                    self.rising[i] = None;
                } else {
                    self.rising[i] = Some((since, least));
                }
            } else {
                self.rising[i] = None;
            }
        }
        true
    }

    /// The meter went silent: the reserve applies at once (it is the configured worst case
    /// of the house, so it holds in both directions).
    pub fn on_stale(&mut self, ceiling: [Deciamps; 3]) {
        self.house_a = None;
        self.rising = [None; 3];
        self.limit = fallback_limit(ceiling, self.reserve);
    }
}

fn fallback_limit(ceiling: [Deciamps; 3], reserve: [Deciamps; 3]) -> [Deciamps; 3] {
    Phase::ALL.map(|p| {
        let i = p.index();
        Deciamps(ceiling[i].get().saturating_sub(reserve[i].get().max(0)))
            .clamp(Deciamps::ZERO, ceiling[i].max(Deciamps::ZERO))
    })
}

/// `ceiling - max(0, house) - margin`, in `0..=ceiling`; the house load rounded up.
fn available(ceiling: Deciamps, house_a: f64, margin: Deciamps) -> Deciamps {
    let ceiling = ceiling.max(Deciamps::ZERO);
    let house = (house_a.max(0.0) * 10.0).ceil();
    let room = f64::from(ceiling.get()) - house - f64::from(margin.get());
    if room.is_nan() || room <= 0.0 {
        return Deciamps::ZERO;
    }
    // Bounded by the ceiling, so it fits.
    #[allow(clippy::cast_possible_truncation)]
    let room = room.min(f64::from(ceiling.get())) as i16;
    Deciamps(room)
}

/// The house's own load per phase (A, import positive): the grid minus the cars. Per-phase
/// currents take their direction from the phase's active power when the meter reports it
/// (some meters report unsigned currents); per-phase powers stand in for missing currents;
/// a total alone is put on every phase (the conservative assumption).
fn house_per_phase(reading: &PowerReading, cars_a: [f64; 3], voltage: u16) -> Option<[f64; 3]> {
    let volts = f64::from(voltage.max(1));
    let grid: [f64; 3] = if let Some(currents) = reading.grid_phase_a {
        Phase::ALL.map(|p| {
            let i = p.index();
            let current = currents[i];
            match reading.grid_phase_w {
                #[allow(clippy::cast_precision_loss)] // meter powers are far below 2^52
                Some(powers) if powers[i] != 0 => current.abs().copysign(powers[i] as f64),
                _ => current,
            }
        })
    } else if let Some(powers) = reading.grid_phase_w {
        #[allow(clippy::cast_precision_loss)]
        powers.map(|w| w as f64 / volts)
    } else if let Some(total) = reading.grid_w {
        #[allow(clippy::cast_precision_loss)]
        let total_a = total as f64 / volts;
        let cars: f64 = cars_a.iter().sum();
        return Some([(total_a - cars).max(0.0); 3]);
    } else {
        return None;
    };
    Some(Phase::ALL.map(|p| (grid[p.index()] - cars_a[p.index()]).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: [Deciamps; 3] = [Deciamps(350); 3];

    fn phases(a: [f64; 3]) -> PowerReading {
        PowerReading {
            grid_phase_a: Some(a),
            ..PowerReading::default()
        }
    }

    fn block() -> HouseLoad {
        HouseLoad::new(CEILING, [Deciamps(200); 3], Deciamps(10), 10_000)
    }

    #[test]
    fn starts_with_the_reserve_and_lowers_at_once() {
        let mut house = block();
        assert_eq!(house.limit(), [Deciamps(150); 3]);
        assert!(house.in_fallback());
        // 25 A on L1 of which the cars draw 10: the house takes 15, the cars may have 19.
        house.on_reading(
            0,
            CEILING,
            &phases([25.0, 8.0, 8.0]),
            CarsDraw::reported([10.0, 0.0, 0.0]),
            230,
        );
        assert_eq!(house.limit()[0], Deciamps(150));
        assert_eq!(house.house_a().map(|h| h[0]), Some(15.0));
        // A jump of the house load applies with the reading that shows it.
        house.on_reading(
            1_000,
            CEILING,
            &phases([40.0, 8.0, 8.0]),
            CarsDraw::reported([10.0, 0.0, 0.0]),
            230,
        );
        assert_eq!(house.limit()[0], Deciamps(40));
    }

    #[test]
    fn raises_only_after_the_hold() {
        let mut house = block();
        house.on_reading(
            0,
            CEILING,
            &phases([30.0; 3]),
            CarsDraw::reported([0.0; 3]),
            230,
        );
        assert_eq!(house.limit(), [Deciamps(40); 3]);
        for t in [1_000, 5_000, 10_000] {
            house.on_reading(
                t,
                CEILING,
                &phases([10.0; 3]),
                CarsDraw::reported([0.0; 3]),
                230,
            );
            assert_eq!(house.limit(), [Deciamps(40); 3], "at {t} ms");
        }
        house.on_reading(
            11_000,
            CEILING,
            &phases([12.0; 3]),
            CarsDraw::reported([0.0; 3]),
            230,
        );
        // The least the readings allowed during the hold.
        assert_eq!(house.limit(), [Deciamps(220); 3]);
    }

    #[test]
    fn an_unreported_raise_is_not_house_load_but_a_real_rise_still_shows() {
        let mut house = block();
        house.on_reading(
            0,
            CEILING,
            &phases([5.0; 3]),
            CarsDraw::reported([0.0; 3]),
            230,
        );
        let raised = CarsDraw {
            reported_a: [0.0; 3],
            possible_a: [15.0; 3],
        };
        // The cars took 15 A (L1) and 7 A (L2) of a raise not reported yet: still 5 A house.
        house.on_reading(1_000, CEILING, &phases([20.0, 12.0, 5.0]), raised, 230);
        assert_eq!(house.house_a(), Some([5.0; 3]));
        // The house itself rises by 10 A on L1 meanwhile: that shows.
        house.on_reading(2_000, CEILING, &phases([30.0, 12.0, 5.0]), raised, 230);
        assert_eq!(house.house_a().map(|h| h[0]), Some(15.0));
    }

    #[test]
    fn never_above_the_ceiling_and_pv_makes_no_room() {
        let mut house = HouseLoad::new(CEILING, [Deciamps::ZERO; 3], Deciamps::ZERO, 0);
        let feeding = PowerReading {
            grid_phase_a: Some([20.0, 20.0, 20.0]),
            grid_phase_w: Some([-4_600, -4_600, -4_600]),
            ..PowerReading::default()
        };
        house.on_reading(0, CEILING, &feeding, CarsDraw::reported([0.0; 3]), 230);
        house.on_reading(1, CEILING, &feeding, CarsDraw::reported([0.0; 3]), 230);
        assert_eq!(house.limit(), CEILING);
        assert_eq!(house.house_a(), Some([0.0; 3]));
    }

    #[test]
    fn a_total_alone_lands_on_every_phase_and_silence_falls_back() {
        let mut house = block();
        let total = PowerReading {
            grid_w: Some(230 * 30),
            ..PowerReading::default()
        };
        // 30 A in total, of which the cars draw 6 A on each of three phases: 12 A of house
        // load, assumed on every phase.
        house.on_reading(0, CEILING, &total, CarsDraw::reported([6.0; 3]), 230);
        assert_eq!(
            house.limit(),
            [Deciamps(220); 3].map(|l| l.min(Deciamps(150)))
        );
        assert_eq!(house.house_a(), Some([12.0; 3]));
        assert!(!house.on_reading(
            1,
            CEILING,
            &PowerReading::default(),
            CarsDraw::reported([0.0; 3]),
            230
        ));
        house.on_stale(CEILING);
        assert!(house.in_fallback());
        assert_eq!(house.limit(), [Deciamps(150); 3]);
    }
}
