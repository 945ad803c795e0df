//! The FAQ index: the entries, the trained model that answers ([`crate::matcher`]), and a
//! tantivy index with one document per paraphrase (the question and each of its `similar`
//! forms). Today tantivy serves term statistics ([`FaqIndex::doc_freq`]) and
//! [`FaqIndex::search`]; the answer path does not use it yet.
//!
//! An index travels as one bundle (see [`FaqIndex::to_bundle`]): built on disk in a
//! temporary directory, packed, and loaded into RAM, because Lambda can only write to
//! `/tmp` and a FAQ is small enough to live in memory.

use crate::bundle;
use crate::calibrate::{Labelled, TargetWrongRate};
use crate::faq::FaqEntry;
use crate::matcher::MatcherConfig;
use crate::model::FaqModel;
use crate::text;
use crate::word_vectors::Language;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::directory::{Directory, RamDirectory};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexWriter, Searcher, TantivyDocument, Term};

/// Memory budget of the single indexing thread; large enough to keep a 10,000-entry FAQ in
/// one segment (one segment searches fastest and scores consistently).
const WRITER_MEMORY: usize = 100_000_000;

/// A searchable FAQ: entries plus a tantivy index over their paraphrases. Immutable once
/// built; share it behind an `Arc`.
pub struct FaqIndex {
    entries: Vec<FaqEntry>,
    directory: RamDirectory,
    files: Vec<String>,
    searcher: Searcher,
    fields: Fields,
    /// `(entry, paraphrase)` columns per segment, in segment order.
    columns: Vec<(Column<u64>, Column<u64>)>,
    paraphrases: u64,
    /// The classifier and its calibration.
    pub(crate) model: FaqModel,
    /// Normalised paraphrase → entry, for paraphrases belonging to one entry only.
    pub(crate) exact: HashMap<String, usize>,
    pub(crate) config: MatcherConfig,
}

impl std::fmt::Debug for FaqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaqIndex")
            .field("entries", &self.entries.len())
            .field("paraphrases", &self.paraphrases)
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Clone, Copy)]
struct Fields {
    text: Field,
    entry: Field,
    paraphrase: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(text::TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    let text = builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(indexing),
    );
    let entry = builder.add_u64_field("entry", FAST);
    let paraphrase = builder.add_u64_field("paraphrase", FAST);
    (
        builder.build(),
        Fields {
            text,
            entry,
            paraphrase,
        },
    )
}

fn tantivy_error(context: &str) -> impl FnOnce(tantivy::TantivyError) -> Error + '_ {
    move |e| Error::backend(context, e)
}

/// A paraphrase found by the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the entry in [`FaqIndex::entries`].
    pub entry: usize,
    /// Position of the paraphrase in [`FaqEntry::paraphrases`].
    pub paraphrase: usize,
    /// tantivy's BM25 score.
    pub bm25: f32,
}

impl FaqIndex {
    /// Builds an index over `entries` (expected valid, as [`crate::faq::parse_source`]
    /// returns them) with the default configuration.
    pub fn build(entries: &[FaqEntry]) -> Result<FaqIndex> {
        Self::build_with(entries, None, TargetWrongRate::default())
    }

    /// Builds an index whose "don't know" threshold aims at `target` wrong answers,
    /// calibrated on `validation` (labelled questions, never the test set) when given,
    /// else by cross-validation on the paraphrases.
    pub fn build_with(
        entries: &[FaqEntry],
        validation: Option<&[Labelled]>,
        target: TargetWrongRate,
    ) -> Result<FaqIndex> {
        let model = FaqModel::build(entries, validation, target);
        let dir = tempfile::tempdir()
            .map_err(|e| Error::backend("creating a directory for the FAQ index", e))?;
        let files = write_index(dir.path(), entries)?;
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        Self::open(entries.to_vec(), &files, model)
    }

    /// The whole index as one self-contained blob: header, entries, index files.
    pub fn to_bundle(&self) -> Result<Vec<u8>> {
        let entries_json = serde_json::to_vec(&self.entries)
            .map_err(|e| Error::backend("serialising FAQ entries", e))?;
        let mut files = Vec::with_capacity(self.files.len());
        for name in &self.files {
            let bytes = self
                .directory
                .atomic_read(Path::new(name))
                .map_err(|e| Error::backend(format!("reading index file {name}"), e))?;
            files.push((name.clone(), bytes));
        }
        let mut model = Vec::new();
        self.model.write(&mut model);
        bundle::encode(text::ANALYZER_VERSION, &entries_json, &files, &model)
    }

    /// Loads a blob written by [`FaqIndex::to_bundle`], entirely in memory. A bundle whose
    /// text analysis or model layout differs from this build's, or that has no model, is
    /// rebuilt from its entries, with the default configuration (its own is in the layout
    /// that cannot be read; the next publication restores it).
    pub fn from_bundle(blob: &[u8]) -> Result<FaqIndex> {
        let bundle = bundle::decode(blob)?;
        let entries: Vec<FaqEntry> = serde_json::from_slice(bundle.entries_json)
            .map_err(|e| Error::Corrupt(format!("FAQ bundle entries: {e}")))?;
        if bundle.analyzer_version != text::ANALYZER_VERSION || !FaqModel::is_current(bundle.model)
        {
            tracing::warn!(
                bundle = bundle.analyzer_version,
                current = text::ANALYZER_VERSION,
                "FAQ bundle was analysed or modelled differently; rebuilding it from its entries"
            );
            return Self::build(&entries);
        }
        let model = FaqModel::read(bundle.model, entries.len())?;
        Self::open(entries, &bundle.files, model)
    }

    fn open(entries: Vec<FaqEntry>, files: &[(&str, &[u8])], model: FaqModel) -> Result<FaqIndex> {
        let directory = RamDirectory::create();
        for (name, bytes) in files {
            directory
                .atomic_write(Path::new(name), bytes)
                .map_err(|e| Error::backend(format!("loading index file {name}"), e))?;
        }
        let index = Index::open(directory.clone())
            .map_err(|e| Error::Corrupt(format!("FAQ index does not open: {e}")))?;
        text::register(index.tokenizers());
        let (_, fields) = schema();
        let reader = index
            .reader()
            .map_err(tantivy_error("opening the FAQ index reader"))?;
        let searcher = reader.searcher();
        let mut columns = Vec::new();
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            let column = |name: &str| {
                fast.u64(name)
                    .map_err(|e| Error::Corrupt(format!("FAQ index field {name}: {e}")))
            };
            columns.push((column("entry")?, column("paraphrase")?));
        }
        let paraphrases = searcher.num_docs();
        let exact = exact_paraphrases(&entries);
        Ok(FaqIndex {
            model,
            exact,
            directory,
            files: files.iter().map(|(name, _)| (*name).to_owned()).collect(),
            searcher,
            fields,
            columns,
            paraphrases,
            config: MatcherConfig::default(),
            entries,
        })
    }

    /// The "don't know" threshold calibrated when the index was built, for messages in
    /// the language of `text` (Chinese when it has CJK text, else English).
    pub fn calibrated_threshold(&self, text: &str) -> f32 {
        self.threshold_in(Language::of(text))
    }

    /// The wrong-answer rate the thresholds were calibrated for.
    pub fn target_wrong_rate(&self) -> TargetWrongRate {
        self.model.calibration.target
    }

    /// The "don't know" threshold for messages in `language`.
    pub(crate) fn threshold_in(&self, language: Language) -> f32 {
        self.model.calibration.threshold(language)
    }

    /// The entries, in source order.
    pub fn entries(&self) -> &[FaqEntry] {
        &self.entries
    }

    /// The entry with `id`, if any.
    pub fn entry(&self, id: &str) -> Option<&FaqEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Number of indexed paraphrases (questions included).
    pub fn paraphrase_count(&self) -> u64 {
        self.paraphrases
    }

    /// This index with another matcher configuration.
    pub fn with_config(mut self, config: MatcherConfig) -> Self {
        self.config = config;
        self
    }

    /// The matcher configuration in use.
    pub fn config(&self) -> &MatcherConfig {
        &self.config
    }

    /// In how many paraphrases `term` (an analysed term) occurs.
    pub fn doc_freq(&self, term: &str) -> u64 {
        let term = Term::from_field_text(self.fields.text, term);
        // The reader is in memory: a failure here means a broken index, which found no hits
        // either, so "unseen" is the honest answer.
        self.searcher.doc_freq(&term).unwrap_or(0)
    }

    /// The paraphrases sharing analysed terms ([`text::terms`]) with `terms`, best BM25
    /// first, at most `limit`: keyword search for ops tools and the console.
    pub fn search(&self, terms: &[String], limit: usize) -> Result<Vec<Hit>> {
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                let term = Term::from_field_text(self.fields.text, t);
                let query: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                (Occur::Should, query)
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        let top = self
            .searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(tantivy_error("searching the FAQ index"))?;
        let mut hits = Vec::with_capacity(top.len());
        for (bm25, address) in top {
            let Some((entries, paraphrases)) = self.columns.get(address.segment_ord as usize)
            else {
                continue;
            };
            let (Some(entry), Some(paraphrase)) = (
                entries.first(address.doc_id),
                paraphrases.first(address.doc_id),
            ) else {
                continue;
            };
            hits.push(Hit {
                entry: entry as usize,
                paraphrase: paraphrase as usize,
                bm25,
            });
        }
        Ok(hits)
    }
}

/// Normalised paraphrases that belong to exactly one entry: a customer typing one of them
/// gets that entry, whatever the classifier thinks.
fn exact_paraphrases(entries: &[FaqEntry]) -> HashMap<String, usize> {
    let mut exact: HashMap<String, usize> = HashMap::new();
    let mut shared = Vec::new();
    for (pos, entry) in entries.iter().enumerate() {
        for paraphrase in entry.paraphrases() {
            let key = text::normalize(paraphrase);
            if key.is_empty() {
                continue;
            }
            if let Some(&other) = exact.get(&key)
                && other != pos
            {
                shared.push(key);
                continue;
            }
            exact.insert(key, pos);
        }
    }
    for key in shared {
        exact.remove(&key);
    }
    exact
}

/// Builds the tantivy index in `dir` and returns its files (lock files excluded), by name.
fn write_index(dir: &Path, entries: &[FaqEntry]) -> Result<Vec<(String, Vec<u8>)>> {
    let (schema, fields) = schema();
    let index =
        Index::create_in_dir(dir, schema).map_err(tantivy_error("creating the FAQ index"))?;
    text::register(index.tokenizers());
    let mut writer: IndexWriter<TantivyDocument> = index
        .writer_with_num_threads(1, WRITER_MEMORY)
        .map_err(tantivy_error("opening the FAQ index writer"))?;
    for (entry_pos, entry) in entries.iter().enumerate() {
        for (paraphrase_pos, paraphrase) in entry.paraphrases().enumerate() {
            let mut doc = TantivyDocument::new();
            doc.add_text(fields.text, paraphrase);
            doc.add_u64(fields.entry, entry_pos as u64);
            doc.add_u64(fields.paraphrase, paraphrase_pos as u64);
            writer
                .add_document(doc)
                .map_err(tantivy_error("indexing a FAQ paraphrase"))?;
        }
    }
    writer
        .commit()
        .map_err(tantivy_error("committing the FAQ index"))?;
    writer
        .wait_merging_threads()
        .map_err(tantivy_error("finishing the FAQ index"))?;

    let mut files = Vec::new();
    let listing =
        std::fs::read_dir(dir).map_err(|e| Error::backend("listing the FAQ index files", e))?;
    for item in listing {
        let item = item.map_err(|e| Error::backend("listing the FAQ index files", e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tantivy-") || !item.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(item.path())
            .map_err(|e| Error::backend(format!("reading index file {name}"), e))?;
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small bilingual FAQ shared by the bot's tests.
    pub(crate) fn fixture() -> Vec<FaqEntry> {
        let entry = |id: &str, question: &str, similar: &[&str], answer: &str| FaqEntry {
            id: id.into(),
            question: question.into(),
            similar: similar.iter().map(|s| (*s).to_owned()).collect(),
            answer: answer.into(),
            category: None,
            tags: Vec::new(),
            locale: None,
            quick_replies: Vec::new(),
        };
        vec![
            entry(
                "return-policy",
                "怎么退货？",
                &["可以退货吗", "七天无理由退货", "买的东西不想要了能退吗"],
                "签收后7天内可在订单页申请退货。",
            ),
            entry(
                "refund-time",
                "退款多久到账？",
                &["钱什么时候退回来", "退款要几天"],
                "审核通过后1-3个工作日原路退回。",
            ),
            entry(
                "shipping-fee",
                "运费怎么算？",
                &["包邮吗", "满多少包邮", "邮费多少钱"],
                "满99元包邮，否则运费8元。",
            ),
            entry(
                "courier",
                "发什么快递？",
                &["能发顺丰吗", "用的哪家快递"],
                "默认中通，可加价改顺丰。",
            ),
            entry(
                "en-return",
                "How do I return an item?",
                &["Can I send my order back?", "return policy"],
                "Start a return from your orders page within 30 days.",
            ),
            entry(
                "en-track",
                "Where is my order?",
                &[
                    "track my package",
                    "order status",
                    "when will my parcel arrive",
                ],
                "Use the tracking link in your confirmation email.",
            ),
            entry(
                "en-payment",
                "Which payment methods do you accept?",
                &["can I pay with PayPal", "do you take credit cards"],
                "Visa, Mastercard, PayPal and Alipay.",
            ),
        ]
    }

    #[test]
    #[ignore = "report: build, bundle, load and query time of a 10,000-entry FAQ (release)"]
    fn report_large_faq_build_load_and_query_time() {
        use std::time::Instant;
        text::warm_up();
        let entries = crate::synthetic::faq(10_000);
        let started = Instant::now();
        let index = FaqIndex::build(&entries).expect("build");
        let build = started.elapsed();
        let blob = index.to_bundle().expect("bundle");
        let started = Instant::now();
        let loaded = FaqIndex::from_bundle(&blob).expect("load");
        let load = started.elapsed();
        // Reworded questions: the paraphrase's words in another order, so the classifier
        // (not the exact-match table) answers.
        let mut micros: Vec<f64> = Vec::new();
        let mut right = 0;
        for entry in entries.iter().step_by(10) {
            let mut words: Vec<&str> = entry.question.split(' ').collect();
            words.reverse();
            let query = words.join(" ");
            let started = Instant::now();
            let decision = loaded.answer(&query);
            micros.push(started.elapsed().as_secs_f64() * 1e6);
            right += usize::from(decision.best().map(|b| b.entry_id.as_str()) == Some(&entry.id));
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
        eprintln!(
            "{} entries, {} paraphrases: build {} ms, bundle {} bytes, load {} ms, \
             query p50 {:.0} µs p99 {:.0} µs, best entry right {right}/{}, \
             thresholds English {:.3} Chinese {:.3}",
            entries.len(),
            loaded.paraphrase_count(),
            build.as_millis(),
            blob.len(),
            load.as_millis(),
            at(0.5),
            at(0.99),
            micros.len(),
            loaded.threshold_in(Language::English),
            loaded.threshold_in(Language::Chinese),
        );
        assert!(right * 10 >= micros.len() * 9, "{right}/{}", micros.len());
    }

    #[test]
    fn given_entries_when_built_then_every_paraphrase_is_a_document() {
        let entries = fixture();
        let index = FaqIndex::build(&entries).expect("build");
        let expected: usize = entries.iter().map(|e| e.paraphrases().count()).sum();
        assert_eq!(index.paraphrase_count(), expected as u64);
        assert_eq!(index.entries(), &entries[..]);
        assert_eq!(
            index.entry("courier").map(|e| e.answer.as_str()),
            Some("默认中通，可加价改顺丰。")
        );
    }

    #[test]
    fn given_query_terms_when_searched_then_hits_name_entry_and_paraphrase() {
        let index = FaqIndex::build(&fixture()).expect("build");
        let hits = index
            .search(&text::terms("能发顺丰吗"), 10)
            .expect("search");
        let best = hits.first().expect("a hit");
        assert_eq!(index.entries()[best.entry].id, "courier");
        assert_eq!(best.paraphrase, 1);
        assert!(index.search(&[], 10).expect("search").is_empty());
        assert!(index.doc_freq("包邮") >= 2);
        assert_eq!(index.doc_freq("不存在的词"), 0);
    }

    #[test]
    fn given_bundle_when_loaded_then_it_searches_like_the_original() {
        let index = FaqIndex::build(&fixture()).expect("build");
        let blob = index.to_bundle().expect("bundle");
        let loaded = FaqIndex::from_bundle(&blob).expect("load");
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(loaded.paraphrase_count(), index.paraphrase_count());
        for query in ["包邮吗", "track my package", "退款多久"] {
            let terms = text::terms(query);
            assert_eq!(
                loaded.search(&terms, 5).expect("search"),
                index.search(&terms, 5).expect("search"),
                "{query}"
            );
        }
        // A bundle of the loaded index is the same bytes: nothing is lost on the way.
        assert_eq!(loaded.to_bundle().expect("bundle"), blob);
    }

    #[test]
    fn given_bundle_from_older_analyzer_when_loaded_then_it_is_rebuilt() {
        let index = FaqIndex::build(&fixture()).expect("build");
        let blob = index.to_bundle().expect("bundle");
        let mut old = blob.clone();
        let stale = (text::ANALYZER_VERSION - 1).to_le_bytes();
        old[10..12].copy_from_slice(&stale);
        let loaded = FaqIndex::from_bundle(&old).expect("rebuilt");
        assert_eq!(loaded.entries(), index.entries());
        let hits = loaded.search(&text::terms("包邮吗"), 1).expect("search");
        assert_eq!(loaded.entries()[hits[0].entry].id, "shipping-fee");
    }

    #[test]
    fn given_bundle_from_older_model_layout_when_loaded_then_it_is_rebuilt() {
        let index = FaqIndex::build(&fixture()).expect("build");
        let blob = index.to_bundle().expect("bundle");
        let mut model = Vec::new();
        index.model.write(&mut model);
        // The model closes the bundle and opens with its layout version.
        let at = blob.len() - model.len();
        let mut old = blob.clone();
        old[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        let loaded = FaqIndex::from_bundle(&old).expect("rebuilt");
        assert_eq!(loaded.entries(), index.entries());
        // Training is deterministic: the rebuilt model is the one just built.
        assert!(loaded.model == index.model, "the model was not rebuilt");
    }

    #[test]
    fn given_damaged_bundle_when_loaded_then_error_is_corrupt() {
        let blob = FaqIndex::build(&fixture())
            .expect("build")
            .to_bundle()
            .expect("bundle");
        assert!(matches!(
            FaqIndex::from_bundle(&blob[..blob.len() / 2]),
            Err(Error::Corrupt(_))
        ));
    }
}
