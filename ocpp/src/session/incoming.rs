//! The backend's calls: each one answered, with a CALLRESULT or the right CALLERROR.

use rust_ocpp::v1_6::messages::change_availability::{
    ChangeAvailabilityRequest, ChangeAvailabilityResponse,
};
use rust_ocpp::v1_6::messages::change_configuration::{
    ChangeConfigurationRequest, ChangeConfigurationResponse,
};
use rust_ocpp::v1_6::messages::clear_cache::{ClearCacheRequest, ClearCacheResponse};
use rust_ocpp::v1_6::messages::data_transfer::{DataTransferRequest, DataTransferResponse};
use rust_ocpp::v1_6::messages::get_configuration::{
    GetConfigurationRequest, GetConfigurationResponse,
};
use rust_ocpp::v1_6::messages::get_local_list_version::{
    GetLocalListVersionRequest, GetLocalListVersionResponse,
};
use rust_ocpp::v1_6::messages::remote_start_transaction::{
    RemoteStartTransactionRequest, RemoteStartTransactionResponse,
};
use rust_ocpp::v1_6::messages::remote_stop_transaction::{
    RemoteStopTransactionRequest, RemoteStopTransactionResponse,
};
use rust_ocpp::v1_6::messages::reset::{ResetRequest, ResetResponse};
use rust_ocpp::v1_6::messages::send_local_list::{SendLocalListRequest, SendLocalListResponse};
use rust_ocpp::v1_6::messages::trigger_message::{TriggerMessageRequest, TriggerMessageResponse};
use rust_ocpp::v1_6::messages::unlock_connector::{
    UnlockConnectorRequest, UnlockConnectorResponse,
};
use rust_ocpp::v1_6::types::{
    AvailabilityStatus, AvailabilityType, ChargePointStatus, ChargingProfilePurposeType,
    ClearCacheStatus, ConfigurationStatus, DataTransferStatus, MessageTrigger, ReadingContext,
    RemoteStartStopStatus, ResetRequestStatus, ResetResponseStatus, TriggerMessageStatus,
    UnlockStatus,
};
use serde_json::Value;

use super::outgoing::Tag;
use super::{ChargePoint, Event, Registration};
use crate::config_keys::key;
use crate::rpc::{decode, encode, encode_error, encode_result, DecodeError, ErrorCode};
use crate::time::Now;

/// A CALL we answer with a CALLERROR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub description: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, description: &str) -> Self {
        Self {
            code,
            description: description.to_owned(),
        }
    }
}

impl From<DecodeError> for Refusal {
    fn from(err: DecodeError) -> Self {
        Self {
            code: err.code,
            description: err.description,
        }
    }
}

type Answer = Result<Value, Refusal>;

impl ChargePoint {
    pub(crate) fn handle_call(&mut self, now: Now, id: &str, action: &str, payload: Value) {
        if !self.registration.may_answer(now.mono_ms) {
            // OCPP 1.6 §4.2: a rejected charge point sends nothing until the interval passed.
            self.counters.calls_ignored_while_rejected += 1;
            return;
        }
        let answer = self.answer(now, action, payload);
        let text = match answer {
            Ok(payload) => encode_result(id, &payload),
            Err(refusal) => {
                self.counters.calls_refused += 1;
                encode_error(id, refusal.code, &refusal.description)
            }
        };
        // Answers go before any CALL queued by the handler (TriggerMessage: the .conf first).
        self.transmit.push_back(text);
    }

    fn answer(&mut self, now: Now, action: &str, payload: Value) -> Answer {
        match action {
            "ChangeAvailability" => self.change_availability(now, payload),
            "ChangeConfiguration" => self.change_configuration(payload),
            "ClearCache" => {
                let _: ClearCacheRequest = decode(payload)?;
                // No authorisation cache (errata 3.23: then Rejected).
                Ok(encode(&ClearCacheResponse {
                    status: ClearCacheStatus::Rejected,
                }))
            }
            "DataTransfer" => {
                let _: DataTransferRequest = decode(payload)?;
                Ok(encode(&DataTransferResponse {
                    status: DataTransferStatus::UnknownVendorId,
                    data: None,
                }))
            }
            "GetConfiguration" => {
                let request: GetConfigurationRequest = decode(payload)?;
                let (known, unknown) = self.keys.get(request.key.as_deref());
                Ok(encode(&GetConfigurationResponse {
                    configuration_key: Some(known),
                    unknown_key: (!unknown.is_empty()).then_some(unknown),
                }))
            }
            "RemoteStartTransaction" => self.remote_start(payload),
            "RemoteStopTransaction" => self.remote_stop(payload),
            "Reset" => {
                let request: ResetRequest = decode(payload)?;
                self.push_event(Event::ResetRequested {
                    hard: request.kind == ResetRequestStatus::Hard,
                });
                Ok(encode(&ResetResponse {
                    status: ResetResponseStatus::Accepted,
                }))
            }
            "UnlockConnector" => {
                let request: UnlockConnectorRequest = decode(payload)?;
                let known = self.connector(request.connector_id).is_some();
                let status = if known && self.config.has_connector_lock {
                    self.push_event(Event::UnlockRequested {
                        connector_id: request.connector_id,
                    });
                    UnlockStatus::Unlocked
                } else {
                    // Unknown connector (errata 3.85) or a fixed cable: nothing to unlock.
                    UnlockStatus::NotSupported
                };
                Ok(encode(&UnlockConnectorResponse { status }))
            }
            "GetLocalListVersion" => {
                let _: GetLocalListVersionRequest = decode(payload)?;
                Ok(encode(&GetLocalListVersionResponse {
                    list_version: self.local_list.version,
                }))
            }
            "SendLocalList" => {
                let request: SendLocalListRequest = decode(payload)?;
                let status = self.local_list.update(
                    request.list_version,
                    &request.update_type,
                    request.local_authorization_list,
                );
                if status == rust_ocpp::v1_6::types::UpdateStatus::Accepted {
                    self.push_event(Event::LocalListChanged {
                        version: self.local_list.version,
                        entries: self.local_list.entries(),
                    });
                }
                Ok(encode(&SendLocalListResponse { status }))
            }
            "TriggerMessage" => self.trigger_message(now, payload),
            "SetChargingProfile" => self.set_charging_profile(now, payload),
            "ClearChargingProfile" => self.clear_charging_profile(payload),
            "GetCompositeSchedule" => self.get_composite_schedule(now, payload),
            "UpdateFirmware" => self.update_firmware(payload),
            "GetDiagnostics" => Self::get_diagnostics(payload),
            // Known 1.6 actions of a profile we do not advertise (Reservation) and the
            // security extension's.
            "ReserveNow"
            | "CancelReservation"
            | "CertificateSigned"
            | "DeleteCertificate"
            | "ExtendedTriggerMessage"
            | "GetInstalledCertificateIds"
            | "GetLog"
            | "InstallCertificate"
            | "SignedUpdateFirmware" => Err(Refusal::new(
                ErrorCode::NotSupported,
                "feature profile not supported",
            )),
            _ => Err(Refusal::new(ErrorCode::NotImplemented, "unknown action")),
        }
    }

    fn change_availability(&mut self, now: Now, payload: Value) -> Answer {
        let request: ChangeAvailabilityRequest = decode(payload)?;
        let answer = |status| Ok(encode(&ChangeAvailabilityResponse { status }));
        let inoperative = request.kind == AvailabilityType::Inoperative;
        let targets: Vec<u32> = match request.connector_id {
            0 => (1..=self.config.connectors).collect(),
            id if self.connector(id).is_some() => vec![id],
            _ => return answer(AvailabilityStatus::Rejected),
        };
        let mut scheduled = false;
        for &connector_id in &targets {
            let Some(connector) = self.connector_mut(connector_id) else {
                continue;
            };
            if connector.transaction.is_some() && inoperative != connector.inoperative {
                connector.scheduled_inoperative = Some(inoperative);
                scheduled = true;
            } else {
                connector.scheduled_inoperative = None;
                connector.inoperative = inoperative;
                self.push_event(Event::AvailabilityChanged {
                    connector_id,
                    operative: !inoperative,
                });
                self.queue_status(now, connector_id, false);
            }
        }
        if request.connector_id == 0 {
            self.queue_status(now, 0, false);
        }
        answer(if scheduled {
            AvailabilityStatus::Scheduled
        } else {
            AvailabilityStatus::Accepted
        })
    }

    fn change_configuration(&mut self, payload: Value) -> Answer {
        let request: ChangeConfigurationRequest = decode(payload)?;
        let (status, changed) = self.keys.change(&request.key, &request.value);
        if let Some(changed) = changed {
            match changed.key {
                key::CLOCK_ALIGNED_DATA_INTERVAL => self.next_aligned_wall_ms = None,
                key::METER_VALUE_SAMPLE_INTERVAL => {
                    let sample_ms =
                        u64::from(self.keys.int(key::METER_VALUE_SAMPLE_INTERVAL)) * 1000;
                    let now_mono = self.last_now.mono_ms;
                    for connector in &mut self.connectors {
                        if connector.transaction.is_some() {
                            connector.next_sample_mono_ms =
                                (sample_ms > 0).then(|| now_mono + sample_ms);
                        }
                    }
                }
                _ => {}
            }
            self.push_event(Event::ConfigurationChanged {
                key: changed.key.to_owned(),
                value: changed.value,
            });
        }
        Ok(encode(&ChangeConfigurationResponse {
            status: if status == ConfigurationStatus::Accepted {
                ConfigurationStatus::Accepted
            } else {
                status
            },
        }))
    }

    fn remote_start(&mut self, payload: Value) -> Answer {
        let request: RemoteStartTransactionRequest = decode(payload)?;
        let answer = |status| Ok(encode(&RemoteStartTransactionResponse { status }));
        if !self.registration.is_accepted() {
            return answer(RemoteStartStopStatus::Rejected);
        }
        let free = |c: &super::connector::Connector| {
            c.transaction.is_none()
                && !c.inoperative
                && !matches!(
                    c.effective().0,
                    ChargePointStatus::Faulted | ChargePointStatus::Unavailable
                )
        };
        let connector_id = match request.connector_id {
            Some(id) => self.connector(id).filter(|c| free(c)).map(|_| id),
            None => (1..=self.config.connectors).find(|id| self.connector(*id).is_some_and(free)),
        };
        let Some(connector_id) = connector_id else {
            return answer(RemoteStartStopStatus::Rejected);
        };
        if let Some(profile) = request.charging_profile {
            // Only a TxProfile without a transaction id belongs here (OCPP 1.6 §5.11).
            if profile.charging_profile_purpose != ChargingProfilePurposeType::TxProfile
                || profile.transaction_id.is_some()
            {
                return answer(RemoteStartStopStatus::Rejected);
            }
            if let Some(connector) = self.connector_mut(connector_id) {
                connector.remote_start_profile = Some(profile);
            }
        }
        self.push_event(Event::RemoteStartRequested {
            connector_id,
            id_tag: request.id_tag.chars().take(20).collect(),
        });
        answer(RemoteStartStopStatus::Accepted)
    }

    fn remote_stop(&mut self, payload: Value) -> Answer {
        let request: RemoteStopTransactionRequest = decode(payload)?;
        let found = (1..=self.config.connectors).find(|id| {
            self.connector(*id)
                .and_then(|c| c.transaction.as_ref())
                .is_some_and(|t| t.transaction_id == Some(request.transaction_id))
        });
        let status = match found {
            Some(connector_id) if self.registration.is_accepted() => {
                self.push_event(Event::RemoteStopRequested { connector_id });
                RemoteStartStopStatus::Accepted
            }
            _ => RemoteStartStopStatus::Rejected,
        };
        Ok(encode(&RemoteStopTransactionResponse { status }))
    }

    fn trigger_message(&mut self, now: Now, payload: Value) -> Answer {
        let request: TriggerMessageRequest = decode(payload)?;
        let answer = |status| Ok(encode(&TriggerMessageResponse { status }));
        let connectors: Vec<u32> = match request.connector_id {
            None => (1..=self.config.connectors).collect(),
            Some(id) if self.connector(id).is_some() => vec![id],
            Some(0) => vec![0],
            Some(_) => return answer(TriggerMessageStatus::Rejected),
        };
        match request.requested_message {
            MessageTrigger::BootNotification => {
                // After Accepted a trigger for it is refused (errata 3.35).
                if self.registration.is_accepted() {
                    return answer(TriggerMessageStatus::Rejected);
                }
                if let Registration::Pending { retry_at_mono_ms } = &mut self.registration {
                    *retry_at_mono_ms = now.mono_ms;
                }
            }
            MessageTrigger::Heartbeat => {
                self.request(
                    "Heartbeat",
                    encode(&rust_ocpp::v1_6::messages::heart_beat::HeartbeatRequest {}),
                    Tag::Heartbeat,
                    true,
                );
            }
            MessageTrigger::StatusNotification => {
                for connector_id in connectors {
                    self.queue_status(now, connector_id, true);
                }
            }
            MessageTrigger::MeterValues => {
                for connector_id in connectors.into_iter().filter(|c| *c > 0) {
                    self.queue_meter_values(connector_id, &ReadingContext::Trigger, now.wall_ms);
                }
            }
            MessageTrigger::FirmwareStatusNotification => self.trigger_firmware_status(),
            MessageTrigger::DiagnosticsStatusNotification => self.trigger_diagnostics_status(),
        }
        answer(TriggerMessageStatus::Accepted)
    }
}
