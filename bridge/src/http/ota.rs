//! Firmware over HTTP: `POST /api/v1/nodes/{dev}/firmware` queues an AVR install (an image
//! from the firmware folder by name, or one uploaded in the body) or, for an ESP32 image
//! (`demesh_<board>_<M>_<m>.bin`), the upgrade of the bay's board; `POST
//! /api/v1/firmware/esp32` upgrades a whole board without naming a bay; `DELETE
//! /api/v1/ota/{job}` cancels a job; `GET /api/v1/ota` lists the jobs and the folder's images.
//!
//! Every job in `GET /api/v1/ota` has `id`, `kind` (`avr` or `esp32`), `state` and
//! `progress_pct` (0 to 100). An ESP32 job also has `board`, `version`, `bays` (the board's
//! bays when it started), `bays_done` and `stragglers`.
//!
//! Cancel: `200` when cancelled, `404` for no such job, `409` for a job that is over. An AVR
//! job stops sending chunks, its bay's hold is released and its controller learned afresh;
//! an ESP32 job only stops following the bays: the mesh root cannot be told to stop an
//! upgrade it started.
//!
//! An install is a write: it needs the token or a login. The core decides whether the bay
//! may be flashed (not while it charges unless `force`, not with another board's image); the
//! answer is `202` with the job's id, its progress is in `GET /api/v1/ota` and the event
//! stream.
//!
//! Bodies: `application/json` `{"image": "ctrl22_agccs12_15.hex", "force": false}`, or the
//! image itself (Intel HEX or binary, at most `[firmware] max_image_bytes`) with
//! `?name=<file name>&force=true`; a name that follows the convention
//! (`ctrl22_<board>_<ver>.hex`) lets the core check the board and the version afterwards.

use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, State};
use crate::bay::BayId;
use crate::config::firmware::ImageName;
use crate::ota::esp32::CancelError;
use crate::ota::folder::{self, ImageError};
use crate::ota::jobs::{AvrImage, Refusal};
use crate::ota::server::MAX_ESP32_BYTES;

/// The firmware routes, with their own body limit (an image is larger than a setting).
pub(super) fn routes(max_image_bytes: usize) -> Router<State> {
    Router::new()
        .route(
            "/api/v1/nodes/{dev}/firmware",
            post(install).layer(DefaultBodyLimit::max(max_image_bytes)),
        )
        .route("/api/v1/firmware/esp32", post(install_board))
        .route("/api/v1/ota", get(jobs))
        .route("/api/v1/ota/{job}", delete(cancel))
}

/// The body of `POST /api/v1/firmware/esp32`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Esp32Body {
    image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallBody {
    /// A file name in the firmware folder.
    image: String,
    #[serde(default)]
    force: bool,
}

/// The query of an upload.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: Option<String>,
    #[serde(default)]
    force: bool,
}

#[derive(Serialize)]
struct Accepted {
    job: u64,
}

async fn install(
    Extract(state): Extract<State>,
    Path(dev): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    if let Some(file) = esp32_name(&headers, &body) {
        return install_esp32(&state, Some(BayId(dev)), &file).await;
    }
    let (image, force) = image_of(&state, &headers, query, body)
        .await
        .inspect_err(|e| state.refused(e))?;
    let answer = state.site.install_firmware(BayId(dev), image, force).await;
    // An AVR image of another board is a conflict with the bay, as a charging bay is.
    accepted(&state, answer, StatusCode::CONFLICT)
}

/// Installs and cancels are writes: the token or a login.
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    state
        .access
        .authorize_write(headers)
        .inspect_err(|e| state.refused(e))
}

/// `202` with the job, or the core's refusal as a status (`wrong_board`: for an image of
/// another board).
fn accepted(
    state: &State,
    answer: Option<Result<u64, Refusal>>,
    wrong_board: StatusCode,
) -> Result<Response, ApiError> {
    let answer = answer
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the site has stopped"))?;
    match answer {
        Ok(job) => Ok((StatusCode::ACCEPTED, Json(Accepted { job })).into_response()),
        Err(refusal) => {
            let status = match refusal {
                Refusal::UnknownBay => StatusCode::NOT_FOUND,
                Refusal::QueueFull => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Image(_) => StatusCode::BAD_REQUEST,
                Refusal::WrongBoard { .. } => wrong_board,
                Refusal::InSession
                | Refusal::Offline
                | Refusal::Busy
                | Refusal::Esp32UpgradeRunning => StatusCode::CONFLICT,
            };
            let error = ApiError::new(status, refusal.to_string());
            state.refused(&error);
            Err(error)
        }
    }
}

/// The ESP32 image a JSON install names, if it names one.
fn esp32_name(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if !is_json(headers) {
        return None;
    }
    let request: InstallBody = serde_json::from_slice(body).ok()?;
    matches!(
        ImageName::parse(&request.image),
        Some(ImageName::Esp32 { .. })
    )
    .then_some(request.image)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn install_board(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let request: Esp32Body = serde_json::from_slice(&body)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not an ESP32 install: {e}"),
            )
        })
        .inspect_err(|e| state.refused(e))?;
    install_esp32(&state, None, &request.image).await
}

/// Queues the ESP32 upgrade of `file` (for the board of `bay`, when named).
async fn install_esp32(
    state: &State,
    bay: Option<BayId>,
    file: &str,
) -> Result<Response, ApiError> {
    let dir: Option<PathBuf> = state.firmware.dir.clone();
    let name = file.to_owned();
    let found = tokio::task::spawn_blocking(move || {
        folder::find_esp32(dir.as_deref(), &name, MAX_ESP32_BYTES)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let image = found
        .map_err(|e| image_error(&e))
        .inspect_err(|e| state.refused(e))?;
    let answer = state.site.install_esp32(bay, image).await;
    // The request named a bay of another board than the image's: a bad request.
    accepted(state, answer, StatusCode::BAD_REQUEST)
}

async fn cancel(
    Extract(state): Extract<State>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let job: u64 = job
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such firmware job"))
        .inspect_err(|e| state.refused(e))?;
    let answer =
        state.site.cancel_firmware(job).await.ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the site has stopped")
        })?;
    match answer {
        Ok(()) => Ok(Json(serde_json::json!({ "job": job, "cancelled": true })).into_response()),
        Err(e) => {
            let status = match e {
                CancelError::Unknown => StatusCode::NOT_FOUND,
                CancelError::Finished | CancelError::Flashing => StatusCode::CONFLICT,
            };
            let error = ApiError::new(status, e.to_string());
            state.refused(&error);
            Err(error)
        }
    }
}

/// The image a request names or carries.
async fn image_of(
    state: &State,
    headers: &HeaderMap,
    query: UploadQuery,
    body: Bytes,
) -> Result<(AvrImage, bool), ApiError> {
    let json = is_json(headers);
    let max = state.firmware.max_image_bytes;
    if json {
        let request: InstallBody = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not an install: {e}"),
            )
        })?;
        let dir: Option<PathBuf> = state.firmware.dir.clone();
        let file = request.image.clone();
        let loaded =
            tokio::task::spawn_blocking(move || folder::load_avr(dir.as_deref(), &file, max))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        return Ok((loaded.map_err(|e| image_error(&e))?, request.force));
    }
    let name = query.name.unwrap_or_else(|| "upload".to_owned());
    let image = folder::avr_image(&name, &body, max).map_err(|e| image_error(&e))?;
    Ok((image, query.force))
}

fn image_error(e: &ImageError) -> ApiError {
    let status = match e {
        ImageError::Missing(_) => StatusCode::NOT_FOUND,
        ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ImageError::NoFolder | ImageError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        ImageError::BadName(_)
        | ImageError::NotAvr(_)
        | ImageError::NotEsp32(_)
        | ImageError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

/// An image of the folder as `GET /api/v1/ota` lists it.
#[derive(Serialize)]
struct ImageEntry {
    file: String,
    kind: &'static str,
    board: String,
    version: String,
}

async fn jobs(Extract(state): Extract<State>) -> Result<Response, ApiError> {
    let jobs =
        state.site.firmware_jobs().await.ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the site has stopped")
        })?;
    let dir = state.firmware.dir.clone();
    let images = match dir {
        Some(dir) => tokio::task::spawn_blocking(move || folder::list(&dir))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let images: Vec<ImageEntry> = images
        .into_iter()
        .map(|i| match i.name {
            ImageName::Avr { board, version } => ImageEntry {
                file: i.file,
                kind: "avr",
                board,
                version: version.to_string(),
            },
            ImageName::Esp32 {
                board,
                major,
                minor,
            } => ImageEntry {
                file: i.file,
                kind: "esp32",
                board,
                version: format!("{major}.{minor}"),
            },
        })
        .collect();
    Ok(Json(serde_json::json!({ "jobs": jobs, "images": images })).into_response())
}
