//! A connector as the caller describes it (status in OCPP's words, meter readings, sessions)
//! and as the session keeps it (the running transaction, what the backend last heard).

use rust_ocpp::v1_6::types::{ChargePointErrorCode, ChargePointStatus, ChargingProfile, Reason};

use serde::{Deserialize, Serialize};

use crate::queue::LocalTxId;
use crate::smart_charging::ChargingLimit;

/// OCPP 1.6's connector status (§7.7); the caller maps its own states onto it (SPEC.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectorStatus {
    Available,
    Preparing,
    Charging,
    SuspendedEVSE,
    SuspendedEV,
    Finishing,
    Reserved,
    Unavailable,
    Faulted,
}

/// What is wrong, reported with the status (a warning with SuspendedEVSE, a fault with
/// Faulted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorError {
    ConnectorLockFailure,
    EVCommunicationError,
    GroundFailure,
    HighTemperature,
    InternalError,
    OverCurrentFailure,
    OverVoltage,
    PowerMeterFailure,
    PowerSwitchFailure,
    ReaderFailure,
    UnderVoltage,
    WeakSignal,
    /// `OtherError` with the vendor's code (cut to 50 characters).
    Other {
        vendor_error_code: String,
    },
}

/// Why a session ended, in OCPP's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    DeAuthorized,
    EmergencyStop,
    EVDisconnected,
    HardReset,
    Local,
    Other,
    PowerLoss,
    Reboot,
    Remote,
    SoftReset,
    UnlockCommand,
}

/// One reading of a connector's meter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeterReading {
    /// The raw import register (not re-based per session), Wh.
    pub energy_import_wh: u64,
    pub power_import_w: Option<f64>,
    /// Per phase L1, L2, L3; `None` for a phase not measured.
    pub current_import_a: [Option<f64>; 3],
    /// What the EVSE offers the EV (its PWM), A.
    pub current_offered_a: Option<f64>,
}

/// What happened at a connector.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectorEvent {
    StatusChanged {
        status: ConnectorStatus,
        error: Option<ConnectorError>,
    },
    /// A charging session began (after authorisation): a transaction starts.
    SessionStarted { id_tag: String, meter: MeterReading },
    /// The session ended: the transaction stops.
    SessionStopped {
        meter: MeterReading,
        reason: StopReason,
        id_tag: Option<String>,
    },
    /// A new meter reading (sampled into MeterValues per the configured intervals).
    MeterSample(MeterReading),
}

/// A running transaction; handed out (`Event::TransactionChanged`) so the caller can persist
/// it and give it back after a restart, when the bay's session may still be going.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTransaction {
    pub local_tx: LocalTxId,
    /// The backend's id, once StartTransaction.conf brought it.
    pub transaction_id: Option<i32>,
    pub start_wall_ms: u64,
}

/// The session's view of one connector.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connector {
    pub status: Option<ConnectorStatus>,
    pub error: Option<ConnectorError>,
    /// Set Inoperative by ChangeAvailability (or restored so).
    pub inoperative: bool,
    /// A ChangeAvailability answered `Scheduled`: applies when the transaction ends.
    pub scheduled_inoperative: Option<bool>,
    pub transaction: Option<OpenTransaction>,
    pub reading: Option<MeterReading>,
    /// What the backend last acknowledged.
    pub reported: Option<(ChargePointStatus, ChargePointErrorCode)>,
    pub next_sample_mono_ms: Option<u64>,
    /// A TxProfile that came with RemoteStartTransaction, installed when the session starts.
    pub remote_start_profile: Option<ChargingProfile>,
    /// The last cap handed out.
    pub limit: Option<ChargingLimit>,
}

impl Connector {
    /// The status to report: Unavailable while set inoperative with no transaction.
    pub fn effective(&self) -> (ChargePointStatus, ChargePointErrorCode) {
        let status = match (self.inoperative && self.transaction.is_none(), self.status) {
            (true, _) => ChargePointStatus::Unavailable,
            (false, Some(status)) => status.into(),
            (false, None) => ChargePointStatus::Available,
        };
        let error = self
            .error
            .as_ref()
            .map_or(ChargePointErrorCode::NoError, error_code);
        (status, error)
    }
}

impl From<ConnectorStatus> for ChargePointStatus {
    fn from(status: ConnectorStatus) -> Self {
        match status {
            ConnectorStatus::Available => Self::Available,
            ConnectorStatus::Preparing => Self::Preparing,
            ConnectorStatus::Charging => Self::Charging,
            ConnectorStatus::SuspendedEVSE => Self::SuspendedEVSE,
            ConnectorStatus::SuspendedEV => Self::SuspendedEV,
            ConnectorStatus::Finishing => Self::Finishing,
            ConnectorStatus::Reserved => Self::Reserved,
            ConnectorStatus::Unavailable => Self::Unavailable,
            ConnectorStatus::Faulted => Self::Faulted,
        }
    }
}

pub(crate) fn error_code(error: &ConnectorError) -> ChargePointErrorCode {
    match error {
        ConnectorError::ConnectorLockFailure => ChargePointErrorCode::ConnectorLockFailure,
        ConnectorError::EVCommunicationError => ChargePointErrorCode::EVCommunicationError,
        ConnectorError::GroundFailure => ChargePointErrorCode::GroundFailure,
        ConnectorError::HighTemperature => ChargePointErrorCode::HighTemperature,
        ConnectorError::InternalError => ChargePointErrorCode::InternalError,
        ConnectorError::OverCurrentFailure => ChargePointErrorCode::OverCurrentFailure,
        ConnectorError::OverVoltage => ChargePointErrorCode::OverVoltage,
        ConnectorError::PowerMeterFailure => ChargePointErrorCode::PowerMeterFailure,
        ConnectorError::PowerSwitchFailure => ChargePointErrorCode::PowerSwitchFailure,
        ConnectorError::ReaderFailure => ChargePointErrorCode::ReaderFailure,
        ConnectorError::UnderVoltage => ChargePointErrorCode::UnderVoltage,
        ConnectorError::WeakSignal => ChargePointErrorCode::WeakSignal,
        ConnectorError::Other { .. } => ChargePointErrorCode::OtherError,
    }
}

impl From<StopReason> for Reason {
    fn from(reason: StopReason) -> Self {
        match reason {
            StopReason::DeAuthorized => Self::DeAuthorized,
            StopReason::EmergencyStop => Self::EmergencyStop,
            StopReason::EVDisconnected => Self::EVDisconnected,
            StopReason::HardReset => Self::HardReset,
            StopReason::Local => Self::Local,
            StopReason::Other => Self::Other,
            StopReason::PowerLoss => Self::PowerLoss,
            StopReason::Reboot => Self::Reboot,
            StopReason::Remote => Self::Remote,
            StopReason::SoftReset => Self::SoftReset,
            StopReason::UnlockCommand => Self::UnlockCommand,
        }
    }
}
