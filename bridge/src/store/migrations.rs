//! Versioned schema migrations, embedded in the binary.
//!
//! `PRAGMA user_version` holds how many migrations the file has; `PRAGMA application_id` marks
//! it as ours, so the bridge never adds its tables to some other program's database. A file
//! from a newer bridge is refused rather than guessed at.

use std::path::Path;

use rusqlite::{Connection, Transaction};

use super::{error_at, StoreError};

/// "C22B" in ASCII: this file is a ctrl22 bridge store.
const APPLICATION_ID: i64 = 0x4332_3242;

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`. Append only: a
/// released migration is never edited, since files in the field already ran it.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/0001_initial.sql"),
    include_str!("schema/0002_reservations_bay_events.sql"),
    include_str!("schema/0003_ocpp_state.sql"),
    include_str!("schema/0004_session_uncounted.sql"),
];

/// The schema version this bridge writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a file that is not ours or is newer than us. This is the first read of the file's
/// header, so a file that is not SQLite at all fails here as [`StoreError::Corrupt`].
pub(super) fn check_owner(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let read = || -> rusqlite::Result<(i64, i64, i64)> {
        let application_id = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let user_version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let objects = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        Ok((application_id, user_version, objects))
    };
    let (application_id, user_version, objects) = read().map_err(|e| error_at(path, e))?;
    let empty = application_id == 0 && user_version == 0 && objects == 0;
    if application_id != APPLICATION_ID && !empty {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
            application_id,
            user_version,
        });
    }
    if user_version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: user_version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the missing migrations in the caller's transaction: a crash leaves the file at its
/// old version or fully migrated, never in between.
pub(super) fn migrate(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(current).map_err(|_| StoreError::Corrupt {
        path: path.to_owned(),
        reason: format!("negative schema version {current}"),
    })?;
    if applied >= MIGRATIONS.len() {
        return Ok(());
    }
    for sql in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}
