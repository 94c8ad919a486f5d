//! `GET`/`PUT /api/v1/site`, `GET`/`PUT /api/v1/nodes/{dev}` and the start/stop buttons.
//!
//! A `PUT` body is a JSON object of settings, each mapped to one [`SettingChange`]; the set
//! goes to the site core in one [`SiteHandle::apply_all`](crate::handle::SiteHandle::apply_all),
//! which validates every change before it applies any: a body is taken whole or not at all.
//! The site task publishes the snapshot that shows accepted changes before it answers, so
//! the answer (and any `GET` after it) already shows them.

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer};

use super::{site_json, ApiError, State};
use crate::allocate::{ChargeMode, Strategy};
use crate::bay::BayId;
use crate::site::record::{ButtonRequest, Departure};
use crate::site::snapshot::{BaySnapshot, SiteSnapshot};
use crate::site::{SettingChange, SettingError};

/// `PUT /api/v1/nodes/{dev}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaySettingsBody {
    name: Option<String>,
    mode: Option<ChargeMode>,
    /// Amperes.
    max_current: Option<f64>,
    priority: Option<i32>,
    enabled: Option<bool>,
    /// `"HH:MM"`, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    departure: Option<Option<Departure>>,
    target_energy_kwh: Option<f64>,
}

/// `PUT /api/v1/site`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSettingsBody {
    strategy: Option<Strategy>,
    default_mode: Option<ChargeMode>,
    /// Amperes per phase L1-L3.
    max_current: Option<[f64; 3]>,
}

/// Tells a field given as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub(super) async fn get_site(Extract(state): Extract<State>) -> Json<serde_json::Value> {
    Json(site_json(&state.site.snapshot()))
}

pub(super) async fn get_nodes(Extract(state): Extract<State>) -> Response {
    Json(&state.site.snapshot().bays).into_response()
}

pub(super) async fn get_node(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = state.site.snapshot();
    let bay = find_bay(&snapshot, &dev)?;
    Ok(Json(bay).into_response())
}

pub(super) async fn put_site(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: SiteSettingsBody = parse(&state, &headers, &body)?;
    apply_all(&state, site_changes(body)).await?;
    Ok(Json(site_json(&state.site.snapshot())).into_response())
}

pub(super) async fn put_node(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: BaySettingsBody = parse(&state, &headers, &body)?;
    apply_all(&state, bay_changes(&BayId(dev.clone()), body)).await?;
    let snapshot = state.site.snapshot();
    Ok(Json(find_bay(&snapshot, &dev)?).into_response())
}

/// `POST /api/v1/nodes/{dev}/start` and `.../stop`: the bay's operator button;
/// `.../release`: an operator declares that an offline bay draws nothing, so the current it
/// keeps reserved goes back to the others.
pub(super) async fn press(
    Extract(state): Extract<State>,
    Path((dev, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bay = BayId(dev);
    let change = match action.as_str() {
        "start" => SettingChange::BayButton {
            bay,
            press: ButtonRequest::Start,
        },
        "stop" => SettingChange::BayButton {
            bay,
            press: ButtonRequest::Stop,
        },
        "release" => SettingChange::BayRelease { bay },
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such action")),
    };
    authorize(&state, &headers)?;
    apply_all(&state, vec![change]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/v1/nodes/{dev}`: forget an offline bay (gone from the site).
pub(super) async fn forget_node(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let change = SettingChange::BayForget { bay: BayId(dev) };
    apply_all(&state, vec![change]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn find_bay<'a>(snapshot: &'a SiteSnapshot, dev: &str) -> Result<&'a BaySnapshot, ApiError> {
    snapshot
        .bays
        .iter()
        .find(|bay| bay.dev == dev)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no bay {dev}")))
}

/// Checks the token, then reads the body as a JSON object of known settings.
fn parse<T: for<'de> Deserialize<'de>>(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    authorize(state, headers)?;
    serde_json::from_slice(body)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a settings object: {e}"),
            )
        })
        .inspect_err(|e| state.refused(e))
}

/// Lets a write through with the token or a login; counts a refusal.
pub(super) fn authorize(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    state
        .access
        .authorize_write(headers)
        .inspect_err(|e| state.refused(e))
}

fn site_changes(body: SiteSettingsBody) -> Vec<SettingChange> {
    let mut changes = Vec::new();
    if let Some(limits) = body.max_current {
        for (phase, amps) in (1..=3).zip(limits) {
            changes.push(SettingChange::SiteLimit { phase, amps });
        }
    }
    changes.extend(body.strategy.map(SettingChange::Strategy));
    changes.extend(body.default_mode.map(SettingChange::DefaultMode));
    changes
}

fn bay_changes(bay: &BayId, body: BaySettingsBody) -> Vec<SettingChange> {
    let id = || bay.clone();
    let BaySettingsBody {
        name,
        mode,
        max_current,
        priority,
        enabled,
        departure,
        target_energy_kwh,
    } = body;
    [
        max_current.map(|amps| SettingChange::BayMaxCurrent { bay: id(), amps }),
        priority.map(|priority| SettingChange::BayPriority {
            bay: id(),
            priority,
        }),
        target_energy_kwh.map(|kwh| SettingChange::BayTargetEnergy { bay: id(), kwh }),
        name.map(|name| SettingChange::BayName { bay: id(), name }),
        mode.map(|mode| SettingChange::BayMode { bay: id(), mode }),
        enabled.map(|enabled| SettingChange::BayEnabled { bay: id(), enabled }),
        departure.map(|departure| SettingChange::BayDeparture {
            bay: id(),
            departure,
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The pure step of the `PUT` handlers, bytes to changes (`bay` `None`: the site's body), for
/// the fuzz target `api_body` (`crate::fuzzing`).
pub(crate) fn body_changes(
    bay: Option<&BayId>,
    body: &[u8],
) -> Result<Vec<SettingChange>, serde_json::Error> {
    Ok(match bay {
        None => site_changes(serde_json::from_slice(body)?),
        Some(bay) => bay_changes(bay, serde_json::from_slice(body)?),
    })
}

/// Hands `changes` to the core as one set: taken whole, or refused with the core's reason
/// (which names the field and, for a value above a ceiling, the ceiling).
async fn apply_all(state: &State, changes: Vec<SettingChange>) -> Result<(), ApiError> {
    if changes.is_empty() {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "no settings given");
        state.refused(&error);
        return Err(error);
    }
    state.site.apply_all(changes).await.map_err(|refusal| {
        let status = match refusal {
            SettingError::UnknownBay(_) => StatusCode::NOT_FOUND,
            SettingError::OutOfRange { .. }
            | SettingError::Invalid { .. }
            | SettingError::AboveCeiling { .. } => StatusCode::BAD_REQUEST,
            SettingError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let error = ApiError::new(status, refusal.to_string());
        state.refused(&error);
        error
    })
}
