//! The retained state payloads Home Assistant's entities read, built from a site snapshot.
//! Field names are the contract of [`ctrl22_ha::ctrl22`]: [`BayField`] and [`SiteField`].
//!
//! Each payload is one list of fields ([`Payload::fields`]) read two ways: hashed into a
//! [`fingerprint`] (no allocation, no text), which the publisher compares every cycle, and
//! written as JSON ([`to_json`]) only when the fingerprint changed. At 10,000 bays that is
//! the difference between formatting 10,000 objects a second and formatting the few that
//! changed.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};

use ctrl22_ha::ctrl22::{self, BayField, SiteField};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::allocate::{ChargeMode, Strategy};
use crate::ota::jobs::{JobError, JobState};
use crate::site::snapshot::{BaySnapshot, SiteSnapshot};

/// One value of a state payload.
#[derive(Clone, Debug, PartialEq)]
pub enum Field<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Text(Cow<'a, str>),
}

impl Hash for Field<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        std::mem::discriminant(self).hash(h);
        match self {
            Self::Null => {}
            Self::Bool(b) => b.hash(h),
            Self::Int(i) => i.hash(h),
            Self::Num(x) => x.to_bits().hash(h),
            Self::Text(s) => s.hash(h),
        }
    }
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_none(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Int(i) => s.serialize_i64(*i),
            // serde_json writes a non-finite number as `null`, as `Value::from` did.
            Self::Num(x) => s.serialize_f64(*x),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

impl From<bool> for Field<'_> {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for Field<'_> {
    fn from(x: f64) -> Self {
        Self::Num(x)
    }
}

macro_rules! int_field {
    ($($t:ty),+) => {
        $(impl From<$t> for Field<'_> {
            fn from(i: $t) -> Self {
                Self::Int(i64::from(i))
            }
        })+
    };
}
int_field!(i8, i16, i32, i64, u8, u16, u32);

impl<'a> From<&'a str> for Field<'a> {
    fn from(s: &'a str) -> Self {
        Self::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Field<'_> {
    fn from(s: String) -> Self {
        Self::Text(Cow::Owned(s))
    }
}

impl<'a, T: Into<Field<'a>>> From<Option<T>> for Field<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// A state payload: its fields, in order.
pub trait Payload {
    /// Calls `put` once per field.
    fn fields(&self, put: &mut dyn FnMut(&'static str, Field<'_>));
}

/// A 64-bit hash of the payload's values: equal payloads, equal fingerprints. A collision
/// (one in 2^64) would hold back one change until the periodic refresh resends the state.
#[must_use]
pub fn fingerprint(payload: &impl Payload) -> u64 {
    let mut h = DefaultHasher::new();
    payload.fields(&mut |_, value| value.hash(&mut h));
    h.finish()
}

/// The payload as a JSON object.
#[must_use]
pub fn to_json(payload: &impl Payload) -> String {
    // Plain values into a `Vec`: serde_json cannot fail on them.
    serde_json::to_string(&Json(payload)).unwrap_or_default()
}

struct Json<'a, P>(&'a P);

impl<P: Payload> Serialize for Json<'_, P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let mut result = Ok(());
        self.0.fields(&mut |key, value| {
            if result.is_ok() {
                result = map.serialize_entry(key, &value);
            }
        });
        result?;
        map.end()
    }
}

/// A bay's state object.
#[derive(Debug)]
pub struct BayState<'a>(pub &'a BaySnapshot);

impl Payload for BayState<'_> {
    fn fields(&self, emit: &mut dyn FnMut(&'static str, Field<'_>)) {
        let bay = self.0;
        let mut put = |field: BayField, value: Field<'_>| emit(field.as_str(), value);
        put(BayField::State, bay.status.as_str().into());
        put(BayField::CurrentL1A, bay.current_a[0].into());
        put(BayField::CurrentL2A, bay.current_a[1].into());
        put(BayField::CurrentL3A, bay.current_a[2].into());
        put(BayField::PowerW, bay.power_w.into());
        put(
            BayField::SessionEnergyKwh,
            kwh(bay.session_energy_wh).into(),
        );
        put(BayField::TotalEnergyKwh, kwh(bay.total_energy_wh).into());
        put(BayField::AllocatedCurrentA, bay.allocated_a.into());
        put(BayField::CableCapacityA, bay.cable_a.unwrap_or(0.0).into());
        put(BayField::Plugged, bay.plugged.into());
        put(BayField::Charging, bay.charging.into());
        put(BayField::Problem, bay.problem.into());
        put(BayField::Online, bay.online.into());
        put(BayField::Mode, mode_text(bay.mode).into());
        put(
            BayField::MaxCurrentA,
            bay.settings.max_current.as_amps().into(),
        );
        put(BayField::Enabled, bay.settings.enabled.into());
        put(
            BayField::DepartureTime,
            bay.settings
                .departure
                .map(|d| d.to_string())
                .unwrap_or_default()
                .into(),
        );
        put(
            BayField::TargetEnergyKwh,
            kwh(f64::from(bay.settings.target_energy_wh.unwrap_or(0))).into(),
        );
        put(BayField::RssiDbm, bay.rssi_dbm.into());
        put(BayField::MeshLayer, bay.mesh_layer.into());
        put(
            BayField::MeshParent,
            bay.mesh_parent.as_deref().unwrap_or_default().into(),
        );
        put(
            BayField::FwVersion,
            bay.firmware.as_deref().unwrap_or_default().into(),
        );
        let node_update = super::firmware::node_update(bay);
        put(BayField::FwLatest, node_update.latest.into());
        put(BayField::FwUpdateInProgress, node_update.in_progress.into());
        put(BayField::FwUpdatePercent, node_update.percent.into());
        put(BayField::FwReleaseSummary, node_update.summary.into());
        put(
            BayField::AvrVersion,
            avr_version(bay.avr_firmware).unwrap_or_default().into(),
        );
        put(
            BayField::Ccss,
            bay.state.as_deref().unwrap_or_default().into(),
        );
        let update = controller_update(bay);
        put(BayField::AvrLatest, update.latest.into());
        put(BayField::AvrUpdateInProgress, update.in_progress.into());
        put(BayField::AvrUpdatePercent, update.percent.into());
        put(BayField::AvrReleaseSummary, update.summary.into());
    }
}

/// What the controller's update entity shows.
struct ControllerUpdate {
    latest: String,
    in_progress: bool,
    percent: Option<u8>,
    summary: String,
}

fn controller_update(bay: &BaySnapshot) -> ControllerUpdate {
    let installed = avr_version(bay.avr_firmware).unwrap_or_default();
    let latest = bay
        .avr_latest
        .as_ref()
        .and_then(|l| avr_version(Some(l.version)))
        .unwrap_or_else(|| installed.clone());
    let job = bay.firmware_job.as_ref();
    let in_progress = job.is_some_and(|j| {
        !matches!(
            j.state,
            JobState::Failed { .. } | JobState::Succeeded { .. }
        )
    });
    let summary = match job.map(|j| &j.state) {
        Some(JobState::Failed {
            error: JobError::Refused(refusal),
        }) => format!("install refused: {refusal}"),
        Some(JobState::Failed { error }) => format!("last install failed: {error}"),
        Some(JobState::Queued) => "install queued".to_owned(),
        Some(JobState::WaitingForBay { .. }) => {
            "install waits for the bay to answer again".to_owned()
        }
        _ => bay
            .avr_latest
            .as_ref()
            .map(|l| format!("image {}", l.file))
            .unwrap_or_default(),
    };
    ControllerUpdate {
        latest,
        in_progress,
        percent: job.filter(|_| in_progress).and_then(|j| j.percent),
        summary,
    }
}

/// The site's state object.
#[derive(Debug)]
pub struct SiteState<'a>(pub &'a SiteSnapshot);

impl Payload for SiteState<'_> {
    fn fields(&self, emit: &mut dyn FnMut(&'static str, Field<'_>)) {
        let site = self.0;
        let mut put = |field: SiteField, value: Field<'_>| emit(field.as_str(), value);
        put(SiteField::GridPowerW, site.grid_power_w.into());
        put(SiteField::PvPowerW, site.pv_power_w.into());
        put(SiteField::SurplusW, site.surplus_w.into());
        put(SiteField::EvPowerW, site.ev_power_w.into());
        put(SiteField::CurrentL1A, site.measured_a[0].into());
        put(SiteField::CurrentL2A, site.measured_a[1].into());
        put(SiteField::CurrentL3A, site.measured_a[2].into());
        put(SiteField::LimitL1A, site.limit_a[0].into());
        put(SiteField::LimitL2A, site.limit_a[1].into());
        put(SiteField::LimitL3A, site.limit_a[2].into());
        put(SiteField::Strategy, strategy_text(site.strategy).into());
        put(SiteField::SolarOk, site.solar_ok.into());
        put(SiteField::EvEnergyKwh, kwh(site.energy_total_wh).into());
        put(SiteField::BatteryPowerW, site.battery_power_w.into());
        put(SiteField::BatterySocPct, site.power.battery_soc_pct.into());
        put(SiteField::BudgetW, site.power.budget_w.into());
        let house = site.power.house_load_a;
        put(SiteField::HouseLoadL1A, house.map(|h| h[0]).into());
        put(SiteField::HouseLoadL2A, house.map(|h| h[1]).into());
        put(SiteField::HouseLoadL3A, house.map(|h| h[2]).into());
        put(SiteField::HouseFallback, site.power.house_fallback.into());
        let external = site
            .power
            .external
            .iter()
            .filter(|e| e.scope == "site")
            .filter_map(|e| e.watts)
            .min();
        put(SiteField::ExternalLimitW, external.into());
    }
}

/// kWh with Wh resolution, so the number stays short and exact enough for the Energy
/// dashboard.
fn kwh(wh: f64) -> f64 {
    wh.floor() / 1000.0
}

/// The wire word of a charge mode, without serialising it: the catalogue lists the words in
/// the enum's order (`tests/core/ha_vocabulary.rs` holds the two together).
fn mode_text(mode: ChargeMode) -> &'static str {
    word_of(&ChargeMode::ALL, ctrl22::CHARGE_MODES, &mode)
}

/// The wire word of a strategy; as [`mode_text`].
fn strategy_text(strategy: Strategy) -> &'static str {
    word_of(&Strategy::ALL, ctrl22::STRATEGIES, &strategy)
}

fn word_of<T: PartialEq>(all: &[T], words: &[&'static str], value: &T) -> &'static str {
    all.iter()
        .position(|v| v == value)
        .and_then(|i| words.get(i).copied())
        .unwrap_or_default()
}

/// `13` -> `"1.3"`; `0` (no AVR) or unknown -> `None`.
pub(crate) fn avr_version(version: Option<i16>) -> Option<String> {
    version
        .filter(|v| *v > 0)
        .map(|v| format!("{}.{}", v / 10, v % 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avr_versions_read_like_the_firmware_names_them() {
        assert_eq!(avr_version(Some(13)).as_deref(), Some("1.3"));
        assert_eq!(avr_version(Some(0)), None);
        assert_eq!(avr_version(None), None);
    }

    #[test]
    fn energy_is_in_kwh_with_watt_hour_resolution() {
        assert!((kwh(12_345.9) - 12.345).abs() < f64::EPSILON);
    }

    #[test]
    fn modes_and_strategies_read_as_their_serde_words() {
        for mode in ChargeMode::ALL {
            assert_eq!(
                serde_json::to_value(mode).ok(),
                Some(mode_text(mode).into())
            );
        }
        for strategy in Strategy::ALL {
            assert_eq!(
                serde_json::to_value(strategy).ok(),
                Some(strategy_text(strategy).into())
            );
        }
    }

    #[test]
    fn the_json_has_every_field_and_non_finite_numbers_are_null() {
        let site = SiteSnapshot {
            ev_power_w: 7_360,
            energy_total_wh: f64::NAN,
            ..SiteSnapshot::default()
        };
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&SiteState(&site))).unwrap_or_default();
        let keys: Vec<&str> = json
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut all: Vec<&str> = SiteField::ALL.iter().map(|f| f.as_str()).collect();
        all.sort_unstable();
        assert_eq!(keys, all);
        assert_eq!(json["ev_power_w"], 7_360);
        assert_eq!(json["ev_energy_kwh"], serde_json::Value::Null);
        assert_eq!(json["grid_power_w"], serde_json::Value::Null);
    }

    #[test]
    fn the_fingerprint_follows_the_values() {
        let mut site = SiteSnapshot::default();
        let before = fingerprint(&SiteState(&site));
        assert_eq!(fingerprint(&SiteState(&site)), before);
        site.grid_power_w = Some(0);
        let with_reading = fingerprint(&SiteState(&site));
        assert_ne!(with_reading, before, "null and 0 differ");
        site.measured_a[2] = 0.1;
        assert_ne!(fingerprint(&SiteState(&site)), with_reading);
    }
}
