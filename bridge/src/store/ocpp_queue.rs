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

/// One change to a charge point's durable state, applied in order in one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcppWrite {
    /// Insert or replace the transaction message `seq`.
    PutTxMessage {
        seq: u64,
        message_json: String,
    },
    RemoveTxMessage {
        seq: u64,
    },
    /// Set (`Some`) or delete (`None`) a state key.
    State {
        key: String,
        value_json: Option<String>,
    },
}

/// What a charge point kept: its transaction messages (queue order) and state keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OcppSaved {
    pub tx_messages: Vec<String>,
    pub state: Vec<(String, String)>,
}

fn seq_key(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        field: "ocpp_tx_messages.seq",
        problem: format!("{seq} is out of range"),
    })
}

impl Store {
    /// Applies `writes` for `charge_point` in one commit (one fsync).
    ///
    /// # Errors
    /// SQLite failures; a `seq` beyond SQLite's integers.
    pub fn ocpp_write(
        &mut self,
        charge_point: &str,
        writes: &[OcppWrite],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for write in writes {
                match write {
                    OcppWrite::PutTxMessage { seq, message_json } => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO ocpp_tx_messages (charge_point, seq, message_json)
                             VALUES (?1, ?2, ?3)",
                        )?
                        .execute((charge_point, seq_key(*seq)?, message_json))?;
                    }
                    OcppWrite::RemoveTxMessage { seq } => {
                        tx.prepare_cached(
                            "DELETE FROM ocpp_tx_messages WHERE charge_point = ?1 AND seq = ?2",
                        )?
                        .execute((charge_point, seq_key(*seq)?))?;
                    }
                    OcppWrite::State {
                        key,
                        value_json: Some(value),
                    } => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO ocpp_state (charge_point, key, value_json)
                             VALUES (?1, ?2, ?3)",
                        )?
                        .execute((charge_point, key, value))?;
                    }
                    OcppWrite::State {
                        key,
                        value_json: None,
                    } => {
                        tx.prepare_cached(
                            "DELETE FROM ocpp_state WHERE charge_point = ?1 AND key = ?2",
                        )?
                        .execute((charge_point, key))?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Everything `charge_point` kept.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn ocpp_saved(&self, charge_point: &str) -> Result<OcppSaved, StoreError> {
        self.read(|conn| {
            let tx_messages = conn
                .prepare_cached(
                    "SELECT message_json FROM ocpp_tx_messages WHERE charge_point = ?1 ORDER BY seq",
                )?
                .query_map([charge_point], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let state = conn
                .prepare_cached(
                    "SELECT key, value_json FROM ocpp_state WHERE charge_point = ?1 ORDER BY key",
                )?
                .query_map([charge_point], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
            Ok(OcppSaved { tx_messages, state })
        })
    }
}
