//! `GET /notifications?after=ID`: the polling endpoint. With `auth = db` each request looks
//! its token up in Postgres, then queries the user's notifications after ID, and answers a
//! JSON array (`[]` when there is nothing new), like the server in the blog post. With
//! `&wait_ms=W` on a server started with `--long-poll`, a poll that finds nothing is held
//! until something arrives for its user (see [`super::longpoll`]). With the poll cache
//! (`--poll-backend redis-cache`, [`super::cache`]), Postgres is asked only when Redis says
//! something is newer than ID. With `--conditional`, every answer has an ETag (the last id
//! it holds, or ID when empty: the answer to one URL is the same until a notification
//! arrives), and a matching `If-None-Match` gets `304 Not Modified` without a body.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use headers::{ETag, HeaderMapExt, IfNoneMatch};
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
) -> Result<Response, AppError> {
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
    let items = result?;
    if !state.conditional {
        return Ok(Json(items).into_response());
    }
    let tag = etag(items.last().map_or(q.after.max(0), |i| i.id));
    let unchanged = headers
        .typed_get::<IfNoneMatch>()
        .is_some_and(|inm| !inm.precondition_passes(&tag));
    let mut response = match unchanged {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => Json(items).into_response(),
    };
    response.headers_mut().typed_insert(tag);
    Ok(response)
}

/// The ETag of an answer whose last (or, empty, requested) id is `id`.
fn etag(id: i64) -> ETag {
    format!("\"{id}\"")
        .parse()
        .expect("a quoted number is an entity tag")
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
    let after = after.max(0);
    let (user, maybe_new) = match &state.cache {
        None => (user(state, headers).await?, true),
        Some(cache) => cached(state, cache, headers, after).await?,
    };
    let Some((wait, waiters)) = wait else {
        return match maybe_new {
            true => query(state, user, after).await,
            false => Ok(Vec::new()),
        };
    };
    // Listen before asking, so a notification published in between is not missed.
    let notify = waiters.waiter(user);
    let result = async {
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let items = match maybe_new {
            true => query(state, user, after).await?,
            false => Vec::new(),
        };
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

/// The user a poll's token belongs to.
async fn user(state: &AppState, headers: &HeaderMap) -> Result<i64, AppError> {
    match state.poll_auth {
        PollAuth::Db => state.authenticate(headers).await,
        // No lookup: the token's signature is verified with the key, in constant time, and
        // the user is the one it was signed for.
        PollAuth::None => signed_user(state, headers),
    }
}

fn signed_user(state: &AppState, headers: &HeaderMap) -> Result<i64, AppError> {
    super::bearer(headers)
        .zip(state.signer.as_ref())
        .and_then(|(t, signer)| signer.verify(t))
        .ok_or(AppError::Unauthorized)
}

const CACHE_DOWN: AppError = AppError::Unavailable("the poll cache (Redis) did not answer");

/// With the poll cache: the user, and whether anything may be newer than `after` (false
/// only when Redis holds the user's latest id and it is not newer).
async fn cached(
    state: &AppState,
    cache: &super::cache::PollCache,
    headers: &HeaderMap,
    after: i64,
) -> Result<(i64, bool), AppError> {
    let (user, latest) = match state.poll_auth {
        PollAuth::None => {
            let user = signed_user(state, headers)?;
            (user, cache.latest(user).await.map_err(|_| CACHE_DOWN)?)
        }
        PollAuth::Db => {
            let token = super::bearer(headers).ok_or(AppError::Unauthorized)?;
            let hash = crate::token::hash(token);
            let hit = cache.by_session(&hash).await.map_err(|_| CACHE_DOWN)?;
            match hit.user {
                Some(user) => (user, hit.latest),
                None => {
                    bump(&state.stats.db_queries);
                    let (user, secs) = db::session(&state.pool, token)
                        .await?
                        .ok_or(AppError::Unauthorized)?;
                    let ttl = std::time::Duration::from_secs_f64(secs.max(1.0))
                        .min(super::cache::SESSION_TTL);
                    cache
                        .remember_session(&hash, user, ttl)
                        .await
                        .map_err(|_| CACHE_DOWN)?;
                    (user, cache.latest(user).await.map_err(|_| CACHE_DOWN)?)
                }
            }
        }
    };
    let latest = match latest {
        Some(id) => id,
        None => {
            bump(&state.stats.db_queries);
            let id = db::latest_id(&state.pool, user).await?;
            cache.raise(user, id).await.map_err(|_| CACHE_DOWN)?;
            id
        }
    };
    Ok((user, latest > after))
}

async fn query(state: &AppState, user: i64, after: i64) -> Result<Vec<Item>, AppError> {
    bump(&state.stats.db_queries);
    let rows = match &state.pipeline {
        Some(pipeline) => {
            pipeline
                .notifications_after(user, after.max(0), PAGE)
                .await?
        }
        None => db::notifications_after(&state.pool, user, after.max(0), PAGE).await?,
    };
    rows.into_iter()
        .map(|(id, payload)| {
            let payload = RawValue::from_string(payload)
                .map_err(|_| AppError::Internal("stored payload is not JSON"))?;
            Ok(Item { id, payload })
        })
        .collect()
}
