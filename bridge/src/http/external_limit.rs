//! `PUT /api/v1/site/external_limit` and `PUT /api/v1/circuits/{id}/external_limit`: a home
//! energy manager or a grid operator's gateway sets a limit over HTTP. Like every external
//! limit it only lowers what the configuration allows (the core takes the minimum under the
//! ceiling); the body is `{"watts": 4200}`, `{"amps": [16, 16, 16]}` or `null` to lift it.

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ctrl22_node::Deciamps;
use serde::Deserialize;

use super::api::authorize;
use super::{ApiError, State};
use crate::handle::SiteRequest;
use crate::site::{ExternalLimit, LimitScope, SourceId};

/// The most an external power limit may say (W): beyond any site this bridge runs, so a
/// larger number is a mistake, not a limit.
const MAX_WATTS: u32 = 1_000_000;
/// The most an external current limit may say per phase (A).
const MAX_AMPS: f64 = 630.0;

/// The body: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    watts: Option<f64>,
    amps: Option<[f64; 3]>,
}

pub(super) async fn put_site(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    put(&state, &headers, LimitScope::Site, &body).await
}

pub(super) async fn put_circuit(
    Extract(state): Extract<State>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    if !state.site.snapshot().circuits.iter().any(|c| c.id == id) {
        let error = ApiError::new(StatusCode::NOT_FOUND, format!("no circuit {id:?}"));
        state.refused(&error);
        return Err(error);
    }
    put(&state, &headers, LimitScope::Circuit(id), &body).await
}

async fn put(
    state: &State,
    headers: &HeaderMap,
    scope: LimitScope,
    body: &[u8],
) -> Result<Response, ApiError> {
    authorize(state, headers)?;
    let limit = parse_limit(body)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, reason))
        .inspect_err(|e| state.refused(e))?;
    state
        .site
        .send(SiteRequest::ExternalLimit {
            source: SourceId::HTTP_API,
            scope,
            limit,
        })
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The limit a body says (`None`: lift it), or why it says none.
fn parse_limit(body: &[u8]) -> Result<Option<ExternalLimit>, String> {
    let body: Option<LimitBody> = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not {{\"watts\": W}}, {{\"amps\": [A, A, A]}} or null: {e}")
    })?;
    let Some(body) = body else {
        return Ok(None);
    };
    match (body.watts, body.amps) {
        (Some(watts), None) => {
            if !(watts.is_finite() && (0.0..=f64::from(MAX_WATTS)).contains(&watts)) {
                return Err(format!("watts must be 0 to {MAX_WATTS}, not {watts}"));
            }
            // In range, so the cast neither wraps nor saturates.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let watts = watts.round() as u32;
            Ok(Some(ExternalLimit::Watts(watts)))
        }
        (None, Some(amps)) => {
            if let Some(bad) = amps
                .iter()
                .find(|a| !(a.is_finite() && (0.0..=MAX_AMPS).contains(*a)))
            {
                return Err(format!("amps must be 0 to {MAX_AMPS} per phase, not {bad}"));
            }
            // In range (at most 6300 dA), so the cast cannot wrap.
            #[allow(clippy::cast_possible_truncation)]
            let deciamps = amps.map(|a| Deciamps((a * 10.0).round() as i16));
            Ok(Some(ExternalLimit::Amps(deciamps)))
        }
        _ => Err("give exactly one of watts and amps (or null to lift the limit)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_their_reasons() {
        assert_eq!(
            parse_limit(br#"{"watts": 4200}"#),
            Ok(Some(ExternalLimit::Watts(4200)))
        );
        assert_eq!(
            parse_limit(br#"{"amps": [16, 10.5, 0]}"#),
            Ok(Some(ExternalLimit::Amps([
                Deciamps(160),
                Deciamps(105),
                Deciamps(0)
            ])))
        );
        assert_eq!(parse_limit(b"null"), Ok(None));
        for bad in [
            &br#"{"watts": -1}"#[..],
            br#"{"watts": 1e12}"#,
            br#"{"amps": [16, 16]}"#,
            br#"{"amps": [16, 16, 1000]}"#,
            br#"{"watts": 10, "amps": [1, 1, 1]}"#,
            br#"{}"#,
            br#"{"volts": 3}"#,
            b"<html>",
        ] {
            assert!(
                parse_limit(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
