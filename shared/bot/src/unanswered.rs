//! Questions the bot could not answer with confidence, kept so ops can grow the FAQ.
//!
//! The bot records each such customer message as one small JSON blob (over [`BlobStore`]):
//!
//! ```text
//! faq/unanswered/<YYYY-MM-DD>/<message_id>.json
//! {"message_id":"m…","conversation_id":"c…","text":"发票怎么开","at":1718000000000,
//!  "best":{"entry_id":"invoice","confidence":0.41},"locale":"zh-CN"}
//! ```
//!
//! The date is the UTC day of `at`, so listing a period reads only its days. The key is
//! named by the message id, so recording a redelivered message again writes the same blob.
//! Long digit runs and email addresses are masked before the text is stored: these blobs
//! are for finding missing topics, not for keeping phone or order numbers.
//!
//! [`cluster`] groups near-duplicate questions so that a topic asked a hundred ways shows
//! up once, with its count.

use crate::text;
use chrono::NaiveDate;
use kefu::domain::{ConversationId, MessageId, Millis};
use kefu::ports::BlobStore;
use kefu::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Prefix of the recorded questions.
pub const UNANSWERED_PREFIX: &str = "faq/unanswered/";

/// Two questions whose features overlap at least this much (Jaccard) ask the same thing.
/// Chinese questions are short: two phrasings of one topic often share two features of
/// five, hence a little under one half.
const SAME_QUESTION: f64 = 0.4;

/// How many example phrasings a [`Cluster`] keeps.
const MAX_EXAMPLES: usize = 5;

/// Digit runs at least this long are masked (phone, order and card numbers).
const MASKED_DIGITS: usize = 6;

/// What replaces masked personal data in a stored text.
const MASK: &str = "***";

/// A customer question that got no confident answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unanswered {
    /// The customer message; names the blob, so a record is written once per message.
    pub message_id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// What the customer wrote (masked by [`record`]).
    pub text: String,
    /// When the customer wrote it.
    pub at: Millis,
    /// The entry the matcher liked best, if any, even though it was not confident enough.
    pub best: Option<BestGuess>,
    /// The conversation's locale, when known (e.g. `zh-CN`, `en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// The matcher's best candidate for a question it did not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestGuess {
    /// The FAQ entry id.
    pub entry_id: String,
    /// Its confidence, below the answer threshold.
    pub confidence: f32,
}

/// Near-duplicate questions grouped together.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The most frequent phrasing: a good FAQ question for the topic.
    pub representative: String,
    /// How many times the topic was asked.
    pub count: usize,
    /// Up to five distinct phrasings, most frequent first, the representative included.
    pub examples: Vec<String>,
    /// The most confident candidate entry seen for any of the questions.
    pub best: Option<BestGuess>,
    /// When the topic was last asked.
    pub last_at: Millis,
}

/// The key of a recorded question.
pub fn key(item: &Unanswered) -> String {
    let day = chrono::DateTime::from_timestamp_millis(item.at)
        .unwrap_or_default()
        .format("%Y-%m-%d");
    format!("{UNANSWERED_PREFIX}{day}/{}.json", item.message_id)
}

/// Stores `item` with its text masked. Idempotent: the same message always lands on the same
/// key, so a redelivery overwrites the blob with the same content.
pub async fn record(blobs: &dyn BlobStore, item: &Unanswered) -> Result<()> {
    let masked = Unanswered {
        text: mask(&item.text),
        ..item.clone()
    };
    let bytes = serde_json::to_vec(&masked)
        .map_err(|e| Error::backend("serialising an unanswered question", e))?;
    blobs.put(&key(&masked), bytes).await
}

/// The recorded questions asked on `since` (a UTC day) or later, all of them without it,
/// oldest first. A blob that does not decode is an error naming its key, not a skip: a
/// silently shorter list would under-count.
pub async fn list(blobs: &dyn BlobStore, since: Option<NaiveDate>) -> Result<Vec<Unanswered>> {
    let first_day = since.map(|day| day.format("%Y-%m-%d").to_string());
    let mut items = Vec::new();
    for key in blobs.list(UNANSWERED_PREFIX).await? {
        let Some(day) = key
            .strip_prefix(UNANSWERED_PREFIX)
            .and_then(|rest| rest.split('/').next())
        else {
            continue;
        };
        if first_day.as_deref().is_some_and(|first| day < first) {
            continue;
        }
        // Listed a moment ago; a blob deleted since is simply no longer there.
        let Some(bytes) = blobs.get(&key).await? else {
            continue;
        };
        let item: Unanswered =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{key}: {e}")))?;
        items.push(item);
    }
    items.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.message_id.cmp(&b.message_id))
    });
    Ok(items)
}

/// Groups near-duplicate questions, largest group first.
///
/// Identical questions (after [`text::normalize`]) are counted together first; then, most
/// frequent phrasing first, each phrasing joins the cluster whose representative shares the
/// most of its terms ([`text::terms`] and the characters of Chinese terms, Jaccard ≥ 0.4),
/// or starts a new cluster. Comparing
/// with the representative rather than with every member keeps clusters from drifting
/// across topics one small step at a time.
pub fn cluster(items: &[Unanswered]) -> Vec<Cluster> {
    let phrasings = phrasings(items);
    let mut clusters: Vec<Building> = Vec::new();
    // Term → clusters whose representative has it: only those can reach the threshold.
    let mut by_term: HashMap<String, Vec<usize>> = HashMap::new();
    for phrasing in phrasings {
        let candidates: HashSet<usize> = phrasing
            .terms
            .iter()
            .filter_map(|term| by_term.get(term))
            .flatten()
            .copied()
            .collect();
        let closest = candidates
            .into_iter()
            .map(|i| (i, jaccard(&phrasing.terms, &clusters[i].terms)))
            .filter(|&(_, similarity)| similarity >= SAME_QUESTION)
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
        match closest {
            Some((i, _)) => clusters[i].members.push(phrasing),
            None => {
                for term in &phrasing.terms {
                    by_term
                        .entry(term.clone())
                        .or_default()
                        .push(clusters.len());
                }
                clusters.push(Building {
                    terms: phrasing.terms.clone(),
                    members: vec![phrasing],
                });
            }
        }
    }
    let mut out: Vec<Cluster> = clusters.into_iter().map(Building::finish).collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| b.last_at.cmp(&a.last_at))
            .then_with(|| a.representative.cmp(&b.representative))
    });
    out
}

/// One way of asking, with every question asked exactly that way.
struct Phrasing<'a> {
    terms: HashSet<String>,
    items: Vec<&'a Unanswered>,
}

/// Identical questions counted together, most frequent first (then first asked first).
fn phrasings(items: &[Unanswered]) -> Vec<Phrasing<'_>> {
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Phrasing<'_>> = Vec::new();
    for item in items {
        let normalized = text::normalize(&item.text);
        match by_text.get(&normalized) {
            Some(&i) => out[i].items.push(item),
            None => {
                by_text.insert(normalized.clone(), out.len());
                out.push(Phrasing {
                    terms: terms_of(&normalized),
                    items: vec![item],
                });
            }
        }
    }
    // A stable sort keeps first-seen order among equals.
    out.sort_by_key(|p| std::cmp::Reverse(p.items.len()));
    out
}

/// The analysed terms plus the single characters of Chinese terms, or the characters when
/// analysis leaves nothing (a question made of stopwords only still gets a cluster).
///
/// The characters make up for jieba cutting phrasings differently: "可以开发票吗" gives
/// 开发票 while "发票怎么开" gives 发票 and 开, which share one term of four but, with
/// 开 发 票, five features of seven.
fn terms_of(normalized: &str) -> HashSet<String> {
    let mut features = HashSet::new();
    for term in text::terms(normalized) {
        if term.chars().count() > 1 && term.chars().all(text::is_cjk) {
            features.extend(term.chars().map(String::from));
        }
        features.insert(term);
    }
    if features.is_empty() {
        features.extend(
            normalized
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(String::from),
        );
    }
    features
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// A cluster being assembled: the representative's terms and the phrasings that joined.
struct Building<'a> {
    terms: HashSet<String>,
    members: Vec<Phrasing<'a>>,
}

impl Building<'_> {
    fn finish(self) -> Cluster {
        let items = || self.members.iter().flat_map(|m| m.items.iter().copied());
        let best = items()
            .filter_map(|item| item.best.as_ref())
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
            .cloned();
        Cluster {
            // Members are in order of frequency: the first is the most asked phrasing.
            representative: self.members[0].items[0].text.clone(),
            count: items().count(),
            examples: self
                .members
                .iter()
                .take(MAX_EXAMPLES)
                .map(|m| m.items[0].text.clone())
                .collect(),
            best,
            last_at: items().map(|item| item.at).max().unwrap_or_default(),
        }
    }
}

/// Masks runs of six or more digits (full-width too) and email addresses.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_like_email(word) {
            out.push_str(MASK);
        } else {
            mask_digits(word, &mut out);
        }
    }
    out
}

fn looks_like_email(word: &str) -> bool {
    word.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

fn mask_digits(word: &str, out: &mut String) {
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= MASKED_DIGITS {
            out.push_str(MASK);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in word.chars() {
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            run.push(c);
        } else {
            flush(&mut run, out);
            out.push(c);
        }
    }
    flush(&mut run, out);
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use kefu::adapters::embedded::EmbeddedStore;

    fn question(n: u32, text: &str, at: Millis) -> Unanswered {
        let conversation = ConversationId::parse(&format!("c{:031x}", 7)).expect("id");
        Unanswered {
            message_id: MessageId::parse(&format!("m{n:031x}")).expect("id"),
            conversation_id: conversation,
            text: text.to_owned(),
            at,
            best: None,
            locale: Some("zh-CN".into()),
        }
    }

    /// 2024-06-01T12:00:00Z and the days after it.
    const JUNE_1: Millis = 1_717_243_200_000;
    const DAY: Millis = 86_400_000;

    #[tokio::test]
    async fn given_recorded_questions_when_listed_then_round_trip_masked_and_filtered_by_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = EmbeddedStore::open(dir.path()).expect("store").blobs();
        let first = question(1, "我的订单123456789到哪了", JUNE_1);
        let second = Unanswered {
            best: Some(BestGuess {
                entry_id: "invoice".into(),
                confidence: 0.4,
            }),
            ..question(2, "发票怎么开", JUNE_1 + 2 * DAY)
        };
        record(&blobs, &second).await.expect("record");
        record(&blobs, &first).await.expect("record");
        // A redelivered message is recorded again: still one blob.
        record(&blobs, &first).await.expect("record again");

        let all = list(&blobs, None).await.expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].message_id, first.message_id, "oldest first");
        assert_eq!(all[0].text, "我的订单***到哪了", "order number masked");
        assert_eq!(all[1], second);
        assert_eq!(
            blobs.list(UNANSWERED_PREFIX).await.expect("keys")[0],
            format!("faq/unanswered/2024-06-01/{}.json", first.message_id)
        );

        let since = NaiveDate::from_ymd_opt(2024, 6, 2).expect("date");
        let recent = list(&blobs, Some(since)).await.expect("list since");
        assert_eq!(recent, vec![second]);
    }

    #[tokio::test]
    async fn given_a_corrupt_blob_when_listed_then_the_error_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = EmbeddedStore::open(dir.path()).expect("store").blobs();
        blobs
            .put("faq/unanswered/2024-06-01/broken.json", b"{".to_vec())
            .await
            .expect("put");
        let error = list(&blobs, None).await.expect_err("corrupt");
        assert!(error.to_string().contains("broken.json"), "{error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(texts: &[&str]) -> Vec<Unanswered> {
        texts
            .iter()
            .enumerate()
            .map(|(n, text)| Unanswered {
                message_id: MessageId::parse(&format!("m{n:031x}")).expect("id"),
                conversation_id: ConversationId::parse(&format!("c{n:031x}")).expect("id"),
                text: (*text).to_owned(),
                at: n as Millis,
                best: None,
                locale: None,
            })
            .collect()
    }

    #[test]
    fn given_chinese_paraphrases_when_clustered_then_topics_are_grouped_and_counted() {
        let items = asked(&[
            "可以开发票吗",
            "发票怎么开",
            "可以开发票吗？",
            "能开发票吗",
            "支持花呗分期吗",
            "可以用花呗分期吗",
            "你们几点下班",
        ]);
        let clusters = cluster(&items);
        let sizes: Vec<usize> = clusters.iter().map(|c| c.count).collect();
        assert_eq!(sizes, vec![4, 2, 1], "{clusters:#?}");
        assert_eq!(clusters[0].representative, "可以开发票吗");
        assert_eq!(
            clusters[0].examples,
            vec!["可以开发票吗", "发票怎么开", "能开发票吗"]
        );
        assert!(clusters[1].representative.contains("花呗"));
        assert_eq!(clusters[2].representative, "你们几点下班");
    }

    #[test]
    fn given_english_paraphrases_when_clustered_then_stems_and_case_match() {
        let items = asked(&[
            "Do you ship to Canada?",
            "do you ship to canada",
            "Shipping to Canada?",
            "Do you accept PayPal?",
            "Is PayPal accepted",
            "Can I change my delivery address",
            "Changing the delivery address",
            "Can I cancel my order",
        ]);
        let clusters = cluster(&items);
        let sizes: Vec<usize> = clusters.iter().map(|c| c.count).collect();
        assert_eq!(sizes, vec![3, 2, 2, 1], "{clusters:#?}");
        assert_eq!(clusters[0].representative, "Do you ship to Canada?");
        assert_eq!(clusters[0].examples.len(), 2, "case and punctuation fold");
        // Equal counts: the most recently asked first.
        assert!(clusters[1].examples.iter().all(|e| e.contains("address")));
        assert!(clusters[2].examples.iter().all(|e| e.contains("PayPal")));
        assert_eq!(clusters[3].representative, "Can I cancel my order");
    }

    #[test]
    fn given_unrelated_questions_when_clustered_then_none_are_merged() {
        let items = asked(&[
            "退货运费谁出",
            "什么时候发货",
            "退款多久到账",
            "发货要多久",
            "How do I reset my password",
        ]);
        assert_eq!(cluster(&items).len(), 5, "{:#?}", cluster(&items));
    }

    #[test]
    fn given_many_phrasings_and_guesses_when_clustered_then_examples_are_capped_and_best_kept() {
        let mut items = asked(&[
            "退款多久到账",
            "退款多久能到账",
            "退款多久到账啊",
            "退款到账要多久",
            "退款多久可以到账",
            "多久退款到账",
            "退款几天到账",
        ]);
        items[1].best = Some(BestGuess {
            entry_id: "refund-time".into(),
            confidence: 0.3,
        });
        items[4].best = Some(BestGuess {
            entry_id: "refund-time".into(),
            confidence: 0.45,
        });
        let clusters = cluster(&items);
        assert_eq!(clusters.len(), 1, "{clusters:#?}");
        assert_eq!(clusters[0].count, 7);
        assert_eq!(clusters[0].examples.len(), MAX_EXAMPLES);
        assert_eq!(clusters[0].best.as_ref().map(|b| b.confidence), Some(0.45));
        assert_eq!(clusters[0].last_at, 6);
    }

    #[test]
    fn given_personal_data_when_masked_then_numbers_and_emails_are_gone() {
        assert_eq!(mask("订单１２３４５６７到哪了"), "订单***到哪了");
        assert_eq!(
            mask("call 13812345678 or mail li.lei@example.com"),
            "call *** or mail ***"
        );
        assert_eq!(
            mask("iPhone 15 要 2 天"),
            "iPhone 15 要 2 天",
            "short numbers stay"
        );
    }
}
