//! `GET /api/v1/sessions` (JSON, or CSV for `Accept: text/csv` or `?format=csv`) and
//! `GET /api/v1/events`, read from the store.

use std::time::UNIX_EPOCH;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{ApiError, State, StoreReader};
use crate::bay::BayId;
use crate::store::{write_sessions_csv, SessionFilter, StoreError};

/// Sessions returned when no `limit` is given.
const DEFAULT_LIMIT: u32 = 1000;
/// Events returned when no `limit` is given.
const DEFAULT_EVENTS: u32 = 100;
/// The largest `limit=` of either list: one answer stays a few megabytes at most.
pub(super) const MAX_LIMIT: u32 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionsQuery {
    /// Sessions started at or after: `2026-11-24`, RFC 3339, or Unix ms.
    from: Option<String>,
    /// Sessions started before, same forms.
    to: Option<String>,
    bay: Option<String>,
    limit: Option<u32>,
    /// `csv` or `json`.
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    limit: Option<u32>,
}

pub(super) async fn list(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    query: Result<Query<SessionsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad_query(&state, &e))?;
    let csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(refuse(
                &state,
                format!("format: {other:?} is neither csv nor json"),
            ));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv")),
    };
    let filter = SessionFilter {
        bay: query.bay.map(BayId),
        from_ms: time_bound(&state, "from", query.from.as_deref())?,
        to_ms: time_bound(&state, "to", query.to.as_deref())?,
        limit: Some(limit(&state, query.limit, DEFAULT_LIMIT)?),
    };
    let rows = store(&state)?
        .read(move |store| store.sessions(&filter))
        .await
        .map_err(|e| unavailable(&e))?;
    if csv {
        let mut text = Vec::new();
        write_sessions_csv(&mut text, &rows)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("CSV: {e}")))?;
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"sessions.csv\"",
                ),
            ],
            text,
        )
            .into_response())
    } else {
        Ok(Json(rows).into_response())
    }
}

pub(super) async fn events(
    Extract(state): Extract<State>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad_query(&state, &e))?;
    let limit = limit(&state, query.limit, DEFAULT_EVENTS)?;
    let rows = store(&state)?
        .read(move |store| store.recent_events(limit))
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(rows).into_response())
}

fn store(state: &State) -> Result<&StoreReader, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this process keeps no store (demo)",
        )
    })
}

fn unavailable(e: &StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn refuse(state: &State, message: String) -> ApiError {
    let error = ApiError::new(StatusCode::BAD_REQUEST, message);
    state.refused(&error);
    error
}

fn bad_query(state: &State, e: &QueryRejection) -> ApiError {
    refuse(state, e.body_text())
}

/// `limit=` or the default, at most [`MAX_LIMIT`].
fn limit(state: &State, limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit {
        Some(limit) if limit > MAX_LIMIT => Err(refuse(
            state,
            format!("limit: {limit} is above the most one answer holds ({MAX_LIMIT})"),
        )),
        limit => Ok(limit.unwrap_or(default)),
    }
}

fn time_bound(state: &State, name: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|text| {
        parse_time_ms(text).ok_or_else(|| {
            refuse(
                state,
                format!("{name}: {text:?} is not a date (2026-11-24), an RFC 3339 time or Unix ms"),
            )
        })
    })
    .transpose()
}

/// `2026-11-24` (midnight UTC), `2026-11-24T08:00:00Z` or Unix milliseconds.
fn parse_time_ms(text: &str) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    let time = if text.len() == 10 {
        humantime::parse_rfc3339(&format!("{text}T00:00:00Z"))
    } else {
        humantime::parse_rfc3339_weak(text)
    }
    .ok()?;
    let ms = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
    u64::try_from(ms).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_time_ms;

    #[test]
    fn time_bounds() {
        assert_eq!(parse_time_ms("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time_ms("1970-01-01T00:01:00Z"), Some(60_000));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(parse_time_ms("1970-13-01"), None);
    }
}
