//! The retained state payloads Home Assistant's entities read, built from a site snapshot.
//! Field names are the contract of [`ctrl22_ha::ctrl22`]: [`BayField`] and [`SiteField`].

use ctrl22_ha::ctrl22::{BayField, SiteField};
use serde_json::{Map, Value};

use crate::ota::jobs::{JobError, JobState};
use crate::site::snapshot::{BaySnapshot, SiteSnapshot};

/// A bay's state object.
#[must_use]
pub fn bay_state(bay: &BaySnapshot) -> Value {
    let mut m = Map::new();
    let mut put = |field: BayField, value: Value| {
        m.insert(field.as_str().to_owned(), value);
    };
    put(BayField::State, bay.status.as_str().into());
    put(BayField::CurrentL1A, bay.current_a[0].into());
    put(BayField::CurrentL2A, bay.current_a[1].into());
    put(BayField::CurrentL3A, bay.current_a[2].into());
    put(BayField::PowerW, bay.power_w.into());
    put(BayField::SessionEnergyKwh, kwh(bay.session_energy_wh));
    put(BayField::TotalEnergyKwh, kwh(bay.total_energy_wh));
    put(BayField::AllocatedCurrentA, bay.allocated_a.into());
    put(BayField::CableCapacityA, bay.cable_a.unwrap_or(0.0).into());
    put(BayField::Plugged, bay.plugged.into());
    put(BayField::Charging, bay.charging.into());
    put(BayField::Problem, bay.problem.into());
    put(BayField::Online, bay.online.into());
    put(BayField::Mode, enum_text(&bay.mode));
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
        kwh(f64::from(bay.settings.target_energy_wh.unwrap_or(0))),
    );
    put(BayField::RssiDbm, bay.rssi_dbm.into());
    put(BayField::MeshLayer, bay.mesh_layer.into());
    put(
        BayField::MeshParent,
        bay.mesh_parent.clone().unwrap_or_default().into(),
    );
    put(
        BayField::FwVersion,
        bay.firmware.clone().unwrap_or_default().into(),
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
    put(BayField::Ccss, bay.state.clone().unwrap_or_default().into());
    let update = controller_update(bay);
    put(BayField::AvrLatest, update.latest.into());
    put(BayField::AvrUpdateInProgress, update.in_progress.into());
    put(BayField::AvrUpdatePercent, update.percent.into());
    put(BayField::AvrReleaseSummary, update.summary.into());
    Value::Object(m)
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
#[must_use]
pub fn site_state(site: &SiteSnapshot) -> Value {
    let mut m = Map::new();
    let mut put = |field: SiteField, value: Value| {
        m.insert(field.as_str().to_owned(), value);
    };
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
    put(SiteField::Strategy, enum_text(&site.strategy));
    put(SiteField::SolarOk, site.solar_ok.into());
    put(SiteField::EvEnergyKwh, kwh(site.energy_total_wh));
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
    Value::Object(m)
}

/// kWh with Wh resolution, so the number stays short and exact enough for the Energy
/// dashboard.
fn kwh(wh: f64) -> Value {
    ((wh).floor() / 1000.0).into()
}

/// The lower-case wire name of a serde enum (`"minpv"`, `"fair"`).
fn enum_text(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
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
        assert_eq!(kwh(12_345.9), Value::from(12.345));
    }
}
