//! The standard configuration keys (OCPP 1.6 §9 with the errata): their values, which are
//! read-only, and the validation of ChangeConfiguration. Changed values are handed to the
//! caller (as `Event::ConfigurationChanged`) to persist and given back at start.

use rust_ocpp::v1_6::types::{ConfigurationStatus, KeyValue};

/// The measurands this charge point can sample.
pub const SUPPORTED_MEASURANDS: [&str; 4] = [
    "Energy.Active.Import.Register",
    "Current.Import",
    "Power.Active.Import",
    "Current.Offered",
];

/// Advertised feature profiles; Reservation is not among them.
pub const SUPPORTED_FEATURE_PROFILES: &str =
    "Core,FirmwareManagement,LocalAuthListManagement,SmartCharging,RemoteTrigger";

/// Keys and limits the session reads.
pub mod key {
    pub const CLOCK_ALIGNED_DATA_INTERVAL: &str = "ClockAlignedDataInterval";
    pub const CONNECTION_TIME_OUT: &str = "ConnectionTimeOut";
    pub const HEARTBEAT_INTERVAL: &str = "HeartbeatInterval";
    pub const LOCAL_AUTH_LIST_ENABLED: &str = "LocalAuthListEnabled";
    pub const METER_VALUES_ALIGNED_DATA: &str = "MeterValuesAlignedData";
    pub const METER_VALUES_SAMPLED_DATA: &str = "MeterValuesSampledData";
    pub const METER_VALUE_SAMPLE_INTERVAL: &str = "MeterValueSampleInterval";
    pub const NUMBER_OF_CONNECTORS: &str = "NumberOfConnectors";
    pub const STOP_TXN_SAMPLED_DATA: &str = "StopTxnSampledData";
    pub const TRANSACTION_MESSAGE_ATTEMPTS: &str = "TransactionMessageAttempts";
    pub const TRANSACTION_MESSAGE_RETRY_INTERVAL: &str = "TransactionMessageRetryInterval";
}

/// Limits that are also read-only keys.
pub const GET_CONFIGURATION_MAX_KEYS: usize = 64;
pub const LOCAL_AUTH_LIST_MAX_LENGTH: usize = 1000;
pub const SEND_LOCAL_LIST_MAX_LENGTH: usize = 250;
pub const CHARGE_PROFILE_MAX_STACK_LEVEL: u32 = 8;
pub const CHARGING_SCHEDULE_MAX_PERIODS: usize = 48;
pub const MAX_CHARGING_PROFILES_INSTALLED: usize = 32;
/// The longest value we keep for a text key.
const MAX_VALUE_LEN: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    /// Seconds or counts, bounded.
    Int {
        max: u32,
    },
    /// Comma-separated measurands, each one of [`SUPPORTED_MEASURANDS`].
    Measurands,
    Text,
}

#[derive(Clone, Copy, Debug)]
struct KeyDef {
    name: &'static str,
    writable: bool,
    kind: Kind,
    default: &'static str,
}

const DAY_S: u32 = 86_400;

const fn rw(name: &'static str, kind: Kind, default: &'static str) -> KeyDef {
    KeyDef {
        name,
        writable: true,
        kind,
        default,
    }
}
const fn ro(name: &'static str, kind: Kind, default: &'static str) -> KeyDef {
    KeyDef {
        name,
        writable: false,
        kind,
        default,
    }
}

/// Every key we know; `NumberOfConnectors` gets its value from the session.
const KEYS: [KeyDef; 29] = [
    ro("AuthorizeRemoteTxRequests", Kind::Bool, "false"),
    rw("ClockAlignedDataInterval", Kind::Int { max: DAY_S }, "0"),
    rw("ConnectionTimeOut", Kind::Int { max: 3600 }, "60"),
    rw("ConnectorPhaseRotation", Kind::Text, "NotApplicable"),
    ro("GetConfigurationMaxKeys", Kind::Int { max: 1000 }, "64"),
    rw("HeartbeatInterval", Kind::Int { max: DAY_S }, "3600"),
    rw("LocalAuthorizeOffline", Kind::Bool, "true"),
    rw("LocalPreAuthorize", Kind::Bool, "false"),
    rw(
        "MeterValuesAlignedData",
        Kind::Measurands,
        "Energy.Active.Import.Register",
    ),
    rw(
        "MeterValuesSampledData",
        Kind::Measurands,
        "Energy.Active.Import.Register,Power.Active.Import",
    ),
    rw("MeterValueSampleInterval", Kind::Int { max: DAY_S }, "60"),
    ro("NumberOfConnectors", Kind::Int { max: 10_000 }, "1"),
    rw("ResetRetries", Kind::Int { max: 10 }, "1"),
    ro("StopTransactionOnEVSideDisconnect", Kind::Bool, "true"),
    rw("StopTransactionOnInvalidId", Kind::Bool, "true"),
    rw("StopTxnAlignedData", Kind::Measurands, ""),
    rw("StopTxnSampledData", Kind::Measurands, ""),
    ro(
        "SupportedFeatureProfiles",
        Kind::Text,
        SUPPORTED_FEATURE_PROFILES,
    ),
    rw("TransactionMessageAttempts", Kind::Int { max: 100 }, "3"),
    rw(
        "TransactionMessageRetryInterval",
        Kind::Int { max: DAY_S },
        "60",
    ),
    rw("UnlockConnectorOnEVSideDisconnect", Kind::Bool, "true"),
    rw("WebSocketPingInterval", Kind::Int { max: DAY_S }, "60"),
    rw("LocalAuthListEnabled", Kind::Bool, "true"),
    ro("LocalAuthListMaxLength", Kind::Int { max: 100_000 }, "1000"),
    ro("SendLocalListMaxLength", Kind::Int { max: 100_000 }, "250"),
    ro("ChargeProfileMaxStackLevel", Kind::Int { max: 100 }, "8"),
    ro(
        "ChargingScheduleAllowedChargingRateUnit",
        Kind::Text,
        "Current,Power",
    ),
    ro("ChargingScheduleMaxPeriods", Kind::Int { max: 1000 }, "48"),
    ro(
        "MaxChargingProfilesInstalled",
        Kind::Int { max: 1000 },
        "32",
    ),
];

fn definitions() -> impl Iterator<Item = &'static KeyDef> {
    KEYS.iter()
}

fn find(name: &str) -> Option<&'static KeyDef> {
    // Keys are case-insensitive in practice (some backends send `heartbeatInterval`).
    definitions().find(|def| def.name.eq_ignore_ascii_case(name))
}

/// The current values of all keys.
#[derive(Clone, Debug)]
pub struct Configuration {
    values: Vec<String>,
}

/// What a successful ChangeConfiguration changed: the key's canonical name and new value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub key: &'static str,
    pub value: String,
}

impl Configuration {
    /// The defaults, with `NumberOfConnectors` set.
    #[must_use]
    pub fn new(number_of_connectors: u32) -> Self {
        let values = definitions()
            .map(|def| {
                if def.name == key::NUMBER_OF_CONNECTORS {
                    number_of_connectors.to_string()
                } else {
                    def.default.to_owned()
                }
            })
            .collect();
        Self { values }
    }

    fn index(name: &str) -> Option<usize> {
        definitions().position(|def| def.name.eq_ignore_ascii_case(name))
    }

    /// The value of a known key (`""` for an unknown one).
    #[must_use]
    pub fn text(&self, name: &str) -> &str {
        Self::index(name)
            .and_then(|index| self.values.get(index))
            .map_or("", String::as_str)
    }

    /// An integer key's value (0 if unset or not a number).
    #[must_use]
    pub fn int(&self, name: &str) -> u32 {
        self.text(name).parse().unwrap_or(0)
    }

    /// A boolean key's value.
    #[must_use]
    pub fn flag(&self, name: &str) -> bool {
        self.text(name).eq_ignore_ascii_case("true")
    }

    /// A measurand list key's items.
    pub fn measurands(&self, name: &str) -> impl Iterator<Item = &str> {
        self.text(name)
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
    }

    /// GetConfiguration: the requested keys (all if none) and the unknown ones.
    #[must_use]
    pub fn get(&self, requested: Option<&[String]>) -> (Vec<KeyValue>, Vec<String>) {
        let key_value = |def: &KeyDef| KeyValue {
            key: def.name.to_owned(),
            readonly: !def.writable,
            value: Some(self.text(def.name).to_owned()),
        };
        match requested {
            None | Some([]) => (definitions().map(key_value).collect(), Vec::new()),
            Some(names) => {
                let mut known = Vec::new();
                let mut unknown = Vec::new();
                for name in names.iter().take(GET_CONFIGURATION_MAX_KEYS) {
                    match find(name) {
                        Some(def) => known.push(key_value(def)),
                        None => unknown.push(name.chars().take(50).collect()),
                    }
                }
                (known, unknown)
            }
        }
    }

    /// ChangeConfiguration: `NotSupported` for an unknown key, `Rejected` for a read-only key
    /// or a bad value, else the value is stored and returned for persisting.
    pub fn change(&mut self, name: &str, value: &str) -> (ConfigurationStatus, Option<Changed>) {
        let (Some(def), Some(index)) = (find(name), Self::index(name)) else {
            return (ConfigurationStatus::NotSupported, None);
        };
        if !def.writable {
            return (ConfigurationStatus::Rejected, None);
        }
        let Some(value) = normalise(def.kind, value) else {
            return (ConfigurationStatus::Rejected, None);
        };
        if let Some(slot) = self.values.get_mut(index) {
            slot.clone_from(&value);
        }
        (
            ConfigurationStatus::Accepted,
            Some(Changed {
                key: def.name,
                value,
            }),
        )
    }

    /// Applies a persisted value at start; invalid or stale ones are ignored (the default
    /// stays), so a corrupt store cannot wedge the session.
    pub fn restore(&mut self, name: &str, value: &str) -> bool {
        matches!(self.change(name, value).0, ConfigurationStatus::Accepted)
    }
}

/// The canonical form of a valid value, or `None`.
fn normalise(kind: Kind, value: &str) -> Option<String> {
    let value = value.trim();
    if value.len() > MAX_VALUE_LEN {
        return None;
    }
    match kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => Some("true".to_owned()),
            "false" => Some("false".to_owned()),
            _ => None,
        },
        Kind::Int { max } => {
            // Some backends write "60.0"; an integral float is the integer they meant.
            let number = value
                .parse::<u32>()
                .ok()
                .or_else(|| {
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(max))
                        .map(|f| {
                            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                            let whole = f as u32;
                            whole
                        })
                })
                .filter(|n| *n <= max)?;
            Some(number.to_string())
        }
        Kind::Measurands => {
            let items: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .collect();
            items
                .iter()
                .all(|item| SUPPORTED_MEASURANDS.contains(item))
                .then(|| items.join(","))
        }
        Kind::Text => Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_unknown_and_bad_values() {
        let mut config = Configuration::new(2);
        assert_eq!(config.int(key::NUMBER_OF_CONNECTORS), 2);
        for (name, value, status) in [
            ("NumberOfConnectors", "3", ConfigurationStatus::Rejected),
            ("NoSuchKey", "3", ConfigurationStatus::NotSupported),
            ("HeartbeatInterval", "-5", ConfigurationStatus::Rejected),
            ("heartbeatinterval", "300.0", ConfigurationStatus::Accepted),
        ] {
            assert_eq!(config.change(name, value).0, status, "{name}={value}");
        }
        assert_eq!(config.int(key::HEARTBEAT_INTERVAL), 300);
        assert_eq!(
            config
                .change(
                    "MeterValuesSampledData",
                    "Energy.Active.Import.Register,Voltage"
                )
                .0,
            ConfigurationStatus::Rejected
        );
        assert_eq!(config.measurands(key::METER_VALUES_SAMPLED_DATA).count(), 2);
        let (all, unknown) = config.get(None);
        assert_eq!(all.len(), 29);
        assert!(unknown.is_empty());
    }
}
