//! The `seedq` binary: parse arguments, set up logging, run one command, and turn its
//! outcome into an exit code (see README, "Exit codes").

use clap::CommandFactory;
use clap::Parser;
use seedq::cli::{Cli, Command, LogFormat};
use seedq::commands::{self, exit};
use seedq::config::UsageError;
use seedq::store::StoreError;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Work(_) | Command::Tokens(_)) {
        // These print what they read from the database, with no network I/O.
        commands::quiet_on_closed_stdout();
    }
    if let Command::Completions(args) = &cli.command {
        clap_complete::generate(
            args.shell,
            &mut Cli::command(),
            "seedq",
            &mut std::io::stdout(),
        );
        return commands::code(exit::OK);
    }
    init_tracing(&cli);
    if matches!(cli.command, Command::Work(_)) {
        // Before the runtime starts its threads: they inherit the affinity.
        match commands::one_cpu_setting() {
            Ok(true) => commands::run_on_one_cpu(),
            Ok(false) => {}
            Err(e) => {
                eprintln!("seedq: error: {e}");
                return commands::code(exit::USAGE);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("seedq: error: cannot start the async runtime: {e}");
            return commands::code(exit::FAILURE);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => commands::code(code),
        Err(error) => {
            eprintln!("seedq: error: {error:#}");
            commands::code(exit_code_for(&error))
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Enqueue(args) => commands::enqueue::run(cli, args).await,
        Command::Work(args) => commands::work::run(cli, args).await,
        Command::Status(args) => commands::status::run(cli, args).await,
        Command::Tokens(args) => commands::tokens::run(cli, args).await,
        Command::Retry(args) => commands::retry::run(cli, args).await,
        Command::Remove(args) => commands::remove::run(cli, args).await,
        Command::CopyTo(args) => commands::copy::run(cli, args).await,
        Command::Completions(_) => Ok(exit::OK),
    }
}

/// Bad input is 2; everything else that went wrong is 1.
fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some()
        || matches!(
            error.downcast_ref::<StoreError>(),
            Some(StoreError::Refused(_))
        )
    {
        exit::USAGE
    } else {
        exit::FAILURE
    }
}

fn init_tracing(cli: &Cli) {
    let level = match (cli.verbose, cli.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,seedq={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(seedq::display::logs::Stderr)
        .with_target(false);
    match cli.log_format {
        LogFormat::Text => builder.with_ansi(seedq::display::color_on_stderr()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
