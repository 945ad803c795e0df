//! `kefu faq check <source>`: validates a FAQ source with the same strict parser the
//! publisher uses, so a source that checks clean publishes.

use crate::Outcome;
use crate::output;
use crate::progress::Progress;
use crate::source::Source;
use kefu_bot::FaqEntry;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

/// Arguments of `kefu faq check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The FAQ source: JSON Lines (.jsonl) or CSV with a header row (.csv).
    pub source: PathBuf,
}

/// Prints the problems (exit 1) or a summary of a valid source (exit 0).
pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    let progress = Progress::on_stderr();
    let source = Source::read(&args.source, &progress)?;
    let parsed = source.parse(&progress);
    progress.finish();
    let mut out = io::stdout().lock();
    match parsed {
        Ok(entries) => {
            summary(&mut out, &source, &entries)?;
            Ok(Outcome::Success)
        }
        Err(errors) => {
            output::problems(&mut out, &source.path, &errors)?;
            Ok(Outcome::Invalid)
        }
    }
}

fn summary(out: &mut dyn Write, source: &Source, entries: &[FaqEntry]) -> io::Result<()> {
    let paraphrases: usize = entries.iter().map(|e| e.paraphrases().count()).sum();
    writeln!(out, "{}: valid", source.path.display())?;
    writeln!(out, "entries      {}", entries.len())?;
    writeln!(out, "paraphrases  {paraphrases}")?;
    writeln!(
        out,
        "locales      {}",
        tally(entries.iter().map(|e| e.locale.as_deref()))
    )?;
    writeln!(
        out,
        "categories   {}",
        tally(entries.iter().map(|e| e.category.as_deref()))
    )
}

/// `zh-CN 10, en 2, (none) 1`: distinct values by count, most frequent first.
fn tally<'a>(values: impl Iterator<Item = Option<&'a str>>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value.unwrap_or("(none)")).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(value, count)| format!("{value} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_when_tallied_then_most_frequent_first_and_missing_named() {
        let values = [Some("en"), Some("zh-CN"), None, Some("zh-CN")];
        assert_eq!(tally(values.into_iter()), "zh-CN 2, (none) 1, en 1");
    }
}
