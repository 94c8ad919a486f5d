//! The bay's side: statuses, sessions as transactions, meter readings as MeterValues.

use rust_ocpp::v1_6::messages::meter_values::MeterValuesRequest;
use rust_ocpp::v1_6::messages::start_transaction::StartTransactionRequest;
use rust_ocpp::v1_6::messages::stop_transaction::StopTransactionRequest;
use rust_ocpp::v1_6::types::{AuthorizationStatus, ReadingContext};

use super::connector::{ConnectorEvent, MeterReading, OpenTransaction};
use super::meter::{meter_value, next_aligned_wall_ms};
use super::outgoing::Tag;
use super::{ChargePoint, Event};
use crate::config_keys::key;
use crate::queue::{LocalTxId, UNKNOWN_TRANSACTION_ID};
use crate::rpc::encode;
use crate::time::{wall_from_ms, Now};

/// An id tag is at most 20 characters (IdToken).
const ID_TAG_MAX_LEN: usize = 20;

fn whole_wh(energy_wh: u64) -> i32 {
    i32::try_from(energy_wh).unwrap_or(i32::MAX)
}

impl ChargePoint {
    pub(crate) fn connector_event(&mut self, now: Now, connector_id: u32, event: ConnectorEvent) {
        match event {
            ConnectorEvent::StatusChanged { status, error } => {
                let Some(connector) = self.connector_mut(connector_id) else {
                    return;
                };
                let before = connector.effective();
                connector.status = Some(status);
                connector.error = error;
                if connector.effective() != before || connector.reported.is_none() {
                    self.queue_status(now, connector_id, false);
                }
            }
            ConnectorEvent::MeterSample(reading) => {
                self.take_reading(connector_id, reading);
            }
            ConnectorEvent::SessionStarted { id_tag, meter } => {
                self.start_transaction(now, connector_id, &id_tag, meter);
            }
            ConnectorEvent::SessionStopped {
                meter,
                reason,
                id_tag,
            } => self.stop_transaction(now, connector_id, meter, reason.into(), id_tag),
        }
    }

    /// Keeps the energy register monotonic: a lower reading (meter swap, glitch) is counted
    /// and the highest one stays.
    fn take_reading(&mut self, connector_id: u32, mut reading: MeterReading) -> MeterReading {
        let previous = self
            .connector(connector_id)
            .and_then(|c| c.reading)
            .map(|r| r.energy_import_wh);
        if let Some(previous) = previous.filter(|p| reading.energy_import_wh < *p) {
            self.counters.energy_went_backwards += 1;
            reading.energy_import_wh = previous;
        }
        if let Some(connector) = self.connector_mut(connector_id) {
            connector.reading = Some(reading);
        }
        reading
    }

    fn start_transaction(
        &mut self,
        now: Now,
        connector_id: u32,
        id_tag: &str,
        meter: MeterReading,
    ) {
        if self
            .connector(connector_id)
            .is_some_and(|c| c.transaction.is_some())
        {
            self.counters.bad_connector_events += 1;
            return;
        }
        let meter = self.take_reading(connector_id, meter);
        let local = self.next_local_tx;
        self.next_local_tx += 1;
        let request = StartTransactionRequest {
            connector_id,
            id_tag: id_tag.chars().take(ID_TAG_MAX_LEN).collect(),
            meter_start: whole_wh(meter.energy_import_wh),
            reservation_id: None,
            timestamp: now.wall(),
        };
        self.queue
            .push("StartTransaction", local, None, encode(&request));
        let sample_ms = u64::from(self.keys.int(key::METER_VALUE_SAMPLE_INTERVAL)) * 1000;
        let connectors = self.config.connectors;
        let Some(connector) = self.connector_mut(connector_id) else {
            return;
        };
        let open = OpenTransaction {
            local_tx: local,
            transaction_id: None,
            start_wall_ms: now.wall_ms,
        };
        connector.transaction = Some(open.clone());
        connector.next_sample_mono_ms = (sample_ms > 0).then(|| now.mono_ms + sample_ms);
        if let Some(profile) = connector.remote_start_profile.take() {
            // Its transaction id is not known yet; a profile without one matches any.
            let installed = self.profiles.install(
                connector_id,
                profile,
                connectors,
                Some(UNKNOWN_TRANSACTION_ID),
                now.wall_ms,
            );
            if installed.is_ok() {
                self.push_event(Event::ChargingProfilesChanged(self.profiles.all().to_vec()));
            }
        }
        self.push_event(Event::TransactionChanged {
            connector_id,
            transaction: Some(open),
        });
        self.limits_dirty = true;
    }

    fn stop_transaction(
        &mut self,
        now: Now,
        connector_id: u32,
        meter: MeterReading,
        reason: rust_ocpp::v1_6::types::Reason,
        id_tag: Option<String>,
    ) {
        let Some(transaction) = self
            .connector(connector_id)
            .and_then(|c| c.transaction.clone())
        else {
            self.counters.bad_connector_events += 1;
            return;
        };
        let meter = self.take_reading(connector_id, meter);
        let stop_data: Vec<String> = self
            .keys
            .measurands(key::STOP_TXN_SAMPLED_DATA)
            .map(str::to_owned)
            .collect();
        let transaction_data = (!stop_data.is_empty()).then(|| {
            vec![meter_value(
                &meter,
                stop_data.iter().map(String::as_str),
                &ReadingContext::TransactionEnd,
                now.wall(),
            )]
        });
        let request = StopTransactionRequest {
            id_tag: id_tag.map(|tag| tag.chars().take(ID_TAG_MAX_LEN).collect()),
            meter_stop: whole_wh(meter.energy_import_wh),
            timestamp: now.wall(),
            transaction_id: transaction.transaction_id.unwrap_or(UNKNOWN_TRANSACTION_ID),
            reason: Some(reason),
            transaction_data,
        };
        self.queue.push(
            "StopTransaction",
            transaction.local_tx,
            transaction.transaction_id,
            encode(&request),
        );
        self.push_event(Event::TransactionChanged {
            connector_id,
            transaction: None,
        });
        let Some(connector) = self.connector_mut(connector_id) else {
            return;
        };
        connector.transaction = None;
        connector.next_sample_mono_ms = None;
        let scheduled = connector.scheduled_inoperative.take();
        if let Some(inoperative) = scheduled {
            connector.inoperative = inoperative;
            self.push_event(Event::AvailabilityChanged {
                connector_id,
                operative: !inoperative,
            });
            self.queue_status(now, connector_id, false);
        }
        if self.profiles.end_transaction(connector_id) {
            self.push_event(Event::ChargingProfilesChanged(self.profiles.all().to_vec()));
        }
        self.limits_dirty = true;
    }

    /// StartTransaction.conf: the backend's id for our local transaction.
    pub(crate) fn on_transaction_id(
        &mut self,
        local_tx: LocalTxId,
        transaction_id: i32,
        status: &AuthorizationStatus,
    ) {
        let stop = self.keys.flag("StopTransactionOnInvalidId");
        let mut deauthorized = None;
        for (index, connector) in self.connectors.iter_mut().enumerate() {
            if let Some(transaction) = connector
                .transaction
                .as_mut()
                .filter(|t| t.local_tx == local_tx)
            {
                transaction.transaction_id = Some(transaction_id);
                let connector_id = u32::try_from(index + 1).unwrap_or(u32::MAX);
                if *status != AuthorizationStatus::Accepted {
                    deauthorized = Some(connector_id);
                }
                self.events.push_back(Event::TransactionChanged {
                    connector_id,
                    transaction: Some(transaction.clone()),
                });
            }
        }
        if let Some(connector_id) = deauthorized {
            self.push_event(Event::TransactionDeauthorized { connector_id, stop });
        }
        self.limits_dirty = true;
    }

    /// Sampled (per transaction) and clock-aligned (all connectors) MeterValues that are due.
    pub(crate) fn run_meter_timers(&mut self, now: Now) {
        let sample_ms = u64::from(self.keys.int(key::METER_VALUE_SAMPLE_INTERVAL)) * 1000;
        for connector_id in 1..=self.config.connectors {
            let due = self
                .connector(connector_id)
                .and_then(|c| c.next_sample_mono_ms)
                .is_some_and(|due| now.mono_ms >= due);
            if due {
                self.queue_meter_values(connector_id, &ReadingContext::SamplePeriodic, now.wall_ms);
                if let Some(connector) = self.connector_mut(connector_id) {
                    connector.next_sample_mono_ms =
                        (sample_ms > 0).then(|| now.mono_ms + sample_ms);
                }
            }
        }
        let aligned_s = self.keys.int(key::CLOCK_ALIGNED_DATA_INTERVAL);
        match self.next_aligned_wall_ms {
            None => self.next_aligned_wall_ms = next_aligned_wall_ms(now.wall_ms, aligned_s),
            Some(slot) if now.wall_ms >= slot => {
                for connector_id in 1..=self.config.connectors {
                    self.queue_meter_values(connector_id, &ReadingContext::SampleClock, slot);
                }
                self.next_aligned_wall_ms = next_aligned_wall_ms(now.wall_ms, aligned_s);
            }
            Some(_) => {}
        }
    }

    /// One MeterValues from the connector's latest reading: durable inside a transaction,
    /// otherwise only sent when the backend is there to hear it.
    pub(crate) fn queue_meter_values(
        &mut self,
        connector_id: u32,
        context: &ReadingContext,
        at_wall_ms: u64,
    ) {
        let Some(connector) = self.connector(connector_id) else {
            return;
        };
        let Some(reading) = connector.reading else {
            return;
        };
        let transaction = connector.transaction.clone();
        let measurands_key = if *context == ReadingContext::SampleClock {
            key::METER_VALUES_ALIGNED_DATA
        } else {
            key::METER_VALUES_SAMPLED_DATA
        };
        let value = meter_value(
            &reading,
            self.keys.measurands(measurands_key),
            context,
            wall_from_ms(at_wall_ms),
        );
        let durable = *context != ReadingContext::Trigger;
        let request = MeterValuesRequest {
            connector_id,
            transaction_id: transaction.as_ref().and_then(|t| t.transaction_id),
            meter_value: vec![value],
        };
        match transaction.filter(|_| durable) {
            Some(transaction) => {
                let payload = encode(&request);
                let queued = self.queue.push(
                    "MeterValues",
                    transaction.local_tx,
                    transaction.transaction_id,
                    payload,
                );
                self.counters.meter_values_dropped += u64::from(!queued);
            }
            // Outside a transaction a reading is only worth sending while someone listens.
            None if !durable || (self.connected && self.registration.is_accepted()) => {
                self.request("MeterValues", encode(&request), Tag::MeterValues, !durable);
            }
            None => {}
        }
    }
}
