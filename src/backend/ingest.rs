//! `POST /notifications`: "something happened". Stores the notification in Postgres (the
//! durable source of truth), then hands it on by the fanout: publishes it on the shared
//! Redis channel (broadcast) or on its user's channel (per-user), or, with no Redis
//! (none), routes it to this instance's own sockets only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{bump, db, user_channel, AppError, AppState, CHANNEL};
use crate::config::Fanout;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    pub user_id: i64,
    pub payload: Box<RawValue>,
}

/// What travels on Redis and over the WebSocket: the stored id, the target, the payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Published<'a> {
    pub id: i64,
    pub user_id: i64,
    #[serde(borrow)]
    pub payload: &'a RawValue,
}

pub async fn handler(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(body): Json<IngestBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    state.operator_allowed(&headers)?;
    bump(&state.stats.db_queries);
    let id = match db::insert_notification(&state.pool, body.user_id, body.payload.get()).await {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            return Err(AppError::NotFound("no such user"))
        }
        Err(e) => return Err(e.into()),
    };
    bump(&state.stats.ingested);
    let msg = serde_json::to_string(&Published {
        id,
        user_id: body.user_id,
        payload: &body.payload,
    })
    .expect("serializing ids and a raw value cannot fail");
    match (state.push.fanout, state.redis.as_deref()) {
        // Pure WebSockets: only the sockets this instance holds can hear about it.
        (Fanout::None, _) => super::push::route(&state, msg.as_bytes(), None),
        (fanout, Some(redis)) => {
            let channel = match fanout {
                Fanout::PerUser | Fanout::Sharded => user_channel(body.user_id),
                _ => CHANNEL.to_string(),
            };
            let msg = super::publisher::Message {
                channel,
                text: msg,
                latest: (body.user_id, id),
            };
            match redis.publish(msg).await {
                super::publisher::Sent::Now(_) => {}
                // Stored, not yet published: it goes out once Redis answers.
                super::publisher::Sent::Queued => bump(&state.stats.publish_errors),
                // Stored, never published: push clients see it only when they catch up;
                // pollers see it.
                super::publisher::Sent::Dropped => {
                    bump(&state.stats.publish_errors);
                    bump(&state.stats.publish_dropped);
                    tracing::warn!(id, "publish queue full: this notification is not published");
                }
            }
        }
        (_, None) => {}
    }
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}
