//! `[storage]`: where the bridge keeps sessions, settings and reservations.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[storage]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The SQLite file.
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("ctrl22.db"),
        }
    }
}
