//! The `[target]` table as written: every key optional, unknown keys refused.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub poll: Option<RawTargetPoll>,
    pub push: Option<RawTargetPush>,
    pub emit: Option<RawEmit>,
    pub notification: Option<RawFields>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTargetPoll {
    /// Base URL (http://host:port); `--poll-url` wins.
    pub url: Option<String>,
    /// Path and query of a poll, a template: `/api/inbox?since={after}`.
    pub path: Option<String>,
    /// JSON pointer to the array of new items in the response ("" = the body is the array).
    pub items: Option<String>,
    pub auth: Option<RawAuth>,
    /// The poll API speaks HTTP/2 over cleartext (h2c with prior knowledge), so that
    /// `poll.http = "h2"` may drive it.
    pub h2c: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTargetPush {
    /// Base URLs of the instances (http:// or ws://host:port); `--push-url` wins.
    pub urls: Option<Vec<String>>,
    /// Path of the WebSocket or SSE endpoint, or of Engine.IO (default /socket.io/).
    pub path: Option<String>,
    /// Extra query parameters of the connection, e.g. "room=a&v=2" (a template).
    pub query: Option<String>,
    /// Socket.IO: the namespace to connect to.
    pub namespace: Option<String>,
    /// Socket.IO: the event name that carries a notification; SSE: the event type (any
    /// type when unset).
    pub event: Option<String>,
    pub auth: Option<RawAuth>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// header | query | first-frame | socketio | none
    pub via: Option<String>,
    /// The header or query parameter name.
    pub name: Option<String>,
    /// The value, a template: "Bearer {token}", "{user}", '{"token":"{token}"}'.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawEmit {
    /// pollpush | http | redis
    pub via: Option<String>,
    /// http: the base URL (`--ingest-url` wins); redis: redis://host:port (`--redis-url`
    /// wins).
    pub url: Option<String>,
    /// http: POST, PUT or PATCH.
    pub method: Option<String>,
    /// http: path of the request (a template).
    pub path: Option<String>,
    /// http: request body (a template), sent as application/json.
    pub body: Option<String>,
    /// redis: the channel to PUBLISH to (a template: "user:{user}").
    pub channel: Option<String>,
    /// redis: the message (a template).
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawFields {
    /// JSON pointer to the notification's id, which a poll's {after} advances to.
    pub id: Option<String>,
    /// JSON pointer to the workload's event number (the payload's "event").
    pub event: Option<String>,
    /// JSON pointer to the emit time, µs since the epoch (the payload's "emit_us").
    pub emit_us: Option<String>,
}
