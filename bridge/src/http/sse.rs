//! `GET /api/v1/stream`: the whole snapshot (site and bays) as server-sent events, at most
//! one a second, for the dashboard. A slow client only ever gets the latest picture: the
//! `watch` channel keeps one value, so nothing queues up behind it. At most
//! `max_sse_clients` streams run at once; the next one is answered 503.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use tokio::time::Instant;

use super::{ApiError, State};

/// The shortest time between two events to one client.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn stream(Extract(state): Extract<State>) -> Response {
    let Ok(permit) = Arc::clone(&state.streams).try_acquire_owned() else {
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "already {} live streams (http.max_sse_clients): close another dashboard",
                state.max_streams
            ),
        );
        state.refusals.refuse("http_sse", &error.message);
        return error.into_response();
    };
    let mut snapshots = state.site.subscribe();
    // The current picture goes out at once, so a new page is filled without waiting.
    snapshots.mark_changed();
    // The permit lives in the stream: it is returned when the client goes away.
    let events = stream::unfold(
        (snapshots, None::<Instant>, permit),
        |(mut snapshots, last, permit)| async move {
            if let Some(last) = last {
                tokio::time::sleep_until(last + MIN_INTERVAL).await;
            }
            snapshots.changed().await.ok()?;
            let snapshot = Arc::clone(&snapshots.borrow_and_update());
            let event = Event::default()
                .event("snapshot")
                .json_data(&*snapshot)
                .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
            Some((
                Ok::<_, Infallible>(event),
                (snapshots, Some(Instant::now()), permit),
            ))
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
