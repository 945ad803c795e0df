//! Reading and parsing the files ops give: a FAQ source (`check`, `build`, `publish`) and
//! labelled questions (`--val`, `eval`).

use crate::progress::Progress;
use anyhow::{Context, bail};
use kefu_bot::{FaqEntry, Labelled, SourceErrors, SourceFormat, parse_source, read_labelled};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Read in chunks of this size so the progress bar moves on large files.
const CHUNK: usize = 1 << 20;

/// A source file, read whole.
pub struct Source {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its file name (`faq.jsonl`), the name it is published under.
    pub name: String,
    /// Its format, from the extension.
    pub format: SourceFormat,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Source {
    /// Reads `path`; its extension must name a format (`.jsonl`, `.json`, `.ndjson`, `.csv`).
    pub fn read(path: &Path, progress: &Progress) -> anyhow::Result<Source> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{}: not a file name", path.display()))?
            .to_owned();
        let Some(format) = SourceFormat::from_key(&name) else {
            bail!(
                "{}: unknown FAQ source format (use .jsonl or .csv)",
                path.display()
            );
        };
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        progress.bytes(length, "reading");
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        let mut chunk = vec![0; CHUNK];
        loop {
            let read = file
                .read(&mut chunk)
                .with_context(|| format!("reading {}", path.display()))?;
            if read == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..read]);
            progress.advance(read as u64);
        }
        Ok(Source {
            path: path.to_owned(),
            name,
            format,
            bytes,
        })
    }

    /// Parses strictly: every entry, or every problem with its line.
    pub fn parse(&self, progress: &Progress) -> Result<Vec<FaqEntry>, SourceErrors> {
        progress.stage(format!("parsing {}", self.name));
        parse_source(self.format, &self.bytes)
    }
}

/// Reads labelled questions, one `{"text", "expected": id | null}` per line, strictly: the
/// file's bytes and its questions, or the first bad line.
pub fn read_questions(path: &Path) -> anyhow::Result<(Vec<u8>, Vec<Labelled>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let questions = read_labelled(&bytes).with_context(|| format!("{}", path.display()))?;
    Ok((bytes, questions))
}
