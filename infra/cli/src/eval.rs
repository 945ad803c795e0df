//! `kefu faq eval`: how well the default matcher answers a labelled question set.
//!
//! Builds an index in memory from the FAQ (calibrated on `--val` when given, else on the
//! FAQ's own paraphrases), answers every question as the bot would and prints a table;
//! with `--format json` the last line of stdout is one JSON object with the figures.
//! The evaluation itself is `kefu_bot::eval`.

use crate::source::read_questions;
use crate::target::TargetArgs;
use anyhow::Context;
use kefu_bot::eval::{EvalReport, evaluate};
use kefu_bot::{SourceFormat, parse_source};
use std::io::Write;
use std::path::PathBuf;

/// How the figures are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A readable table.
    #[default]
    Table,
    /// The table, then one JSON object as the last line.
    Json,
}

/// Arguments of `kefu faq eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The FAQ source (JSON Lines or CSV).
    #[arg(long)]
    pub faq: PathBuf,
    /// Labelled questions, one `{"text", "expected": id | null}` per line.
    #[arg(long)]
    pub queries: PathBuf,
    /// Labelled questions to calibrate on (never the queries): the "don't know" threshold,
    /// and each entry's prior, so they should be a sample of customers' questions as they
    /// come.
    #[arg(long)]
    pub val: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs the evaluation and prints it.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.faq).with_context(|| format!("reading {}", args.faq.display()))?;
    let format =
        SourceFormat::from_key(&args.faq.to_string_lossy()).unwrap_or(SourceFormat::JsonLines);
    let entries = parse_source(format, &bytes)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.faq.display()))?;
    let (_, queries) = read_questions(&args.queries)?;
    let validation = args.val.as_deref().map(read_questions).transpose()?;
    let validation = validation.map(|(_, questions)| questions);
    let report = evaluate(
        &entries,
        &queries,
        validation.as_deref(),
        args.target.resolve()?,
    )?;
    print(&report, args.format)
}

fn print(report: &EvalReport, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "{}", report.table())?;
    if format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(report)?)?;
    }
    out.flush()?;
    Ok(())
}
