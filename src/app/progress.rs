//! What the user sees while a run goes: a bar per phase with live rates on a terminal,
//! one line per phase elsewhere, nothing with `--quiet` (warnings excepted).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Mode;
use crate::run::{Observer, Phase, Tick};

pub struct Progress {
    quiet: bool,
    tty: bool,
    /// The bar of the phase under way, on a terminal.
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means an earlier update panicked: the bar is still usable.
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut bar);
    }
}

impl Observer for Progress {
    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }

    fn phase_started(&self, mode: Mode, phase: Phase, length: Duration) {
        if self.quiet {
            return;
        }
        let secs = length.as_secs_f64().ceil() as u64;
        if !self.tty {
            eprintln!("{mode}: {} ({secs} s)", phase.name());
            return;
        }
        let bar = ProgressBar::new(secs.max(1));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos:>3}/{len}s {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{mode} {}", phase.name()));
        self.with_bar(|b| *b = Some(bar));
    }

    fn phase_tick(&self, _mode: Mode, _phase: Phase, tick: &Tick) {
        self.with_bar(|b| {
            if let Some(bar) = b {
                bar.set_position(tick.elapsed.as_secs());
                bar.set_message(format!(
                    "{} req/s · {} deliveries/s · {} connections",
                    tick.requests_per_s, tick.deliveries_per_s, tick.connections
                ));
            }
        });
    }

    fn phase_ended(&self, _mode: Mode, _phase: Phase) {
        self.with_bar(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }
}
