//! # ctrl22-ocpp
//!
//! An OCPP 1.6-J charge point as a plain state machine, for the bridge to present every bay
//! (or a site of bays) to a commercial OCPP backend. Like `quinn-proto`, it decides and never
//! does IO: the caller feeds [`ChargePoint::handle_frame`], [`ChargePoint::on_connector_event`],
//! [`ChargePoint::handle_timeout`] and the transport's up/down, and asks
//! [`ChargePoint::poll_transmit`] (text frames to send), [`ChargePoint::poll_event`] (what the
//! backend asked for, what to persist) and [`ChargePoint::poll_timeout`] (when to call again).
//! Message types are `rust-ocpp`'s (a vendored copy, see `vendor/rust-ocpp/PATCH.md`).
//!
//! ## Module map
//! - [`time`]: [`Now`], the caller's reading of the monotonic and the wall clock.
//! - [`rpc`]: OCPP-J framing (CALL, CALLRESULT, CALLERROR), error codes, the one outstanding
//!   CALL with its id and timeout, lenient payload decoding. Version independent.
//! - [`session`]: the [`ChargePoint`]: registration (BootNotification), heartbeat, connectors
//!   and their status, transactions, meter values, the backend's calls and their answers,
//!   firmware updates (UpdateFirmware handed to the caller, its progress as
//!   FirmwareStatusNotification).
//! - [`config_keys`]: the standard configuration keys (GetConfiguration/ChangeConfiguration).
//! - [`smart_charging`]: installed charging profiles, stacking and the composite schedule, as
//!   caps per connector in A and/or W.
//! - [`queue`]: the durable transaction messages (StartTransaction, StopTransaction,
//!   transaction MeterValues): persisted by the caller before they are sent, replayed in order.
//!
//! ## What it must never do
//! - Touch a socket, a file or a clock: time comes in as [`Now`], bytes go out as strings.
//! - Panic or grow without bound on anything the backend sends: every frame is answered (a
//!   CALLERROR when it cannot be understood), every queue has a bound.
//! - Raise a limit: a charging profile only ever yields a cap; what the bay gets is the
//!   caller's minimum of that cap and its own allocation.
//! - Lose or reorder a transaction message: it is handed out for persisting before it is sent
//!   and only released on the backend's CALLRESULT (or after the configured failed attempts).

pub mod config_keys;
#[doc(hidden)]
pub mod fuzzing;
pub mod queue;
pub mod rpc;
pub mod session;
pub mod smart_charging;
pub mod time;

/// The message types, for callers that persist or inspect profiles and meter values.
pub use rust_ocpp;
pub use session::{
    ChargePoint, Config, ConnectorError, ConnectorEvent, ConnectorStatus, Counters, Event,
    FirmwareProgress, FirmwareTransitionError, FirmwareUpdate, MeterReading, OpenTransaction,
    Restored, StopReason,
};
pub use smart_charging::ChargingLimit;
pub use time::Now;
