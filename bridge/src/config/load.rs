//! Loading: defaults, then the TOML file, then `CTRL22_*` environment overrides, through
//! figment (which checks shapes and rejects unknown keys), then [`Config::validate`].

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::{Config, ConfigError};

/// The prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "CTRL22_";

/// Keys whose environment value is taken as text, never parsed as a number or a boolean.
const SECRET_KEYS: [&str; 3] = ["mqtt.password", "http.token", "ocpp.password"];

impl Config {
    /// Loads defaults, then the TOML file at `path` (which must exist when given), then
    /// `CTRL22_*` environment overrides, and validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or key at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = path {
            // figment silently skips a missing file; a mistyped --config must not run defaults.
            std::fs::metadata(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        // `CTRL22_CONFIG` names the file (the command line's `--config`); it is no key.
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["CONFIG"]).split("__"));
        // figment reads `CTRL22_MQTT__PASSWORD=0123` as the number 123; a secret is text,
        // whatever it looks like, so these keys are taken from the environment verbatim.
        for key in SECRET_KEYS {
            let var = format!("{ENV_PREFIX}{}", key.to_uppercase().replace('.', "__"));
            if let Ok(value) = std::env::var(&var) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        Self::from_figment(&figment)
    }

    /// Parses and validates a configuration given as TOML text (no environment overrides).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let figment =
            Figment::from(Serialized::defaults(Self::default())).merge(Toml::string(text));
        Self::from_figment(&figment)
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as TOML.
    ///
    /// # Errors
    /// Only if a value cannot be expressed in TOML (does not happen for validated configs).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
