//! The bridge's persistent state in one SQLite file: runtime settings, charging sessions,
//! lifetime energy per bay, what each bay may be drawing (reservations), the ordered bay
//! events, the OCPP message queue and an append-only event log.
//!
//! This is a driver, not a decision: it stores what the site core emits and hands it back at
//! startup. It never reads a clock (timestamps come from the caller) and never interprets a
//! setting beyond knowing which older row a newer change replaces.
//!
//! Crash safety: the file runs in WAL mode with `synchronous = FULL`. Every commit is in the
//! WAL and fsynced before the call returns, and SQLite's WAL recovery discards a torn tail, so
//! `kill -9` (or a power cut) at any moment loses at most the commit that was in flight (at
//! worst one control cycle's energy batch) and never leaves a half-applied transaction.
//! `NORMAL` would be just as safe against a killed process, but after a power cut it may lose
//! every commit since the last checkpoint; our write rate (one energy batch a minute, a few
//! events and settings) makes the extra fsync per commit cheap, so we take the stronger
//! guarantee for boxes that lose power in a parking lot.
//!
//! `Store` is `Send` and owned by one runtime task; call it from `spawn_blocking` or a
//! dedicated thread, since every write waits for an fsync. Hand it each control cycle's
//! outputs at once ([`Store::persist_outputs`]): one commit, one fsync.

mod energy;
mod events;
mod migrations;
mod ocpp_queue;
mod outputs;
mod reservations;
mod sessions;
mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

pub use events::{BayEventRow, EventRow};
pub use migrations::SCHEMA_VERSION;
pub use ocpp_queue::{OcppSaved, OcppWrite};
pub use sessions::{write_sessions_csv, Session, SessionFilter, SessionRow};

/// How long a statement waits for a lock held by someone else (an operator's `sqlite3` shell
/// or backup) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with the store. Every variant that concerns the file names it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store {} is corrupt or not a SQLite database ({reason}); restore a backup or move it away to start empty", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("the store {} belongs to another application (application_id {application_id:#x}, user_version {user_version}); refusing to touch it", path.display())]
    ForeignDatabase {
        path: PathBuf,
        application_id: i64,
        user_version: i64,
    },
    #[error("the store's schema version {found} is newer than this bridge supports ({supported}); run a newer bridge or restore a backup")]
    NewerSchema { found: i64, supported: i64 },
    #[error("cannot store {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("store {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// The open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// For error messages; `:memory:` for an in-memory store.
    path: PathBuf,
}

impl Store {
    /// Opens (creating if absent) the store at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened, [`StoreError::Corrupt`] when it is
    /// not a SQLite database, [`StoreError::ForeignDatabase`] when it is some other program's,
    /// [`StoreError::NewerSchema`] when a newer bridge wrote it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path.to_owned())
    }

    /// A store that lives in memory only, for tests.
    ///
    /// # Errors
    /// Only if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, StoreError> {
        let mut store = Self { conn, path };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.error(e))?;
        // The first statement that reads the header: a garbage file fails here.
        migrations::check_owner(&store.conn, &store.path)?;
        let configure = |conn: &Connection| -> rusqlite::Result<()> {
            // The answer is not checked: where WAL is impossible (an in-memory database, a
            // file system without shared memory) SQLite keeps a rollback journal, which is
            // just as crash-safe with `synchronous = FULL`, only slower.
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                row.get::<_, String>(0)
            })?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")
        };
        configure(&store.conn).map_err(|e| store.error(e))?;
        let path = store.path.clone();
        store.write(|tx| migrations::migrate(tx, &path))?;
        Ok(store)
    }

    /// Runs SQLite's full integrity check.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] listing the first problems found.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let problems = self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check(10)")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })?;
        if problems.len() == 1 && problems.first().is_some_and(|p| p == "ok") {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: problems.join("; "),
            })
        }
    }

    /// Runs `f` in one transaction that commits (and fsyncs) only if `f` succeeds.
    ///
    /// `IMMEDIATE` takes the write lock up front, so a concurrent reader (a backup) makes us
    /// wait at `BEGIN` rather than fail halfway through.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| error_at(&self.path, e))?;
        let value = f(&tx).map_err(|e| lift(&self.path, e))?;
        tx.commit().map_err(|e| error_at(&self.path, e))?;
        Ok(value)
    }

    /// Runs a read-only `f`, naming the file in its errors.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        f(&self.conn).map_err(|e| self.error(e))
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        error_at(&self.path, e)
    }
}

/// Gives a store error made inside a transaction (see the `From` below) the file's path.
fn lift(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Sqlite { source, .. } => error_at(path, source),
        StoreError::Corrupt { reason, .. } => StoreError::Corrupt {
            path: path.to_owned(),
            reason,
        },
        other => other,
    }
}

/// A SQLite error as a store error: corruption is told apart from everything else.
fn error_at(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// For `?` inside [`Store::write`] closures, which have no path at hand: `lift` adds it.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        error_at(Path::new(""), e)
    }
}
