//! The core's bay events and snapshots in OCPP's words: connector statuses (SPEC.md section
//! 7), transactions with the meter register in Wh, meter readings; and which charge point
//! and connector a bay is.

use ctrl22_ocpp::{ConnectorError, ConnectorEvent, ConnectorStatus, MeterReading, StopReason};

use crate::config::{OcppConfig, OcppLayout};
use crate::site::snapshot::BaySnapshot;
use crate::site::{BayEventKind, BayStatus};

/// The connector status of a bay status: the core already speaks OCPP's words.
#[must_use]
pub fn connector_status(status: BayStatus) -> ConnectorStatus {
    match status {
        BayStatus::Available => ConnectorStatus::Available,
        BayStatus::Preparing => ConnectorStatus::Preparing,
        BayStatus::Charging => ConnectorStatus::Charging,
        BayStatus::SuspendedEv => ConnectorStatus::SuspendedEV,
        BayStatus::SuspendedEvse => ConnectorStatus::SuspendedEVSE,
        BayStatus::Finishing => ConnectorStatus::Finishing,
        BayStatus::Faulted => ConnectorStatus::Faulted,
        BayStatus::Unavailable => ConnectorStatus::Unavailable,
    }
}

/// The status change to report, with the error code a fault needs (the problems' words as
/// the vendor code, e.g. `controller_error`).
#[must_use]
pub fn status_event(status: BayStatus, bay: Option<&BaySnapshot>) -> ConnectorEvent {
    let error = (status == BayStatus::Faulted).then(|| {
        let words = bay.map(|b| b.problems.join(",")).unwrap_or_default();
        if words.is_empty() {
            ConnectorError::InternalError
        } else {
            ConnectorError::Other {
                vendor_error_code: words,
            }
        }
    });
    ConnectorEvent::StatusChanged {
        status: connector_status(status),
        error,
    }
}

/// The bay's meter as the snapshot shows it; `register_wh` overrides the energy (the value an
/// event carried, so that a transaction's start and stop are the core's exact numbers).
#[must_use]
pub fn reading(bay: Option<&BaySnapshot>, register_wh: Option<u64>) -> MeterReading {
    let mut reading = MeterReading::default();
    if let Some(bay) = bay {
        // Whole Wh of a non-negative register; the fraction is dropped (never rounds up).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let total = bay.total_energy_wh.max(0.0).floor() as u64;
        reading.energy_import_wh = total;
        #[allow(clippy::cast_precision_loss)] // watts of one bay
        let power = bay.power_w as f64;
        reading.power_import_w = Some(power.max(0.0));
        reading.current_import_a = bay.current_a.map(|a| Some(a.max(0.0)));
        reading.current_offered_a = Some(bay.offered_a.max(0.0));
    }
    if let Some(wh) = register_wh {
        reading.energy_import_wh = wh;
    }
    reading
}

/// What a bay event means for its connector (nothing for events OCPP has no word for).
/// Sessions started at the bay carry `id_tag`; the session swaps in the backend's tag when
/// it asked for the start.
#[must_use]
pub fn connector_event(
    kind: &BayEventKind,
    bay: Option<&BaySnapshot>,
    id_tag: &str,
) -> Option<ConnectorEvent> {
    match kind {
        BayEventKind::StatusChanged { status } => Some(status_event(*status, bay)),
        BayEventKind::SessionStarted { meter_wh } => Some(ConnectorEvent::SessionStarted {
            id_tag: id_tag.to_owned(),
            meter: reading(bay, Some(*meter_wh)),
        }),
        BayEventKind::SessionStopped { meter_wh, .. } => Some(ConnectorEvent::SessionStopped {
            meter: reading(bay, Some(*meter_wh)),
            reason: StopReason::Local,
            id_tag: None,
        }),
        _ => None,
    }
}

/// The charge point identity of a bay (`dev` in topic form) under `[ocpp]`.
#[must_use]
pub fn identity(cfg: &OcppConfig, site_name: &str, dev: &str) -> String {
    let site: String = site_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dev = if cfg.layout == OcppLayout::Single {
        ""
    } else {
        dev
    };
    cfg.identity.replace("{dev}", dev).replace("{site}", &site)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bay_status_has_its_connector_status() {
        for status in BayStatus::ALL {
            let word = format!("{:?}", connector_status(status)).to_lowercase();
            assert_eq!(word, status.as_str().replace('_', ""), "{status:?}");
        }
    }

    #[test]
    fn identities_follow_the_template() {
        let mut cfg = OcppConfig {
            identity: "site-{site}-{dev}".into(),
            ..OcppConfig::default()
        };
        assert_eq!(
            identity(&cfg, "My Lot", "d8a01d55a56c"),
            "site-My_Lot-d8a01d55a56c"
        );
        cfg.layout = OcppLayout::Single;
        cfg.identity = "{site}".into();
        assert_eq!(identity(&cfg, "lot", "x"), "lot");
    }
}
