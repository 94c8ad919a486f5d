//! The OCPP sessions' counters for `/metrics`, summed over the charge points (500 bays
//! would otherwise be 500 label sets per metric). Each session publishes its own numbers
//! after every step; `/metrics` adds them up at scrape time.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ctrl22_ocpp::Counters;

/// What one charge point's session has seen, across its Resets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PointCounts {
    pub connected: bool,
    /// Successful WebSocket connections (the first and every reconnection).
    pub connections: u64,
    pub frames_sent: u64,
    /// The charge point's own counters (frames received, CALLERRORs both ways, ...).
    pub session: Counters,
    /// Transaction messages waiting for the backend.
    pub queued_tx_messages: u64,
}

/// One session's slot.
#[derive(Debug, Default)]
pub struct PointStats(Mutex<PointCounts>);

impl PointStats {
    /// The session's numbers now.
    pub fn publish(&self, counts: PointCounts) {
        *self.lock() = counts;
    }

    fn lock(&self) -> MutexGuard<'_, PointCounts> {
        // A whole value is swapped in: nothing can be half-written by a panic.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every session's slot.
#[derive(Clone, Debug, Default)]
pub struct OcppMetrics {
    points: Arc<Mutex<Vec<Arc<PointStats>>>>,
}

impl OcppMetrics {
    /// A slot for a new session.
    #[must_use]
    pub fn point(&self) -> Arc<PointStats> {
        let stats = Arc::new(PointStats::default());
        self.points
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&stats));
        stats
    }

    /// The sum over the charge points, and how many there are.
    #[must_use]
    pub fn totals(&self) -> (usize, Totals) {
        let points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        let mut t = Totals::default();
        for point in points.iter() {
            let c = point.lock().clone();
            t.connected += u64::from(c.connected);
            t.reconnections += c.connections.saturating_sub(1);
            t.frames_sent += c.frames_sent;
            t.frames_received += c.session.frames_received;
            t.bad_frames += c.session.bad_frames;
            t.callerrors_sent += c.session.calls_refused;
            t.calls_failed += c.session.failed_calls;
            t.response_timeouts += c.session.response_timeouts;
            t.tx_messages_discarded += c.session.tx_messages_discarded;
            t.queued_tx_messages += c.queued_tx_messages;
        }
        (points.len(), t)
    }
}

/// Adds what an earlier charge point of the same session counted (before a Reset).
#[must_use]
pub fn carried(earlier: &Counters, now: &Counters) -> Counters {
    Counters {
        frames_received: earlier.frames_received + now.frames_received,
        bad_frames: earlier.bad_frames + now.bad_frames,
        calls_refused: earlier.calls_refused + now.calls_refused,
        unknown_answer_ids: earlier.unknown_answer_ids + now.unknown_answer_ids,
        failed_calls: earlier.failed_calls + now.failed_calls,
        response_timeouts: earlier.response_timeouts + now.response_timeouts,
        tx_messages_discarded: earlier.tx_messages_discarded + now.tx_messages_discarded,
        meter_values_dropped: earlier.meter_values_dropped + now.meter_values_dropped,
        requests_dropped: earlier.requests_dropped + now.requests_dropped,
        energy_went_backwards: earlier.energy_went_backwards + now.energy_went_backwards,
        bad_connector_events: earlier.bad_connector_events + now.bad_connector_events,
        calls_ignored_while_rejected: earlier.calls_ignored_while_rejected
            + now.calls_ignored_while_rejected,
    }
}

/// The charge points' numbers added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub connected: u64,
    pub reconnections: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bad_frames: u64,
    pub callerrors_sent: u64,
    pub calls_failed: u64,
    pub response_timeouts: u64,
    pub tx_messages_discarded: u64,
    pub queued_tx_messages: u64,
}

/// `ctrl22_ocpp_*`: charge points and connected sessions, frames both ways, CALLERRORs sent,
/// failed calls (CALLERRORs received), timeouts, reconnections, queued and discarded
/// transaction messages.
impl prometheus_client::collector::Collector for OcppMetrics {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;

        let (points, t) = self.totals();
        let gauges = [
            (
                "ctrl22_ocpp_charge_points",
                "OCPP charge points (sessions) of the bridge",
                points as u64,
            ),
            (
                "ctrl22_ocpp_sessions_connected",
                "OCPP sessions with an open WebSocket",
                t.connected,
            ),
            (
                "ctrl22_ocpp_tx_messages_queued",
                "Transaction messages waiting for the backend",
                t.queued_tx_messages,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value as f64).encode(metric)?;
        }
        let counters = [
            (
                "ctrl22_ocpp_frames_sent",
                "OCPP-J frames sent to the backend",
                t.frames_sent,
            ),
            (
                "ctrl22_ocpp_frames_received",
                "OCPP-J frames received from the backend",
                t.frames_received,
            ),
            (
                "ctrl22_ocpp_bad_frames",
                "Received frames that were not valid OCPP-J",
                t.bad_frames,
            ),
            (
                "ctrl22_ocpp_callerrors_sent",
                "Backend calls answered with a CALLERROR",
                t.callerrors_sent,
            ),
            (
                "ctrl22_ocpp_calls_failed",
                "Our calls answered with a CALLERROR or an unreadable result",
                t.calls_failed,
            ),
            (
                "ctrl22_ocpp_response_timeouts",
                "Our calls the backend did not answer in time",
                t.response_timeouts,
            ),
            (
                "ctrl22_ocpp_reconnections",
                "WebSocket connections after each session's first",
                t.reconnections,
            ),
            (
                "ctrl22_ocpp_tx_messages_discarded",
                "Transaction messages dropped after TransactionMessageAttempts",
                t.tx_messages_discarded,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value as f64).encode(metric)?;
        }
        Ok(())
    }
}
