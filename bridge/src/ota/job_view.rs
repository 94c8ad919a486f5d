//! How adapters see an AVR firmware job (`GET /api/v1/ota`, bay events, Home Assistant).

use serde::Serialize;

use super::jobs::JobError;
use crate::bay::BayId;

/// Where a job is, as adapters show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobState {
    Queued,
    Transferring {
        done_bytes: usize,
        total_bytes: usize,
    },
    /// The bay stopped answering; restarted when it is heard again.
    WaitingForBay {
        restarts: u32,
    },
    Verifying,
    /// `ver` read back from the controller (as `installed_version`: the job's `version` is
    /// the image's).
    Succeeded {
        #[serde(rename = "installed_version")]
        version: i16,
    },
    Failed {
        error: JobError,
    },
}

impl JobState {
    /// Percent done, for progress bars.
    #[must_use]
    pub fn percent(&self) -> Option<u8> {
        match self {
            Self::Transferring {
                done_bytes,
                total_bytes,
            } => {
                let pct = done_bytes.saturating_mul(100) / (*total_bytes).max(1);
                Some(u8::try_from(pct.min(100)).unwrap_or(100))
            }
            Self::Verifying | Self::Succeeded { .. } => Some(100),
            _ => None,
        }
    }

    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded { .. } | Self::Failed { .. })
    }
}

/// A job as `GET /api/v1/ota` and the event stream show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobView {
    pub id: u64,
    pub bay: BayId,
    pub image: String,
    pub version: Option<i16>,
    pub forced: bool,
    #[serde(flatten)]
    pub state: JobState,
    pub percent: Option<u8>,
    /// `percent`, 0 when not known (queued, failed), for progress bars of every job kind.
    pub progress_pct: u8,
}

/// Any firmware job, as `GET /api/v1/ota` lists it: `kind` says which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AnyJobView {
    Avr(JobView),
    Esp32(super::esp32::Esp32JobView),
}
