//! Evaluation of the FAQ brain on a labelled question set, as `kefu faq eval` runs it:
//! build an index in memory with the default configuration (calibrated on a validation
//! set when one is given, never on the questions), answer every question exactly as the
//! bot would, one at a time, and measure accuracy, wrong answers and latency.
//!
//! The checks below also run the demo FAQ shipped in `infra/faq/`; the shared datasets
//! and load times are reports, run on demand:
//!
//! ```text
//! cargo test -p kefu --release --lib bot::eval -- --ignored --nocapture
//! ```

use crate::Result;
use crate::calibrate::{Labelled, TargetWrongRate};
use crate::faq::FaqEntry;
use crate::index::FaqIndex;
use crate::matcher::Decision;
use crate::word_vectors::Language;
use serde::Serialize;
use std::time::Instant;

/// Share of all questions a trustworthy confidence may answer wrongly in
/// [`EvalReport::accuracy_at_wrong_10`].
const WRONG_10: f64 = 0.10;

/// The figures of one evaluation. Rates are shares (0..=1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Questions asked.
    pub queries: usize,
    /// Questions some entry answers.
    pub in_scope: usize,
    /// Questions no entry answers.
    pub oos: usize,
    /// Best entry correct, ignoring the threshold, over all questions.
    pub top1_accuracy: f64,
    /// Answered and correct, over in-scope questions.
    pub accuracy_in_scope: f64,
    /// Not answered (no answer or clarification), over in-scope questions.
    pub escalated_in_scope: f64,
    /// Questions answered with a clarification ("A or B?").
    pub clarified: usize,
    /// Clarifications offering the right entry, over clarified in-scope questions (`None`
    /// when there were none).
    pub clarify_hit_rate: Option<f64>,
    /// Out-of-scope questions not answered, over out-of-scope questions (`None` when there
    /// are none).
    pub oos_recall: Option<f64>,
    /// Answered wrongly (wrong entry, or any answer to an out-of-scope question), over all.
    pub wrong_answer_rate: f64,
    /// Highest `accuracy_in_scope` over all confidence thresholds with `wrong_answer_rate`
    /// at most 10% on these questions: how trustworthy the confidence is.
    pub accuracy_at_wrong_10: f64,
    /// The wrong-answer rate the threshold was calibrated for.
    pub target_wrong_rate: f64,
    /// Highest `accuracy_in_scope` over all confidence thresholds with `wrong_answer_rate`
    /// at most `target_wrong_rate` on these questions: what the calibrated threshold could
    /// have reached at the rate it aimed at.
    pub accuracy_at_target: f64,
    /// The threshold the index calibrated and used, for the language most of the queries
    /// are in (each language has its own).
    pub threshold: f64,
    /// Whether it was calibrated on a validation set (else on the paraphrases).
    pub calibrated_on_validation: bool,
    /// Median time to answer one question, microseconds.
    pub p50_us: f64,
    /// 99th percentile time to answer one question, microseconds.
    pub p99_us: f64,
    /// Time to build the index (training and calibration included), milliseconds.
    pub index_build_ms: f64,
}

/// Builds an index over `entries` (calibrated on `validation` when given, for `target`
/// wrong answers) and measures it on `queries`.
pub fn evaluate(
    entries: &[FaqEntry],
    queries: &[Labelled],
    validation: Option<&[Labelled]>,
    target: TargetWrongRate,
) -> Result<EvalReport> {
    let started = Instant::now();
    let index = FaqIndex::build_with(entries, validation, target)?;
    let index_build_ms = started.elapsed().as_secs_f64() * 1e3;
    // Warm the analysis so the first question does not pay for the dictionary.
    let _ = index.answer("warm up 预热");

    let mut latencies = Vec::with_capacity(queries.len());
    let mut decisions = Vec::with_capacity(queries.len());
    for query in queries {
        let started = Instant::now();
        let decision = index.answer(&query.text);
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        decisions.push(decision);
    }
    let n = queries.len();
    let in_scope = queries.iter().filter(|q| q.expected.is_some()).count();
    let oos = n - in_scope;
    let (mut top1, mut right, mut wrong, mut clarified, mut clarify_hits, mut clarified_in) =
        (0, 0, 0, 0, 0, 0);
    let mut oos_silent = 0;
    let mut sweep = Vec::with_capacity(n);
    for (query, decision) in queries.iter().zip(&decisions) {
        let expected = query.expected.as_deref();
        let best = decision.best();
        let correct = best.is_some_and(|b| Some(b.entry_id.as_str()) == expected);
        top1 += usize::from(correct);
        sweep.push((best.map_or(0.0, |b| b.confidence), correct, best.is_some()));
        match decision {
            Decision::Answer(found) if Some(found.entry_id.as_str()) == expected => right += 1,
            Decision::Answer(_) => wrong += 1,
            Decision::Clarify { options } => {
                clarified += 1;
                if expected.is_some() {
                    clarified_in += 1;
                    clarify_hits += usize::from(
                        options
                            .iter()
                            .any(|o| Some(o.entry_id.as_str()) == expected),
                    );
                }
                if expected.is_none() {
                    oos_silent += 1;
                }
            }
            Decision::NoAnswer { .. } => {
                if expected.is_none() {
                    oos_silent += 1;
                }
            }
        }
    }
    let share = |part: usize, whole: usize| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    latencies.sort_by(f64::total_cmp);
    Ok(EvalReport {
        queries: n,
        in_scope,
        oos,
        top1_accuracy: share(top1, n),
        accuracy_in_scope: share(right, in_scope),
        escalated_in_scope: share(
            in_scope - right - wrong_in_scope(queries, &decisions),
            in_scope,
        ),
        clarified,
        clarify_hit_rate: (clarified_in > 0).then(|| share(clarify_hits, clarified_in)),
        oos_recall: (oos > 0).then(|| share(oos_silent, oos)),
        wrong_answer_rate: share(wrong, n),
        accuracy_at_wrong_10: accuracy_at_wrong(&mut sweep, n, in_scope, WRONG_10),
        target_wrong_rate: f64::from(target.get()),
        accuracy_at_target: accuracy_at_wrong(&mut sweep, n, in_scope, f64::from(target.get())),
        threshold: f64::from(index.config().threshold.unwrap_or_else(|| {
            let chinese = queries
                .iter()
                .filter(|q| Language::of(&q.text) == Language::Chinese)
                .count();
            index.threshold_in(if chinese * 2 > n {
                Language::Chinese
            } else {
                Language::English
            })
        })),
        calibrated_on_validation: validation.is_some_and(|v| !v.is_empty()),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        index_build_ms,
    })
}

/// In-scope questions answered with a wrong entry.
fn wrong_in_scope(queries: &[Labelled], decisions: &[Decision]) -> usize {
    queries
        .iter()
        .zip(decisions)
        .filter(|(q, d)| {
            q.expected.is_some()
                && matches!(d, Decision::Answer(found) if Some(&found.entry_id) != q.expected.as_ref())
        })
        .count()
}

/// The best in-scope accuracy over thresholds keeping wrong answers within `limit` of all
/// questions. `sweep` holds (confidence, correct, has a candidate) per question.
fn accuracy_at_wrong(
    sweep: &mut [(f32, bool, bool)],
    n: usize,
    in_scope: usize,
    limit: f64,
) -> f64 {
    if n == 0 || in_scope == 0 {
        return 0.0;
    }
    sweep.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut right, mut wrong, mut best) = (0usize, 0usize, 0.0f64);
    let mut i = 0;
    while i < sweep.len() {
        let level = sweep[i].0;
        while i < sweep.len() && sweep[i].0 == level {
            let (_, correct, candidate) = sweep[i];
            if candidate {
                if correct {
                    right += 1;
                } else {
                    wrong += 1;
                }
            }
            i += 1;
        }
        if wrong as f64 / n as f64 <= limit {
            best = best.max(right as f64 / in_scope as f64);
        }
    }
    best
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl EvalReport {
    /// The figures as a readable table.
    pub fn table(&self) -> String {
        let optional = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let rows = [
            ("queries", self.queries.to_string()),
            ("in scope", self.in_scope.to_string()),
            ("out of scope", self.oos.to_string()),
            ("top-1 accuracy", format!("{:.3}", self.top1_accuracy)),
            (
                "answered correctly (in scope)",
                format!("{:.3}", self.accuracy_in_scope),
            ),
            (
                "escalated (in scope)",
                format!("{:.3}", self.escalated_in_scope),
            ),
            ("clarified", self.clarified.to_string()),
            (
                "clarification offered the right entry",
                optional(self.clarify_hit_rate),
            ),
            ("out of scope not answered", optional(self.oos_recall)),
            (
                "wrong answers (all)",
                format!("{:.3}", self.wrong_answer_rate),
            ),
            (
                "accuracy at <=10% wrong",
                format!("{:.3}", self.accuracy_at_wrong_10),
            ),
            (
                "target wrong-answer rate",
                format!("{}", self.target_wrong_rate),
            ),
            (
                "accuracy at <=target wrong",
                format!("{:.3}", self.accuracy_at_target),
            ),
            (
                "threshold",
                format!(
                    "{:.3} ({})",
                    self.threshold,
                    if self.calibrated_on_validation {
                        "validation set"
                    } else {
                        "cross-validated paraphrases"
                    }
                ),
            ),
            ("p50 per query", format!("{:.0} µs", self.p50_us)),
            ("p99 per query", format!("{:.0} µs", self.p99_us)),
            ("index build", format!("{:.0} ms", self.index_build_ms)),
        ];
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::read_labelled;
    use crate::faq::{SourceFormat, parse_source};
    use std::path::PathBuf;

    fn repo_file(relative: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative)
    }

    fn demo_faq() -> Vec<FaqEntry> {
        let path = repo_file("infra/faq/faq.jsonl");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parse_source(SourceFormat::JsonLines, &bytes).unwrap_or_else(|e| panic!("demo FAQ:\n{e}"))
    }

    /// Messages no e-commerce FAQ answers.
    const CHIT_CHAT: &[&str] = &[
        "今天天气怎么样",
        "你好",
        "你是机器人吗",
        "讲个笑话",
        "我喜欢你",
        "晚饭吃什么好",
        "哈哈哈哈",
        "谢谢",
        "tell me a joke",
        "what's the weather like today",
        "who won the football game",
        "asdfgh",
        "hello",
        "I love you",
        "what is the capital of France",
        "",
        "😀",
        "？？？",
    ];

    #[test]
    fn given_demo_faq_when_each_paraphrase_is_asked_then_its_entry_answers() {
        let index = FaqIndex::build(&demo_faq()).expect("build");
        let mut wrong = Vec::new();
        for entry in index.entries() {
            for paraphrase in entry.paraphrases() {
                match index.answer(paraphrase) {
                    Decision::Answer(found) if found.entry_id == entry.id => {}
                    other => wrong.push(format!("{paraphrase:?} ({}) -> {other:?}", entry.id)),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn given_demo_faq_when_chit_chat_is_asked_then_nothing_is_answered() {
        let index = FaqIndex::build(&demo_faq()).expect("build");
        let answered: Vec<_> = CHIT_CHAT
            .iter()
            .filter_map(|text| match index.answer(text) {
                Decision::Answer(found) => Some(format!("{text:?} -> {found:?}")),
                _ => None,
            })
            .collect();
        assert!(answered.is_empty(), "{}", answered.join("\n"));
    }

    #[test]
    fn given_demo_faq_when_reworded_questions_are_asked_then_the_right_entry_answers() {
        let index = FaqIndex::build(&demo_faq()).expect("build");
        let cases = [
            ("你们家发什么快递呀", "shipping-courier-zh"),
            ("退款一般几天能到账啊", "refund-time-zh"),
            ("发票怎么开？", "invoice-zh"),
            ("优惠券可以叠加吗", "coupon-stack-zh"),
            ("密码忘记了怎么办", "password-reset-zh"),
            ("how long does a refund usually take", "refund-time"),
            ("Can I pay with PayPal?", "payment-methods"),
            ("where is my package??", "track-order"),
            ("I forgot my password", "password-reset"),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter_map(|(text, expected)| match index.answer(text) {
                Decision::Answer(found) if found.entry_id == *expected => None,
                // "退款一般几天能到账" contains the whole question "一般几天能到？" of the
                // delivery entry: asking which one is meant is a fair reply.
                Decision::Clarify { options }
                    if options.iter().any(|o| o.entry_id == *expected) =>
                {
                    None
                }
                other => Some(format!("{text:?} (want {expected}) -> {other:?}")),
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn given_demo_faq_at_the_default_target_when_dispatch_is_asked_in_new_words_then_it_answers() {
        let index = FaqIndex::build(&demo_faq()).expect("build");
        assert_eq!(index.target_wrong_rate(), TargetWrongRate::default());
        let cases = [
            ("商品什么时候发货", "dispatch-time-zh"),
            ("请问什么时候发货", "dispatch-time-zh"),
            ("下单了什么时候能发货呀", "dispatch-time-zh"),
            ("这个什么时候能发出来", "dispatch-time-zh"),
            ("我买的什么时候发货", "dispatch-time-zh"),
            ("when will my order ship", "dispatch-time"),
            ("when will my order be shipped", "dispatch-time"),
        ];
        let missed: Vec<_> = cases
            .iter()
            .filter_map(|(text, expected)| match index.answer(text) {
                Decision::Answer(found) if found.entry_id == *expected => None,
                other => Some(format!("{text:?} (want {expected}) -> {other:?}")),
            })
            .collect();
        assert!(missed.is_empty(), "{}", missed.join("\n"));
    }

    /// Prints the evaluation of one shared dataset.
    fn report(dataset: &str) {
        let folder = repo_file(&format!("../shared/datasets/{dataset}"));
        let Ok(faq) = std::fs::read(folder.join("faq.jsonl")) else {
            eprintln!("{dataset}: not found at {}", folder.display());
            return;
        };
        let entries = parse_source(SourceFormat::JsonLines, &faq).expect("dataset FAQ parses");
        let queries = read_labelled(&std::fs::read(folder.join("queries.jsonl")).expect("queries"))
            .expect("queries parse");
        let validation = std::fs::read(folder.join("val.jsonl"))
            .ok()
            .map(|bytes| read_labelled(&bytes).expect("val parses"));
        for val in [None, validation.as_deref()] {
            if val.is_none() && validation.is_some() {
                // Also show the paraphrase-calibrated operating point.
            }
            let report =
                evaluate(&entries, &queries, val, TargetWrongRate::default()).expect("evaluate");
            eprintln!("{dataset} (val: {}):\n{}", val.is_some(), report.table());
            if validation.is_none() {
                break;
            }
        }
    }

    #[test]
    #[ignore = "report: accuracy on the shared evaluation sets"]
    fn report_accuracy_on_evaluation_sets() {
        for dataset in [
            "banking77",
            "banking77_oos",
            "massive_zh_cn",
            "massive_zh_cn_oos",
        ] {
            report(dataset);
        }
    }

    /// A large synthetic FAQ: `n` entries of five paraphrases each, half Chinese, half English.
    fn generated_faq(n: usize) -> Vec<FaqEntry> {
        const ZH: &[&str] = &[
            "退货",
            "换货",
            "退款",
            "发票",
            "快递",
            "运费",
            "包邮",
            "优惠券",
            "积分",
            "会员",
            "密码",
            "账号",
            "地址",
            "订单",
            "尺码",
            "颜色",
            "保修",
            "维修",
            "预售",
            "定金",
            "尾款",
            "库存",
            "补货",
            "赠品",
            "破损",
            "签收",
            "物流",
            "顺丰",
            "发货",
            "到货",
            "价保",
            "分期",
            "支付",
            "微信",
            "支付宝",
            "信用卡",
            "发错",
            "少发",
            "客服",
            "投诉",
        ];
        const EN: &[&str] = &[
            "return",
            "exchange",
            "refund",
            "invoice",
            "courier",
            "shipping",
            "coupon",
            "points",
            "member",
            "password",
            "account",
            "address",
            "order",
            "size",
            "colour",
            "warranty",
            "repair",
            "preorder",
            "deposit",
            "stock",
            "gift",
            "damaged",
            "delivered",
            "tracking",
            "parcel",
            "payment",
            "paypal",
            "card",
            "wrong",
            "missing",
            "discount",
            "voucher",
            "email",
            "phone",
            "receipt",
            "customs",
            "express",
            "battery",
            "charger",
            "cable",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        (0..n)
            .map(|i| {
                let (words, sep, ask) = if i % 2 == 0 {
                    (ZH, "", "怎么办")
                } else {
                    (EN, " ", "how")
                };
                let mut phrase = |extra: usize| {
                    let mut parts: Vec<String> = (0..3 + extra)
                        .map(|_| words[next(words.len())].to_owned())
                        .collect();
                    parts.push(format!(
                        "{}{i}",
                        if sep.is_empty() { "型号" } else { "model" }
                    ));
                    parts.push(ask.to_owned());
                    parts.join(sep)
                };
                FaqEntry {
                    id: format!("generated-{i}"),
                    question: phrase(0),
                    similar: (1..5).map(&mut phrase).collect(),
                    answer: format!("Answer number {i}, long enough to look like a real reply."),
                    category: None,
                    tags: Vec::new(),
                    locale: None,
                    quick_replies: Vec::new(),
                }
            })
            .collect()
    }

    fn measure(label: &str, entries: &[FaqEntry]) {
        let started = Instant::now();
        let index = FaqIndex::build(entries).expect("build");
        let built = started.elapsed();
        let blob = index.to_bundle().expect("bundle");
        let started = Instant::now();
        let loaded = FaqIndex::from_bundle(&blob).expect("load");
        let load = started.elapsed();
        let first = &loaded.entries()[entries.len() / 2];
        let started = Instant::now();
        let decision = loaded.answer(&first.question);
        let query = started.elapsed();
        assert_eq!(
            decision.best().map(|b| b.entry_id.as_str()),
            Some(first.id.as_str())
        );
        eprintln!(
            "{label}: {} entries, {} paraphrases, bundle {} KiB, build {built:?}, load {load:?}, one query {query:?}",
            entries.len(),
            loaded.paraphrase_count(),
            blob.len() / 1024
        );
    }

    #[test]
    #[ignore = "report: bundle size and load time"]
    fn report_bundle_size_and_load_time() {
        let started = Instant::now();
        crate::text::warm_up();
        eprintln!("jieba dictionary: {:?}", started.elapsed());
        measure("demo FAQ", &demo_faq());
        measure("generated", &generated_faq(10_000));
    }

    #[test]
    fn given_labelled_questions_when_evaluated_then_the_json_has_every_field() {
        let entries = crate::index::tests::fixture();
        let queries = read_labelled(
            "{\"text\":\"包邮吗\",\"expected\":\"shipping-fee\"}\n\n\
             {\"text\":\"track my parcel please\",\"expected\":\"en-track\"}\n\
             {\"text\":\"今天天气怎么样\",\"expected\":null}\n"
                .as_bytes(),
        )
        .expect("parse");
        let report =
            evaluate(&entries, &queries, None, TargetWrongRate::default()).expect("evaluate");
        assert_eq!((report.queries, report.in_scope, report.oos), (3, 2, 1));
        assert!(report.top1_accuracy >= 1.0 / 3.0, "{report:?}");
        assert_eq!(report.oos_recall, Some(1.0), "{report:?}");
        let json = serde_json::to_value(&report).expect("json");
        for field in [
            "queries",
            "in_scope",
            "oos",
            "top1_accuracy",
            "accuracy_in_scope",
            "escalated_in_scope",
            "clarified",
            "clarify_hit_rate",
            "oos_recall",
            "wrong_answer_rate",
            "p50_us",
            "p99_us",
            "index_build_ms",
            "accuracy_at_wrong_10",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert!(report.table().contains("top-1 accuracy"));
    }

    #[test]
    fn given_confidences_when_swept_then_the_best_safe_threshold_is_found() {
        // Four in scope, one out of scope; ten questions in all allow one wrong answer.
        let mut sweep = vec![
            (0.9, true, true),
            (0.8, true, true),
            (0.7, false, true),
            (0.6, true, true),
            (0.5, false, true),
            (0.4, true, true),
        ];
        let best = accuracy_at_wrong(&mut sweep, 10, 4, 0.10);
        assert!((best - 0.75).abs() < 1e-9, "{best}");
    }
}
