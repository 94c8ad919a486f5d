//! What the session hands the caller: requests to act on, things to persist, counters.

use rust_ocpp::v1_6::types::AuthorizationData;

use super::connector::OpenTransaction;
use super::firmware::FirmwareUpdate;
use crate::queue::{StoreOp, StoredMessage};
use crate::smart_charging::{ChargingLimit, InstalledProfile};

/// One output of the session, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// RemoteStartTransaction was accepted: start a session on the connector with this tag
    /// (the bay's start button).
    RemoteStartRequested { connector_id: u32, id_tag: String },
    /// RemoteStopTransaction was accepted: end the connector's session (reason `Remote`).
    RemoteStopRequested { connector_id: u32 },
    /// ChangeAvailability took effect (now, or when the transaction ended): disable or enable
    /// the connector (0 = all), and persist it for the next start.
    AvailabilityChanged { connector_id: u32, operative: bool },
    /// Reset was accepted: stop the sessions (reason SoftReset/HardReset), then restart.
    ResetRequested { hard: bool },
    /// UnlockConnector was accepted: release the connector's lock (after stopping its session).
    UnlockRequested { connector_id: u32 },
    /// The backend's cap for a connector changed (0 = the whole charge point); `None` = no cap.
    ChargingLimitChanged {
        connector_id: u32,
        limit: Option<ChargingLimit>,
    },
    /// The installed profiles changed: persist the whole set.
    ChargingProfilesChanged(Vec<InstalledProfile>),
    /// A configuration key changed: persist it.
    ConfigurationChanged { key: String, value: String },
    /// The local authorisation list changed: persist it.
    LocalListChanged {
        version: i32,
        entries: Vec<AuthorizationData>,
    },
    /// Persist (insert or replace by `seq`) this transaction message before it is sent.
    PersistTxMessage(StoredMessage),
    /// Remove the transaction message from the store.
    RemoveTxMessage { seq: u64 },
    /// The connector's running transaction began, learned its backend id, or ended
    /// (`None`): persist it per connector and give it back in `Restored` after a restart.
    TransactionChanged {
        connector_id: u32,
        transaction: Option<OpenTransaction>,
    },
    /// A transaction message failed `TransactionMessageAttempts` times and was dropped.
    TxMessageDiscarded { seq: u64, action: String },
    /// The answer to [`super::ChargePoint::authorize`].
    Authorized {
        connector_id: u32,
        id_tag: String,
        accepted: bool,
    },
    /// The backend did not accept the id tag of a running transaction (StartTransaction.conf):
    /// stop it with reason DeAuthorized if `StopTransactionOnInvalidId` says so.
    TransactionDeauthorized { connector_id: u32, stop: bool },
    /// UpdateFirmware was accepted: from `retrieve_wall_ms` on, download the image and
    /// install it, reporting each step with [`super::ChargePoint::report_firmware_status`].
    FirmwareUpdateRequested(FirmwareUpdate),
}

impl From<StoreOp> for Event {
    fn from(op: StoreOp) -> Self {
        match op {
            StoreOp::Persist(message) => Self::PersistTxMessage(message),
            StoreOp::Remove { seq } => Self::RemoveTxMessage { seq },
        }
    }
}

/// Counts of what went wrong or was dropped, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_received: u64,
    /// Frames that were not valid OCPP-J.
    pub bad_frames: u64,
    /// CALLs answered with a CALLERROR.
    pub calls_refused: u64,
    /// CALLRESULT/CALLERROR for no CALL of ours.
    pub unknown_answer_ids: u64,
    /// CALLERRORs and unreadable CALLRESULTs for our CALLs.
    pub failed_calls: u64,
    pub response_timeouts: u64,
    pub tx_messages_discarded: u64,
    pub meter_values_dropped: u64,
    pub requests_dropped: u64,
    /// Energy readings lower than the one before (kept at the highest).
    pub energy_went_backwards: u64,
    pub bad_connector_events: u64,
    /// Backend calls not answered while Rejected.
    pub calls_ignored_while_rejected: u64,
}
