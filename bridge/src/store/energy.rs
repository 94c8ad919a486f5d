//! Lifetime energy per bay.
//!
//! A stored total only ever rises: a save lower than what is stored (a node that lost its
//! counter, a replayed old batch) keeps the stored value, so Home Assistant's
//! `total_increasing` sensors never see a reset that is not one.

use std::collections::BTreeMap;

use rusqlite::Transaction;

use super::{Store, StoreError};
use crate::bay::BayId;

impl Store {
    /// Saves one control cycle's totals in a single commit, keeping `max(stored, new)` per bay.
    ///
    /// # Errors
    /// SQLite failures (disk full, I/O); nothing of the batch is stored then.
    pub fn save_energy_batch(&mut self, totals_wh: &[(BayId, u64)]) -> Result<(), StoreError> {
        if totals_wh.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for (bay, total_wh) in totals_wh {
                save_energy(tx, bay, *total_wh)?;
            }
            Ok(())
        })
    }

    /// Every bay's stored lifetime total, for `Site::new`.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn energy_totals(&self) -> Result<BTreeMap<BayId, u64>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT bay, total_wh FROM energy")?;
            let rows = stmt.query_map([], |row| Ok((BayId(row.get(0)?), row.get(1)?)))?;
            rows.collect()
        })
    }
}

/// Raises `bay`'s stored total to `total_wh` (never lowers it).
pub(super) fn save_energy(
    tx: &Transaction<'_>,
    bay: &BayId,
    total_wh: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO energy (bay, total_wh) VALUES (?1, ?2)
         ON CONFLICT (bay) DO UPDATE SET total_wh = max(total_wh, excluded.total_wh)",
    )?
    .execute((&bay.0, total_wh))?;
    Ok(())
}
