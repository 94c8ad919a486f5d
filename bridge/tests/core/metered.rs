//! A pair with a grid meter at the site connection: the house's own load (a function of
//! simulated time) plus what the simulated cars really draw, read at the meter's interval
//! and fed to the site core as the sources adapters would. The meter closes the loop: what
//! the core allows the cars shows up in the next reading.

use ctrl22_bridge::site::{Input, PowerReading, SourceId};

use crate::pair::{Breach, Pair};

/// The grid meter's source id (its `[[solar.sources]]` index).
pub const METER: SourceId = SourceId(0);

/// What the meter sees besides the cars, per phase in 0.1 A (house load) and PV in W.
pub trait Grid {
    fn house_da(&self, t_ms: u64) -> [i32; 3];
    fn pv_w(&self, _t_ms: u64) -> i64 {
        0
    }
}

/// The pair, its meter and what was measured.
pub struct Metered<G> {
    pub pair: Pair,
    pub grid: G,
    pub interval_ms: u64,
    next_reading_ms: u64,
    /// The meter answers; `false` once it died.
    pub alive: bool,
    /// Highest grid current per phase seen at any step, 0.1 A.
    pub peak_grid_da: [i32; 3],
    /// Sum over steps of grid import (W) while importing, and the number of steps.
    pub import_w_steps: (i64, u64),
    pub steps: u64,
}

impl<G: Grid> Metered<G> {
    pub fn new(pair: Pair, grid: G, interval_ms: u64) -> Self {
        Self {
            pair,
            grid,
            interval_ms,
            next_reading_ms: 0,
            alive: true,
            peak_grid_da: [i32::MIN; 3],
            import_w_steps: (0, 0),
            steps: 0,
        }
    }

    /// Grid current per phase now (0.1 A, import positive): house + cars - PV spread evenly.
    pub fn grid_da(&self) -> [i32; 3] {
        let t = self.pair.now_ms();
        let house = self.grid.house_da(t);
        let cars = self.pair.cars_draw();
        // PV of a three-phase inverter feeds every phase equally.
        let pv_da = i32::try_from(self.grid.pv_w(t) * 10 / (3 * 230)).unwrap_or(i32::MAX);
        [0, 1, 2].map(|p| house[p] + cars[p] - pv_da)
    }

    /// Grid power now (W, import positive).
    pub fn grid_w(&self) -> i64 {
        self.grid_da()
            .iter()
            .map(|d| i64::from(*d) * 230 / 10)
            .sum()
    }

    /// Runs `ms`, reading the meter on its interval, checking the pair's envelope and
    /// calling `each` after every step.
    ///
    /// # Errors
    /// The pair's first breach, or what `each` finds.
    pub fn run(
        &mut self,
        ms: u64,
        mut each: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let until = self.pair.now_ms() + ms;
        while self.pair.now_ms() < until {
            self.pair.step().map_err(|b: Breach| b.to_string())?;
            let now = self.pair.now_ms();
            let grid = self.grid_da();
            for (peak, g) in self.peak_grid_da.iter_mut().zip(grid) {
                *peak = (*peak).max(g);
            }
            let grid_w = self.grid_w();
            self.steps += 1;
            if grid_w > 0 {
                self.import_w_steps.0 += grid_w;
                self.import_w_steps.1 += 1;
            }
            if self.alive && now >= self.next_reading_ms {
                self.next_reading_ms = now + self.interval_ms;
                self.read(now);
            }
            each(self)?;
        }
        Ok(())
    }

    fn read(&mut self, now: u64) {
        let grid = self.grid_da();
        let reading = PowerReading {
            grid_w: Some(self.grid_w()),
            grid_phase_a: Some(grid.map(|d| f64::from(d) / 10.0)),
            grid_phase_w: Some(grid.map(|d| i64::from(d) * 23)),
            pv_w: Some(self.grid.pv_w(now)),
            ..PowerReading::default()
        };
        self.pair.input(Input::Power {
            source: METER,
            reading,
        });
    }
}
