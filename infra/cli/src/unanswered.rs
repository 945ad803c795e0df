//! `kefu faq unanswered`: the questions customers asked that got no confident answer,
//! clustered and counted, and optionally exported as a FAQ source skeleton to fill in.

use crate::Outcome;
use crate::store::{self, Missing, StoreArgs};
use anyhow::Context;
use chrono::NaiveDate;
use kefu_bot::FaqEntry;
use kefu_bot::unanswered::{self, Cluster};
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Arguments of `kefu faq unanswered`.
#[derive(clap::Args, Debug)]
pub struct UnansweredArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only questions asked on this UTC day or later (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub since: Option<NaiveDate>,
    /// Only clusters asked at least this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_count: usize,
    /// Also write the clusters shown as a FAQ source skeleton (JSON Lines) to this new file.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("{text:?} is not YYYY-MM-DD"))
}

/// Lists, clusters and prints; exports the skeleton when asked.
pub async fn run(args: UnansweredArgs) -> anyhow::Result<Outcome> {
    let target = args.store.target();
    let blobs = store::open(&target, Missing::Fail).await?;
    let items = unanswered::list(blobs.as_ref(), args.since)
        .await
        .with_context(|| format!("listing unanswered questions on {target}"))?;
    let clusters: Vec<Cluster> = unanswered::cluster(&items)
        .into_iter()
        .filter(|c| c.count >= args.min_count)
        .collect();

    let mut out = io::stdout().lock();
    table(&mut out, &clusters)?;
    let since = args
        .since
        .map(|day| format!(" since {day}"))
        .unwrap_or_default();
    let shown = if args.min_count > 1 {
        format!(
            "{} asked at least {} times",
            plural(clusters.len(), "cluster"),
            args.min_count
        )
    } else {
        plural(clusters.len(), "cluster")
    };
    writeln!(
        out,
        "{} unanswered{since}: {shown}",
        plural(items.len(), "question")
    )?;
    if let Some(path) = &args.export {
        export(path, &clusters)?;
        writeln!(
            out,
            "wrote {} skeleton entries to {}: write each \"answer\" (an empty answer fails \
             `kefu faq check` on purpose), rename the todo-N ids, prune the \"similar\" \
             lists, then merge into your FAQ source and run `kefu faq check` and \
             `kefu faq publish`",
            clusters.len(),
            path.display()
        )?;
    }
    Ok(Outcome::Success)
}

/// One row per cluster, most asked first; the question last so that wide (CJK) text does
/// not break the alignment of the columns before it.
fn table(out: &mut dyn Write, clusters: &[Cluster]) -> io::Result<()> {
    if clusters.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:>5}  {:<10}  {:<24}  QUESTION",
        "COUNT", "LAST", "BEST GUESS"
    )?;
    for cluster in clusters {
        let best = cluster
            .best
            .as_ref()
            .map(|b| format!("{} ({:.2})", b.entry_id, b.confidence))
            .unwrap_or_else(|| "-".into());
        let last = kefu::domain::rfc3339(cluster.last_at);
        writeln!(
            out,
            "{:>5}  {:<10}  {:<24}  {}",
            cluster.count,
            last.get(..10).unwrap_or(&last),
            best,
            one_line(&cluster.representative)
        )?;
        let others: Vec<String> = cluster.examples[1..].iter().map(|e| one_line(e)).collect();
        if !others.is_empty() {
            writeln!(out, "{:>45}also: {}", "", others.join(" | "))?;
        }
    }
    Ok(())
}

/// `1 question`, `2 questions`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Customer text on one line: newlines and tabs would break the table.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The clusters as FAQ entries with empty answers, `todo-1` first (the most asked).
fn skeleton(clusters: &[Cluster]) -> Vec<FaqEntry> {
    clusters
        .iter()
        .enumerate()
        .map(|(i, cluster)| FaqEntry {
            id: format!("todo-{}", i + 1),
            question: one_line(&cluster.representative),
            similar: cluster.examples[1..].iter().map(|e| one_line(e)).collect(),
            answer: String::new(),
            category: None,
            tags: Vec::new(),
            locale: None,
            quick_replies: Vec::new(),
        })
        .collect()
}

/// Writes the skeleton to a new file: an existing file (perhaps already being edited) is
/// never overwritten.
fn export(path: &Path, clusters: &[Cluster]) -> anyhow::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    let mut file = BufWriter::new(file);
    for entry in skeleton(clusters) {
        serde_json::to_writer(&mut file, &entry)?;
        file.write_all(b"\n")?;
    }
    file.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_clusters_when_skeletonised_then_todo_ids_and_empty_answers() {
        let clusters = vec![Cluster {
            representative: "可以开发票吗".into(),
            count: 3,
            examples: vec!["可以开发票吗".into(), "发票\n怎么开".into()],
            best: None,
            last_at: 0,
        }];
        let entries = skeleton(&clusters);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "todo-1");
        assert_eq!(entries[0].question, "可以开发票吗");
        assert_eq!(entries[0].similar, vec!["发票 怎么开"]);
        assert!(entries[0].answer.is_empty());
    }

    #[test]
    fn given_day_text_when_parsed_then_only_iso_dates_pass() {
        assert!(parse_day("2024-06-01").is_ok());
        assert!(parse_day("06/01/2024").is_err());
    }
}
