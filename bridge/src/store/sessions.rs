//! Finished charging sessions, and their CSV export for `GET /api/v1/sessions`.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use ctrl22_node::Deciamps;
use rusqlite::types::Value;
use rusqlite::Transaction;
use serde::Serialize;

use super::{Store, StoreError};
use crate::bay::BayId;

/// One finished charging session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    pub bay: BayId,
    /// Unix time in milliseconds.
    pub started_ms: u64,
    pub ended_ms: u64,
    pub energy_wh: f64,
    /// The RFID/OCPP identifier that authorised the session, if any.
    pub id_tag: Option<String>,
    /// The highest current the bay was offered during the session.
    #[serde(rename = "max_current_deciamps")]
    pub max_current: Option<Deciamps>,
    /// The part of `energy_wh` that came from solar surplus, when a solar source is set up.
    pub solar_wh: Option<f64>,
    /// How long the bay was offline during the session (past the heartbeat timeout), ms:
    /// `energy_wh` misses what flowed then. 0: the session is complete.
    pub uncounted_ms: u64,
}

impl Session {
    /// Whether some of the session's energy went unmeasured (see [`Self::uncounted_ms`]).
    #[must_use]
    pub fn incomplete(&self) -> bool {
        self.uncounted_ms > 0
    }

    /// The solar part of the session's energy, 0.0-1.0; `None` without a solar source or
    /// without energy.
    #[must_use]
    pub fn solar_share(&self) -> Option<f64> {
        self.solar_wh
            .filter(|_| self.energy_wh > 0.0)
            .map(|solar_wh| (solar_wh / self.energy_wh).clamp(0.0, 1.0))
    }
}

/// A stored session and its row id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionRow {
    pub id: i64,
    #[serde(flatten)]
    pub session: Session,
}

/// Which sessions to list. Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub bay: Option<BayId>,
    /// Sessions that started at or after this Unix time in milliseconds.
    pub from_ms: Option<u64>,
    /// Sessions that started before this Unix time in milliseconds.
    pub to_ms: Option<u64>,
    /// At most this many (the earliest).
    pub limit: Option<u32>,
}

impl Store {
    /// Records a finished session and returns its id.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when an energy is not a finite number (SQLite would store
    /// NULL); SQLite failures.
    pub fn record_session(&mut self, session: &Session) -> Result<i64, StoreError> {
        check_session(session)?;
        self.write(|tx| record_session(tx, session))
    }

    /// The sessions matching `filter`, by start time.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a damaged file.
    pub fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        // Only the conditions in use go into the SQL, so SQLite can pick the index for them
        // (`?1 IS NULL OR ...` would scan the whole table).
        let mut conditions = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(bay) = &filter.bay {
            params.push(Value::Text(bay.0.clone()));
            conditions.push(format!("bay = ?{}", params.len()));
        }
        if let Some(from_ms) = filter.from_ms {
            params.push(Value::Integer(sql_ms(from_ms)));
            conditions.push(format!("started_ms >= ?{}", params.len()));
        }
        if let Some(to_ms) = filter.to_ms {
            params.push(Value::Integer(sql_ms(to_ms)));
            conditions.push(format!("started_ms < ?{}", params.len()));
        }
        let mut sql = "SELECT id, bay, started_ms, ended_ms, energy_wh, id_tag, \
                       max_current_deciamps, solar_wh, uncounted_ms FROM sessions"
            .to_owned();
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY started_ms, id");
        if let Some(limit) = filter.limit {
            params.push(Value::Integer(i64::from(limit)));
            sql.push_str(&format!(" LIMIT ?{}", params.len()));
        }
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
                Ok(SessionRow {
                    id: row.get(0)?,
                    session: Session {
                        bay: BayId(row.get(1)?),
                        started_ms: row.get(2)?,
                        ended_ms: row.get(3)?,
                        energy_wh: row.get(4)?,
                        id_tag: row.get(5)?,
                        max_current: row.get::<_, Option<i16>>(6)?.map(Deciamps),
                        solar_wh: row.get(7)?,
                        uncounted_ms: row.get(8)?,
                    },
                })
            })?;
            rows.collect()
        })
    }
}

/// Refuses energies SQLite cannot store (it turns NaN into NULL).
pub(super) fn check_session(session: &Session) -> Result<(), StoreError> {
    let finite = |field: &'static str, wh: f64| {
        if wh.is_finite() {
            Ok(())
        } else {
            Err(StoreError::Invalid {
                field,
                problem: format!("{wh} is not a number of watt-hours"),
            })
        }
    };
    finite("energy_wh", session.energy_wh)?;
    session
        .solar_wh
        .map_or(Ok(()), |solar_wh| finite("solar_wh", solar_wh))
}

pub(super) fn record_session(tx: &Transaction<'_>, session: &Session) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions (bay, started_ms, ended_ms, energy_wh, id_tag,
                               max_current_deciamps, solar_wh, uncounted_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute((
        &session.bay.0,
        session.started_ms,
        session.ended_ms,
        session.energy_wh,
        &session.id_tag,
        session.max_current.map(Deciamps::get),
        session.solar_wh,
        sql_ms(session.uncounted_ms),
    ))?;
    Ok(tx.last_insert_rowid())
}

/// A filter bound as SQLite's i64; a bound past year 292 million matches everything anyway.
fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Writes `rows` as CSV (RFC 4180, header first): times in UTC RFC 3339, energies in kWh;
/// `uncounted_s` > 0 marks a session whose energy misses that many seconds offline.
///
/// Text cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) get a `'`
/// in front: an id tag comes from whoever holds the card or the OCPP link.
///
/// # Errors
/// Whatever `out` returns.
pub fn write_sessions_csv(out: &mut impl Write, rows: &[SessionRow]) -> io::Result<()> {
    out.write_all(
        b"id,bay,started,ended,duration_s,energy_kwh,id_tag,max_current_a,solar_kwh,solar_share,uncounted_s\r\n",
    )?;
    for row in rows {
        let s = &row.session;
        let duration_s = s.ended_ms.saturating_sub(s.started_ms) / 1000;
        write!(
            out,
            "{},{},{},{},{duration_s},{:.3},{},",
            row.id,
            csv_text(&s.bay.0),
            rfc3339(s.started_ms),
            rfc3339(s.ended_ms),
            s.energy_wh / 1000.0,
            csv_text(s.id_tag.as_deref().unwrap_or("")),
        )?;
        if let Some(current) = s.max_current {
            write!(out, "{:.1}", current.as_amps())?;
        }
        out.write_all(b",")?;
        if let Some(solar_wh) = s.solar_wh {
            write!(out, "{:.3}", solar_wh / 1000.0)?;
        }
        out.write_all(b",")?;
        if let Some(share) = s.solar_share() {
            write!(out, "{share:.3}")?;
        }
        write!(out, ",{}\r\n", s.uncounted_ms.div_ceil(1000))?;
    }
    Ok(())
}

/// Unix milliseconds as RFC 3339 in UTC; past year 9999 (which RFC 3339 cannot write) as the
/// bare number, so one absurd row does not cost the whole export.
fn rfc3339(ms: u64) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    if ms < YEAR_10000_MS {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    } else {
        ms.to_string()
    }
}

/// One text cell: defused if it looks like a formula, quoted if it holds a separator.
fn csv_text(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}
