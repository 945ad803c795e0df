//! `kefu`: the ops command-line tool. Checks, builds and publishes FAQ sources, evaluates
//! the matcher on labelled queries, and lists the questions the bot could not answer;
//! simulates WeChat and SMS customers against a local runner.
//!
//! Results go to stdout; logs and progress go to stderr, so stdout stays parseable.
//! Exit codes: 0 success, 1 the input was checked and found invalid, 2 usage or I/O error.

mod build;
mod check;
mod eval;
mod output;
mod progress;
mod publish;
mod simulate;
mod source;
mod store;
mod target;
mod unanswered;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// kefu (客服) operations tool.
#[derive(Parser, Debug)]
#[command(name = "kefu", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// FAQ sources, index versions and unanswered questions.
    #[command(subcommand)]
    Faq(FaqCommand),
    /// Play a WeChat or SMS customer against a local runner, and the platforms' send APIs.
    #[command(subcommand)]
    Simulate(simulate::SimulateCommand),
}

#[derive(Subcommand, Debug)]
enum FaqCommand {
    /// Validate a FAQ source (.jsonl or .csv): line-numbered errors, or a summary.
    Check(check::CheckArgs),
    /// Build the index bundle of a FAQ source into a directory.
    Build(build::BuildArgs),
    /// Publish a FAQ source as the new current version (local data dir or S3 bucket).
    Publish(publish::PublishArgs),
    /// Answer labelled queries as the bot would and report accuracy and latency.
    Eval(eval::EvalArgs),
    /// Questions customers asked that got no confident answer, clustered and counted.
    Unanswered(unanswered::UnansweredArgs),
}

/// What a command concluded, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done, or the input is valid.
    Success,
    /// The input was read and is invalid (the problems were printed).
    Invalid,
}

/// Exit code when the input is invalid.
const EXIT_INVALID: u8 = 1;
/// Exit code for usage errors (clap's own) and I/O or backend failures.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(EXIT_INVALID),
        Err(error) => {
            output::error(&error);
            // A file read whole and found malformed is invalid input, like a bad source.
            let invalid = error.chain().any(|cause| {
                matches!(cause.downcast_ref(), Some(kefu::Error::Invalid(_)))
                    || matches!(cause.downcast_ref(), Some(kefu_faq::Error::Invalid(_)))
            });
            ExitCode::from(if invalid { EXIT_INVALID } else { EXIT_ERROR })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let command = match cli.command {
        Command::Faq(command) => command,
        Command::Simulate(command) => return simulate::run(command).map(|()| Outcome::Success),
    };
    match command {
        FaqCommand::Check(args) => check::run(args),
        FaqCommand::Build(args) => build::run(args),
        FaqCommand::Publish(args) => runtime()?.block_on(publish::run(args)),
        FaqCommand::Eval(args) => eval::run(args).map(|()| Outcome::Success),
        FaqCommand::Unanswered(args) => runtime()?.block_on(unanswered::run(args)),
    }
}

/// A runtime for the commands that talk to a blob store.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr (never stdout, which carries results), filtered by `KEFU_LOG`, quiet by
/// default: the tool's own output says what happened.
fn init_logs() {
    let filter = kefu::config::or("KEFU_LOG", "warn");
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second subscriber cannot be installed; there is none before this one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
}
