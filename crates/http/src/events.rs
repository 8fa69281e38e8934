//! `GET /api/v1/events`: the event log as Server-Sent Events.
//!
//! Each `events` row (message received, queued, sent, delivered, failed; modem up/down; …)
//! becomes one SSE event whose `id` is the row id and whose `event` is its kind, so a client
//! that reconnects with `Last-Event-ID` (browsers do by themselves) resumes exactly after the
//! last one it saw. Without it, or `?after=ID`, the stream starts with what happens next.
//! The store is polled every `events_poll` (200 ms by default): events come from every
//! writer, the daemon and the CLI alike, and nothing else sees all of them. The stream ends
//! when the server shuts down, so graceful shutdown is never held up by an open dashboard.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use crate::AppState;
use crate::error::ApiError;

/// Events read per query.
const BATCH: usize = 200;

pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut after = None;
    for (key, value) in &params {
        match key.as_str() {
            "after" => {
                after = Some(value.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("{value:?} is not an event id")).field("after")
                })?)
            }
            "access_token" => {}
            _ => {
                return Err(
                    ApiError::bad_request(format!("unknown query parameter {key:?}"))
                        .field(key.clone()),
                );
            }
        }
    }
    if let Some(last) = headers.get("last-event-id") {
        let last = last.to_str().unwrap_or_default().trim();
        after = Some(last.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("Last-Event-ID {last:?} is not an event id"))
                .field("Last-Event-ID")
        })?);
    }
    let cursor = match after {
        Some(id) => id,
        None => state.store().last_event_id().await?,
    };
    let poll = state.config().events_poll;
    let tail = Tail {
        state,
        cursor,
        buffer: VecDeque::new(),
        poll,
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        Some((Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Tail {
    state: AppState,
    cursor: i64,
    buffer: VecDeque<conductor_store::Event>,
    poll: Duration,
}

impl Tail {
    /// The next event, waiting for one; None at shutdown.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.cursor = event.id;
                let sse = Event::default()
                    .id(event.id.to_string())
                    .event(event.kind.clone());
                return Some(match sse.json_data(&event) {
                    Ok(sse) => sse,
                    Err(_) => Event::default().id(event.id.to_string()).event(event.kind),
                });
            }
            match self.state.store().events_since(self.cursor, BATCH).await {
                Ok(events) if !events.is_empty() => {
                    self.buffer.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "event stream: cannot read events; retrying"),
            }
            tokio::select! {
                () = self.state.shutdown().cancelled() => return None,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}
