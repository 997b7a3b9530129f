//! The `pollpush` binary: parse, run, map errors to exit codes (0 ok, 1 check failed, 2 bad
//! input or environment). Everything else lives in the library.

use clap::Parser;
use pollpush::app::cli::{Cli, Command, ServeArgs};
use pollpush::UserError;

fn main() {
    let cli = Cli::parse();
    let quiet = matches!(&cli.command, Command::Run(args) if args.quiet);
    let default_level = if quiet { "warn" } else { "info" };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // sqlx warns of any statement over 1 s; ours that are (seeding a large history)
        // run before any window, so by default that is noise.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{default_level},sqlx::query=error,sqlx_core::pool=warn"
            ))
        });
    // tungstenite traces every message it receives, and a browser's first frame carries
    // its session token: never trace it, whatever RUST_LOG says.
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        filter = filter.add_directive("tungstenite=debug".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(ServeArgs {
        workers: Some(n), ..
    }) = &cli.command
    {
        builder.worker_threads(usize::from(*n));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(pollpush::app::dispatch(cli));
    // Dropping the runtime ends every task; child processes die with their guards.
    drop(runtime);
    let code = match result {
        Ok(()) => 0,
        Err(err) => match err.downcast_ref::<UserError>() {
            Some(user) => {
                eprintln!("error: {user}");
                user.exit_code()
            }
            None => {
                eprintln!("error: {err:#}");
                2
            }
        },
    };
    std::process::exit(code);
}
