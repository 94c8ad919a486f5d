//! The append-only event log: bays coming and going, errors, limit changes.
//!
//! Rows are never changed (a trigger refuses UPDATE); the caller supplies the time, so the log
//! tells the site core's clock, not the disk's.

use rusqlite::Transaction;
use serde::Serialize;

use super::{Store, StoreError};
use crate::bay::BayId;

/// One logged event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub id: i64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// The bay it concerns; `None` for the site.
    pub bay: Option<BayId>,
    pub text: String,
}

impl Store {
    /// Appends an event and returns its id.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn append_event(
        &mut self,
        at_ms: u64,
        bay: Option<&BayId>,
        text: &str,
    ) -> Result<i64, StoreError> {
        self.write(|tx| append_event(tx, at_ms, bay, text))
    }

    /// The last `limit` events, newest first.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn recent_events(&self, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at_ms, bay, text FROM events ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |row| {
                Ok(EventRow {
                    id: row.get(0)?,
                    at_ms: row.get(1)?,
                    bay: row.get::<_, Option<String>>(2)?.map(BayId),
                    text: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }
}

pub(super) fn append_event(
    tx: &Transaction<'_>,
    at_ms: u64,
    bay: Option<&BayId>,
    text: &str,
) -> Result<i64, StoreError> {
    tx.prepare_cached("INSERT INTO events (at_ms, bay, text) VALUES (?1, ?2, ?3)")?
        .execute((at_ms, bay.map(|bay| bay.0.as_str()), text))?;
    Ok(tx.last_insert_rowid())
}
