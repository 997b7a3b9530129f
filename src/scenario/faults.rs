//! The `[[faults]]` of a scenario, checked: what each does, when, and to whom.

use super::ctx::Ctx;
use std::time::Duration;

use super::plan::{Fault, FaultAction, PushPlan};
use super::raw::RawFault;
use crate::config::{fmt_duration, Mode};

const FAULTS: &str = "\"disconnect-clients\", \"kill-gateway\", \"restart-redis\", \"kill-redis\", \"pause-redis\" or \"restart-postgres\"";

/// The faults of a scenario, in the order they fire.
pub fn validate_faults(
    raw: &[RawFault],
    duration: Duration,
    push: &PushPlan,
    users: u64,
    modes: &[Mode],
    ctx: &Ctx<'_>,
) -> anyhow::Result<Vec<Fault>> {
    let mut faults = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let at_text = f.at.as_deref().ok_or_else(|| {
            ctx.err(
                &format!("faults.{i}"),
                "needs `at`, the time after the window opens, e.g. at = \"5s\"",
            )
        })?;
        let one = One {
            i,
            duration,
            at: ctx.duration(&format!("faults.{i}.at"), Some(at_text), at_text)?,
            ctx,
        };
        if one.at >= duration {
            return Err(one.err(
                "at",
                format!(
                    "{at_text} is not inside the {} window",
                    fmt_duration(duration)
                ),
            ));
        }
        let action = match f.action.as_deref().unwrap_or("") {
            "disconnect-clients" => one.disconnect_clients(f, users, modes)?,
            a @ ("restart-redis" | "kill-redis" | "pause-redis" | "restart-postgres") => {
                one.service(f, a)?
            }
            "kill-gateway" => one.kill_gateway(f, push.instances, modes)?,
            other => {
                return Err(one.err("action", format!("{other:?} is not a fault; use {FAULTS}")))
            }
        };
        one.no_stray_keys(f, &action)?;
        faults.push(Fault { at: one.at, action });
    }
    faults.sort_by_key(|f| f.at);
    Ok(faults)
}

/// The fault at index `i`, firing `at` into a window of `duration`.
struct One<'c, 'a> {
    i: usize,
    at: Duration,
    duration: Duration,
    ctx: &'c Ctx<'a>,
}

impl One<'_, '_> {
    fn err(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        self.ctx.err(&format!("faults.{}.{key}", self.i), msg)
    }

    fn duration(&self, key: &str, value: Option<&str>, default: &str) -> anyhow::Result<Duration> {
        self.ctx
            .duration(&format!("faults.{}.{key}", self.i), value, default)
    }

    fn needs_push(&self, modes: &[Mode], what: &str) -> anyhow::Result<()> {
        match modes.contains(&Mode::Push) {
            true => Ok(()),
            false => Err(self.err("action", format!("{what}; add \"push\" to modes"))),
        }
    }

    fn disconnect_clients(
        &self,
        f: &RawFault,
        users: u64,
        modes: &[Mode],
    ) -> anyhow::Result<FaultAction> {
        self.needs_push(modes, "disconnect-clients acts on push clients")?;
        let clients = f.clients.unwrap_or(1);
        if clients == 0 || clients > users {
            return Err(self.err(
                "clients",
                format!("{clients} is out of range; use 1 to users.count ({users})"),
            ));
        }
        let offline = self.duration("offline", f.offline.as_deref(), "10s")?;
        Ok(FaultAction::DisconnectClients { clients, offline })
    }

    /// `restart-redis`, `kill-redis`, `pause-redis` or `restart-postgres`.
    fn service(&self, f: &RawFault, action: &str) -> anyhow::Result<FaultAction> {
        let default = if action.starts_with("restart-") {
            "0s"
        } else {
            "5s"
        };
        let down = self.duration("down", f.down.as_deref(), default)?;
        if self.at + down >= self.duration {
            return Err(self.err(
                "down",
                format!(
                    "{} would still be {} when the {} window closes; end the fault inside it",
                    if action == "restart-postgres" {
                        "Postgres"
                    } else {
                        "Redis"
                    },
                    if action == "pause-redis" {
                        "stalled"
                    } else {
                        "down"
                    },
                    fmt_duration(self.duration)
                ),
            ));
        }
        Ok(match action {
            "pause-redis" => FaultAction::PauseRedis { down },
            "restart-postgres" => FaultAction::RestartPostgres { down },
            _ => FaultAction::KillRedis {
                down,
                restart: action == "restart-redis",
            },
        })
    }

    fn kill_gateway(&self, f: &RawFault, n: usize, modes: &[Mode]) -> anyhow::Result<FaultAction> {
        self.needs_push(modes, "kill-gateway acts on push gateway instances")?;
        let instance = match &f.instance {
            None => Some(0),
            Some(toml::Value::String(s)) if s == "random" => None,
            Some(toml::Value::Integer(i)) if *i >= 0 && (*i as u64) < n as u64 => Some(*i as usize),
            Some(v) => {
                return Err(self.err(
                    "instance",
                    format!(
                        "{v} is not an instance; use 0 to {} (push.instances - 1) or \"random\"",
                        n.saturating_sub(1)
                    ),
                ))
            }
        };
        let down = match f.down.as_deref() {
            None => None,
            Some(d) => Some(self.duration("down", Some(d), d)?),
        };
        if down.is_some_and(|down| self.at + down >= self.duration) {
            return Err(self.err(
                "down",
                format!(
                    "the instance would still be down when the {} window closes; end the fault inside it, or leave out `down` to keep it down",
                    fmt_duration(self.duration)
                ),
            ));
        }
        Ok(FaultAction::KillGateway { instance, down })
    }

    /// Keys that belong to another kind of fault are refused, not ignored.
    fn no_stray_keys(&self, f: &RawFault, action: &FaultAction) -> anyhow::Result<()> {
        let disconnect = matches!(action, FaultAction::DisconnectClients { .. });
        if f.clients.is_some() && !disconnect {
            return Err(self.err("clients", "only disconnect-clients takes `clients`"));
        }
        if f.offline.is_some() && !disconnect {
            return Err(self.err(
                "offline",
                "only disconnect-clients takes `offline`; Redis and Postgres faults take `down`",
            ));
        }
        if f.instance.is_some() && !matches!(action, FaultAction::KillGateway { .. }) {
            return Err(self.err("instance", "only kill-gateway takes `instance`"));
        }
        if f.down.is_some() && disconnect {
            return Err(self.err("down", "disconnect-clients takes `offline`, not `down`"));
        }
        Ok(())
    }
}
