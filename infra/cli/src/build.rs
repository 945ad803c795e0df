//! `kefu faq build <source> --out <dir>`: builds the index bundle without publishing it,
//! named like a published version, to inspect, ship or upload by other means. With
//! `--val`, calibrated on labelled questions as `publish` would be with a validation file.

use crate::Outcome;
use crate::output;
use crate::progress::Progress;
use crate::source::{Source, read_questions};
use crate::target::TargetArgs;
use anyhow::Context;
use kefu_bot::FaqIndex;
use kefu_bot::calibrate::unknown_labels;
use kefu_bot::library::version_name;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `kefu faq build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The FAQ source: JSON Lines (.jsonl) or CSV with a header row (.csv).
    pub source: PathBuf,
    /// Directory the bundle is written into (created if missing), as `<dir>/<version>`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Labelled questions to calibrate on, one `{"text", "expected": id | null}` per line:
    /// the "don't know" threshold and each entry's prior, so a sample of customers'
    /// questions as they come. Without it, the FAQ's own paraphrases calibrate.
    #[arg(long, value_name = "FILE")]
    pub val: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Builds and writes the bundle; an invalid source prints its problems and writes nothing.
pub fn run(args: BuildArgs) -> anyhow::Result<Outcome> {
    let progress = Progress::on_stderr();
    let source = Source::read(&args.source, &progress)?;
    let validation = args.val.as_deref().map(read_questions).transpose()?;
    let validation = validation.map(|(_, questions)| questions);
    let target = args.target.resolve()?;
    let started = Instant::now();
    let entries = match source.parse(&progress) {
        Ok(entries) => entries,
        Err(errors) => {
            progress.finish();
            output::problems(&mut io::stderr().lock(), &source.path, &errors)?;
            return Ok(Outcome::Invalid);
        }
    };
    progress.stage(format!("indexing {} entries", entries.len()));
    let index = FaqIndex::build_with(&entries, validation.as_deref(), target)
        .context("building the FAQ index")?;
    progress.stage("packing the bundle");
    let bundle = index.to_bundle().context("packing the FAQ index")?;
    let build_ms = started.elapsed().as_millis();
    let version = version_name(chrono::Utc::now(), &bundle);
    progress.stage("writing");
    let path = write_atomically(&args.out, &version, &bundle)?;
    progress.finish();

    let mut out = io::stdout().lock();
    writeln!(out, "version      {version}")?;
    writeln!(out, "entries      {}", entries.len())?;
    writeln!(out, "paraphrases  {}", index.paraphrase_count())?;
    writeln!(
        out,
        "size         {} bytes ({})",
        bundle.len(),
        output::human_bytes(bundle.len())
    )?;
    writeln!(out, "build        {build_ms} ms")?;
    let (questions, unknown) = validation.as_ref().map_or((0, 0), |questions| {
        (questions.len(), unknown_labels(&entries, questions))
    });
    writeln!(
        out,
        "calibrated   {}",
        output::calibrated_on(questions, unknown)
    )?;
    writeln!(out, "target       {target} wrong answers")?;
    writeln!(out, "path         {}", path.display())?;
    Ok(Outcome::Success)
}

/// Writes `<dir>/<name>` through a temporary file in `dir`, so the bundle is never seen
/// half-written.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    let staging = dir.join(format!(".{name}.partial"));
    std::fs::write(&staging, bytes).with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
