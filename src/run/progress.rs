//! What the user sees while a run goes: a bar per phase with live rates on a terminal,
//! one line per phase elsewhere, nothing with `--quiet`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tokio::time::Instant;

use crate::scenario::Mode;
use crate::swarm::Live;

pub struct Progress {
    quiet: bool,
    tty: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Silent: for tests and embedding.
    pub fn silent() -> Self {
        Progress {
            quiet: true,
            tty: false,
        }
    }

    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A warning: printed on stderr even when quiet.
    pub fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }

    /// Shows one phase for `length`, updating live rates once a second; returns when the
    /// phase is over.
    pub async fn phase(&self, mode: Mode, name: &str, length: Duration, live: &Live) {
        let end = Instant::now() + length;
        if self.quiet {
            tokio::time::sleep_until(end).await;
            return;
        }
        let secs = length.as_secs_f64().ceil() as u64;
        let bar = if self.tty {
            let bar = ProgressBar::new(secs.max(1));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos:>3}/{len}s {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{mode} {name}"));
            Some(bar)
        } else {
            eprintln!("{mode}: {name} ({secs} s)");
            None
        };
        let start = Instant::now();
        let (mut last_req, mut last_del) = (
            live.requests.load(Ordering::Relaxed),
            live.deliveries.load(Ordering::Relaxed),
        );
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                _ = tick.tick() => {
                    let req = live.requests.load(Ordering::Relaxed);
                    let del = live.deliveries.load(Ordering::Relaxed);
                    let msg = format!(
                        "{} req/s · {} deliveries/s · {} connections",
                        req - last_req,
                        del - last_del,
                        live.connections.load(Ordering::Relaxed)
                    );
                    (last_req, last_del) = (req, del);
                    if let Some(bar) = &bar {
                        bar.set_position(start.elapsed().as_secs());
                        bar.set_message(msg);
                    }
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
}
