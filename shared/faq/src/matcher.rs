//! Matching a customer message to an FAQ entry, with a confidence the bot can act on.
//!
//! 1. A message that is, once normalised, one of an entry's paraphrases gets that entry.
//! 2. Otherwise the classifier trained on the paraphrases (see `model`) ranks the entries
//!    with softmax probabilities (regression scores and, for small FAQs, the similarities
//!    of each entry's nearest paraphrases by wording and by meaning, blended as calibrated
//!    when the index was built):
//!    the confidence is the probability that the best entry is the right one.
//! 3. A message that holds one of the best entry's paraphrases whole, with a few words
//!    around it ("这个商品什么时候发货" ⊃ "什么时候发货"), gets that entry when the runner-up
//!    holds none as long: the two signals agree, so the threshold does not have to.
//! 4. The decision: answer at or above the threshold (calibrated at build time, see
//!    [`crate::calibrate`], unless configured); ask the customer to choose when the
//!    two best entries together reach it and the second is nearly as likely as the first
//!    ([`Decision::Clarify`], their reply goes through [`resolve_pick`]); else no answer.

use crate::index::FaqIndex;
use crate::text;

/// Matcher knobs. The defaults suit FAQs of tens to thousands of entries.
#[derive(Debug, Clone, PartialEq)]
pub struct MatcherConfig {
    /// Answer when the confidence reaches this (0..=1); `None` uses the threshold
    /// calibrated when the index was built.
    pub threshold: Option<f32>,
    /// Ask which of two entries is meant when the second is at least this share of the
    /// first's probability (and together they reach the threshold); above 1 never asks.
    pub clarify_ratio: f32,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        Self {
            threshold: None,
            clarify_ratio: 0.5,
        }
    }
}

/// The FAQ entry that matched a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Id of the entry.
    pub entry_id: String,
    /// The entry's canonical question.
    pub question: String,
    /// The entry's answer.
    pub answer: String,
    /// Lead of this entry's probability over the next entry's (0..=1).
    pub score: f32,
    /// Calibrated probability that this entry answers the message (0..=1).
    pub confidence: f32,
}

/// What the FAQ can do for a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Confident enough to answer.
    Answer(Match),
    /// Two entries fit about equally: ask "您是想问 A 还是 B？" and pass the reply to
    /// [`resolve_pick`] with the option ids in this order.
    Clarify {
        /// The candidate entries, most likely first.
        options: Vec<Match>,
    },
    /// Not confident; `best` is the closest entry, if any shared a feature with the message.
    NoAnswer {
        /// The closest entry, below the threshold.
        best: Option<Match>,
    },
}

impl Decision {
    /// The most likely entry, answered or not.
    pub fn best(&self) -> Option<&Match> {
        match self {
            Decision::Answer(found) => Some(found),
            Decision::Clarify { options } => options.first(),
            Decision::NoAnswer { best } => best.as_ref(),
        }
    }
}

impl FaqIndex {
    /// Decides whether and how the FAQ answers `text`, with this index's configuration.
    pub fn answer(&self, text: &str) -> Decision {
        self.answer_with(text, &self.config)
    }

    /// Decides whether and how the FAQ answers `text`, with `config`.
    pub fn answer_with(&self, text: &str, config: &MatcherConfig) -> Decision {
        let threshold = config
            .threshold
            .unwrap_or_else(|| self.calibrated_threshold(text));
        if let Some(&entry) = self.exact.get(&text::normalize(text)) {
            return Decision::Answer(self.found(entry, 1.0, 1.0));
        }
        let ranked = self.model.rank(text, 2);
        let Some(first) = ranked.first() else {
            return Decision::NoAnswer { best: None };
        };
        let second = ranked.get(1);
        let p2 = second.map_or(0.0, |r| r.probability);
        let best = self.found(
            first.class as usize,
            first.probability,
            first.probability - p2,
        );
        if first.probability >= threshold {
            return Decision::Answer(best);
        }
        let message = text::normalize(text);
        let held = self.longest_held_paraphrase(first.class as usize, &message);
        if held * 2 >= message.chars().filter(|c| *c != ' ').count()
            && second
                .is_none_or(|s| self.longest_held_paraphrase(s.class as usize, &message) < held)
            && held >= MIN_HELD_CHARS
        {
            return Decision::Answer(best);
        }
        if let Some(second) = second
            && first.probability + p2 >= threshold
            && p2 >= config.clarify_ratio * first.probability
        {
            let runner_up = self.found(second.class as usize, p2, 0.0);
            return Decision::Clarify {
                options: vec![best, runner_up],
            };
        }
        Decision::NoAnswer { best: Some(best) }
    }

    /// Characters (spaces aside) of the longest paraphrase of `entry` that `message`
    /// (normalised) holds whole, on word boundaries; 0 when none.
    fn longest_held_paraphrase(&self, entry: usize, message: &str) -> usize {
        self.entries()[entry]
            .paraphrases()
            .map(text::normalize)
            .filter(|paraphrase| holds_whole(message, paraphrase))
            .map(|paraphrase| paraphrase.chars().filter(|c| *c != ' ').count())
            .max()
            .unwrap_or(0)
    }

    fn found(&self, entry: usize, confidence: f32, score: f32) -> Match {
        let entry = &self.entries()[entry];
        Match {
            entry_id: entry.id.clone(),
            question: entry.question.clone(),
            answer: entry.answer.clone(),
            score: score.clamp(0.0, 1.0),
            confidence: confidence.clamp(0.0, 1.0),
        }
    }
}

/// The shortest paraphrase that counts when held inside a longer message: shorter ones
/// ("退货", "refund") are single topics, not questions.
const MIN_HELD_CHARS: usize = 4;

/// Whether `message` holds `part` whole: not empty, and where either touches a word of
/// letters or digits, not cut out of a longer one ("ship" is not held in "shipping").
fn holds_whole(message: &str, part: &str) -> bool {
    let Some(first) = part.chars().next() else {
        return false;
    };
    let last = part.chars().next_back().unwrap_or(first);
    let joins = |c: Option<char>, edge: char| {
        c.is_some_and(|c| c.is_alphanumeric() && !text::is_cjk(c))
            && edge.is_alphanumeric()
            && !text::is_cjk(edge)
    };
    message.match_indices(part).any(|(start, _)| {
        let before = message[..start].chars().next_back();
        let after = message[start + part.len()..].chars().next();
        !joins(before, first) && !joins(after, last)
    })
}

/// Ordinal words, by the position (0-based) they pick.
const ORDINALS: [&[&str]; 3] = [
    &[
        "1",
        "一",
        "第一",
        "第一个",
        "第1个",
        "first",
        "1st",
        "the first",
        "the first one",
        "first one",
        "前者",
        "前一个",
        "上面那个",
        "a",
    ],
    &[
        "2",
        "二",
        "第二",
        "第二个",
        "第2个",
        "second",
        "2nd",
        "the second",
        "the second one",
        "second one",
        "后者",
        "后一个",
        "下面那个",
        "b",
    ],
    &[
        "3",
        "三",
        "第三",
        "第三个",
        "第3个",
        "third",
        "3rd",
        "the third",
        "the third one",
        "third one",
        "c",
    ],
];

/// Words around an ordinal that do not change it ("the second one please", "是第二个").
const PICK_FILLER: &[&str] = &[
    "是", "选", "要", "我要", "我选", "就", "吧", "呢", "啊", "please", "i", "mean", "want",
    "number", "option", "no", "个", "问", "想问",
];

/// Which of the offered entries the customer's `reply` picks: an ordinal ("1", "第二个",
/// "the second one") of `options` (entry ids in the order shown), or text that fits one
/// option clearly better than the others. `None` when the reply picks nothing (ask again
/// or treat it as a new question).
pub fn resolve_pick(reply: &str, options: &[String], index: &FaqIndex) -> Option<String> {
    let normalized = text::normalize(reply);
    if let Some(position) = ordinal(&normalized)
        && let Some(id) = options.get(position)
    {
        return Some(id.clone());
    }
    // Text: the option the classifier prefers, if it clearly does.
    let positions: Vec<usize> = options
        .iter()
        .filter_map(|id| index.entries().iter().position(|e| &e.id == id))
        .collect();
    if positions.is_empty() {
        return None;
    }
    let ranked = index.model.rank(reply, index.entries().len().min(50));
    let probability = |pos: usize| {
        ranked
            .iter()
            .find(|r| r.class as usize == pos)
            .map_or(0.0, |r| r.probability)
    };
    let mut scored: Vec<(f32, usize)> = positions.iter().map(|&p| (probability(p), p)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (best, pos) = scored[0];
    let runner_up = scored.get(1).map_or(0.0, |s| s.0);
    (best > 0.0 && best >= 2.0 * runner_up).then(|| index.entries()[pos].id.clone())
}

/// The position an ordinal reply names, if the whole reply is one.
fn ordinal(normalized: &str) -> Option<usize> {
    let mut rest = normalized.trim().to_owned();
    for filler in PICK_FILLER {
        // Only whole leading/trailing fillers: "是第二个" → "第二个", "2 please" → "2".
        for _ in 0..2 {
            if let Some(stripped) = rest.strip_prefix(filler) {
                rest = stripped.trim().to_owned();
            }
            if let Some(stripped) = rest.strip_suffix(filler) {
                rest = stripped.trim().to_owned();
            }
        }
    }
    ORDINALS
        .iter()
        .position(|words| words.contains(&rest.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::fixture;
    use std::sync::LazyLock;

    static INDEX: LazyLock<FaqIndex> =
        LazyLock::new(|| FaqIndex::build(&fixture()).expect("build"));

    fn answered(text: &str) -> Option<String> {
        match INDEX.answer(text) {
            Decision::Answer(found) => Some(found.entry_id),
            _ => None,
        }
    }

    #[test]
    fn given_every_fixture_paraphrase_when_asked_then_its_entry_answers() {
        for entry in INDEX.entries() {
            for paraphrase in entry.paraphrases() {
                let decision = INDEX.answer(paraphrase);
                let Decision::Answer(found) = &decision else {
                    panic!("{paraphrase:?} not answered: {decision:?}");
                };
                assert_eq!(found.entry_id, entry.id, "{paraphrase:?}");
                assert!(found.confidence > 0.9, "{paraphrase:?}: {found:?}");
                assert_eq!(found.answer, entry.answer);
            }
        }
    }

    #[test]
    fn given_reworded_questions_when_asked_then_the_right_entry_ranks_first() {
        let cases = [
            ("请问满多少可以包邮", "shipping-fee"),
            ("你们能不能发顺丰快递", "courier"),
            ("退款几天能到账", "refund-time"),
            ("how can I return this item", "en-return"),
            ("Can I pay with PayPal?", "en-payment"),
            ("TRACK MY PACKAGE!!!", "en-track"),
            ("ｔｒａｃｋ　ｍｙ　ｐａｃｋａｇｅ", "en-track"),
            ("運費怎麼算", "shipping-fee"),
        ];
        for (text, expected) in cases {
            let decision = INDEX.answer(text);
            assert_eq!(
                decision.best().map(|b| b.entry_id.as_str()),
                Some(expected),
                "{text:?}: {decision:?}"
            );
        }
        assert_eq!(answered("TRACK MY PACKAGE!!!").as_deref(), Some("en-track"));
    }

    #[test]
    fn given_unrelated_text_when_asked_then_no_answer() {
        for text in [
            "今天天气怎么样",
            "tell me a joke",
            "asdfgh",
            "",
            "   ",
            "😀😀😀",
            "你是谁",
            "what is the meaning of life",
        ] {
            let decision = INDEX.answer(text);
            assert!(
                matches!(decision, Decision::NoAnswer { .. }),
                "{text:?}: {decision:?}"
            );
        }
        assert_eq!(INDEX.answer(""), Decision::NoAnswer { best: None });
    }

    #[test]
    fn given_threshold_when_configured_then_it_overrides_the_calibrated_one() {
        let strict = MatcherConfig {
            threshold: Some(1.01),
            clarify_ratio: 2.0,
        };
        let decision = INDEX.answer_with("满多少才包邮呢", &strict);
        let Decision::NoAnswer { best: Some(best) } = decision else {
            panic!("answered above an impossible threshold: {decision:?}");
        };
        assert_eq!(best.entry_id, "shipping-fee");
        let lenient = MatcherConfig {
            threshold: Some(0.0),
            ..MatcherConfig::default()
        };
        assert!(matches!(
            INDEX.answer_with("邮费", &lenient),
            Decision::Answer(_)
        ));
        for text in ["邮费", "postage"] {
            let threshold = INDEX.calibrated_threshold(text);
            assert!(threshold > 0.0 && threshold <= 1.0, "{text}: {threshold}");
        }
    }

    #[test]
    fn given_a_paraphrase_held_whole_when_asked_then_its_entry_answers_below_the_threshold() {
        let strict = MatcherConfig {
            threshold: Some(0.999),
            ..MatcherConfig::default()
        };
        let entry = |text: &str| match INDEX.answer_with(text, &strict) {
            Decision::Answer(found) => Some(found.entry_id),
            _ => None,
        };
        assert_eq!(entry("我想问下能发顺丰吗").as_deref(), Some("courier"));
        assert_eq!(
            entry("hi, do you take credit cards?").as_deref(),
            Some("en-payment")
        );
        // Too little of the message is the paraphrase to be sure of it.
        assert_eq!(entry("我想问一下你们仓库那边到底能发顺丰吗"), None);
    }

    #[test]
    fn given_a_part_cut_out_of_a_word_when_checked_then_it_is_not_held_whole() {
        assert!(holds_whole("can i return it", "return"));
        assert!(holds_whole("这个商品什么时候发货", "什么时候发货"));
        assert!(!holds_whole("returned items", "return"));
        assert!(!holds_whole("reship it", "ship"));
        assert!(!holds_whole("anything", ""));
    }

    #[test]
    fn given_two_close_candidates_when_asked_then_the_bot_asks_which() {
        // Forced operating point: a threshold only the two together reach.
        let decision = INDEX.answer_with("退", &MatcherConfig::default());
        let ranked = INDEX.model.rank("退", 2);
        assert_eq!(ranked.len(), 2, "{ranked:?}");
        let (p1, p2) = (ranked[0].probability, ranked[1].probability);
        let config = MatcherConfig {
            threshold: Some((p1 + p2 + p1) / 2.0),
            clarify_ratio: (p2 / p1) * 0.9,
        };
        let Decision::Clarify { options } = INDEX.answer_with("退", &config) else {
            panic!("no clarification; default gave {decision:?}");
        };
        assert_eq!(options.len(), 2);
        assert!(options[0].confidence >= options[1].confidence);
        // The same message with a ratio above 1 never asks.
        let never = MatcherConfig {
            clarify_ratio: 1.5,
            ..config
        };
        assert!(matches!(
            INDEX.answer_with("退", &never),
            Decision::NoAnswer { .. }
        ));
    }

    #[test]
    fn given_a_clarification_when_the_customer_replies_then_the_pick_is_resolved() {
        let options = vec!["return-policy".to_owned(), "refund-time".to_owned()];
        let pick = |reply: &str| resolve_pick(reply, &options, &INDEX);
        for reply in [
            "1",
            "第一个",
            "first",
            "The first one.",
            "是第一个",
            "1 please",
        ] {
            assert_eq!(pick(reply).as_deref(), Some("return-policy"), "{reply:?}");
        }
        for reply in ["2", "第二个", "the second one", "２", "后者", "选第二个吧"] {
            assert_eq!(pick(reply).as_deref(), Some("refund-time"), "{reply:?}");
        }
        assert_eq!(pick("退款多久能到账").as_deref(), Some("refund-time"));
        assert_eq!(pick("我想退货").as_deref(), Some("return-policy"));
        assert_eq!(pick("3"), None, "only two options");
        assert_eq!(pick("今天天气不错"), None);
    }
}
