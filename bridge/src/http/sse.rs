//! `GET /api/v1/stream`: the whole snapshot (site and bays) as server-sent events, at most
//! one a second, for the dashboard. A slow client only ever gets the latest picture: the
//! `watch` channel keeps one value, so nothing queues up behind it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Extract;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use tokio::time::Instant;

use super::State;

/// The shortest time between two events to one client.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn stream(
    Extract(state): Extract<State>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut snapshots = state.site.subscribe();
    // The current picture goes out at once, so a new page is filled without waiting.
    snapshots.mark_changed();
    let events = stream::unfold(
        (snapshots, None::<Instant>),
        |(mut snapshots, last)| async move {
            if let Some(last) = last {
                tokio::time::sleep_until(last + MIN_INTERVAL).await;
            }
            snapshots.changed().await.ok()?;
            let snapshot = Arc::clone(&snapshots.borrow_and_update());
            let event = Event::default()
                .event("snapshot")
                .json_data(&*snapshot)
                .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
            Some((Ok(event), (snapshots, Some(Instant::now()))))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}
