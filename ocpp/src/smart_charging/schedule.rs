//! One charging profile at one instant: which period applies and until when.

use rust_decimal::prelude::ToPrimitive;
use rust_ocpp::v1_6::types::RecurrencyKindType;
use rust_ocpp::v1_6::types::{ChargingProfile, ChargingProfileKindType, ChargingRateUnitType};

use crate::time::wall_ms_of;

const DAY_MS: u64 = 86_400_000;
const WEEK_MS: u64 = 7 * DAY_MS;

/// A profile's answer at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The period's limit, `None` when the profile does not apply now (not yet valid,
    /// expired, schedule ended): a lower stack level, or no limit, takes over.
    pub limit: Option<(f64, ChargingRateUnitType)>,
    /// Phases the period allows (OCPP's default is 3).
    pub number_phases: Option<u8>,
    /// The next instant (wall ms) at which this answer may change.
    pub next_change_wall_ms: Option<u64>,
}

/// Evaluates `profile` at `at_wall_ms`. `tx_start_wall_ms` anchors a Relative schedule; with
/// no transaction a Relative schedule is read as starting now (its first period holds), which
/// is what backends mean by a Relative ChargePointMaxProfile. `installed_wall_ms` anchors an
/// Absolute schedule without `startSchedule` (lenient).
#[must_use]
pub fn evaluate(
    profile: &ChargingProfile,
    at_wall_ms: u64,
    tx_start_wall_ms: Option<u64>,
    installed_wall_ms: u64,
) -> Evaluation {
    let none = |next| Evaluation {
        limit: None,
        number_phases: None,
        next_change_wall_ms: next,
    };
    let valid_from = profile.valid_from.map(wall_ms_of);
    let valid_to = profile.valid_to.map(wall_ms_of);
    if let Some(from) = valid_from.filter(|from| at_wall_ms < *from) {
        return none(Some(from));
    }
    if valid_to.is_some_and(|to| at_wall_ms >= to) {
        return none(None);
    }
    let schedule = &profile.charging_schedule;
    let start_schedule = schedule.start_schedule.map(wall_ms_of);
    let (start, recurrence_end) = match profile.charging_profile_kind {
        ChargingProfileKindType::Absolute => (start_schedule.unwrap_or(installed_wall_ms), None),
        ChargingProfileKindType::Relative => (tx_start_wall_ms.unwrap_or(at_wall_ms), None),
        ChargingProfileKindType::Recurring => {
            let Some(anchor) = start_schedule else {
                return none(None);
            };
            let length = match profile.recurrency_kind {
                Some(RecurrencyKindType::Weekly) => WEEK_MS,
                _ => DAY_MS,
            };
            if at_wall_ms < anchor {
                return none(Some(anchor));
            }
            let start = anchor + (at_wall_ms - anchor) / length * length;
            (start, Some(start + length))
        }
    };
    if at_wall_ms < start {
        return none(Some(start));
    }
    let offset_ms = at_wall_ms - start;
    let duration_ms = schedule
        .duration
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| s.saturating_mul(1000));
    // The answer changes at the end of validity, of the schedule's duration, of the recurrence
    // and at the next period's start, whichever comes first.
    let mut next = [valid_to, duration_ms.map(|d| start + d), recurrence_end];
    if duration_ms.is_some_and(|d| offset_ms >= d) {
        next[1] = None;
        return none(next.into_iter().flatten().min());
    }
    let period_start_ms = |period: &rust_ocpp::v1_6::types::ChargingSchedulePeriod| {
        u64::try_from(period.start_period)
            .unwrap_or(0)
            .saturating_mul(1000)
    };
    let current = schedule
        .charging_schedule_period
        .iter()
        .filter(|period| period_start_ms(period) <= offset_ms)
        .max_by_key(|period| period_start_ms(period));
    let following = schedule
        .charging_schedule_period
        .iter()
        .map(period_start_ms)
        .filter(|s| *s > offset_ms)
        .min()
        .map(|s| start + s);
    let next_change = next.into_iter().flatten().chain(following).min();
    // A Relative schedule without a transaction never moves on from its first period.
    let next_change = if profile.charging_profile_kind == ChargingProfileKindType::Relative
        && tx_start_wall_ms.is_none()
    {
        valid_to
    } else {
        next_change
    };
    match current {
        Some(period) => Evaluation {
            limit: period
                .limit
                .to_f64()
                .map(|limit| (limit.max(0.0), schedule.charging_rate_unit.clone())),
            number_phases: period.number_phases.and_then(|n| u8::try_from(n).ok()),
            next_change_wall_ms: next_change,
        },
        None => none(next_change),
    }
}
