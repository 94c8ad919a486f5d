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

/// One stored bay event, as the core emitted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BayEventRow {
    pub id: i64,
    pub at_ms: u64,
    pub bay: BayId,
    pub kind: String,
    /// The event as JSON (`crate::site::BayEvent`).
    pub event_json: String,
}

impl Store {
    /// Bay events after `after_id`, oldest first, at most `limit`: how a durable reader
    /// (the OCPP adapter) catches up after a restart.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn bay_events_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<BayEventRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at_ms, bay, kind, event_json FROM bay_events
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map((after_id, limit), |row| {
                Ok(BayEventRow {
                    id: row.get(0)?,
                    at_ms: row.get(1)?,
                    bay: BayId(row.get(2)?),
                    kind: row.get(3)?,
                    event_json: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

pub(super) fn append_bay_event(
    tx: &Transaction<'_>,
    at_ms: u64,
    bay: &BayId,
    kind: &str,
    event_json: &str,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO bay_events (at_ms, bay, kind, event_json) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((at_ms, &bay.0, kind, event_json))?;
    Ok(tx.last_insert_rowid())
}
