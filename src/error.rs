//! Errors the user can act on. `main` maps them to exit codes in one place.

use std::fmt;

/// What went wrong, in words a user can act on, and which exit code it earns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// Bad input: a scenario file, a flag, an override. Exit code 2.
    Input(String),
    /// The environment cannot do what was asked: no Postgres, no Redis, no port. Exit code 2.
    Environment(String),
    /// The run completed but a check in the scenario failed. Exit code 1.
    CheckFailed(String),
}

impl UserError {
    pub fn exit_code(&self) -> i32 {
        match self {
            UserError::CheckFailed(_) => 1,
            UserError::Input(_) | UserError::Environment(_) => 2,
        }
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::Input(m) => write!(f, "bad input: {m}"),
            UserError::Environment(m) => write!(f, "environment: {m}"),
            UserError::CheckFailed(m) => write!(f, "check failed: {m}"),
        }
    }
}

impl std::error::Error for UserError {}

/// Shorthand for a bad-input error.
pub fn input(msg: impl Into<String>) -> anyhow::Error {
    UserError::Input(msg.into()).into()
}

/// Shorthand for an environment error.
pub fn environment(msg: impl Into<String>) -> anyhow::Error {
    UserError::Environment(msg.into()).into()
}
