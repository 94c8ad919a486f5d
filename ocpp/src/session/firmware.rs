//! Firmware Management (OCPP 1.6 §4.4, §4.5, §5.8, §5.19): UpdateFirmware validated and
//! handed to the caller, the download and install progress the caller reports kept as a
//! state machine and sent as FirmwareStatusNotification, GetDiagnostics declined politely
//! (this charge point uploads no diagnostics), and the TriggerMessage answers of both.
//!
//! The status machine: `Downloading` only for an accepted UpdateFirmware (or again, for
//! the next attempt of the same download), then `Downloaded` or `DownloadFailed`; from
//! `Downloaded`, `Installing` or `InstallationFailed` (the image was refused before any job
//! started); from `Installing`, `Installed` or `InstallationFailed`. `Idle` is never
//! reported by the caller: it is the triggered answer when nothing is in progress (§4.5).

use rust_ocpp::v1_6::messages::diagnostics_status_notification::DiagnosticsStatusNotificationRequest;
use rust_ocpp::v1_6::messages::firmware_status_notification::FirmwareStatusNotificationRequest;
use rust_ocpp::v1_6::messages::get_diagnostics::{GetDiagnosticsRequest, GetDiagnosticsResponse};
use rust_ocpp::v1_6::messages::update_firmware::{UpdateFirmwareRequest, UpdateFirmwareResponse};
use rust_ocpp::v1_6::types::{DiagnosticsStatus, FirmwareStatus};
use serde_json::Value;

use super::incoming::Refusal;
use super::outgoing::Tag;
use super::{ChargePoint, Event};
use crate::rpc::{decode, encode, ErrorCode};
use crate::time::{wall_ms_of, Now};

/// The longest `location` taken (the URL of an image; anything longer is not one).
pub const MAX_LOCATION_CHARS: usize = 2_048;
/// Download attempts at most, whatever `retries` asks.
pub const MAX_DOWNLOAD_ATTEMPTS: u32 = 10;
/// Attempts when the backend leaves it to the charge point.
pub const DEFAULT_DOWNLOAD_ATTEMPTS: u32 = 3;
/// The longest wait between attempts, s, whatever `retryInterval` asks.
pub const MAX_RETRY_INTERVAL_S: u32 = 3_600;
/// The wait between attempts when the backend leaves it to the charge point, s.
pub const DEFAULT_RETRY_INTERVAL_S: u32 = 60;

/// An accepted UpdateFirmware, bounded, for the caller to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareUpdate {
    /// The image's URI as the backend sent it (it may carry credentials: never log it whole).
    pub location: String,
    /// Not before this wall time (ms since the epoch); a past one means now.
    pub retrieve_wall_ms: u64,
    /// Download attempts, 1..=[`MAX_DOWNLOAD_ATTEMPTS`].
    pub attempts: u32,
    /// The wait between attempts, s, 0..=[`MAX_RETRY_INTERVAL_S`].
    pub retry_interval_s: u32,
}

/// A firmware status report that does not follow from the current one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("firmware status {to:?} cannot follow {from:?}")]
pub struct FirmwareTransitionError {
    pub from: FirmwareStatus,
    pub to: FirmwareStatus,
}

/// Where the firmware update stands ([`ChargePoint::firmware_progress`]); the caller gives it
/// back to the next charge point after a Reset ([`super::Restored::firmware`]) so the
/// update's next steps still follow, a download not started yet included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FirmwareProgress {
    /// The last step reported (Idle before any).
    pub status: FirmwareStatus,
    /// An UpdateFirmware was accepted and its download has not started yet.
    pub requested: bool,
}

impl FirmwareProgress {
    /// Whether `to` may follow the current status.
    fn allows(&self, to: &FirmwareStatus) -> bool {
        use FirmwareStatus as S;
        match to {
            S::Downloading => self.requested || self.status == S::Downloading,
            S::Downloaded | S::DownloadFailed => self.status == S::Downloading,
            S::Installing => self.status == S::Downloaded,
            S::InstallationFailed => matches!(self.status, S::Downloaded | S::Installing),
            S::Installed => self.status == S::Installing,
            S::Idle => false,
        }
    }

    /// What a TriggerMessage answers: the status while something is in progress, else Idle.
    fn triggered(&self) -> FirmwareStatus {
        use FirmwareStatus as S;
        match self.status {
            S::Downloading | S::Downloaded | S::Installing => self.status.clone(),
            _ => S::Idle,
        }
    }
}

/// `text` is an absolute URI: a scheme (RFC 3986 §3.1), a colon, something after it, and no
/// whitespace or control characters anywhere.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `value` within `0..=max`, `default` when absent; a negative one is refused.
fn bounded(value: Option<i32>, default: u32, max: u32, field: &str) -> Result<u32, Refusal> {
    match value {
        None => Ok(default),
        Some(v) => u32::try_from(v).map(|v| v.min(max)).map_err(|_| {
            Refusal::new(
                ErrorCode::PropertyConstraintViolation,
                &format!("{field} is negative"),
            )
        }),
    }
}

impl ChargePoint {
    pub(crate) fn update_firmware(&mut self, payload: Value) -> Result<Value, Refusal> {
        let request: UpdateFirmwareRequest = decode(payload)?;
        if request.location.chars().count() > MAX_LOCATION_CHARS || !is_uri(&request.location) {
            return Err(Refusal::new(
                ErrorCode::PropertyConstraintViolation,
                "location is not a URI",
            ));
        }
        let attempts = bounded(
            request.retries,
            DEFAULT_DOWNLOAD_ATTEMPTS,
            MAX_DOWNLOAD_ATTEMPTS,
            "retries",
        )?
        .max(1);
        let retry_interval_s = bounded(
            request.retry_interval,
            DEFAULT_RETRY_INTERVAL_S,
            MAX_RETRY_INTERVAL_S,
            "retryInterval",
        )?;
        self.firmware.requested = true;
        self.push_event(Event::FirmwareUpdateRequested(FirmwareUpdate {
            location: request.location,
            retrieve_wall_ms: wall_ms_of(request.retrieve_date),
            attempts,
            retry_interval_s,
        }));
        Ok(encode(&UpdateFirmwareResponse {}))
    }

    /// GetDiagnostics: read, and answered without a `fileName` (OCPP 1.6 §6.21: "not
    /// present when no diagnostic information is available"): this charge point uploads no
    /// diagnostics, its logs stay with the bridge.
    pub(crate) fn get_diagnostics(payload: Value) -> Result<Value, Refusal> {
        let _: GetDiagnosticsRequest = decode(payload)?;
        Ok(encode(&GetDiagnosticsResponse { file_name: None }))
    }

    /// The caller's progress on the update it was handed (`Event::FirmwareUpdateRequested`):
    /// taken when it follows the current status, then sent as a FirmwareStatusNotification.
    ///
    /// # Errors
    /// A status that does not follow (see the module docs); nothing is sent.
    pub fn report_firmware_status(
        &mut self,
        now: Now,
        status: FirmwareStatus,
    ) -> Result<(), FirmwareTransitionError> {
        if !self.firmware.allows(&status) {
            return Err(FirmwareTransitionError {
                from: self.firmware.status.clone(),
                to: status,
            });
        }
        if status == FirmwareStatus::Downloading {
            self.firmware.requested = false;
        }
        self.firmware.status = status.clone();
        self.queue_firmware_status(status, false);
        self.drive(now);
        Ok(())
    }

    /// The last firmware status reported (Idle before any).
    #[must_use]
    pub fn firmware_status(&self) -> &FirmwareStatus {
        &self.firmware.status
    }

    /// Where the firmware update stands, for the next charge point after a Reset.
    #[must_use]
    pub fn firmware_progress(&self) -> &FirmwareProgress {
        &self.firmware
    }

    /// A FirmwareStatusNotification got no answer (timeout, connection lost): the current
    /// step goes again, unless a later one is already waiting (it tells the backend more) or
    /// nothing was ever reported. One at most: the backend needs only the latest step, and
    /// a lost Installed would otherwise leave it at Installing.
    pub(crate) fn resend_firmware_status(&mut self) {
        let waiting = self
            .pending
            .iter()
            .any(|p| p.call.tag == Tag::FirmwareStatus);
        if !waiting && self.firmware.status != FirmwareStatus::Idle {
            self.queue_firmware_status(self.firmware.status.clone(), false);
        }
    }

    fn queue_firmware_status(&mut self, status: FirmwareStatus, triggered: bool) {
        self.request(
            "FirmwareStatusNotification",
            encode(&FirmwareStatusNotificationRequest { status }),
            Tag::FirmwareStatus,
            triggered,
        );
    }

    /// TriggerMessage(FirmwareStatusNotification).
    pub(crate) fn trigger_firmware_status(&mut self) {
        let status = self.firmware.triggered();
        self.queue_firmware_status(status, true);
    }

    /// TriggerMessage(DiagnosticsStatusNotification): no upload ever runs, so Idle.
    pub(crate) fn trigger_diagnostics_status(&mut self) {
        self.request(
            "DiagnosticsStatusNotification",
            encode(&DiagnosticsStatusNotificationRequest {
                status: DiagnosticsStatus::Idle,
            }),
            Tag::DiagnosticsStatus,
            true,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_need_a_scheme_and_no_blanks() {
        for good in [
            "http://127.0.0.1:8080/ctrl22_agccs12_15.hex",
            "https://u:p@host/x?token=1",
            "ftp://h/fw.bin",
            "urn:x",
        ] {
            assert!(is_uri(good), "{good}");
        }
        for bad in [
            "",
            "no-scheme",
            "/path/only",
            "1http://x",
            "http:",
            "http://a b",
            "ht tp://x",
            "http://x\n",
        ] {
            assert!(!is_uri(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_status_machine() {
        use FirmwareStatus as S;
        let mut state = FirmwareProgress::default();
        assert!(!state.allows(&S::Downloading), "no update asked for");
        state.requested = true;
        assert!(state.allows(&S::Downloading));
        state = FirmwareProgress {
            status: S::Downloading,
            requested: false,
        };
        for (to, ok) in [
            (S::Downloading, true),
            (S::Downloaded, true),
            (S::DownloadFailed, true),
            (S::Installing, false),
            (S::Installed, false),
            (S::Idle, false),
        ] {
            assert_eq!(state.allows(&to), ok, "{to:?}");
        }
        assert_eq!(state.triggered(), S::Downloading);
        state.status = S::Installed;
        assert_eq!(state.triggered(), S::Idle);
        assert!(!state.allows(&S::InstallationFailed));
    }
}
