//! OCPP messages waiting for their central system, per charge point.
//!
//! A message stays until acknowledged, across restarts, and is handed out in the order it was
//! queued. Delivery is at least once at this level (a crash between sending and `ack` sends
//! it again); OCPP's unique message ids let the central system drop the duplicate.

use super::{Store, StoreError};

impl Store {
    /// Queues a message for `charge_point` and returns its id (ids only ever grow).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn enqueue(&mut self, charge_point: &str, message_json: &str) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO ocpp_queue (charge_point, message_json) VALUES (?1, ?2)",
            )?
            .execute((charge_point, message_json))?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The oldest `limit` unacknowledged messages of `charge_point` as (id, JSON), oldest first.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn pending(
        &self,
        charge_point: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, message_json FROM ocpp_queue WHERE charge_point = ?1
                 ORDER BY id LIMIT ?2",
            )?;
            let rows =
                stmt.query_map((charge_point, limit), |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    /// Removes a delivered message. Returns whether it was still queued (a repeated ack is
    /// harmless).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn ack(&mut self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let removed = tx
                .prepare_cached("DELETE FROM ocpp_queue WHERE id = ?1")?
                .execute([id])?;
            Ok(removed > 0)
        })
    }
}
