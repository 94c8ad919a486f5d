//! Registration with the backend (OCPP 1.6 §4.2): nothing but BootNotification until it is
//! Accepted; Pending allows answering and triggered messages; Rejected silences us until the
//! interval has passed. A reconnect without a restart keeps an Accepted registration (OCPP-J
//! §5.4: no new BootNotification unless its fields changed).

use rust_ocpp::v1_6::types::RegistrationStatus;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// BootNotification to be sent at (or after) `retry_at_mono_ms`.
    Unregistered {
        retry_at_mono_ms: u64,
    },
    /// BootNotification in flight.
    BootSent,
    Pending {
        retry_at_mono_ms: u64,
    },
    Rejected {
        retry_at_mono_ms: u64,
    },
    Accepted,
}

impl Default for Registration {
    fn default() -> Self {
        Self::Unregistered {
            retry_at_mono_ms: 0,
        }
    }
}

impl Registration {
    #[must_use]
    pub fn is_accepted(self) -> bool {
        self == Self::Accepted
    }

    /// Our own requests (statuses, transactions, heartbeats) may go.
    #[must_use]
    pub(crate) fn may_send_requests(self) -> bool {
        self.is_accepted()
    }

    /// A message the backend asked for with TriggerMessage may go.
    #[must_use]
    pub(crate) fn may_send_triggered(self) -> bool {
        matches!(self, Self::Accepted | Self::Pending { .. })
    }

    /// The backend's calls get answers (not while Rejected and waiting).
    #[must_use]
    pub(crate) fn may_answer(self, now_mono_ms: u64) -> bool {
        match self {
            Self::Rejected { retry_at_mono_ms } => now_mono_ms >= retry_at_mono_ms,
            _ => true,
        }
    }

    /// When the next BootNotification is due, if one is.
    #[must_use]
    pub(crate) fn next_boot_mono_ms(self) -> Option<u64> {
        match self {
            Self::Unregistered { retry_at_mono_ms }
            | Self::Pending { retry_at_mono_ms }
            | Self::Rejected { retry_at_mono_ms } => Some(retry_at_mono_ms),
            Self::BootSent | Self::Accepted => None,
        }
    }

    pub(crate) fn on_connected(&mut self, now_mono_ms: u64) {
        if let Self::Unregistered { retry_at_mono_ms } = self {
            *retry_at_mono_ms = (*retry_at_mono_ms).min(now_mono_ms);
        }
    }

    /// BootNotification.conf: `interval_ms` is the heartbeat interval when Accepted, else
    /// the wait before the next attempt (`fallback_ms` when the backend says 0).
    pub(crate) fn on_boot_answer(
        &mut self,
        status: &RegistrationStatus,
        now_mono_ms: u64,
        interval_ms: u64,
        fallback_ms: u64,
    ) {
        let retry_at_mono_ms = now_mono_ms.saturating_add(if interval_ms == 0 {
            fallback_ms
        } else {
            interval_ms
        });
        *self = match status {
            RegistrationStatus::Accepted => Self::Accepted,
            RegistrationStatus::Pending => Self::Pending { retry_at_mono_ms },
            RegistrationStatus::Rejected => Self::Rejected { retry_at_mono_ms },
        };
    }

    /// BootNotification failed (CALLERROR, bad answer, timeout, connection lost).
    pub(crate) fn on_boot_failed(&mut self, now_mono_ms: u64, fallback_ms: u64) {
        if *self == Self::BootSent {
            *self = Self::Unregistered {
                retry_at_mono_ms: now_mono_ms.saturating_add(fallback_ms),
            };
        }
    }
}
