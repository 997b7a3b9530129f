//! The `[target]` table: how the swarm talks to a system it did not start (`pollpush
//! swarm`). Per protocol, where it is, how a client authenticates, how a poll asks for new
//! items and reads their ids, how the workload emits an event, and where a notification
//! carries the event's number and emit time. Without the table, every part describes
//! pollpush's own API, so `run` and `swarm` share one client code path.

use serde_json::Value;

mod raw;
mod template;

pub use raw::{RawAuth, RawEmit, RawFields, RawTarget, RawTargetPoll, RawTargetPush};
pub use template::{Template, Var, Vars};

use super::ctx::Ctx;
use crate::config::Transport;

/// How a client proves who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Header {
        name: String,
        value: Template,
    },
    Query {
        name: String,
        value: Template,
    },
    /// A WebSocket text frame sent right after the upgrade.
    FirstFrame(Template),
    /// The Socket.IO CONNECT packet's auth payload (JSON).
    SocketIo(Template),
}

impl Auth {
    fn bearer() -> Auth {
        Auth::Header {
            name: "authorization".into(),
            value: Template::parse("Bearer {token}", &[Var::Token]).expect("valid template"),
        }
    }
}

/// Where a notification carries what the swarm measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    pub id: String,
    pub event: String,
    pub emit_us: String,
}

/// What a client read from one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    /// The notification's id, when the message has one.
    pub id: Option<i64>,
    pub event: u64,
    pub emit_us: u64,
}

impl Fields {
    /// Where pollpush's own API puts them.
    pub fn is_pollpush(&self) -> bool {
        self.id == "/id" && self.event == "/payload/event" && self.emit_us == "/payload/emit_us"
    }

    /// Reads the event number and emit time (and the id, if any) from one notification;
    /// None when they are not where the fields say.
    pub fn read(&self, v: &Value) -> Option<Stamp> {
        let num = |p: &str| {
            let x = v.pointer(p)?;
            x.as_u64().or_else(|| x.as_str()?.parse().ok())
        };
        Some(Stamp {
            id: v.pointer(&self.id).and_then(|x| {
                x.as_i64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            }),
            event: num(&self.event)?,
            emit_us: num(&self.emit_us)?,
        })
    }
}

/// How the workload emits an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// POST /notifications of pollpush's ingest API (or gateway), {"user_id", "payload"}.
    Pollpush { url: Option<String> },
    Http {
        url: Option<String>,
        method: String,
        path: Template,
        body: Template,
    },
    Redis {
        url: Option<String>,
        channel: Template,
        message: Template,
    },
}

impl Emit {
    /// The base URL of the HTTP API events go to, when the scenario gives one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Emit::Pollpush { url } | Emit::Http { url, .. } => url.as_deref(),
            Emit::Redis { .. } => None,
        }
    }
}

/// A validated `[target]` (or pollpush's own API, [`Target::pollpush`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// False for pollpush's own API (no `[target]` table).
    pub described: bool,
    pub raw: RawTarget,
    pub poll_url: Option<String>,
    pub poll_path: Template,
    pub poll_items: String,
    pub poll_auth: Auth,
    pub push_urls: Vec<String>,
    /// None: the transport's own default (/ws, /sse, /socket.io/).
    pub push_path: Option<String>,
    pub push_query: Option<Template>,
    pub namespace: String,
    pub event: Option<String>,
    pub push_auth: Auth,
    pub fields: Fields,
    pub emit: Emit,
}

const POLL_VARS: &[Var] = &[Var::After, Var::User, Var::Token];
const CLIENT_VARS: &[Var] = &[Var::User, Var::Token];
const EMIT_VARS: &[Var] = &[Var::User, Var::Token, Var::Event, Var::EmitUs, Var::Payload];

impl Target {
    /// pollpush's own API, for `transport`.
    pub fn pollpush(transport: Transport) -> Target {
        validate(&RawTarget::default(), transport, None).expect("the defaults are valid")
    }

    /// The path of a push connection: the given one or the transport's default.
    pub fn push_path(&self, transport: Transport) -> &str {
        self.push_path.as_deref().unwrap_or(match transport {
            Transport::Ws => "/ws",
            Transport::Sse => "/sse",
            Transport::SocketIo => "/socket.io/",
        })
    }
}

fn pointer(key: &str, text: &str, ctx: Option<&Ctx<'_>>) -> anyhow::Result<String> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(err(
            ctx,
            key,
            format!("{text:?} is not a JSON pointer; write it like \"/payload/event\" (\"\" is the whole document)"),
        ))
    }
}

fn err(ctx: Option<&Ctx<'_>>, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
    match ctx {
        Some(c) => c.err(key, msg),
        None => crate::error::input(format!("{key}: {msg}")),
    }
}

fn template(
    ctx: Option<&Ctx<'_>>,
    key: &str,
    text: &str,
    allowed: &[Var],
) -> anyhow::Result<Template> {
    Template::parse(text, allowed).map_err(|m| err(ctx, key, format!("{text:?} {m}")))
}

fn base_url(ctx: Option<&Ctx<'_>>, key: &str, url: &str, schemes: &[&str]) -> anyhow::Result<()> {
    let ok = schemes.iter().any(|s| {
        url.strip_prefix(s)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|hp| !hp.is_empty() && !hp.trim_end_matches('/').contains('/'))
    });
    if ok {
        Ok(())
    } else {
        Err(err(
            ctx,
            key,
            format!(
                "{url:?} is not a base URL; write {}://host:port (the path goes in its own key)",
                schemes[0]
            ),
        ))
    }
}

fn auth(
    ctx: Option<&Ctx<'_>>,
    key: &str,
    raw: Option<&RawAuth>,
    default: Auth,
    transport: Option<Transport>,
) -> anyhow::Result<Auth> {
    let Some(raw) = raw else { return Ok(default) };
    let via = raw.via.as_deref().unwrap_or("header");
    let name = || {
        raw.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            err(
                ctx,
                &format!("{key}.name"),
                format!("auth via {via:?} needs the name of the header or query parameter"),
            )
        })
    };
    let value = |default: &str| {
        template(
            ctx,
            &format!("{key}.value"),
            raw.value.as_deref().unwrap_or(default),
            CLIENT_VARS,
        )
    };
    let frames = matches!(transport, Some(Transport::Ws | Transport::SocketIo));
    Ok(match via {
        "none" => Auth::None,
        "header" => {
            let name = name()?;
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(err(
                    ctx,
                    &format!("{key}.name"),
                    format!("{name:?} is not a header name"),
                ));
            }
            Auth::Header {
                name: name.to_ascii_lowercase(),
                value: value("Bearer {token}")?,
            }
        }
        "query" => Auth::Query {
            name: name()?,
            value: value("{token}")?,
        },
        "first-frame" if frames && transport != Some(Transport::SocketIo) => {
            Auth::FirstFrame(value("{token}")?)
        }
        "socketio" if transport == Some(Transport::SocketIo) => {
            let t = value("{\"token\":\"{token}\"}")?;
            let sample = t.render(&Vars {
                user: 1,
                token: "t",
                ..Vars::default()
            });
            if !serde_json::from_str::<Value>(&sample).is_ok_and(|v| v.is_object()) {
                return Err(err(
                    ctx,
                    &format!("{key}.value"),
                    format!(
                        "{:?} does not make a JSON object; write it like '{{\"token\":\"{{token}}\"}}'",
                        t.source()
                    ),
                ));
            }
            Auth::SocketIo(t)
        }
        "first-frame" | "socketio" if transport.is_none() => {
            return Err(err(
                ctx,
                &format!("{key}.via"),
                format!("a poll cannot authenticate by {via:?}; use header, query or none"),
            ))
        }
        "first-frame" | "socketio" => {
            return Err(err(
                ctx,
                &format!("{key}.via"),
                format!(
                    "{via:?} applies only to push.transport = {}",
                    if via == "socketio" {
                        "\"socketio\""
                    } else {
                        "\"ws\""
                    }
                ),
            ))
        }
        other => {
            return Err(err(
                ctx,
                &format!("{key}.via"),
                format!("{other:?} is not one of header, query, first-frame, socketio, none"),
            ))
        }
    })
}

/// Validates a `[target]` table for a plan whose push clients use `transport`.
pub(super) fn validate(
    raw: &RawTarget,
    transport: Transport,
    ctx: Option<&Ctx<'_>>,
) -> anyhow::Result<Target> {
    let poll = raw.poll.clone().unwrap_or_default();
    let push = raw.push.clone().unwrap_or_default();
    let emit = raw.emit.clone().unwrap_or_default();
    let fields = raw.notification.clone().unwrap_or_default();
    if let Some(u) = &poll.url {
        base_url(ctx, "target.poll.url", u, &["http"])?;
    }
    for (i, u) in push.urls.iter().flatten().enumerate() {
        base_url(ctx, &format!("target.push.urls.{i}"), u, &["http", "ws"])?;
    }
    let poll_path = template(
        ctx,
        "target.poll.path",
        poll.path
            .as_deref()
            .unwrap_or("/notifications?after={after}"),
        POLL_VARS,
    )?;
    if !poll_path.source().starts_with('/') {
        return Err(err(ctx, "target.poll.path", "must start with '/'"));
    }
    if let Some(p) = &push.path {
        if !p.starts_with('/') || p.contains('?') {
            return Err(err(
                ctx,
                "target.push.path",
                "must start with '/' and carry no query (put parameters in target.push.query)",
            ));
        }
    }
    let (push_query, namespace, event, push_default) = validate_push(&push, transport, ctx)?;
    let fields = validate_fields(&fields, ctx)?;
    let emit = validate_emit(&emit, ctx)?;
    Ok(Target {
        described: *raw != RawTarget::default(),
        raw: raw.clone(),
        poll_url: poll.url.clone(),
        poll_path,
        poll_items: pointer(
            "target.poll.items",
            poll.items.as_deref().unwrap_or(""),
            ctx,
        )?,
        poll_auth: auth(
            ctx,
            "target.poll.auth",
            poll.auth.as_ref(),
            Auth::bearer(),
            None,
        )?,
        push_urls: push.urls.clone().unwrap_or_default(),
        push_path: push.path.clone(),
        push_query,
        namespace,
        event,
        push_auth: auth(
            ctx,
            "target.push.auth",
            push.auth.as_ref(),
            push_default,
            Some(transport),
        )?,
        fields,
        emit,
    })
}

/// The `[target.push]` keys besides URLs, path and auth, checked against the transport:
/// the query template, the Socket.IO namespace, the event name, and the default auth.
fn validate_push(
    push: &RawTargetPush,
    transport: Transport,
    ctx: Option<&Ctx<'_>>,
) -> anyhow::Result<(Option<Template>, String, Option<String>, Auth)> {
    let push_query = push
        .query
        .as_deref()
        .map(|q| template(ctx, "target.push.query", q, CLIENT_VARS))
        .transpose()?;
    let namespace = push.namespace.clone().unwrap_or_else(|| "/".into());
    if !namespace.starts_with('/') || namespace.contains(',') {
        return Err(err(
            ctx,
            "target.push.namespace",
            format!("{namespace:?} is not a Socket.IO namespace; write it like \"/\" or \"/notifications\""),
        ));
    }
    if transport != Transport::SocketIo && push.namespace.is_some() {
        return Err(err(
            ctx,
            "target.push.namespace",
            "applies only to push.transport = \"socketio\"",
        ));
    }
    if transport == Transport::Ws && push.event.is_some() {
        return Err(err(
            ctx,
            "target.push.event",
            "a WebSocket message has no event name; this key is for socketio and sse",
        ));
    }
    let event = match (transport, push.event.clone()) {
        (Transport::SocketIo, None) => Some("notification".to_string()),
        (_, e) => e,
    };
    let push_default = match transport {
        Transport::SocketIo => Auth::SocketIo(
            Template::parse("{\"token\":\"{token}\"}", CLIENT_VARS).expect("valid template"),
        ),
        _ => Auth::bearer(),
    };
    Ok((push_query, namespace, event, push_default))
}

/// Where a notification carries its id, event number and emit time.
fn validate_fields(fields: &RawFields, ctx: Option<&Ctx<'_>>) -> anyhow::Result<Fields> {
    Ok(Fields {
        id: pointer(
            "target.notification.id",
            fields.id.as_deref().unwrap_or("/id"),
            ctx,
        )?,
        event: pointer(
            "target.notification.event",
            fields.event.as_deref().unwrap_or("/payload/event"),
            ctx,
        )?,
        emit_us: pointer(
            "target.notification.emit_us",
            fields.emit_us.as_deref().unwrap_or("/payload/emit_us"),
            ctx,
        )?,
    })
}

/// `[target.emit]`: how the workload's events reach the system under test.
fn validate_emit(emit: &RawEmit, ctx: Option<&Ctx<'_>>) -> anyhow::Result<Emit> {
    let emit = match emit.via.as_deref().unwrap_or("pollpush") {
        "pollpush" => emit_pollpush(emit, ctx)?,
        "http" => emit_http(emit, ctx)?,
        "redis" => emit_redis(emit, ctx)?,
        other => {
            return Err(err(
                ctx,
                "target.emit.via",
                format!("{other:?} is not one of pollpush, http, redis"),
            ))
        }
    };
    if let Emit::Http { body, .. } | Emit::Redis { message: body, .. } = &emit {
        let carries = body.uses(Var::Payload) || (body.uses(Var::Event) && body.uses(Var::EmitUs));
        if !carries {
            return Err(err(
                ctx,
                if matches!(emit, Emit::Http { .. }) {
                    "target.emit.body"
                } else {
                    "target.emit.message"
                },
                "must carry {payload} (or {event} and {emit_us}): the clients read the event's number and emit time from what arrives",
            ));
        }
    }
    Ok(emit)
}

/// `via = "pollpush"`: pollpush's own ingest API: no templates to give.
fn emit_pollpush(emit: &RawEmit, ctx: Option<&Ctx<'_>>) -> anyhow::Result<Emit> {
    for (k, set) in [
        ("method", emit.method.is_some()),
        ("path", emit.path.is_some()),
        ("body", emit.body.is_some()),
        ("channel", emit.channel.is_some()),
        ("message", emit.message.is_some()),
    ] {
        if set {
            return Err(err(
                ctx,
                &format!("target.emit.{k}"),
                "applies only with target.emit.via = \"http\" or \"redis\"",
            ));
        }
    }
    if let Some(u) = &emit.url {
        base_url(ctx, "target.emit.url", u, &["http"])?;
    }
    Ok(Emit::Pollpush {
        url: emit.url.clone(),
    })
}

/// `via = "http"`: events sent as HTTP requests built from templates.
fn emit_http(emit: &RawEmit, ctx: Option<&Ctx<'_>>) -> anyhow::Result<Emit> {
    if let Some(u) = &emit.url {
        base_url(ctx, "target.emit.url", u, &["http"])?;
    }
    let method = emit.method.clone().unwrap_or_else(|| "POST".into());
    if !["POST", "PUT", "PATCH"].contains(&method.as_str()) {
        return Err(err(
            ctx,
            "target.emit.method",
            format!("{method:?} is not one of POST, PUT, PATCH"),
        ));
    }
    let path = template(
        ctx,
        "target.emit.path",
        emit.path.as_deref().unwrap_or("/notifications"),
        EMIT_VARS,
    )?;
    let body = template(
        ctx,
        "target.emit.body",
        emit.body
            .as_deref()
            .unwrap_or("{\"user_id\":{user},\"payload\":{payload}}"),
        EMIT_VARS,
    )?;
    Ok(Emit::Http {
        url: emit.url.clone(),
        method,
        path,
        body,
    })
}

/// `via = "redis"`: events PUBLISHed to the Redis the system under test listens on.
fn emit_redis(emit: &RawEmit, ctx: Option<&Ctx<'_>>) -> anyhow::Result<Emit> {
    if let Some(u) = &emit.url {
        if !u.starts_with("redis://") {
            return Err(err(
                ctx,
                "target.emit.url",
                format!("{u:?} is not a redis://host:port URL"),
            ));
        }
    }
    let channel = template(
        ctx,
        "target.emit.channel",
        emit.channel.as_deref().unwrap_or("notifications"),
        EMIT_VARS,
    )?;
    let message = template(
        ctx,
        "target.emit.message",
        emit.message
            .as_deref()
            .unwrap_or("{\"id\":{event},\"user_id\":{user},\"payload\":{payload}}"),
        EMIT_VARS,
    )?;
    Ok(Emit::Redis {
        url: emit.url.clone(),
        channel,
        message,
    })
}

#[cfg(test)]
mod tests;
