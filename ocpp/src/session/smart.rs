//! The backend's smart charging calls and the caps they yield over time.

use rust_ocpp::v1_6::messages::clear_charging_profile::{
    ClearChargingProfileRequest, ClearChargingProfileResponse,
};
use rust_ocpp::v1_6::messages::get_composite_schedule::{
    GetCompositeScheduleRequest, GetCompositeScheduleResponse,
};
use rust_ocpp::v1_6::messages::set_charging_profile::{
    SetChargingProfileRequest, SetChargingProfileResponse,
};
use rust_ocpp::v1_6::types::{
    ChargingProfileStatus, ChargingRateUnitType, ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
};
use serde_json::Value;

use super::incoming::Refusal;
use super::{ChargePoint, Event};
use crate::queue::UNKNOWN_TRANSACTION_ID;
use crate::rpc::{decode, encode, ErrorCode};
use crate::smart_charging::{composite_schedule, limit_at, ClearFilter, ScheduleQuery, TxContext};
use crate::time::Now;

/// GetCompositeSchedule looks at most a week ahead.
const MAX_COMPOSITE_DURATION_S: i32 = 7 * 86_400;

impl ChargePoint {
    fn tx_context(&self, connector_id: u32) -> Option<TxContext> {
        self.connector(connector_id)
            .and_then(|c| c.transaction.as_ref())
            .map(|t| TxContext {
                transaction_id: t.transaction_id,
                start_wall_ms: t.start_wall_ms,
            })
    }

    pub(crate) fn set_charging_profile(
        &mut self,
        now: Now,
        payload: Value,
    ) -> Result<Value, Refusal> {
        let request: SetChargingProfileRequest = decode(payload)?;
        let answer = |status| encode(&SetChargingProfileResponse { status });
        let Ok(connector_id) = u32::try_from(request.connector_id) else {
            return Ok(answer(ChargingProfileStatus::Rejected));
        };
        let active = self
            .tx_context(connector_id)
            .map(|tx| tx.transaction_id.unwrap_or(UNKNOWN_TRANSACTION_ID));
        let installed = self.profiles.install(
            connector_id,
            request.cs_charging_profiles,
            self.config.connectors,
            active,
            now.wall_ms,
        );
        if installed.is_err() {
            return Ok(answer(ChargingProfileStatus::Rejected));
        }
        self.limits_dirty = true;
        self.push_event(Event::ChargingProfilesChanged(self.profiles.all().to_vec()));
        Ok(answer(ChargingProfileStatus::Accepted))
    }

    pub(crate) fn clear_charging_profile(&mut self, payload: Value) -> Result<Value, Refusal> {
        let request: ClearChargingProfileRequest = decode(payload)?;
        let filter = ClearFilter {
            id: request.id,
            // A negative connector matches nothing.
            connector_id: request
                .connector_id
                .map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
            purpose: request.charging_profile_purpose,
            stack_level: request
                .stack_level
                .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
        };
        let status = if self.profiles.clear(&filter) {
            self.limits_dirty = true;
            self.push_event(Event::ChargingProfilesChanged(self.profiles.all().to_vec()));
            ClearChargingProfileStatus::Accepted
        } else {
            ClearChargingProfileStatus::Unknown
        };
        Ok(encode(&ClearChargingProfileResponse { status }))
    }

    pub(crate) fn get_composite_schedule(
        &self,
        now: Now,
        payload: Value,
    ) -> Result<Value, Refusal> {
        let request: GetCompositeScheduleRequest = decode(payload)?;
        let rejected = || {
            encode(&GetCompositeScheduleResponse {
                status: GetCompositeScheduleStatus::Rejected,
                connector_id: None,
                schedule_start: None,
                charging_schedule: None,
            })
        };
        let connector_id = match u32::try_from(request.connector_id) {
            Ok(id) if id <= self.config.connectors => id,
            _ => return Ok(rejected()),
        };
        if request.duration < 0 {
            return Err(Refusal::new(
                ErrorCode::PropertyConstraintViolation,
                "duration must not be negative",
            ));
        }
        let duration_s = u32::try_from(request.duration.min(MAX_COMPOSITE_DURATION_S)).unwrap_or(0);
        let unit = request
            .charging_rate_unit
            .unwrap_or(ChargingRateUnitType::A);
        let connectors_here = if connector_id == 0 {
            self.config.connectors
        } else {
            1
        };
        let rated_a = self.config.rated_current_a * f64::from(connectors_here);
        let unlimited = match unit {
            ChargingRateUnitType::A => rated_a,
            ChargingRateUnitType::W => rated_a * self.config.volts_per_phase * 3.0,
        };
        let query = ScheduleQuery {
            connector_id,
            from_wall_ms: now.wall_ms,
            duration_s,
            tx: self.tx_context(connector_id),
            unit,
            volts_per_phase: self.config.volts_per_phase,
            unlimited,
        };
        let schedule = composite_schedule(&self.profiles, &query);
        Ok(encode(&GetCompositeScheduleResponse {
            status: GetCompositeScheduleStatus::Accepted,
            connector_id: Some(request.connector_id),
            schedule_start: Some(now.wall()),
            charging_schedule: Some(schedule),
        }))
    }

    /// Hands out every cap that changed since the last call (profiles, transactions, time).
    pub(crate) fn update_limits(&mut self, now: Now) {
        let due = self
            .next_limit_change_wall_ms
            .is_some_and(|at| now.wall_ms >= at);
        if !self.limits_dirty && !due {
            return;
        }
        self.limits_dirty = false;
        let mut next: Option<u64> = None;
        for connector_id in 0..=self.config.connectors {
            let here = limit_at(
                &self.profiles,
                connector_id,
                now.wall_ms,
                self.tx_context(connector_id),
            );
            if let Some(change) = here.next_change_wall_ms {
                next = Some(next.map_or(change, |n| n.min(change)));
            }
            let last = if connector_id == 0 {
                &mut self.charge_point_limit
            } else {
                match self.connector_mut(connector_id) {
                    Some(connector) => &mut connector.limit,
                    None => continue,
                }
            };
            if *last != here.limit {
                *last = here.limit;
                self.events.push_back(Event::ChargingLimitChanged {
                    connector_id,
                    limit: here.limit,
                });
            }
        }
        self.next_limit_change_wall_ms = next;
    }
}
