//! The installed charging profiles: validation on SetChargingProfile, replacement rules,
//! ClearChargingProfile's filters, the end of a transaction's TxProfiles.

use rust_ocpp::v1_6::types::{
    ChargingProfile, ChargingProfileKindType, ChargingProfilePurposeType,
};
use serde::{Deserialize, Serialize};

use crate::config_keys::{
    CHARGE_PROFILE_MAX_STACK_LEVEL, CHARGING_SCHEDULE_MAX_PERIODS, MAX_CHARGING_PROFILES_INSTALLED,
};

/// A profile as installed on a connector (0 = the whole charge point). Serialisable so the
/// caller can persist the set and give it back at start (profiles survive a reboot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstalledProfile {
    pub connector_id: u32,
    /// When it was installed: anchors an Absolute schedule that came without a start.
    pub installed_wall_ms: u64,
    pub profile: ChargingProfile,
}

/// Why SetChargingProfile is answered `Rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error("no such connector")]
    UnknownConnector,
    #[error("ChargePointMaxProfile only on connector 0, TxProfile only on a connector > 0")]
    WrongConnectorForPurpose,
    #[error("TxProfile without a matching transaction on the connector")]
    NoMatchingTransaction,
    #[error("stack level above ChargeProfileMaxStackLevel")]
    StackLevelTooHigh,
    #[error("schedule periods empty, too many, unordered, negative or not starting at 0")]
    BadPeriods,
    #[error("Recurring profile without recurrencyKind or startSchedule")]
    BadRecurrence,
    #[error("MaxChargingProfilesInstalled reached")]
    TooManyProfiles,
}

/// ClearChargingProfile's fields; `id` alone decides when present.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClearFilter {
    pub id: Option<i32>,
    pub connector_id: Option<u32>,
    pub purpose: Option<ChargingProfilePurposeType>,
    pub stack_level: Option<u32>,
}

/// All installed profiles of one charge point.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    installed: Vec<InstalledProfile>,
}

impl Profiles {
    /// Takes back a persisted set, keeping only what would be accepted today.
    #[must_use]
    pub fn restore(saved: Vec<InstalledProfile>, connectors: u32) -> Self {
        let mut profiles = Self::default();
        for saved in saved {
            if saved.profile.charging_profile_purpose != ChargingProfilePurposeType::TxProfile
                && check(&saved.profile, saved.connector_id, connectors).is_ok()
            {
                profiles.replace(saved);
            }
        }
        profiles
    }

    #[must_use]
    pub fn all(&self) -> &[InstalledProfile] {
        &self.installed
    }

    /// SetChargingProfile. `active_transaction` is the backend's transaction id running on
    /// the connector, if any (a TxProfile needs one).
    pub fn install(
        &mut self,
        connector_id: u32,
        profile: ChargingProfile,
        connectors: u32,
        active_transaction: Option<i32>,
        now_wall_ms: u64,
    ) -> Result<(), InstallError> {
        check(&profile, connector_id, connectors)?;
        if profile.charging_profile_purpose == ChargingProfilePurposeType::TxProfile {
            let matches = match (active_transaction, profile.transaction_id) {
                (Some(running), Some(wanted)) => running == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !matches {
                return Err(InstallError::NoMatchingTransaction);
            }
        }
        let replaces = self
            .installed
            .iter()
            .any(|old| replaced_by(old, connector_id, &profile));
        if !replaces && self.installed.len() >= MAX_CHARGING_PROFILES_INSTALLED {
            return Err(InstallError::TooManyProfiles);
        }
        self.replace(InstalledProfile {
            connector_id,
            installed_wall_ms: now_wall_ms,
            profile,
        });
        Ok(())
    }

    fn replace(&mut self, new: InstalledProfile) {
        self.installed
            .retain(|old| !replaced_by(old, new.connector_id, &new.profile));
        self.installed.push(new);
    }

    /// ClearChargingProfile: whether anything matched (`Accepted`) or not (`Unknown`).
    pub fn clear(&mut self, filter: &ClearFilter) -> bool {
        let before = self.installed.len();
        self.installed.retain(|old| !matches_filter(old, filter));
        self.installed.len() != before
    }

    /// The transaction on `connector_id` ended: its TxProfiles go (OCPP 1.6 §3.13.3).
    pub fn end_transaction(&mut self, connector_id: u32) -> bool {
        let before = self.installed.len();
        self.installed.retain(|old| {
            !(old.connector_id == connector_id
                && old.profile.charging_profile_purpose == ChargingProfilePurposeType::TxProfile)
        });
        self.installed.len() != before
    }
}

fn replaced_by(old: &InstalledProfile, connector_id: u32, new: &ChargingProfile) -> bool {
    old.profile.charging_profile_id == new.charging_profile_id
        || (old.connector_id == connector_id
            && old.profile.charging_profile_purpose == new.charging_profile_purpose
            && old.profile.stack_level == new.stack_level)
}

fn matches_filter(old: &InstalledProfile, filter: &ClearFilter) -> bool {
    if let Some(id) = filter.id {
        return old.profile.charging_profile_id == id;
    }
    filter.connector_id.is_none_or(|c| c == old.connector_id)
        && filter
            .purpose
            .as_ref()
            .is_none_or(|p| *p == old.profile.charging_profile_purpose)
        && filter
            .stack_level
            .is_none_or(|s| s == old.profile.stack_level)
}

fn check(
    profile: &ChargingProfile,
    connector_id: u32,
    connectors: u32,
) -> Result<(), InstallError> {
    if connector_id > connectors {
        return Err(InstallError::UnknownConnector);
    }
    let purpose_fits = match profile.charging_profile_purpose {
        ChargingProfilePurposeType::ChargePointMaxProfile => connector_id == 0,
        ChargingProfilePurposeType::TxProfile => connector_id > 0,
        ChargingProfilePurposeType::TxDefaultProfile => true,
    };
    if !purpose_fits {
        return Err(InstallError::WrongConnectorForPurpose);
    }
    if profile.stack_level > CHARGE_PROFILE_MAX_STACK_LEVEL {
        return Err(InstallError::StackLevelTooHigh);
    }
    let periods = &profile.charging_schedule.charging_schedule_period;
    let ordered = periods
        .windows(2)
        .all(|pair| pair[0].start_period < pair[1].start_period);
    let first_at_zero = periods.first().is_some_and(|first| first.start_period == 0);
    let non_negative = periods
        .iter()
        .all(|period| !period.limit.is_sign_negative());
    if periods.len() > CHARGING_SCHEDULE_MAX_PERIODS || !ordered || !first_at_zero || !non_negative
    {
        return Err(InstallError::BadPeriods);
    }
    if profile.charging_profile_kind == ChargingProfileKindType::Recurring
        && (profile.recurrency_kind.is_none() || profile.charging_schedule.start_schedule.is_none())
    {
        return Err(InstallError::BadRecurrence);
    }
    Ok(())
}
