//! Checks of the whole FAQ brain on real FAQs: the demo FAQ shipped in `infra/faq/`, and
//! (ignored, run on demand) the labelled evaluation sets and load-time measurements.
//!
//! ```text
//! cargo test -p kefu --release --lib bot::eval -- --ignored --nocapture
//! ```

use crate::bot::faq::{FaqEntry, SourceFormat, parse_source};
use crate::bot::index::FaqIndex;
use crate::bot::matcher::{Decision, MatcherConfig};
use std::path::PathBuf;
use std::time::Instant;

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
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
            Decision::NoAnswer { .. } => None,
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
            other => Some(format!("{text:?} (want {expected}) -> {other:?}")),
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[derive(serde::Deserialize)]
struct Labelled {
    text: String,
    expected: Option<String>,
}

/// Accuracy and wrong answers over a labelled set at several thresholds.
fn evaluate(dataset: &str) {
    let folder = repo_file(&format!("../shared/datasets/{dataset}"));
    let Ok(faq) = std::fs::read(folder.join("faq.jsonl")) else {
        eprintln!("{dataset}: not found at {}", folder.display());
        return;
    };
    let entries = parse_source(SourceFormat::JsonLines, &faq).expect("dataset FAQ parses");
    let index = FaqIndex::build(&entries).expect("build");
    let queries: Vec<Labelled> = std::fs::read_to_string(folder.join("queries.jsonl"))
        .expect("queries")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("query line"))
        .collect();
    let lenient = MatcherConfig {
        threshold: 0.0,
        ..MatcherConfig::default()
    };
    let started = Instant::now();
    let decisions: Vec<_> = queries
        .iter()
        .map(|q| {
            let best = index.answer_with(&q.text, &lenient).best().cloned();
            (q, best)
        })
        .collect();
    let per_query = started.elapsed() / queries.len().max(1) as u32;
    let top1 = decisions
        .iter()
        .filter(|(q, best)| {
            q.expected.is_some() && best.as_ref().map(|b| &b.entry_id) == q.expected.as_ref()
        })
        .count();
    eprintln!(
        "{dataset}: {} queries, top-1 {:.3}, {per_query:?} per query",
        queries.len(),
        top1 as f32 / queries.len() as f32
    );
    for threshold in [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6] {
        let (mut right, mut wrong) = (0, 0);
        for (q, best) in &decisions {
            let Some(best) = best.as_ref().filter(|b| b.confidence >= threshold) else {
                continue;
            };
            if Some(&best.entry_id) == q.expected.as_ref() {
                right += 1;
            } else {
                wrong += 1;
            }
        }
        let n = queries.len() as f32;
        eprintln!(
            "  threshold {threshold:.2}: answered right {:.3}, wrong {:.3}",
            right as f32 / n,
            wrong as f32 / n
        );
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
        evaluate(dataset);
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
    crate::bot::text::warm_up();
    eprintln!("jieba dictionary: {:?}", started.elapsed());
    measure("demo FAQ", &demo_faq());
    measure("generated", &generated_faq(10_000));
}
