//! Runtime settings an operator changed, kept to be replayed through `Site::apply` at startup.
//!
//! Each change is stored as its JSON under a key of (bay, field): a newer change of the same
//! field replaces the older one, so the replay holds the latest value of every field, in the
//! order they were last changed.

use rusqlite::Transaction;

use super::{Store, StoreError};
use crate::bay::BayId;
use crate::site::SettingChange;

/// What saving one change does to the settings table.
pub(super) enum SettingWrite<'a> {
    /// Insert or replace the row of (scope, field).
    Keep {
        scope: &'a str,
        field: String,
        json: String,
    },
    /// The bay is gone: its settings go with it.
    Forget(&'a BayId),
    /// An action, not state: replaying it at startup would repeat it.
    Momentary,
}

/// Works out the row of a change. The field is the change's serde tag, plus the phase for
/// the one tag that covers several values (`site_limit.1`).
pub(super) fn setting_write(change: &SettingChange) -> Result<SettingWrite<'_>, StoreError> {
    let suffix = match change {
        SettingChange::SiteLimit { phase, .. } => Some(*phase),
        SettingChange::Strategy(_)
        | SettingChange::DefaultMode(_)
        | SettingChange::BayName { .. }
        | SettingChange::BayMode { .. }
        | SettingChange::BayMaxCurrent { .. }
        | SettingChange::BayPriority { .. }
        | SettingChange::BayEnabled { .. }
        | SettingChange::BayDeparture { .. }
        | SettingChange::BayTargetEnergy { .. } => None,
        SettingChange::BayForget { bay } => return Ok(SettingWrite::Forget(bay)),
        SettingChange::BayButton { .. } | SettingChange::BayRelease { .. } => {
            return Ok(SettingWrite::Momentary)
        }
    };
    let invalid = |problem: String| StoreError::Invalid {
        field: "setting",
        problem,
    };
    let json = serde_json::to_value(change).map_err(|e| invalid(e.to_string()))?;
    let tag = json
        .get("field")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid(format!("no `field` tag in {json}")))?;
    let field = match suffix {
        Some(suffix) => format!("{tag}.{suffix}"),
        None => tag.to_owned(),
    };
    Ok(SettingWrite::Keep {
        scope: change.bay().map_or("", |bay| bay.0.as_str()),
        field,
        json: json.to_string(),
    })
}

pub(super) fn save_setting(
    tx: &Transaction<'_>,
    write: &SettingWrite<'_>,
) -> Result<(), StoreError> {
    match write {
        SettingWrite::Keep { scope, field, json } => {
            // REPLACE deletes the old row and inserts a new one with a higher `seq`.
            tx.prepare_cached(
                "INSERT OR REPLACE INTO settings (scope, field, change_json) VALUES (?1, ?2, ?3)",
            )?
            .execute((scope, field, json))?;
        }
        SettingWrite::Forget(bay) => {
            tx.prepare_cached("DELETE FROM settings WHERE scope = ?1")?
                .execute([&bay.0])?;
        }
        SettingWrite::Momentary => {}
    }
    Ok(())
}

impl Store {
    /// Persists an accepted change. A newer change of the same field of the same bay (or of
    /// the site) replaces the older; `BayForget` deletes the bay's settings; momentary actions
    /// (`BayButton`, `BayRelease`) are not state and are not stored.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Invalid`] if the change does not serialize.
    pub fn save_setting(&mut self, change: &SettingChange) -> Result<(), StoreError> {
        let write = setting_write(change)?;
        if matches!(write, SettingWrite::Momentary) {
            return Ok(());
        }
        self.write(|tx| save_setting(tx, &write))
    }

    /// The stored changes, oldest first, to replay through `Site::apply`.
    ///
    /// A row that no longer parses (a format change shipped without a migration) is skipped
    /// with a warning rather than keeping the bridge from starting: the configured value
    /// then stands.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn settings(&self) -> Result<Vec<SettingChange>, StoreError> {
        let rows = self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT scope, field, change_json FROM settings ORDER BY seq")?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(scope, field, json)| {
                serde_json::from_str(&json)
                    .map_err(|e| {
                        tracing::warn!(scope, field, error = %e, "stored setting skipped");
                    })
                    .ok()
            })
            .collect())
    }
}
