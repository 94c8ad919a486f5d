//! What each bay may be drawing, kept across restarts (SPEC section 4: a restart forgets
//! nothing that matters for the limit).

use std::collections::BTreeMap;

use rusqlite::Transaction;

use super::{Store, StoreError};
use crate::bay::BayId;

impl Store {
    /// Every stored reservation: per bay, 0.1 A per site phase.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn reservations(&self) -> Result<BTreeMap<BayId, [i32; 3]>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bay, l1_deciamps, l2_deciamps, l3_deciamps FROM reservations",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((BayId(row.get(0)?), [row.get(1)?, row.get(2)?, row.get(3)?]))
            })?;
            rows.collect()
        })
    }
}

/// Refuses a load no bay can draw (checked before the transaction, so it costs only itself).
pub(super) fn check_reservation(load: [i32; 3]) -> Result<(), StoreError> {
    if load.iter().any(|&v| v < 0) {
        return Err(StoreError::Invalid {
            field: "reservation",
            problem: format!("negative load {load:?}"),
        });
    }
    Ok(())
}

/// Stores `bay`'s reservation (checked with [`check_reservation`]); all zero removes it.
pub(super) fn save_reservation(
    tx: &Transaction<'_>,
    bay: &BayId,
    load: [i32; 3],
) -> Result<(), StoreError> {
    if load == [0; 3] {
        tx.prepare_cached("DELETE FROM reservations WHERE bay = ?1")?
            .execute([&bay.0])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO reservations (bay, l1_deciamps, l2_deciamps, l3_deciamps)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (bay) DO UPDATE SET l1_deciamps = excluded.l1_deciamps,
               l2_deciamps = excluded.l2_deciamps, l3_deciamps = excluded.l3_deciamps",
        )?
        .execute((&bay.0, load[0], load[1], load[2]))?;
    }
    Ok(())
}
