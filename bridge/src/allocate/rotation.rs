//! What the allocator remembers about each bay between rounds, so that pausing is shared
//! and contactors are spared: when a bay started or stopped charging and what it last got.
//!
//! When not every bay fits at 6 A, admission order decides who pauses. Within one strategy
//! rank the order is: bays charging for less than the rotation period (they keep their
//! turn), then paused bays, longest waiting first, then bays that have charged for a full
//! period or more, longest charging last, so those are the ones paused. A bay inside its
//! minimum on time is admitted before everything else and one inside its minimum off time
//! is not admitted at all. A charging `pv` bay rides out a surplus shortfall for the stop
//! delay before it is paused (a cloud is not a reason to cycle the contactor). All of this
//! only ever orders or holds back bays against the surplus: admission still checks every
//! hard limit, so none of it can push a sum over a limit.

use ctrl22_node::Deciamps;

use super::input::Params;

/// Rotation rank within one strategy rank; lower is admitted first.
pub(super) type RotationKey = (u8, u64);

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BayMemory {
    /// When the bay last went from paused to charging; `None` while paused.
    on_since_ms: Option<u64>,
    /// When the bay last went from charging to paused; `None` if it never charged.
    off_since_ms: Option<u64>,
    /// What it got last round.
    last: Deciamps,
    /// Since when a charging `pv` bay has been kept on although the surplus is short.
    short_since_ms: Option<u64>,
    /// Since when a paused `pv` bay has had enough surplus to start.
    enough_since_ms: Option<u64>,
    /// Since when a `minpv` bay's share of the surplus has been above its 6 A.
    extra_since_ms: Option<u64>,
    /// Since when it has not been.
    no_extra_since_ms: Option<u64>,
    /// The surplus part above 6 A is released (the start delay passed, the stop delay not).
    extra_on: bool,
    /// A `schedule` bay charged from the grid last round (its laxity ran out).
    pub from_grid: bool,
    /// Round in which the bay was last present, to forget bays that left.
    pub seen_round: u64,
}

impl BayMemory {
    pub fn is_on(&self) -> bool {
        self.on_since_ms.is_some()
    }

    /// Charging for less than the minimum on time.
    pub fn protected(&self, now_ms: u64, params: &Params) -> bool {
        self.on_since_ms
            .is_some_and(|since| now_ms.saturating_sub(since) < params.min_on_ms)
    }

    /// Paused by us less than the minimum off time ago.
    pub fn resting(&self, now_ms: u64, params: &Params) -> bool {
        !self.is_on()
            && self
                .off_since_ms
                .is_some_and(|since| now_ms.saturating_sub(since) < params.min_off_ms)
    }

    pub fn rotation_key(&self, now_ms: u64, params: &Params, arrived_at_ms: u64) -> RotationKey {
        match self.on_since_ms {
            Some(since) if now_ms.saturating_sub(since) < params.rotation_period_ms => (0, since),
            Some(since) => (2, u64::MAX - since),
            None => (1, self.off_since_ms.unwrap_or(arrived_at_ms)),
        }
    }

    /// A charging `pv` bay may ride out a surplus shortfall younger than the stop delay.
    pub fn surplus_grace(&self, now_ms: u64, params: &Params) -> bool {
        self.is_on()
            && self
                .short_since_ms
                .is_none_or(|since| now_ms.saturating_sub(since) < params.pv_stop_delay_ms)
    }

    /// A paused `pv` bay may start: its surplus has sufficed for the start delay.
    pub fn surplus_ready(&self, now_ms: u64, params: &Params) -> bool {
        params.pv_start_delay_ms == 0
            || self
                .enough_since_ms
                .is_some_and(|since| now_ms.saturating_sub(since) >= params.pv_start_delay_ms)
    }

    /// Notes whether a paused `pv` bay waited this round with enough surplus; any round
    /// without enough starts the delay over.
    pub fn record_surplus_wait(&mut self, now_ms: u64, waiting: bool) {
        self.enough_since_ms = if waiting {
            Some(self.enough_since_ms.unwrap_or(now_ms))
        } else {
            None
        };
    }

    /// Whether a `minpv` bay may take surplus above its 6 A this round, given that the
    /// share it was given is above it (`wanted`): only once the surplus has lasted the `pv`
    /// start delay, and released again after it was gone for the stop delay.
    pub fn minpv_extra(&mut self, now_ms: u64, wanted: bool, params: &Params) -> bool {
        let held = |since: Option<u64>, delay: u64| {
            since.is_some_and(|at| now_ms.saturating_sub(at) >= delay)
        };
        if wanted {
            self.no_extra_since_ms = None;
            let since = *self.extra_since_ms.get_or_insert(now_ms);
            self.extra_on |= held(Some(since), params.pv_start_delay_ms);
        } else {
            self.extra_since_ms = None;
            let since = *self.no_extra_since_ms.get_or_insert(now_ms);
            if held(Some(since), params.pv_stop_delay_ms) {
                self.extra_on = false;
            }
        }
        self.extra_on
    }

    /// Holds a small increase back; never a decrease, never below `floor` (a goal that
    /// admission already fitted).
    pub fn damp(&self, target: Deciamps, floor: Deciamps, hysteresis: Deciamps) -> Deciamps {
        let last = self.last;
        let small_rise = target > last && target.get() - last.get() < hysteresis.get();
        if self.is_on() && last >= Deciamps::MIN_CHARGE && last >= floor && small_rise {
            last
        } else {
            target
        }
    }

    /// Notes this round's outcome; `short_of_surplus` when a `pv` bay was kept on grace.
    pub fn record(&mut self, now_ms: u64, current: Deciamps, short_of_surplus: bool) {
        let on = current > Deciamps::ZERO;
        self.short_since_ms = if on && short_of_surplus {
            Some(self.short_since_ms.unwrap_or(now_ms))
        } else {
            None
        };
        match (self.is_on(), on) {
            (false, true) => self.on_since_ms = Some(now_ms),
            (true, false) => {
                self.on_since_ms = None;
                self.off_since_ms = Some(now_ms);
            }
            _ => {}
        }
        self.last = current;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_only_holds_small_rises() {
        let mut memory = BayMemory::default();
        memory.record(0, Deciamps(100), false);
        let hyst = Deciamps(5);
        assert_eq!(
            memory.damp(Deciamps(103), Deciamps(60), hyst),
            Deciamps(100)
        );
        assert_eq!(
            memory.damp(Deciamps(105), Deciamps(60), hyst),
            Deciamps(105)
        );
        assert_eq!(memory.damp(Deciamps(98), Deciamps(60), hyst), Deciamps(98));
        assert_eq!(
            memory.damp(Deciamps(103), Deciamps(102), hyst),
            Deciamps(103)
        );
    }

    #[test]
    fn rotation_puts_long_chargers_last() {
        let params = Params::default();
        let mut long = BayMemory::default();
        long.record(0, Deciamps(60), false);
        let mut fresh = BayMemory::default();
        fresh.record(params.rotation_period_ms, Deciamps(60), false);
        let waiting = BayMemory::default();
        let now = params.rotation_period_ms + 1;
        let mut keys = [
            long.rotation_key(now, &params, 0),
            waiting.rotation_key(now, &params, 0),
            fresh.rotation_key(now, &params, 0),
        ];
        keys.sort_unstable();
        assert_eq!(keys[0], fresh.rotation_key(now, &params, 0));
        assert_eq!(keys[2], long.rotation_key(now, &params, 0));
    }
}
