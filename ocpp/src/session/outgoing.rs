//! Our requests: what waits to be sent, which goes next, what their answers mean.
//!
//! Order: BootNotification before anything; then, one CALL at a time, the oldest of the
//! waiting requests and the head of the transaction queue. A request queued after a
//! transaction message waits for it, so the backend sees things in the order they happened;
//! while the transaction queue is held back (retry back-off) other requests overtake it, as
//! OCPP 1.6 §3.7 allows.

use rust_ocpp::v1_6::messages::authorize::{AuthorizeRequest, AuthorizeResponse};
use rust_ocpp::v1_6::messages::boot_notification::{
    BootNotificationRequest, BootNotificationResponse,
};
use rust_ocpp::v1_6::messages::heart_beat::HeartbeatRequest;
use rust_ocpp::v1_6::messages::start_transaction::StartTransactionResponse;
use rust_ocpp::v1_6::messages::status_notification::StatusNotificationRequest;
use rust_ocpp::v1_6::types::{AuthorizationStatus, ChargePointErrorCode, ChargePointStatus};
use serde_json::Value;

use super::{ChargePoint, Event};
use crate::config_keys::key;
use crate::queue::{LocalTxId, Outcome};
use crate::rpc::{decode, encode, ErrorCode, OutgoingCall};
use crate::time::Now;

/// What one of our CALLs was for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tag {
    Boot,
    Heartbeat,
    Status {
        connector_id: u32,
        reported: (ChargePointStatus, ChargePointErrorCode),
    },
    Authorize {
        connector_id: u32,
        id_tag: String,
    },
    /// MeterValues outside a transaction (clock-aligned, triggered): not durable.
    MeterValues,
    FirmwareStatus,
    DiagnosticsStatus,
    Transaction {
        seq: u64,
        local_tx: LocalTxId,
        is_start: bool,
    },
}

/// A request waiting for its turn.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub call: OutgoingCall<Tag>,
    /// Transaction messages with a lower `seq` were queued before this request.
    pub after_tx_seq: u64,
    /// Asked for by TriggerMessage: may go while registration is Pending.
    pub triggered: bool,
}

impl Pending {
    /// Statuses (re-derived anyway), Authorize and firmware progress (each step is news
    /// to the backend) survive a reconnect; heartbeats and snapshots do not.
    pub fn survives_disconnect(&self) -> bool {
        matches!(
            self.call.tag,
            Tag::Status { .. } | Tag::Authorize { .. } | Tag::FirmwareStatus
        )
    }
}

impl ChargePoint {
    pub(crate) fn request(
        &mut self,
        action: &'static str,
        payload: Value,
        tag: Tag,
        triggered: bool,
    ) {
        let pending = Pending {
            call: OutgoingCall {
                action,
                payload,
                tag,
            },
            after_tx_seq: self.queue.next_seq(),
            triggered,
        };
        self.queue_request(pending);
    }

    /// Queues a StatusNotification with the connector's current status, replacing one for
    /// the same connector that has not gone out yet (only the current status matters).
    pub(crate) fn queue_status(&mut self, now: Now, connector_id: u32, triggered: bool) {
        let reported = if connector_id == 0 {
            let all_off = self.connectors.iter().all(|c| c.inoperative);
            let status = if all_off {
                ChargePointStatus::Unavailable
            } else {
                ChargePointStatus::Available
            };
            (status, ChargePointErrorCode::NoError)
        } else {
            match self.connector(connector_id) {
                Some(connector) => connector.effective(),
                None => return,
            }
        };
        let vendor_error_code = self.connector(connector_id).and_then(|c| match &c.error {
            Some(super::ConnectorError::Other { vendor_error_code }) => {
                Some(vendor_error_code.chars().take(50).collect())
            }
            _ => None,
        });
        self.pending.retain(
            |p| !matches!(p.call.tag, Tag::Status { connector_id: c, .. } if c == connector_id),
        );
        let request = StatusNotificationRequest {
            connector_id,
            error_code: reported.1.clone(),
            info: None,
            status: reported.0.clone(),
            timestamp: Some(now.wall()),
            vendor_id: None,
            vendor_error_code,
        };
        self.request(
            "StatusNotification",
            encode(&request),
            Tag::Status {
                connector_id,
                reported,
            },
            triggered,
        );
    }

    /// After a (re)connect: the connectors whose status the backend has not acknowledged.
    pub(crate) fn queue_status_changes(&mut self) {
        if !self.registration.is_accepted() {
            return;
        }
        let now = self.last_now;
        for connector_id in 1..=self.config.connectors {
            let stale = self
                .connector(connector_id)
                .is_some_and(|c| c.reported.as_ref() != Some(&c.effective()));
            let queued = self.pending.iter().any(
                |p| matches!(p.call.tag, Tag::Status { connector_id: c, .. } if c == connector_id),
            );
            if stale && !queued {
                self.queue_status(now, connector_id, false);
            }
        }
    }

    pub(crate) fn queue_boot_notification(&mut self) -> OutgoingCall<Tag> {
        let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
        let request = BootNotificationRequest {
            charge_box_serial_number: None,
            charge_point_model: cut(&self.config.model, 20),
            charge_point_serial_number: self.config.serial_number.as_deref().map(|s| cut(s, 25)),
            charge_point_vendor: cut(&self.config.vendor, 20),
            firmware_version: self.config.firmware_version.as_deref().map(|s| cut(s, 50)),
            iccid: None,
            imsi: None,
            meter_serial_number: None,
            meter_type: None,
        };
        OutgoingCall {
            action: "BootNotification",
            payload: encode(&request),
            tag: Tag::Boot,
        }
    }

    pub(crate) fn heartbeat_due_mono_ms(&self) -> Option<u64> {
        let interval_s = self.keys.int(key::HEARTBEAT_INTERVAL);
        (self.connected && self.registration.is_accepted() && interval_s > 0)
            .then(|| self.last_sent_mono_ms + u64::from(interval_s) * 1000)
    }

    /// Sends the next CALL if the line is free.
    pub(crate) fn start_next_call(&mut self, now: Now) {
        if !self.connected || !self.rpc.is_idle() {
            return;
        }
        if let Some(due) = self.registration.next_boot_mono_ms() {
            if now.mono_ms >= due {
                let call = self.queue_boot_notification();
                self.registration = super::Registration::BootSent;
                return self.send(now, call);
            }
        }
        if self
            .heartbeat_due_mono_ms()
            .is_some_and(|due| now.mono_ms >= due)
            && !self.pending.iter().any(|p| p.call.tag == Tag::Heartbeat)
        {
            self.request(
                "Heartbeat",
                encode(&HeartbeatRequest {}),
                Tag::Heartbeat,
                false,
            );
        }
        let accepted = self.registration.may_send_requests();
        let triggered_only = !accepted && self.registration.may_send_triggered();
        let tx_head = if accepted {
            self.queue.ready(now.mono_ms)
        } else {
            None
        };
        let next_pending = self
            .pending
            .iter()
            .position(|p| accepted || (triggered_only && p.triggered));
        let pending_first = match (next_pending, &tx_head) {
            (Some(index), Some((seq, _, _))) => self
                .pending
                .get(index)
                .is_some_and(|p| p.after_tx_seq <= *seq),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if pending_first {
            if let Some(pending) = next_pending.and_then(|index| self.pending.remove(index)) {
                self.send(now, pending.call);
            }
        } else if let Some((seq, action, payload)) = tx_head {
            let local_tx = self.queue.head_local_tx().unwrap_or_default();
            self.send(
                now,
                OutgoingCall {
                    action,
                    payload,
                    tag: Tag::Transaction {
                        seq,
                        local_tx,
                        is_start: action == "StartTransaction",
                    },
                },
            );
        }
    }

    fn send(&mut self, now: Now, call: OutgoingCall<Tag>) {
        let text = self
            .rpc
            .start(now.mono_ms, self.config.response_timeout_ms, call);
        self.transmit.push_back(text);
        self.last_sent_mono_ms = now.mono_ms;
    }

    /// A CALLRESULT for our CALL.
    pub(crate) fn on_result(&mut self, now: Now, tag: Tag, payload: Value) {
        match tag {
            Tag::Boot => match decode::<BootNotificationResponse>(payload) {
                Ok(answer) => {
                    let interval_ms = u64::from(answer.interval) * 1000;
                    self.registration.on_boot_answer(
                        &answer.status,
                        now.mono_ms,
                        interval_ms,
                        self.config.boot_retry_ms,
                    );
                    if self.registration.is_accepted() {
                        if answer.interval > 0 {
                            self.keys
                                .change(key::HEARTBEAT_INTERVAL, &answer.interval.to_string());
                        }
                        self.queue_status(now, 0, false);
                        for connector in &mut self.connectors {
                            connector.reported = None;
                        }
                        self.queue_status_changes();
                    }
                }
                Err(_) => self.on_call_error(now, Tag::Boot, ErrorCode::FormationViolation),
            },
            Tag::Status {
                connector_id,
                reported,
            } => {
                if let Some(connector) = self.connector_mut(connector_id) {
                    connector.reported = Some(reported);
                }
            }
            Tag::Authorize {
                connector_id,
                id_tag,
            } => {
                let accepted = decode::<AuthorizeResponse>(payload)
                    .is_ok_and(|answer| answer.id_tag_info.status == AuthorizationStatus::Accepted);
                self.push_event(Event::Authorized {
                    connector_id,
                    id_tag,
                    accepted,
                });
            }
            Tag::Heartbeat | Tag::MeterValues | Tag::FirmwareStatus | Tag::DiagnosticsStatus => {}
            Tag::Transaction {
                seq,
                local_tx,
                is_start,
            } => {
                if !is_start {
                    self.queue.delivered(seq, None);
                    return;
                }
                match decode::<StartTransactionResponse>(payload) {
                    Ok(answer) => {
                        self.queue.delivered(seq, Some(answer.transaction_id));
                        self.on_transaction_id(
                            local_tx,
                            answer.transaction_id,
                            &answer.id_tag_info.status,
                        );
                    }
                    Err(_) => self.on_call_error(
                        now,
                        Tag::Transaction {
                            seq,
                            local_tx,
                            is_start,
                        },
                        ErrorCode::FormationViolation,
                    ),
                }
            }
        }
    }

    /// A CALLERROR (or an unreadable CALLRESULT) for our CALL.
    pub(crate) fn on_call_error(&mut self, now: Now, tag: Tag, _code: ErrorCode) {
        self.counters.failed_calls += 1;
        match tag {
            Tag::Boot => self
                .registration
                .on_boot_failed(now.mono_ms, self.config.boot_retry_ms),
            Tag::Transaction { seq, .. } => {
                let attempts = self.keys.int(key::TRANSACTION_MESSAGE_ATTEMPTS);
                let retry_ms =
                    u64::from(self.keys.int(key::TRANSACTION_MESSAGE_RETRY_INTERVAL)) * 1000;
                if let Some(Outcome::Discarded(message)) =
                    self.queue.failed(seq, now.mono_ms, attempts, retry_ms)
                {
                    self.counters.tx_messages_discarded += 1;
                    self.push_event(Event::TxMessageDiscarded {
                        seq: message.seq,
                        action: message.action,
                    });
                }
            }
            Tag::Authorize {
                connector_id,
                id_tag,
            } => self.push_event(Event::Authorized {
                connector_id,
                id_tag,
                accepted: false,
            }),
            Tag::Heartbeat
            | Tag::Status { .. }
            | Tag::MeterValues
            | Tag::FirmwareStatus
            | Tag::DiagnosticsStatus => {}
        }
    }

    /// Our CALL got no answer (timeout, connection lost).
    pub(crate) fn on_no_answer(&mut self, now: Now, tag: Tag) {
        match tag {
            Tag::Boot => self
                .registration
                .on_boot_failed(now.mono_ms, self.config.boot_retry_ms),
            Tag::Transaction { seq, .. } => {
                let retry_ms =
                    u64::from(self.keys.int(key::TRANSACTION_MESSAGE_RETRY_INTERVAL)) * 1000;
                self.queue.defer(seq, now.mono_ms, retry_ms);
            }
            Tag::Authorize { .. } => self.on_call_error(now, tag, ErrorCode::GenericError),
            Tag::FirmwareStatus => self.resend_firmware_status(),
            // Re-queued from the connector's state after the next (re)connect.
            Tag::Heartbeat | Tag::Status { .. } | Tag::MeterValues | Tag::DiagnosticsStatus => {}
        }
    }

    /// Authorize an id tag for `connector_id`: the local list answers at once when it
    /// accepts the tag (`LocalPreAuthorize`) or the backend is away (`LocalAuthorizeOffline`);
    /// otherwise an Authorize goes to the backend. The answer comes as `Event::Authorized`.
    pub fn authorize(&mut self, now: Now, connector_id: u32, id_tag: &str) {
        let id_tag: String = id_tag.chars().take(20).collect();
        let list_on = self.keys.flag(key::LOCAL_AUTH_LIST_ENABLED);
        let offline = !self.connected || !self.registration.is_accepted();
        let local_first = self.keys.flag("LocalPreAuthorize") || offline;
        if list_on && local_first && self.local_list.accepts(&id_tag) {
            self.push_event(Event::Authorized {
                connector_id,
                id_tag,
                accepted: true,
            });
        } else if offline && !self.keys.flag("LocalAuthorizeOffline") {
            self.push_event(Event::Authorized {
                connector_id,
                id_tag,
                accepted: false,
            });
        } else {
            let request = AuthorizeRequest {
                id_tag: id_tag.clone(),
            };
            self.request(
                "Authorize",
                encode(&request),
                Tag::Authorize {
                    connector_id,
                    id_tag,
                },
                false,
            );
        }
        self.drive(now);
    }
}
