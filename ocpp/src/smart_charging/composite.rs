//! The composite of the installed profiles: the cap now (per connector, for the whole charge
//! point) and the schedule GetCompositeSchedule reports.

use rust_decimal::Decimal;
use rust_ocpp::v1_6::types::{
    ChargingProfilePurposeType, ChargingRateUnitType, ChargingSchedule, ChargingSchedulePeriod,
};

use super::profiles::{InstalledProfile, Profiles};
use super::schedule::evaluate;

/// A cap in the units the backend used; whichever is set applies, both when both are set.
/// `current_a` is per phase, `power_w` the total (OCPP 1.6 §3.13).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChargingLimit {
    pub current_a: Option<f64>,
    pub power_w: Option<f64>,
    /// The fewest phases any applying period allows.
    pub number_phases: Option<u8>,
}

impl ChargingLimit {
    fn from_period(limit: f64, unit: &ChargingRateUnitType, number_phases: Option<u8>) -> Self {
        let (current_a, power_w) = match unit {
            ChargingRateUnitType::A => (Some(limit), None),
            ChargingRateUnitType::W => (None, Some(limit)),
        };
        Self {
            current_a,
            power_w,
            number_phases,
        }
    }

    /// The tighter of both, unit by unit.
    #[must_use]
    pub fn min(self, other: Self) -> Self {
        fn lower<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(if b < a { b } else { a }),
                (a, b) => a.or(b),
            }
        }
        Self {
            current_a: lower(self.current_a, other.current_a),
            power_w: lower(self.power_w, other.power_w),
            number_phases: lower(self.number_phases, other.number_phases),
        }
    }

    /// The cap in one unit, with `volts_per_phase` and the phases (3 if none) for the other.
    #[must_use]
    pub fn in_unit(self, unit: &ChargingRateUnitType, volts_per_phase: f64) -> Option<f64> {
        let phases = f64::from(self.number_phases.unwrap_or(3).max(1));
        let watts_per_amp = volts_per_phase * phases;
        let (from_a, from_w) = match unit {
            ChargingRateUnitType::A => (self.current_a, self.power_w.map(|w| w / watts_per_amp)),
            ChargingRateUnitType::W => (self.current_a.map(|a| a * watts_per_amp), self.power_w),
        };
        match (from_a, from_w) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The running transaction on a connector, as far as smart charging cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxContext {
    pub transaction_id: Option<i32>,
    pub start_wall_ms: u64,
}

/// The cap at an instant and when it may next change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitAt {
    pub limit: Option<ChargingLimit>,
    pub next_change_wall_ms: Option<u64>,
}

/// The highest stack level among `candidates` that applies at `at_wall_ms`.
fn best<'a>(
    candidates: impl Iterator<Item = &'a InstalledProfile>,
    at_wall_ms: u64,
    tx_start: Option<u64>,
    next: &mut Option<u64>,
) -> Option<ChargingLimit> {
    let mut winner: Option<(u32, ChargingLimit)> = None;
    for installed in candidates {
        let eval = evaluate(
            &installed.profile,
            at_wall_ms,
            tx_start,
            installed.installed_wall_ms,
        );
        if let Some(change) = eval.next_change_wall_ms {
            *next = Some(next.map_or(change, |n| n.min(change)));
        }
        let Some((limit, unit)) = eval.limit else {
            continue;
        };
        let level = installed.profile.stack_level;
        if winner
            .as_ref()
            .is_none_or(|(best_level, _)| level > *best_level)
        {
            winner = Some((
                level,
                ChargingLimit::from_period(limit, &unit, eval.number_phases),
            ));
        }
    }
    winner.map(|(_, limit)| limit)
}

/// The cap for `connector_id` (0 = the charge point as a whole: its ChargePointMaxProfile)
/// at `at_wall_ms`: the minimum of ChargePointMaxProfile and (TxProfile, else the
/// connector's TxDefaultProfile, else connector 0's), each the highest stack level that
/// applies.
#[must_use]
pub fn limit_at(
    profiles: &Profiles,
    connector_id: u32,
    at_wall_ms: u64,
    tx: Option<TxContext>,
) -> LimitAt {
    let mut next = None;
    let tx_start = tx.map(|tx| tx.start_wall_ms);
    let of = |purpose: ChargingProfilePurposeType, connector: u32| {
        profiles.all().iter().filter(move |p| {
            p.connector_id == connector && p.profile.charging_profile_purpose == purpose
        })
    };
    let max = best(
        of(ChargingProfilePurposeType::ChargePointMaxProfile, 0),
        at_wall_ms,
        tx_start,
        &mut next,
    );
    let per_transaction = if connector_id == 0 {
        None
    } else {
        let tx_profile = tx.and_then(|tx| {
            best(
                of(ChargingProfilePurposeType::TxProfile, connector_id).filter(|p| {
                    p.profile.transaction_id.is_none()
                        || p.profile.transaction_id == tx.transaction_id
                }),
                at_wall_ms,
                tx_start,
                &mut next,
            )
        });
        tx_profile
            .or_else(|| {
                best(
                    of(ChargingProfilePurposeType::TxDefaultProfile, connector_id),
                    at_wall_ms,
                    tx_start,
                    &mut next,
                )
            })
            .or_else(|| {
                best(
                    of(ChargingProfilePurposeType::TxDefaultProfile, 0),
                    at_wall_ms,
                    tx_start,
                    &mut next,
                )
            })
    };
    let limit = match (max, per_transaction) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    LimitAt {
        limit,
        next_change_wall_ms: next.filter(|n| *n > at_wall_ms),
    }
}

/// The most periods a reported composite schedule gets.
const MAX_COMPOSITE_PERIODS: usize = 96;

/// What GetCompositeSchedule asks for, with what is needed to answer in one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleQuery {
    pub connector_id: u32,
    pub from_wall_ms: u64,
    pub duration_s: u32,
    pub tx: Option<TxContext>,
    pub unit: ChargingRateUnitType,
    /// Only to convert between A and W for the report.
    pub volts_per_phase: f64,
    /// Fills the stretches no profile limits (the connector's rating), in `unit`.
    pub unlimited: f64,
}

/// GetCompositeSchedule: the caps from `from_wall_ms` for `duration_s`, in `unit`, periods
/// relative to `from_wall_ms`. `startSchedule` is left out, as errata 3.57 says (the
/// response's `scheduleStart` carries it).
#[must_use]
pub fn composite_schedule(profiles: &Profiles, query: &ScheduleQuery) -> ChargingSchedule {
    let ScheduleQuery {
        connector_id,
        from_wall_ms,
        duration_s,
        tx,
        ref unit,
        volts_per_phase,
        unlimited,
    } = *query;
    let end = from_wall_ms.saturating_add(u64::from(duration_s) * 1000);
    let mut periods: Vec<ChargingSchedulePeriod> = Vec::new();
    let mut at = from_wall_ms;
    while at < end && periods.len() < MAX_COMPOSITE_PERIODS {
        let here = limit_at(profiles, connector_id, at, tx);
        let value = here
            .limit
            .and_then(|limit| limit.in_unit(unit, volts_per_phase))
            .map_or(unlimited, |value| value.min(unlimited));
        // The schema wants multiples of 0.1; round down so the report never exceeds the cap.
        let limit = Decimal::from_f64_retain((value * 10.0).floor() / 10.0)
            .unwrap_or_default()
            .round_dp(1);
        let number_phases = here.limit.and_then(|l| l.number_phases).map(i32::from);
        if periods
            .last()
            .is_none_or(|last| last.limit != limit || last.number_phases != number_phases)
        {
            let offset_s = (at - from_wall_ms) / 1000;
            periods.push(ChargingSchedulePeriod {
                start_period: i32::try_from(offset_s).unwrap_or(i32::MAX),
                limit,
                number_phases,
            });
        }
        // Period boundaries are whole seconds; never loop on the same instant.
        at = here
            .next_change_wall_ms
            .unwrap_or(end)
            .max(at + 1000)
            .min(end);
    }
    ChargingSchedule {
        duration: i32::try_from(duration_s).ok(),
        start_schedule: None,
        charging_rate_unit: unit.clone(),
        charging_schedule_period: periods,
        min_charging_rate: None,
    }
}
