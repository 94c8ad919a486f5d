//! The site device: the connection's power and currents, its limits and the strategy.

use super::builder::{Builder, PHASES};
use super::fields::{SiteCommand, SiteField};
use super::identity::{entity_base, origin, site_device_id, MANUFACTURER, ORIGIN_NAME};
use super::options::STRATEGIES;
use super::topics::Topics;
use crate::classes::{BinarySensorClass, EntityCategory, NumberKind, SensorKind};
use crate::component::NumberRange;
use crate::device::{Availability, AvailabilityTopic, Device};
use crate::error::DiscoveryError;
use crate::render::DeviceConfig;

/// What the catalogue needs to know about the site; plain values, no bridge types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInfo {
    /// Topic level `<site>`, `[a-zA-Z0-9_-]`.
    pub site_id: String,
    pub name: String,
    pub bridge_version: String,
    /// The configured ceiling per phase (`site.max_current`), whole amperes: the upper bound
    /// of the site limit numbers. A phase with a ceiling of 0 (not connected) gets no number.
    pub ceiling_a: [u16; 3],
    /// The bridge's dashboard, shown as "Visit" in Home Assistant.
    pub configuration_url: Option<String>,
}

///
/// # Errors
/// [`DiscoveryError::InvalidId`] for a site id outside `[a-zA-Z0-9_-]`.
pub fn site_device(site: &SiteInfo) -> Result<DeviceConfig, DiscoveryError> {
    use SiteCommand as C;
    use SiteField as F;

    let topics = Topics::new(&site.site_id)?;
    let id = site_device_id(&site.site_id);
    let device = Device {
        identifiers: vec![id.clone()],
        name: site.name.clone(),
        manufacturer: Some(MANUFACTURER.to_owned()),
        model: Some(ORIGIN_NAME.to_owned()),
        sw_version: Some(site.bridge_version.clone()),
        configuration_url: site.configuration_url.clone(),
        ..Device::default()
    };
    let availability = Availability::all(vec![AvailabilityTopic::online_offline(
        topics.bridge_status(),
    )]);
    let mut cfg = DeviceConfig::new(
        id.clone(),
        entity_base(&site.name, &id),
        device,
        origin(site),
        availability,
    )?;

    let command = |c: SiteCommand| topics.site_command(c);
    let b = Builder {
        state_topic: topics.site_state(),
        command_topic: &command,
    };
    let power = |key, name, field: SiteField, icon| {
        b.sensor(key, name, field.as_str(), SensorKind::power_w(), Some(0))
            .icon(icon)
    };
    let mut components = vec![
        power(
            "grid_power",
            "Grid power",
            F::GridPowerW,
            "mdi:transmission-tower",
        ),
        power("pv_power", "PV power", F::PvPowerW, "mdi:solar-power"),
        power("surplus", "Surplus", F::SurplusW, "mdi:solar-power-variant"),
        power("ev_power", "EV power", F::EvPowerW, "mdi:ev-station"),
        power(
            "battery_power",
            "Battery power",
            F::BatteryPowerW,
            "mdi:home-battery",
        ),
        power(
            "budget",
            "Solar budget",
            F::BudgetW,
            "mdi:solar-power-variant-outline",
        ),
        power(
            "external_limit",
            "External limit",
            F::ExternalLimitW,
            "mdi:transmission-tower-off",
        ),
    ];
    components.push(
        b.sensor(
            "battery_soc",
            "Battery state of charge",
            F::BatterySocPct.as_str(),
            SensorKind::battery_pct(),
            Some(0),
        )
        .icon("mdi:home-battery-outline"),
    );
    let house_loads = [F::HouseLoadL1A, F::HouseLoadL2A, F::HouseLoadL3A];
    for ((key, label), field) in PHASES.iter().zip(house_loads) {
        components.push(
            b.sensor(
                &format!("house_load_{key}"),
                &format!("House load {label}"),
                field.as_str(),
                SensorKind::current_a(),
                Some(1),
            )
            .icon("mdi:home-lightning-bolt"),
        );
    }
    let currents = [F::CurrentL1A, F::CurrentL2A, F::CurrentL3A];
    let limits = [
        (F::LimitL1A, C::LimitL1A),
        (F::LimitL2A, C::LimitL2A),
        (F::LimitL3A, C::LimitL3A),
    ];
    for (((key, label), current), ((limit_field, limit_command), ceiling_a)) in PHASES
        .iter()
        .zip(currents)
        .zip(limits.into_iter().zip(site.ceiling_a))
    {
        components.push(b.sensor(
            &format!("current_{key}"),
            &format!("Current {label}"),
            current.as_str(),
            SensorKind::current_a(),
            Some(1),
        ));
        // Up to the configured ceiling only: the site core refuses more (the wiring and the
        // fuse take no more), and the slider should not offer what will be refused.
        if let Ok(range) = NumberRange::new(0.0, f64::from(ceiling_a), 1.0) {
            components.push(
                b.number(
                    (&format!("limit_{key}"), &format!("Limit {label}")),
                    (limit_field.as_str(), limit_command),
                    NumberKind::current_a(),
                    range,
                )
                .category(EntityCategory::Config),
            );
        }
    }
    components.extend([
        b.select(
            ("strategy", "Strategy"),
            (F::Strategy.as_str(), C::Strategy),
            STRATEGIES,
        )
        .icon("mdi:scale-balance"),
        b.binary(
            "solar_ok",
            "Solar source",
            F::SolarOk.as_str(),
            Some(BinarySensorClass::Connectivity),
        )
        .category(EntityCategory::Diagnostic),
        b.binary(
            "house_fallback",
            "Grid meter fallback",
            F::HouseFallback.as_str(),
            Some(BinarySensorClass::Problem),
        )
        .category(EntityCategory::Diagnostic),
        b.sensor(
            "ev_energy",
            "EV energy",
            F::EvEnergyKwh.as_str(),
            SensorKind::energy_kwh_total_increasing(),
            Some(1),
        ),
    ]);
    for c in components {
        cfg.push(c)?;
    }
    Ok(cfg)
}
