//! The `[[faults]]` of a scenario, checked: what each does, when, and to whom.

use super::ctx::Ctx;
use std::time::Duration;

use super::plan::{Fault, FaultAction, PushPlan};
use super::raw::RawFault;
use crate::config::{fmt_duration, Mode};

const FAULTS: &str = "\"disconnect-clients\", \"kill-gateway\", \"restart-redis\", \"kill-redis\", \"pause-redis\" or \"restart-postgres\"";

pub fn validate_faults(
    raw: &[RawFault],
    duration: Duration,
    push: &PushPlan,
    users: u64,
    modes: &[Mode],
    ctx: &Ctx<'_>,
) -> anyhow::Result<Vec<Fault>> {
    let _ = push;
    let mut faults = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let key = |k: &str| format!("faults.{i}.{k}");
        let at_text = f.at.as_deref().ok_or_else(|| {
            ctx.err(
                &format!("faults.{i}"),
                "needs `at`, the time after the window opens, e.g. at = \"5s\"",
            )
        })?;
        let at = ctx.duration(&key("at"), Some(at_text), at_text)?;
        if at >= duration {
            return Err(ctx.err(
                &key("at"),
                format!(
                    "{at_text} is not inside the {} window",
                    fmt_duration(duration)
                ),
            ));
        }
        let action = f.action.as_deref().unwrap_or("");
        let action = match action {
            "disconnect-clients" => {
                if !modes.contains(&Mode::Push) {
                    return Err(ctx.err(
                        &key("action"),
                        "disconnect-clients acts on push clients; add \"push\" to modes",
                    ));
                }
                let clients = f.clients.unwrap_or(1);
                if clients == 0 || clients > users {
                    return Err(ctx.err(
                        &key("clients"),
                        format!("{clients} is out of range; use 1 to users.count ({users})"),
                    ));
                }
                let offline = ctx.duration(&key("offline"), f.offline.as_deref(), "10s")?;
                FaultAction::DisconnectClients { clients, offline }
            }
            "restart-redis" | "kill-redis" | "pause-redis" | "restart-postgres" => {
                let default = if action.starts_with("restart-") {
                    "0s"
                } else {
                    "5s"
                };
                let down = ctx.duration(&key("down"), f.down.as_deref(), default)?;
                if at + down >= duration {
                    return Err(ctx.err(
                        &key("down"),
                        format!(
                            "{} would still be {} when the {} window closes; end the fault inside it",
                            if action == "restart-postgres" { "Postgres" } else { "Redis" },
                            if action == "pause-redis" { "stalled" } else { "down" },
                            fmt_duration(duration)
                        ),
                    ));
                }
                match action {
                    "pause-redis" => FaultAction::PauseRedis { down },
                    "restart-postgres" => FaultAction::RestartPostgres { down },
                    _ => FaultAction::KillRedis {
                        down,
                        restart: action == "restart-redis",
                    },
                }
            }
            "kill-gateway" => {
                if !modes.contains(&Mode::Push) {
                    return Err(ctx.err(
                        &key("action"),
                        "kill-gateway acts on push gateway instances; add \"push\" to modes",
                    ));
                }
                let n = push.instances;
                let instance = match &f.instance {
                    None => Some(0),
                    Some(toml::Value::String(s)) if s == "random" => None,
                    Some(toml::Value::Integer(i)) if *i >= 0 && (*i as u64) < n as u64 => {
                        Some(*i as usize)
                    }
                    Some(v) => {
                        return Err(ctx.err(
                            &key("instance"),
                            format!(
                                "{v} is not an instance; use 0 to {} (push.instances - 1) or \"random\"",
                                n.saturating_sub(1)
                            ),
                        ))
                    }
                };
                let down = match f.down.as_deref() {
                    None => None,
                    Some(d) => {
                        let down = ctx.duration(&key("down"), Some(d), d)?;
                        if at + down >= duration {
                            return Err(ctx.err(
                                &key("down"),
                                format!(
                                    "the instance would still be down when the {} window closes; end the fault inside it, or leave out `down` to keep it down",
                                    fmt_duration(duration)
                                ),
                            ));
                        }
                        Some(down)
                    }
                };
                FaultAction::KillGateway { instance, down }
            }
            other => {
                return Err(ctx.err(
                    &key("action"),
                    format!("{other:?} is not a fault; use {FAULTS}"),
                ))
            }
        };
        if f.clients.is_some() && !matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(&key("clients"), "only disconnect-clients takes `clients`"));
        }
        if f.offline.is_some() && !matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(
                &key("offline"),
                "only disconnect-clients takes `offline`; Redis and Postgres faults take `down`",
            ));
        }
        if f.instance.is_some() && !matches!(action, FaultAction::KillGateway { .. }) {
            return Err(ctx.err(&key("instance"), "only kill-gateway takes `instance`"));
        }
        if f.down.is_some() && matches!(action, FaultAction::DisconnectClients { .. }) {
            return Err(ctx.err(
                &key("down"),
                "disconnect-clients takes `offline`, not `down`",
            ));
        }
        faults.push(Fault { at, action });
    }
    faults.sort_by_key(|f| f.at);
    Ok(faults)
}
