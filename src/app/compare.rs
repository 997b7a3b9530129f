//! The `compare` command: two result folders, figure by figure; exit 1 on a regression.

use super::cli::{CompareArgs, Format};
use crate::error::{input, UserError};
use crate::report::compare::{
    compare, list, machine_differences, read, render_json, render_list, render_markdown,
    render_text, thresholds,
};

pub fn command(args: CompareArgs) -> anyhow::Result<()> {
    let baseline = read(&args.baseline)?;
    let Some(current_path) = &args.current else {
        // --list: the figures of the one result given.
        let limits = thresholds(&args.baseline, &args.max_regression)?;
        let rows = list(&baseline, &limits);
        let text = match args.format {
            Format::Json => serde_json::to_string_pretty(&rows)?,
            Format::Text => render_list(&rows, false),
            Format::Markdown => render_list(&rows, true),
        };
        println!("{text}");
        return Ok(());
    };
    let current = read(current_path)?;
    let machines = machine_differences(&baseline, &current);
    if !machines.is_empty() {
        let list = machines.join("; ");
        if !args.allow_other_machine {
            return Err(input(format!(
                "the runs were measured on different machines ({list}); measure both on the same machine (CI: the base and the PR in one job), or pass --allow-other-machine to compare anyway"
            )));
        }
        eprintln!("warning: the runs were measured on different machines ({list}); differences below may be the machines'");
    }
    let limits = thresholds(current_path, &args.max_regression)?;
    let c = compare(&baseline, &current, &limits)?;
    let text = match args.format {
        Format::Text => render_text(&c),
        Format::Markdown => render_markdown(&c),
        Format::Json => render_json(&c),
    };
    println!("{text}");
    if c.regressions.is_empty() {
        Ok(())
    } else {
        Err(UserError::CheckFailed(format!("regression in {}", c.regressions.join(", "))).into())
    }
}
