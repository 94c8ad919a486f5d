//! `GET`/`PUT /api/v1/site`, `GET`/`PUT /api/v1/nodes/{dev}` and the start/stop buttons.
//!
//! A `PUT` body is a JSON object of settings, each mapped to one [`SettingChange`]. The site
//! core validates them one at a time, so a body is made all-or-nothing here: changes that can
//! be refused (ranges, names) go first and the ones that cannot (a mode, a flag) last, and
//! when one is refused the ones already taken are put back to the values the snapshot showed
//! before. Another writer changing the same setting in that instant would be overwritten by
//! the undo; that race is accepted for an operator API.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer};

use super::{auth, site_json, ApiError, State};
use crate::allocate::{ChargeMode, Strategy};
use crate::bay::BayId;
use crate::handle::CONTROL_INTERVAL;
use crate::site::bay::{ButtonRequest, Departure};
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

/// One change and what puts the old value back.
#[derive(Debug)]
struct Step {
    change: SettingChange,
    undo: Option<SettingChange>,
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
    let steps = site_steps(&state.site.snapshot(), body);
    apply_all(&state, steps).await?;
    Ok(Json(site_json(&state.site.snapshot())).into_response())
}

pub(super) async fn put_node(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: BaySettingsBody = parse(&state, &headers, &body)?;
    let steps = {
        let snapshot = state.site.snapshot();
        let bay = find_bay(&snapshot, &dev).inspect_err(|_| state.rejected())?;
        bay_steps(bay, body)
    };
    apply_all(&state, steps).await?;
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
    auth::authorize(state.token.as_ref(), &headers).inspect_err(|_| state.rejected())?;
    apply_all(&state, vec![Step { change, undo: None }]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/v1/nodes/{dev}`: forget an offline bay (gone from the site).
pub(super) async fn forget_node(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::authorize(state.token.as_ref(), &headers).inspect_err(|_| state.rejected())?;
    let change = SettingChange::BayForget { bay: BayId(dev) };
    apply_all(&state, vec![Step { change, undo: None }]).await?;
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
    let result = auth::authorize(state.token.as_ref(), headers).and_then(|()| {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not a settings object: {e}"),
            )
        })
    });
    result.inspect_err(|_| state.rejected())
}

fn site_steps(snapshot: &SiteSnapshot, body: SiteSettingsBody) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(limits) = body.max_current {
        for ((phase, amps), old) in (1..=3).zip(limits).zip(snapshot.limit_a) {
            steps.push(Step {
                change: SettingChange::SiteLimit { phase, amps },
                undo: Some(SettingChange::SiteLimit { phase, amps: old }),
            });
        }
    }
    if let Some(strategy) = body.strategy {
        steps.push(Step {
            change: SettingChange::Strategy(strategy),
            undo: Some(SettingChange::Strategy(snapshot.strategy)),
        });
    }
    if let Some(mode) = body.default_mode {
        steps.push(Step {
            change: SettingChange::DefaultMode(mode),
            undo: Some(SettingChange::DefaultMode(snapshot.default_mode)),
        });
    }
    steps
}

/// The changes of `body`, those the core may refuse first.
fn bay_steps(bay: &BaySnapshot, body: BaySettingsBody) -> Vec<Step> {
    let id = || BayId(bay.dev.clone());
    let old = &bay.settings;
    let mut steps = Vec::new();
    if let Some(amps) = body.max_current {
        steps.push(Step {
            change: SettingChange::BayMaxCurrent { bay: id(), amps },
            undo: Some(SettingChange::BayMaxCurrent {
                bay: id(),
                amps: f64::from(old.max_current.get()) / 10.0,
            }),
        });
    }
    if let Some(priority) = body.priority {
        steps.push(Step {
            change: SettingChange::BayPriority {
                bay: id(),
                priority,
            },
            undo: Some(SettingChange::BayPriority {
                bay: id(),
                priority: old.priority,
            }),
        });
    }
    if let Some(kwh) = body.target_energy_kwh {
        steps.push(Step {
            change: SettingChange::BayTargetEnergy { bay: id(), kwh },
            undo: Some(SettingChange::BayTargetEnergy {
                bay: id(),
                kwh: f64::from(old.target_energy_wh.unwrap_or(0)) / 1000.0,
            }),
        });
    }
    if let Some(name) = body.name {
        steps.push(Step {
            change: SettingChange::BayName { bay: id(), name },
            undo: Some(SettingChange::BayName {
                bay: id(),
                name: old.name.clone(),
            }),
        });
    }
    if let Some(mode) = body.mode {
        steps.push(Step {
            change: SettingChange::BayMode { bay: id(), mode },
            // A bay that followed the site default cannot be set back to "follow"; this step
            // comes after every refusable one, so it is never undone anyway.
            undo: old
                .mode
                .map(|mode| SettingChange::BayMode { bay: id(), mode }),
        });
    }
    if let Some(enabled) = body.enabled {
        steps.push(Step {
            change: SettingChange::BayEnabled { bay: id(), enabled },
            undo: Some(SettingChange::BayEnabled {
                bay: id(),
                enabled: old.enabled,
            }),
        });
    }
    if let Some(departure) = body.departure {
        steps.push(Step {
            change: SettingChange::BayDeparture {
                bay: id(),
                departure,
            },
            undo: Some(SettingChange::BayDeparture {
                bay: id(),
                departure: old.departure,
            }),
        });
    }
    steps
}

/// Applies `steps` in order; on the first refusal undoes the ones taken and answers 4xx.
async fn apply_all(state: &State, steps: Vec<Step>) -> Result<(), ApiError> {
    if steps.is_empty() {
        state.rejected();
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "no settings given"));
    }
    for (taken, step) in steps.iter().enumerate() {
        if let Err(refusal) = state.site.apply(step.change.clone()).await {
            for done in steps.iter().take(taken).rev() {
                if let Some(undo) = &done.undo {
                    if let Err(e) = state.site.apply(undo.clone()).await {
                        tracing::warn!("HTTP: undoing {undo:?} failed: {e}");
                    }
                }
            }
            if taken > 0 {
                settled(state).await;
            }
            state.rejected();
            let status = match refusal {
                SettingError::UnknownBay(_) => StatusCode::NOT_FOUND,
                SettingError::OutOfRange { .. }
                | SettingError::Invalid { .. }
                | SettingError::AboveCeiling { .. } => StatusCode::BAD_REQUEST,
                SettingError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            return Err(ApiError::new(status, refusal.to_string()));
        }
    }
    settled(state).await;
    Ok(())
}

/// Waits for a snapshot published after the last answer of the site task.
///
/// The site task answers a setting before it publishes the snapshot that shows it, so a
/// snapshot read right after the answer may not show the change yet; every later snapshot
/// does. When the answer came after that publication, this waits for the next control cycle.
async fn settled(state: &State) {
    let mut snapshots = state.site.subscribe();
    snapshots.borrow_and_update();
    let wait = CONTROL_INTERVAL + Duration::from_millis(500);
    let _ = tokio::time::timeout(wait, snapshots.changed()).await;
}
