//! Device classes, state classes and units, typed so that only combinations Home Assistant
//! accepts can be built.
//!
//! Home Assistant 2025.6 rejects a sensor whose unit does not fit its state class, 2025.9 one
//! whose unit does not fit its device class; 2024.x accepts anything and shows nonsense. So the
//! combinations are not free fields: a [`SensorKind`] or [`NumberKind`] comes only from
//! constructors such as [`SensorKind::current_a`] or [`SensorKind::energy`], whose unit
//! parameter is an enum of the units that device class allows. [`rules`] holds Home
//! Assistant's own tables, and the tests walk every constructor with every unit through them.

use serde::Serialize;

/// How Home Assistant's statistics treat a numeric sensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateClass {
    Measurement,
    Total,
    TotalIncreasing,
}

impl StateClass {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Measurement => "measurement",
            Self::Total => "total",
            Self::TotalIncreasing => "total_increasing",
        }
    }
}

/// Whether an energy counter only grows (a meter; resets to zero are new cycles) or may also
/// fall (`total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accumulation {
    Total,
    TotalIncreasing,
}

impl From<Accumulation> for StateClass {
    fn from(a: Accumulation) -> Self {
        match a {
            Accumulation::Total => Self::Total,
            Accumulation::TotalIncreasing => Self::TotalIncreasing,
        }
    }
}

/// The sensor device classes this crate can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorDeviceClass {
    Current,
    Power,
    Energy,
    Voltage,
    SignalStrength,
    Battery,
    Enum,
}

impl SensorDeviceClass {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Power => "power",
            Self::Energy => "energy",
            Self::Voltage => "voltage",
            Self::SignalStrength => "signal_strength",
            Self::Battery => "battery",
            Self::Enum => "enum",
        }
    }
}

/// The number device classes this crate can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberDeviceClass {
    Current,
    Power,
    Energy,
}

impl NumberDeviceClass {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Power => "power",
            Self::Energy => "energy",
        }
    }
}

/// A unit of measurement as Home Assistant spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Ampere,
    Milliampere,
    Watt,
    Kilowatt,
    WattHour,
    KilowattHour,
    MegawattHour,
    Volt,
    Millivolt,
    Decibel,
    DecibelMilliwatt,
    Percent,
}

impl Unit {
    #[must_use]
    pub const fn symbol(self) -> &'static str {
        match self {
            Self::Ampere => "A",
            Self::Milliampere => "mA",
            Self::Watt => "W",
            Self::Kilowatt => "kW",
            Self::WattHour => "Wh",
            Self::KilowattHour => "kWh",
            Self::MegawattHour => "MWh",
            Self::Volt => "V",
            Self::Millivolt => "mV",
            Self::Decibel => "dB",
            Self::DecibelMilliwatt => "dBm",
            Self::Percent => "%",
        }
    }
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.symbol())
    }
}

/// Declares a unit enum for one quantity: the only units a device class of that quantity
/// accepts. Each converts into [`Unit`], and `ALL` lets tests walk them.
macro_rules! quantity_units {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
        }

        impl From<$name> for Unit {
            fn from(u: $name) -> Self {
                match u { $($name::$variant => Unit::$variant),+ }
            }
        }
    };
}

quantity_units!(
    /// Units of the `current` device class.
    CurrentUnit { Ampere, Milliampere }
);
quantity_units!(
    /// Units of the `power` device class (those every Home Assistant since 2024.3 knows).
    PowerUnit { Watt, Kilowatt }
);
quantity_units!(
    /// Units of the `energy` device class (those every Home Assistant since 2024.3 knows).
    EnergyUnit { WattHour, KilowattHour, MegawattHour }
);
quantity_units!(
    /// Units of the `voltage` device class.
    VoltageUnit { Volt, Millivolt }
);
quantity_units!(
    /// Units of the `signal_strength` device class.
    SignalUnit { Decibel, DecibelMilliwatt }
);

/// What a sensor measures: device class, state class, unit and, for enum sensors, the options.
/// Fields are private; every constructor yields a combination Home Assistant accepts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorKind {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_class: Option<SensorDeviceClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_class: Option<StateClass>,
    #[serde(
        rename = "unit_of_measurement",
        skip_serializing_if = "Option::is_none"
    )]
    unit: Option<Unit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

impl SensorKind {
    const fn measured(device_class: SensorDeviceClass, unit: Unit) -> Self {
        Self {
            device_class: Some(device_class),
            state_class: Some(StateClass::Measurement),
            unit: Some(unit),
            options: Vec::new(),
        }
    }

    #[must_use]
    pub fn current(unit: CurrentUnit) -> Self {
        Self::measured(SensorDeviceClass::Current, unit.into())
    }

    #[must_use]
    pub fn current_a() -> Self {
        Self::current(CurrentUnit::Ampere)
    }

    #[must_use]
    pub fn power(unit: PowerUnit) -> Self {
        Self::measured(SensorDeviceClass::Power, unit.into())
    }

    #[must_use]
    pub fn power_w() -> Self {
        Self::power(PowerUnit::Watt)
    }

    #[must_use]
    pub fn voltage(unit: VoltageUnit) -> Self {
        Self::measured(SensorDeviceClass::Voltage, unit.into())
    }

    #[must_use]
    pub fn signal_strength(unit: SignalUnit) -> Self {
        Self::measured(SensorDeviceClass::SignalStrength, unit.into())
    }

    /// A battery's state of charge in percent.
    #[must_use]
    pub fn battery_pct() -> Self {
        Self::measured(SensorDeviceClass::Battery, Unit::Percent)
    }

    #[must_use]
    pub fn signal_dbm() -> Self {
        Self::signal_strength(SignalUnit::DecibelMilliwatt)
    }

    /// An energy counter; usable in the Energy dashboard.
    #[must_use]
    pub fn energy(unit: EnergyUnit, accumulation: Accumulation) -> Self {
        Self {
            device_class: Some(SensorDeviceClass::Energy),
            state_class: Some(accumulation.into()),
            unit: Some(unit.into()),
            options: Vec::new(),
        }
    }

    #[must_use]
    pub fn energy_kwh_total_increasing() -> Self {
        Self::energy(EnergyUnit::KilowattHour, Accumulation::TotalIncreasing)
    }

    /// One of a fixed set of strings (Home Assistant forbids a unit or state class here).
    #[must_use]
    pub fn enumeration(options: &[&str]) -> Self {
        Self {
            device_class: Some(SensorDeviceClass::Enum),
            state_class: None,
            unit: None,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    /// Free text (a version, a MAC address): no class, no unit, no statistics.
    #[must_use]
    pub const fn text() -> Self {
        Self {
            device_class: None,
            state_class: None,
            unit: None,
            options: Vec::new(),
        }
    }

    /// A dimensionless number worth keeping statistics of (a mesh layer, a count).
    #[must_use]
    pub const fn count() -> Self {
        Self {
            device_class: None,
            state_class: Some(StateClass::Measurement),
            unit: None,
            options: Vec::new(),
        }
    }

    #[must_use]
    pub const fn device_class(&self) -> Option<SensorDeviceClass> {
        self.device_class
    }

    #[must_use]
    pub const fn state_class(&self) -> Option<StateClass> {
        self.state_class
    }

    #[must_use]
    pub const fn unit(&self) -> Option<Unit> {
        self.unit
    }

    #[must_use]
    pub fn options(&self) -> &[String] {
        &self.options
    }
}

/// What a number entity sets: device class and unit, tied the same way as for sensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NumberKind {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_class: Option<NumberDeviceClass>,
    #[serde(
        rename = "unit_of_measurement",
        skip_serializing_if = "Option::is_none"
    )]
    unit: Option<Unit>,
}

impl NumberKind {
    #[must_use]
    pub fn current(unit: CurrentUnit) -> Self {
        Self {
            device_class: Some(NumberDeviceClass::Current),
            unit: Some(unit.into()),
        }
    }

    #[must_use]
    pub fn current_a() -> Self {
        Self::current(CurrentUnit::Ampere)
    }

    #[must_use]
    pub fn power(unit: PowerUnit) -> Self {
        Self {
            device_class: Some(NumberDeviceClass::Power),
            unit: Some(unit.into()),
        }
    }

    #[must_use]
    pub fn energy(unit: EnergyUnit) -> Self {
        Self {
            device_class: Some(NumberDeviceClass::Energy),
            unit: Some(unit.into()),
        }
    }

    #[must_use]
    pub fn energy_kwh() -> Self {
        Self::energy(EnergyUnit::KilowattHour)
    }

    #[must_use]
    pub const fn device_class(&self) -> Option<NumberDeviceClass> {
        self.device_class
    }

    #[must_use]
    pub const fn unit(&self) -> Option<Unit> {
        self.unit
    }
}

/// Binary sensor device classes a charger uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinarySensorClass {
    Plug,
    BatteryCharging,
    Problem,
    Connectivity,
    Running,
    Power,
}

/// Button device classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonClass {
    Restart,
    Update,
    Identify,
}

/// Update device classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateClass {
    Firmware,
}

/// Where Home Assistant files an entity: `config` for settings, `diagnostic` for readings
/// that explain the device rather than the charging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityCategory {
    Config,
    Diagnostic,
}

/// Home Assistant's rules tying device class, state class and unit, as strings, the way
/// `sensor/const.py` (`DEVICE_CLASS_UNITS`, `DEVICE_CLASS_STATE_CLASSES`) and
/// `number/const.py` state them in 2026.2; used to check typed kinds and hand-made payloads.
pub mod rules {
    use thiserror::Error;

    /// Sensor device class -> (allowed units, allowed state classes), for the classes a
    /// charger may use. A class not listed accepts any unit and state class.
    pub const SENSOR: &[(&str, &[&str], &[&str])] = &[
        ("current", &["A", "mA"], &["measurement"]),
        (
            "power",
            &["mW", "W", "kW", "MW", "GW", "TW"],
            &["measurement"],
        ),
        (
            "energy",
            &[
                "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ",
            ],
            &["total", "total_increasing"],
        ),
        ("voltage", &["µV", "mV", "V", "kV", "MV"], &["measurement"]),
        ("signal_strength", &["dB", "dBm"], &["measurement"]),
        ("battery", &["%"], &["measurement"]),
        (
            "duration",
            &["d", "h", "min", "s", "ms", "µs"],
            &["measurement", "total", "total_increasing"],
        ),
    ];

    /// Number device class -> allowed units.
    pub const NUMBER: &[(&str, &[&str])] = &[
        ("current", &["A", "mA"]),
        ("power", &["mW", "W", "kW", "MW", "GW", "TW"]),
        (
            "energy",
            &[
                "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ",
            ],
        ),
    ];

    /// Why Home Assistant would refuse (2025.6+/2025.9+) or mis-show a combination.
    #[derive(Clone, Debug, PartialEq, Eq, Error)]
    pub enum Mismatch {
        #[error("unit {unit:?} does not fit device class {device_class}")]
        Unit {
            device_class: String,
            unit: Option<String>,
        },
        #[error("state class {state_class} does not fit device class {device_class}")]
        StateClass {
            device_class: String,
            state_class: String,
        },
        #[error("an enum sensor needs options and must have neither unit nor state class")]
        Enum,
        #[error("options are only allowed on enum sensors")]
        OptionsWithoutEnum,
    }

    /// Checks a sensor's combination against [`SENSOR`].
    ///
    /// # Errors
    /// The first rule the combination breaks.
    pub fn check_sensor(
        device_class: Option<&str>,
        state_class: Option<&str>,
        unit: Option<&str>,
        options: &[String],
    ) -> Result<(), Mismatch> {
        if device_class == Some("enum") {
            return if options.is_empty() || state_class.is_some() || unit.is_some() {
                Err(Mismatch::Enum)
            } else {
                Ok(())
            };
        }
        if !options.is_empty() {
            return Err(Mismatch::OptionsWithoutEnum);
        }
        let Some(class) = device_class else {
            return Ok(());
        };
        let Some((_, units, state_classes)) = SENSOR.iter().find(|(c, _, _)| *c == class) else {
            return Ok(());
        };
        if !unit.is_some_and(|u| units.contains(&u)) {
            return Err(Mismatch::Unit {
                device_class: class.to_owned(),
                unit: unit.map(str::to_owned),
            });
        }
        match state_class {
            Some(sc) if !state_classes.contains(&sc) => Err(Mismatch::StateClass {
                device_class: class.to_owned(),
                state_class: sc.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks a number's combination against [`NUMBER`].
    ///
    /// # Errors
    /// [`Mismatch::Unit`] when the unit does not fit the device class.
    pub fn check_number(device_class: Option<&str>, unit: Option<&str>) -> Result<(), Mismatch> {
        let Some(class) = device_class else {
            return Ok(());
        };
        match NUMBER.iter().find(|(c, _)| *c == class) {
            Some((_, units)) if !unit.is_some_and(|u| units.contains(&u)) => Err(Mismatch::Unit {
                device_class: class.to_owned(),
                unit: unit.map(str::to_owned),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::rules::{check_number, check_sensor, Mismatch};
    use super::*;

    fn check(kind: &SensorKind) -> Result<(), Mismatch> {
        check_sensor(
            kind.device_class().map(SensorDeviceClass::as_str),
            kind.state_class().map(StateClass::as_str),
            kind.unit().map(Unit::symbol),
            kind.options(),
        )
    }

    /// Every sensor kind any constructor can produce, with every unit its enum offers.
    fn every_sensor_kind() -> Vec<SensorKind> {
        let mut kinds = vec![
            SensorKind::current_a(),
            SensorKind::power_w(),
            SensorKind::energy_kwh_total_increasing(),
            SensorKind::signal_dbm(),
            SensorKind::battery_pct(),
            SensorKind::enumeration(&["a", "b"]),
            SensorKind::text(),
            SensorKind::count(),
        ];
        kinds.extend(CurrentUnit::ALL.iter().map(|u| SensorKind::current(*u)));
        kinds.extend(PowerUnit::ALL.iter().map(|u| SensorKind::power(*u)));
        kinds.extend(VoltageUnit::ALL.iter().map(|u| SensorKind::voltage(*u)));
        kinds.extend(
            SignalUnit::ALL
                .iter()
                .map(|u| SensorKind::signal_strength(*u)),
        );
        for unit in EnergyUnit::ALL {
            for acc in [Accumulation::Total, Accumulation::TotalIncreasing] {
                kinds.push(SensorKind::energy(*unit, acc));
            }
        }
        kinds
    }

    #[test]
    fn every_sensor_constructor_fits_home_assistant_tables() {
        let kinds = every_sensor_kind();
        assert_eq!(kinds.len(), 8 + 2 + 2 + 2 + 2 + 3 * 2);
        for kind in &kinds {
            assert_eq!(check(kind), Ok(()), "{kind:?}");
        }
    }

    #[test]
    fn every_number_constructor_fits_home_assistant_tables() {
        let mut kinds = vec![NumberKind::current_a(), NumberKind::energy_kwh()];
        kinds.extend(CurrentUnit::ALL.iter().map(|u| NumberKind::current(*u)));
        kinds.extend(PowerUnit::ALL.iter().map(|u| NumberKind::power(*u)));
        kinds.extend(EnergyUnit::ALL.iter().map(|u| NumberKind::energy(*u)));
        for kind in kinds {
            let r = check_number(
                kind.device_class().map(NumberDeviceClass::as_str),
                kind.unit().map(Unit::symbol),
            );
            assert_eq!(r, Ok(()), "{kind:?}");
        }
    }

    #[test]
    fn unit_enums_cover_only_units_of_their_device_class() {
        let table = |class: &str| {
            rules::SENSOR
                .iter()
                .find(|(c, _, _)| *c == class)
                .map(|(_, units, _)| *units)
                .unwrap_or_default()
        };
        let symbols = |units: Vec<Unit>| units.into_iter().map(Unit::symbol).collect::<Vec<_>>();
        let groups = [
            (
                "current",
                symbols(CurrentUnit::ALL.iter().map(|u| (*u).into()).collect()),
            ),
            (
                "power",
                symbols(PowerUnit::ALL.iter().map(|u| (*u).into()).collect()),
            ),
            (
                "energy",
                symbols(EnergyUnit::ALL.iter().map(|u| (*u).into()).collect()),
            ),
            (
                "voltage",
                symbols(VoltageUnit::ALL.iter().map(|u| (*u).into()).collect()),
            ),
            (
                "signal_strength",
                symbols(SignalUnit::ALL.iter().map(|u| (*u).into()).collect()),
            ),
        ];
        for (class, units) in groups {
            for unit in units {
                assert!(table(class).contains(&unit), "{unit} not a {class} unit");
            }
        }
    }

    #[test]
    fn the_rules_reject_what_home_assistant_rejects() {
        let none: &[String] = &[];
        // 2025.9+: unit must fit the device class.
        assert!(check_sensor(Some("power"), Some("measurement"), Some("A"), none).is_err());
        assert!(check_sensor(Some("current"), Some("measurement"), None, none).is_err());
        // The state class must be one the device class allows (energy is a counter).
        assert!(check_sensor(Some("energy"), Some("measurement"), Some("kWh"), none).is_err());
        assert!(check_sensor(Some("current"), Some("total_increasing"), Some("A"), none).is_err());
        // Enum sensors carry options only.
        let opts = vec!["x".to_owned()];
        assert!(check_sensor(Some("enum"), Some("measurement"), None, &opts).is_err());
        assert!(check_sensor(Some("enum"), None, None, none).is_err());
        assert!(check_sensor(None, None, None, &opts).is_err());
        assert!(check_number(Some("current"), Some("W")).is_err());
        // Classless sensors are free.
        assert_eq!(check_sensor(None, Some("measurement"), None, none), Ok(()));
    }

    #[test]
    fn kinds_serialise_to_home_assistant_keys() {
        let v = serde_json::to_value(SensorKind::energy_kwh_total_increasing()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"device_class": "energy", "state_class": "total_increasing",
                "unit_of_measurement": "kWh"})
        );
        let v = serde_json::to_value(SensorKind::enumeration(&["a"])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"device_class": "enum", "options": ["a"]})
        );
        assert_eq!(
            serde_json::to_value(SensorKind::text()).unwrap(),
            serde_json::json!({})
        );
    }
}
