//! A bay controller's parameters through the bridge: `GET /api/v1/nodes/{dev}/parameters/{par}`
//! reads one (`avrgetpar`), `PUT` with `{"value": 160}` writes one (`avrsetpar`). The site
//! sends the command and hands back the node's reply, which a tool beside the bridge could
//! lose to it.
//!
//! Both send to the mesh, so both need the token or a login. On an enabled bay only
//! harmless parameters (`blinks`, `time`) may be written, anything else is `409`; `wdtsec`
//! (the bridge's watchdog period) is always `409`; `smaxcur`/`fsafecur` other than 0 or
//! 60 up to the bay's ceiling (configured maximum, cable) is `400`; a raise the site has no
//! room for is `409`; no reply within a few seconds is `504`. Every refusal is counted in
//! `ctrl22_rejected_input_total`.

use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use ctrl22_node::mesh::ParName;
use serde::{Deserialize, Serialize};

use super::{ApiError, State};
use crate::bay::BayId;
use crate::site::parameters::{ParAnswer, ParRefusal};

/// How often a request to a busy bay is tried, and the pause between tries: 2 s in all.
const BUSY_RETRIES: u32 = 40;
const BUSY_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

pub(super) fn routes() -> Router<State> {
    Router::new().route("/api/v1/nodes/{dev}/parameters/{par}", get(read).put(write))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    value: i16,
}

#[derive(Serialize)]
struct Answer {
    par: String,
    value: Option<i16>,
    written: bool,
}

async fn read(
    Extract(state): Extract<State>,
    Path((dev, par)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Answer>, ApiError> {
    ask(&state, &headers, dev, &par, None).await
}

async fn write(
    Extract(state): Extract<State>,
    Path((dev, par)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Answer>, ApiError> {
    let parsed: Result<WriteBody, _> = serde_json::from_slice(&body);
    let body = parsed.map_err(|e| {
        let error = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not {{\"value\": <i16>}}: {e}"),
        );
        state.refused(&error);
        error
    })?;
    ask(&state, &headers, dev, &par, Some(body.value)).await
}

async fn ask(
    state: &State,
    headers: &HeaderMap,
    dev: String,
    par: &str,
    value: Option<i16>,
) -> Result<Json<Answer>, ApiError> {
    state
        .access
        .authorize_write(headers)
        .inspect_err(|e| state.refused(e))?;
    let name = ParName::try_from(par)
        .ok()
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "a parameter name is 1 to 16 letters or digits",
            );
            state.refused(&error);
            error
        })?;
    let bay = BayId(dev);
    let mut answer = Err(ParRefusal::Busy);
    // The bay is busy while the sequencer or another operator waits for its reply, which
    // takes a mesh round trip: worth waiting a little before refusing.
    for attempt in 0..BUSY_RETRIES {
        if attempt > 0 {
            tokio::time::sleep(BUSY_RETRY_PAUSE).await;
        }
        answer = state
            .site
            .parameter(bay.clone(), name.clone(), value)
            .await
            .ok_or_else(|| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the site has stopped")
            })?;
        if answer != Err(ParRefusal::Busy) {
            break;
        }
    }
    match answer {
        Ok(answer) => Ok(Json(Answer {
            par: par.to_owned(),
            value: match answer {
                ParAnswer::Value(v) => Some(v),
                ParAnswer::Written => value,
            },
            written: answer == ParAnswer::Written,
        })),
        Err(refusal) => {
            let status = match refusal {
                ParRefusal::UnknownBay => StatusCode::NOT_FOUND,
                ParRefusal::NoReply => StatusCode::GATEWAY_TIMEOUT,
                ParRefusal::QueueFull => StatusCode::SERVICE_UNAVAILABLE,
                ParRefusal::NodeRefused => StatusCode::BAD_GATEWAY,
                ParRefusal::AboveCeiling { .. } => StatusCode::BAD_REQUEST,
                ParRefusal::Offline
                | ParRefusal::Flashing
                | ParRefusal::SequencerOwned(_)
                | ParRefusal::NotWhileEnabled(_)
                | ParRefusal::Watchdog
                | ParRefusal::Busy
                | ParRefusal::NoBudget => StatusCode::CONFLICT,
            };
            let error = ApiError::new(status, refusal.to_string());
            state.refused(&error);
            Err(error)
        }
    }
}
