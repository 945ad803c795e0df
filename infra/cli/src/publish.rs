//! `kefu faq publish <source>`: uploads a source and makes it the current version, in the
//! local data directory or an S3 bucket. Running bots (and the local runner) pick the new
//! version up within their reload interval (30 s). With `--val`, the labelled questions
//! are uploaded first as the source's validation file, which its builds calibrate on.

use crate::Outcome;
use crate::output;
use crate::progress::Progress;
use crate::source::{Source, read_questions};
use crate::store::{self, Missing, StoreArgs};
use crate::target::TargetArgs;
use anyhow::Context;
use kefu_bot::library::{SOURCE_PREFIX, validation_key};
use std::io::{self, Write};
use std::path::PathBuf;

/// Arguments of `kefu faq publish`.
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The FAQ source: JSON Lines (.jsonl) or CSV with a header row (.csv). Uploaded as
    /// `faq/source/<file name>`.
    pub source: PathBuf,
    /// Labelled questions to calibrate on, one `{"text", "expected": id | null}` per line
    /// (see `kefu faq build --help`). Uploaded as `faq/validation/<source name>.jsonl`,
    /// where later publications of the source find it too; without `--val`, one uploaded
    /// earlier is used, and with none the FAQ's own paraphrases calibrate.
    #[arg(long, value_name = "FILE")]
    pub val: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Checks the source (and `--val`) locally, uploads them, publishes and prints the new
/// version. An invalid source or validation file touches nothing: not even the upload
/// happens, so the store's sources stay publishable.
pub async fn run(args: PublishArgs) -> anyhow::Result<Outcome> {
    let progress = Progress::on_stderr();
    let source = Source::read(&args.source, &progress)?;
    if let Err(errors) = source.parse(&progress) {
        progress.finish();
        output::problems(&mut io::stderr().lock(), &source.path, &errors)?;
        return Ok(Outcome::Invalid);
    }
    let validation = args.val.as_deref().map(read_questions).transpose()?;
    let rate = args.target.resolve()?;
    let target = args.store.target();
    progress.stage(format!("uploading to {target}"));
    let blobs = store::open(&target, Missing::Create).await?;
    let key = format!("{SOURCE_PREFIX}{}", source.name);
    if let Some((bytes, _)) = validation {
        let validation_key = validation_key(&key);
        blobs
            .put(&validation_key, bytes)
            .await
            .with_context(|| format!("uploading {validation_key} to {target}"))?;
    }
    blobs
        .put(&key, source.bytes)
        .await
        .with_context(|| format!("uploading {key} to {target}"))?;
    progress.stage("building and publishing");
    let published = kefu_bot::library::publish_with(blobs.as_ref(), &key, rate)
        .await
        .with_context(|| format!("publishing {key} on {target}"))?;
    progress.finish();

    let mut out = io::stdout().lock();
    writeln!(out, "version      {}", published.version)?;
    writeln!(out, "entries      {}", published.entries)?;
    writeln!(out, "paraphrases  {}", published.paraphrases)?;
    writeln!(
        out,
        "size         {} bytes ({})",
        published.bytes,
        output::human_bytes(published.bytes)
    )?;
    writeln!(out, "build        {} ms", published.build_ms)?;
    writeln!(
        out,
        "calibrated   {}",
        output::calibrated_on(published.validation_questions, published.validation_unknown)
    )?;
    writeln!(out, "target       {rate} wrong answers")?;
    writeln!(out, "published    {target} ({key}, now current)")?;
    Ok(Outcome::Success)
}
