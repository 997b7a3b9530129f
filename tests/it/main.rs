//! Integration tests: one binary, real ephemeral Postgres and Redis, real sockets.

mod backend;
mod cli;
mod cluster;
mod common;
mod demo;
mod deploy;
mod gate;
mod hosts;
mod layers;
mod measure;
mod model;
mod poll_kinds;
mod push;
mod push_runs;
mod readme;
mod run;
mod shards;
mod socketio;
mod targets;
