//! `GET /sse`: the same sessions as the WebSocket, as server-sent events. Each event's id
//! is the notification id, so a client that reconnects with `Last-Event-ID` (what
//! `EventSource` does by itself) catches up from there. Comments keep the stream alive
//! every ping interval.
//!
//! A slow SSE client is cut off from new frames like a WebSocket one (the registry drops
//! its queue), but hyper gives a response body no write timeout: its socket stays open,
//! holding at most its kernel buffers, until the client reads or goes away.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::{last_id, ConnectQuery, Session};
use crate::backend::{bump, AppError, AppState};

pub async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Ok(Query(query)) = query else {
        return Err(AppError::BadRequest(
            "the only query parameter is last_id, a number",
        ));
    };
    let last = last_id(&headers, &query)?;
    let user = state.authenticate(&headers).await.inspect_err(|e| {
        if matches!(e, AppError::Unauthorized) {
            bump(&state.stats.unauthorized);
        }
    })?;
    let session = Session::open(&state, user, last).await?;
    bump(&state.stats.sse_accepted);
    let events = futures_util::stream::unfold(session, |mut session| async move {
        let frame = session.next().await?;
        let event = Event::default()
            .id(frame.id.to_string())
            .data(frame.text.as_str());
        Some((Ok::<_, Infallible>(event), session))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.push.ping_interval))
        .into_response())
}
