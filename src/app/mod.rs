//! The top layer: the only code that knows the command line, prints to stdout and decides
//! exit codes. Each command converts its flags into the typed configurations of the layers
//! below, calls them, and renders what they return.

mod capacity;
pub mod cli;
mod compare;
mod demo;
mod progress;
mod run;
mod serve;

use cli::{Cli, Command};

/// Runs the chosen command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run_command(args).await,
        Command::Serve(args) => {
            let config = args.config()?;
            let share = args.share_services.then_some(args.bind);
            serve::command(config, args.database_url, args.redis_url, share).await
        }
        Command::Swarm(args) => run::swarm_command(*args).await,
        Command::Compare(args) => compare::command(args),
        Command::Combine(args) => run::combine_command(args),
        Command::Merge(args) => run::merge_command(args),
        Command::Capacity(args) => capacity::command(args).await,
        Command::Demo(args) => demo::command(args).await,
        Command::Model(args) => {
            let opts = args.options()?;
            let model = crate::report::model::build(&args.runs, &opts)?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| args.runs[0].join("model"));
            crate::report::model::write(&model, &out)?;
            print!("{}", crate::report::model::text(&model));
            println!("\nwrote {}", out.join("model.md").display());
            Ok(())
        }
        Command::Report(args) => {
            crate::report::rerender(&args.dir)?;
            println!("re-rendered {}", args.dir.display());
            Ok(())
        }
    }
}
