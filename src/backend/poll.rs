//! `GET /notifications?after=ID`: the polling endpoint. With `auth = db` each request looks
//! its token up in Postgres, then queries the user's notifications after ID, and answers a
//! JSON array (`[]` when there is nothing new), like the server in the blog post. With
//! `&wait_ms=W` on a server started with `--long-poll`, a poll that finds nothing is held
//! until something arrives for its user (see [`super::longpoll`]).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{bump, db, AppError, AppState};
use crate::config::PollAuth;

/// Most notifications one poll returns; a client that gets this many polls again.
pub const PAGE: i64 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    /// Last notification id the client has seen; 0 or absent for everything.
    #[serde(default)]
    pub after: i64,
    /// Long polling: how long the server may hold the request when there is nothing new.
    pub wait_ms: Option<u64>,
}

/// One notification as the API returns it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    pub id: i64,
    pub payload: Box<RawValue>,
}

pub async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PollQuery>,
) -> Result<Json<Vec<Item>>, AppError> {
    bump(&state.stats.poll_requests);
    if !state.poll_delay.is_zero() {
        tokio::time::sleep(state.poll_delay).await;
    }
    let result = serve_poll(&state, &headers, q.after, q.wait_ms).await;
    match &result {
        Ok(items) if items.is_empty() => bump(&state.stats.poll_empty),
        Ok(_) => {}
        Err(AppError::Unauthorized) => bump(&state.stats.unauthorized),
        Err(_) => bump(&state.stats.poll_errors),
    }
    result.map(Json)
}

async fn serve_poll(
    state: &AppState,
    headers: &HeaderMap,
    after: i64,
    wait_ms: Option<u64>,
) -> Result<Vec<Item>, AppError> {
    let wait =
        match (wait_ms, &state.waiters) {
            (None | Some(0), _) => None,
            (Some(ms), Some(w)) if ms <= super::longpoll::MAX_WAIT.as_millis() as u64 => {
                Some((std::time::Duration::from_millis(ms), w))
            }
            (Some(_), Some(_)) => return Err(AppError::BadRequest("wait_ms is at most 300000")),
            (Some(_), None) => return Err(AppError::BadRequest(
                "this server does not hold polls: start it with --long-poll, or leave out wait_ms",
            )),
        };
    let user = match state.poll_auth {
        PollAuth::Db => state.authenticate(headers).await?,
        // No lookup: the token's signature is verified with the key, in constant time, and
        // the user is the one it was signed for.
        PollAuth::None => super::bearer(headers)
            .zip(state.signer.as_ref())
            .and_then(|(t, signer)| signer.verify(t))
            .ok_or(AppError::Unauthorized)?,
    };
    let Some((wait, waiters)) = wait else {
        return query(state, user, after).await;
    };
    // Listen before asking, so a notification published in between is not missed.
    let notify = waiters.waiter(user);
    let result = async {
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let items = query(state, user, after).await?;
        if !items.is_empty() {
            return Ok(items);
        }
        match tokio::time::timeout(wait, woken).await {
            Ok(()) => query(state, user, after).await,
            Err(_) => Ok(items),
        }
    }
    .await;
    waiters.done(user, notify);
    result
}

async fn query(state: &AppState, user: i64, after: i64) -> Result<Vec<Item>, AppError> {
    bump(&state.stats.db_queries);
    let rows = db::notifications_after(&state.pool, user, after.max(0), PAGE).await?;
    rows.into_iter()
        .map(|(id, payload)| {
            let payload = RawValue::from_string(payload)
                .map_err(|_| AppError::Internal("stored payload is not JSON"))?;
            Ok(Item { id, payload })
        })
        .collect()
}
