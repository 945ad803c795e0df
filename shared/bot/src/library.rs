//! Publishing FAQ index versions and keeping the bot's copy current.
//!
//! Blob layout (over [`BlobStore`]):
//!
//! ```text
//! faq/source/<name>.jsonl|.csv   what authors upload
//! faq/validation/<name>.jsonl    optional: customers' questions, labelled, to calibrate on
//! faq/index/<version>            immutable bundles (see FaqIndex::to_bundle)
//! faq/index/CURRENT              the version bots serve
//! ```
//!
//! A source with a validation file beside it is calibrated on its questions (the "don't
//! know" threshold and each entry's prior, see `calibrate`) instead of cross-validation on
//! its own paraphrases. The file is read when the source is published: upload it first.
//!
//! A version is `YYYYMMDDTHHMMSSmmmZ-<8 hex of the bundle's sha256>`, so versions sort by
//! publication time and name their content. The bundle is written before `CURRENT`, so a
//! bot never follows a pointer to a missing version; a rejected source writes nothing.

use crate::calibrate::{Labelled, TargetWrongRate, read_labelled, unknown_labels};
use crate::faq::{SourceFormat, parse_source};
use crate::index::FaqIndex;
use kefu::ports::BlobStore;
use kefu::{Error, Result};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Prefix of FAQ sources.
pub const SOURCE_PREFIX: &str = "faq/source/";
/// Prefix of the labelled validation files, one per source.
pub const VALIDATION_PREFIX: &str = "faq/validation/";
/// Prefix of published index versions.
pub const INDEX_PREFIX: &str = "faq/index/";
/// Key of the pointer to the current version.
pub const CURRENT_KEY: &str = "faq/index/CURRENT";
/// How often [`FaqLibrary::refresh_if_due`] looks at `CURRENT` unless told otherwise.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// The key of a version's bundle.
pub fn index_key(version: &str) -> String {
    format!("{INDEX_PREFIX}{version}")
}

/// The key of the validation file of the source at `source_key`: the same name under
/// [`VALIDATION_PREFIX`], always JSON Lines (`faq/source/shop.csv` →
/// `faq/validation/shop.jsonl`).
pub fn validation_key(source_key: &str) -> String {
    let name = source_key.strip_prefix(SOURCE_PREFIX).unwrap_or(source_key);
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() && !stem.ends_with('/') => stem,
        _ => name,
    };
    format!("{VALIDATION_PREFIX}{stem}.jsonl")
}

/// What [`publish`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The new version, now current.
    pub version: String,
    /// Number of FAQ entries.
    pub entries: usize,
    /// Number of indexed paraphrases (questions included).
    pub paraphrases: u64,
    /// Size of the bundle in bytes.
    pub bytes: usize,
    /// Time spent parsing, indexing and packing, in milliseconds.
    pub build_ms: u64,
    /// Labelled questions it was calibrated on (from [`validation_key`]); 0 when it was
    /// calibrated on its own paraphrases.
    pub validation_questions: usize,
    /// Of those, how many name an entry the source lacks (read as out of scope).
    pub validation_unknown: usize,
}

/// [`publish_with`] the default target wrong-answer rate.
pub async fn publish(blobs: &dyn BlobStore, source_key: &str) -> Result<Published> {
    publish_with(blobs, source_key, TargetWrongRate::default()).await
}

/// Builds the source at `source_key` (calibrated on its validation file when there is
/// one, for `target` wrong answers) and makes it the current version.
///
/// A malformed source or validation file is rejected as a whole with `Error::Invalid`
/// carrying the line-numbered report, and nothing is written: the current version stays.
pub async fn publish_with(
    blobs: &dyn BlobStore,
    source_key: &str,
    target: TargetWrongRate,
) -> Result<Published> {
    let format = SourceFormat::from_key(source_key).ok_or_else(|| {
        Error::Invalid(format!(
            "{source_key}: unknown FAQ source format (use .jsonl or .csv)"
        ))
    })?;
    let source = blobs
        .get(source_key)
        .await?
        .ok_or_else(|| Error::NotFound(format!("FAQ source {source_key}")))?;
    let Built {
        bundle,
        entries,
        paraphrases,
        build_ms,
        validation_questions,
        validation_unknown,
    } = build(blobs, source_key, format, source, target)
        .await
        .inspect_err(|e| {
            tracing::warn!(source = source_key, error = %e, "FAQ source not published");
        })?;

    let version = version_name(chrono::Utc::now(), &bundle);
    let bytes = bundle.len();
    blobs.put(&index_key(&version), bundle).await?;
    blobs.put(CURRENT_KEY, version.clone().into_bytes()).await?;
    tracing::info!(source = source_key, %version, entries, paraphrases, bytes, build_ms, validation_questions, validation_unknown, target_wrong_rate = target.get(), "FAQ published");
    Ok(Published {
        version,
        entries,
        paraphrases,
        bytes,
        build_ms,
        validation_questions,
        validation_unknown,
    })
}

/// A source built into a bundle, with what [`Published`] says of it but its version.
struct Built {
    bundle: Vec<u8>,
    entries: usize,
    paraphrases: u64,
    build_ms: u64,
    validation_questions: usize,
    validation_unknown: usize,
}

/// Reads the source's validation file, then parses, trains and packs the source on a
/// blocking thread.
async fn build(
    blobs: &dyn BlobStore,
    source_key: &str,
    format: SourceFormat,
    source: Vec<u8>,
    target: TargetWrongRate,
) -> Result<Built> {
    let validation = read_validation(blobs, source_key).await?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let entries = parse_source(format, &source)
            .map_err(|report| Error::Invalid(format!("FAQ source rejected:\n{report}")))?;
        let validation = validation.as_deref();
        let index = FaqIndex::build_with(&entries, validation, target).map_err(engine_error)?;
        Ok(Built {
            bundle: index.to_bundle().map_err(engine_error)?,
            entries: entries.len(),
            paraphrases: index.paraphrase_count(),
            build_ms: started.elapsed().as_millis() as u64,
            validation_questions: validation.map_or(0, <[Labelled]>::len),
            validation_unknown: validation.map_or(0, |v| unknown_labels(&entries, v)),
        })
    })
    .await
    .map_err(|e| Error::backend("building the FAQ index", e))?
}

/// An FAQ engine error as the ports' error: a rejected input stays [`Error::Invalid`], a
/// damaged bundle [`Error::Corrupt`], with the engine's message.
fn engine_error(error: kefu_faq::Error) -> Error {
    match error {
        kefu_faq::Error::Invalid(reason) => Error::Invalid(reason),
        kefu_faq::Error::Corrupt(reason) => Error::Corrupt(reason),
        other => Error::backend("FAQ index", other),
    }
}

/// The source's validation file, parsed strictly: `None` when there is none.
async fn read_validation(blobs: &dyn BlobStore, source_key: &str) -> Result<Option<Vec<Labelled>>> {
    let key = validation_key(source_key);
    let Some(bytes) = blobs.get(&key).await? else {
        return Ok(None);
    };
    let questions = read_labelled(&bytes).map_err(|e| match e {
        kefu_faq::Error::Invalid(report) => {
            Error::Invalid(format!("validation file {key} rejected: {report}"))
        }
        other => engine_error(other),
    })?;
    Ok(Some(questions))
}

/// `YYYYMMDDTHHMMSSmmmZ-` and the first 8 hex digits of the bundle's SHA-256: sorts by
/// time, and names the content (the CLI's `faq build` names its bundles the same way).
pub fn version_name(at: chrono::DateTime<chrono::Utc>, bundle: &[u8]) -> String {
    let digest = Sha256::digest(bundle);
    format!(
        "{}-{}",
        at.format("%Y%m%dT%H%M%S%3fZ"),
        hex::encode(&digest[..4])
    )
}

/// Reads `CURRENT`: `None` when nothing was published yet.
async fn current_version(blobs: &dyn BlobStore) -> Result<Option<String>> {
    let Some(bytes) = blobs.get(CURRENT_KEY).await? else {
        return Ok(None);
    };
    let version = String::from_utf8(bytes)
        .map_err(|_| Error::Corrupt(format!("{CURRENT_KEY} is not UTF-8")))?
        .trim()
        .to_owned();
    let plausible = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !plausible {
        return Err(Error::Corrupt(format!(
            "{CURRENT_KEY} does not name a version"
        )));
    }
    Ok(Some(version))
}

/// Downloads and opens a version.
async fn fetch(blobs: &dyn BlobStore, version: &str) -> Result<FaqIndex> {
    let key = index_key(version);
    let blob = blobs
        .get(&key)
        .await?
        .ok_or_else(|| Error::NotFound(format!("FAQ index {key}")))?;
    tokio::task::spawn_blocking(move || {
        kefu_faq::warm_up();
        FaqIndex::from_bundle(&blob).map_err(engine_error)
    })
    .await
    .map_err(|e| Error::backend("loading the FAQ index", e))?
}

/// A loaded version.
struct Loaded {
    version: String,
    index: Arc<FaqIndex>,
}

/// The bot's FAQ: the current index version, swapped for a newer one when `CURRENT` moves.
///
/// Readers take an `Arc` of the index and never wait for a reload: the new version is
/// downloaded and opened aside, then swapped in under a short write lock.
pub struct FaqLibrary {
    reload_interval: Duration,
    loaded: RwLock<Option<Arc<Loaded>>>,
    next_check: Mutex<Option<Instant>>,
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for FaqLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaqLibrary")
            .field("version", &self.version())
            .field("reload_interval", &self.reload_interval)
            .finish()
    }
}

impl Default for FaqLibrary {
    fn default() -> Self {
        Self::new(DEFAULT_RELOAD_INTERVAL)
    }
}

impl FaqLibrary {
    /// An empty library that looks at `CURRENT` at most every `reload_interval`.
    pub fn new(reload_interval: Duration) -> Self {
        Self {
            reload_interval,
            loaded: RwLock::new(None),
            next_check: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the current version (at cold start). `Ok(None)` when nothing is published yet;
    /// an error when `CURRENT` names a version that cannot be loaded.
    pub async fn load(&self, blobs: &dyn BlobStore) -> Result<Option<String>> {
        let _reloading = self.reloading.lock().await;
        self.schedule_next_check(Instant::now());
        let Some(version) = current_version(blobs).await? else {
            tracing::info!("no FAQ index published yet");
            return Ok(None);
        };
        self.install(blobs, version).await.map(Some)
    }

    /// The index in use, if any.
    pub fn current(&self) -> Option<Arc<FaqIndex>> {
        self.read().map(|loaded| Arc::clone(&loaded.index))
    }

    /// The version in use, if any.
    pub fn version(&self) -> Option<String> {
        self.read().map(|loaded| loaded.version.clone())
    }

    /// [`FaqLibrary::refresh_at`] now.
    pub async fn refresh_if_due(&self, blobs: &dyn BlobStore) -> Option<String> {
        self.refresh_at(blobs, Instant::now()).await
    }

    /// Unless `CURRENT` was checked less than the reload interval before `now`, or another
    /// reload is running, checks it and swaps in a newer version. Returns the version
    /// swapped in. A failed reload keeps the index in use and logs a warning.
    pub async fn refresh_at(&self, blobs: &dyn BlobStore, now: Instant) -> Option<String> {
        {
            let mut next = self
                .next_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if next.is_some_and(|due| now < due) {
                return None;
            }
            *next = Some(now + self.reload_interval);
        }
        let _reloading = self.reloading.try_lock().ok()?;
        let in_use = self.version();
        let result = match current_version(blobs).await {
            Ok(Some(version)) if Some(&version) != in_use.as_ref() => {
                self.install(blobs, version).await.map(Some)
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, in_use = ?in_use, "FAQ reload failed; keeping the index in use");
            None
        })
    }

    async fn install(&self, blobs: &dyn BlobStore, version: String) -> Result<String> {
        let started = Instant::now();
        let index = fetch(blobs, &version).await?;
        tracing::info!(
            %version,
            entries = index.entries().len(),
            load_ms = started.elapsed().as_millis() as u64,
            "FAQ index loaded"
        );
        let loaded = Arc::new(Loaded {
            version: version.clone(),
            index: Arc::new(index),
        });
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Some(loaded);
        Ok(version)
    }

    fn schedule_next_check(&self, now: Instant) {
        *self
            .next_check
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now + self.reload_interval);
    }

    fn read(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Decision;
    use async_trait::async_trait;
    use std::collections::BTreeMap;

    /// A test double of our own port: blobs in a map.
    #[derive(Default)]
    struct MemoryBlobs {
        blobs: Mutex<BTreeMap<String, Vec<u8>>>,
    }

    #[async_trait]
    impl BlobStore for MemoryBlobs {
        async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
            self.blobs
                .lock()
                .expect("lock")
                .insert(key.to_owned(), bytes);
            Ok(())
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.blobs.lock().expect("lock").get(key).cloned())
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>> {
            let blobs = self.blobs.lock().expect("lock");
            Ok(blobs
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
    }

    impl MemoryBlobs {
        async fn current(&self) -> Option<String> {
            let bytes = self.get(CURRENT_KEY).await.expect("get")?;
            Some(String::from_utf8(bytes).expect("utf-8"))
        }
        async fn versions(&self) -> Vec<String> {
            let mut keys = self.list(INDEX_PREFIX).await.expect("list");
            keys.retain(|k| k != CURRENT_KEY);
            keys
        }
    }

    const SOURCE: &str = "faq/source/faq.jsonl";
    const V1: &str = concat!(
        r#"{"id":"shipping-fee","question":"运费怎么算？","similar":["包邮吗"],"answer":"满99包邮。"}"#,
        "\n",
        r#"{"id":"courier","question":"发什么快递？","similar":["能发顺丰吗"],"answer":"默认中通。"}"#,
        "\n"
    );
    const V2: &str = concat!(
        r#"{"id":"shipping-fee","question":"运费怎么算？","similar":["包邮吗"],"answer":"满59包邮。"}"#,
        "\n",
        r#"{"id":"invoice","question":"能开发票吗？","answer":"可以，在订单页申请。"}"#,
        "\n"
    );

    async fn blobs_with(source: &str) -> MemoryBlobs {
        let blobs = MemoryBlobs::default();
        blobs
            .put(SOURCE, source.as_bytes().to_vec())
            .await
            .expect("put");
        blobs
    }

    fn answer_of(library: &FaqLibrary, text: &str) -> Option<String> {
        match library.current()?.answer(text) {
            Decision::Answer(found) => Some(found.answer),
            _ => None,
        }
    }

    fn is_version(version: &str) -> bool {
        let Some((stamp, hash)) = version.split_once('-') else {
            return false;
        };
        stamp.len() == 19
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && hash.len() == 8
            && hash.chars().all(|c| c.is_ascii_hexdigit())
    }

    #[tokio::test]
    async fn given_valid_source_when_published_then_bundle_and_current_are_written() {
        let blobs = blobs_with(V1).await;
        let published = publish(&blobs, SOURCE).await.expect("publish");
        assert!(is_version(&published.version), "{}", published.version);
        assert_eq!(published.entries, 2);
        assert_eq!(published.paraphrases, 4);
        assert_eq!(
            blobs.current().await.as_deref(),
            Some(published.version.as_str())
        );
        let bundle = blobs
            .get(&index_key(&published.version))
            .await
            .expect("get")
            .expect("bundle written");
        assert_eq!(bundle.len(), published.bytes);
        let index = FaqIndex::from_bundle(&bundle).expect("bundle loads");
        assert_eq!(index.entries().len(), 2);
    }

    #[tokio::test]
    async fn given_malformed_source_when_published_then_nothing_changes() {
        let blobs = blobs_with(V1).await;
        let first = publish(&blobs, SOURCE).await.expect("publish");
        let broken = format!("{V2}{{\"id\":\"x\",\"question\":\"\"}}\nnot json\n");
        blobs.put(SOURCE, broken.into_bytes()).await.expect("put");

        let Err(Error::Invalid(report)) = publish(&blobs, SOURCE).await else {
            panic!("malformed source published");
        };
        assert!(
            report.contains("line 3:") && report.contains("line 4:"),
            "{report}"
        );
        assert_eq!(blobs.current().await, Some(first.version.clone()));
        assert_eq!(blobs.versions().await, vec![index_key(&first.version)]);
    }

    const VALIDATION: &str = concat!(
        r#"{"text":"要运费吗","expected":"shipping-fee"}"#,
        "\n",
        r#"{"text":"邮费多少","expected":"shipping-fee"}"#,
        "\n",
        r#"{"text":"用什么快递发货","expected":"courier"}"#,
        "\n",
        r#"{"text":"可以开发票吗","expected":null}"#,
        "\n",
        r#"{"text":"能开专票吗","expected":"vat-invoice"}"#,
        "\n"
    );

    #[test]
    fn given_source_keys_when_mapped_then_validation_is_the_same_name_as_json_lines() {
        assert_eq!(validation_key(SOURCE), "faq/validation/faq.jsonl");
        assert_eq!(
            validation_key("faq/source/shop/常见.csv"),
            "faq/validation/shop/常见.jsonl"
        );
        assert_eq!(validation_key("faq/source/faq"), "faq/validation/faq.jsonl");
    }

    #[tokio::test]
    async fn given_a_validation_file_when_published_then_it_calibrates_the_version() {
        let blobs = blobs_with(V1).await;
        let without = publish(&blobs, SOURCE).await.expect("publish");
        assert_eq!(without.validation_questions, 0);
        blobs
            .put(&validation_key(SOURCE), VALIDATION.as_bytes().to_vec())
            .await
            .expect("put");

        let with = publish(&blobs, SOURCE).await.expect("publish");
        assert_eq!(with.validation_questions, 5);
        assert_eq!(with.validation_unknown, 1, "vat-invoice is no entry");
        let entries = parse_source(SourceFormat::JsonLines, V1.as_bytes()).expect("parses");
        let questions = read_labelled(VALIDATION.as_bytes()).expect("parses");
        let calibrated =
            FaqIndex::build_with(&entries, Some(&questions), TargetWrongRate::default())
                .expect("builds");
        let on_paraphrases = FaqIndex::build(&entries).expect("builds");
        let confidences = |index: &FaqIndex| -> Vec<f32> {
            ["运费多少钱", "发顺丰吗", "开发票"]
                .iter()
                .map(|text| index.answer(text).best().map_or(0.0, |b| b.confidence))
                .collect()
        };
        let published = |version: &str| {
            let blobs = &blobs;
            let key = index_key(version);
            async move {
                let bundle = blobs.get(&key).await.expect("get").expect("bundle");
                FaqIndex::from_bundle(&bundle).expect("loads")
            }
        };
        assert_eq!(
            confidences(&published(&with.version).await),
            confidences(&calibrated)
        );
        assert_eq!(
            confidences(&published(&without.version).await),
            confidences(&on_paraphrases)
        );
        assert_ne!(confidences(&calibrated), confidences(&on_paraphrases));
    }

    #[tokio::test]
    async fn given_a_malformed_validation_file_when_published_then_nothing_changes() {
        let blobs = blobs_with(V1).await;
        let first = publish(&blobs, SOURCE).await.expect("publish");
        let broken = format!("{VALIDATION}{{\"text\":\"hi\"}}\n");
        blobs
            .put(&validation_key(SOURCE), broken.into_bytes())
            .await
            .expect("put");

        let Err(Error::Invalid(report)) = publish(&blobs, SOURCE).await else {
            panic!("published on a malformed validation file");
        };
        assert!(
            report.contains("faq/validation/faq.jsonl")
                && report.contains("line 6: missing field `expected`"),
            "{report}"
        );
        assert_eq!(blobs.current().await, Some(first.version.clone()));
        assert_eq!(blobs.versions().await, vec![index_key(&first.version)]);
    }

    #[tokio::test]
    async fn given_missing_or_unknown_source_when_published_then_clear_errors() {
        let blobs = MemoryBlobs::default();
        assert!(matches!(
            publish(&blobs, "faq/source/none.jsonl").await,
            Err(Error::NotFound(_))
        ));
        blobs
            .put("faq/source/faq.xlsx", b"x".to_vec())
            .await
            .expect("put");
        assert!(matches!(
            publish(&blobs, "faq/source/faq.xlsx").await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(blobs.current().await, None);
    }

    #[tokio::test]
    async fn given_csv_source_when_published_then_it_answers() {
        let blobs = MemoryBlobs::default();
        let csv =
            "id,question,similar,answer\ncourier,发什么快递？,能发顺丰吗|用哪家快递,默认中通。\n";
        blobs
            .put("faq/source/faq.csv", csv.as_bytes().to_vec())
            .await
            .expect("put");
        publish(&blobs, "faq/source/faq.csv")
            .await
            .expect("publish");
        let library = FaqLibrary::default();
        library.load(&blobs).await.expect("load");
        assert_eq!(
            answer_of(&library, "能发顺丰吗").as_deref(),
            Some("默认中通。")
        );
    }

    #[test]
    fn given_two_times_when_versions_are_named_then_they_sort_by_time() {
        let early = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).expect("time");
        let late = chrono::DateTime::from_timestamp_millis(1_700_000_000_124).expect("time");
        let a = version_name(early, b"zzz");
        let b = version_name(late, b"aaa");
        assert_eq!(&a[..20], "20231114T221320123Z-");
        assert!(a < b, "{a} {b}");
        assert!(is_version(&a));
        assert_ne!(version_name(early, b"zzz"), version_name(early, b"zzy"));
    }

    #[tokio::test]
    async fn given_nothing_published_when_loaded_then_library_is_empty() {
        let blobs = MemoryBlobs::default();
        let library = FaqLibrary::default();
        assert_eq!(library.load(&blobs).await.expect("load"), None);
        assert!(library.current().is_none());
        assert!(library.version().is_none());
    }

    #[tokio::test]
    async fn given_new_version_when_refresh_is_due_then_it_is_swapped_in() {
        let blobs = blobs_with(V1).await;
        let first = publish(&blobs, SOURCE).await.expect("publish");
        let library = FaqLibrary::new(Duration::from_secs(30));
        let start = Instant::now();
        assert_eq!(
            library.load(&blobs).await.expect("load"),
            Some(first.version.clone())
        );
        let held = library.current().expect("index");
        assert_eq!(answer_of(&library, "包邮吗").as_deref(), Some("满99包邮。"));

        blobs
            .put(SOURCE, V2.as_bytes().to_vec())
            .await
            .expect("put");
        let second = publish(&blobs, SOURCE).await.expect("publish");
        assert!(second.version > first.version);

        // Not yet due: still the first version.
        assert_eq!(
            library
                .refresh_at(&blobs, start + Duration::from_secs(5))
                .await,
            None
        );
        assert_eq!(library.version(), Some(first.version.clone()));

        let later = start + Duration::from_secs(31);
        assert_eq!(
            library.refresh_at(&blobs, later).await,
            Some(second.version.clone())
        );
        assert_eq!(library.version(), Some(second.version.clone()));
        assert_eq!(answer_of(&library, "包邮吗").as_deref(), Some("满59包邮。"));
        assert!(answer_of(&library, "能开发票吗").is_some());
        // A reader holding the old index keeps working.
        assert!(matches!(held.answer("能发顺丰吗"), Decision::Answer(_)));

        // Due again but unchanged: nothing to swap.
        let much_later = later + Duration::from_secs(31);
        assert_eq!(library.refresh_at(&blobs, much_later).await, None);
        assert_eq!(library.version(), Some(second.version));
    }

    #[tokio::test]
    async fn given_broken_new_version_when_refreshed_then_old_index_stays() {
        let blobs = blobs_with(V1).await;
        let first = publish(&blobs, SOURCE).await.expect("publish");
        let library = FaqLibrary::new(Duration::ZERO);
        library.load(&blobs).await.expect("load");

        blobs
            .put(CURRENT_KEY, b"20990101T000000000Z-deadbeef".to_vec())
            .await
            .expect("put");
        assert_eq!(library.refresh_if_due(&blobs).await, None);
        assert_eq!(library.version(), Some(first.version.clone()));

        blobs
            .put(
                &index_key("20990101T000000000Z-deadbeef"),
                b"garbage".to_vec(),
            )
            .await
            .expect("put");
        assert_eq!(library.refresh_if_due(&blobs).await, None);
        blobs
            .put(CURRENT_KEY, b"../etc".to_vec())
            .await
            .expect("put");
        assert_eq!(library.refresh_if_due(&blobs).await, None);
        assert_eq!(library.version(), Some(first.version));
        assert_eq!(answer_of(&library, "包邮吗").as_deref(), Some("满99包邮。"));
    }

    #[tokio::test]
    async fn given_current_names_missing_version_when_loaded_at_cold_start_then_error() {
        let blobs = MemoryBlobs::default();
        blobs
            .put(CURRENT_KEY, b"20990101T000000000Z-deadbeef\n".to_vec())
            .await
            .expect("put");
        let library = FaqLibrary::default();
        assert!(matches!(
            library.load(&blobs).await,
            Err(Error::NotFound(_))
        ));
        assert!(library.current().is_none());
    }
}
