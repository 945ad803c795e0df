//! Recognising an explicit request for a person ("转人工", "talk to a human").
//!
//! Rules over the normalised text rather than the FAQ matcher: such a request must win over
//! any FAQ answer, and it is phrased in a few fixed ways. Three kinds of rule keep false
//! positives out: blockers (compounds that merely contain a trigger: "人工智能",
//! "human resources"), negations just before a trigger ("不用转人工", "no agent"), and
//! word boundaries for English ("agents" counts, "agenda" does not).

use crate::text::normalize;

/// Chinese triggers, matched as substrings.
const ZH_TRIGGERS: &[&str] = &[
    "人工",
    "真人",
    "活人",
    "找客服",
    "联系客服",
    "要客服",
    "叫客服",
    "接客服",
    "转客服",
    "转接客服",
    "给客服",
    "客服电话",
    "客服電話",
    "客服热线",
    "客服熱線",
];

/// Compounds that contain a trigger without asking for a person.
const ZH_BLOCKERS: &[&str] = &[
    "人工智能",
    "人工费",
    "人工費",
    "人工成本",
    "人工合成",
    "人工湖",
    "人工草",
    "人工降雨",
    "人工呼吸",
    "人工养殖",
    "人工培育",
    "人工授精",
    "人工晶体",
    "人工关节",
    "人工耳蜗",
    "人工皮",
    "人工钻",
    "人工宝石",
    "人工作",
    "人工资",
    "真人秀",
    "真人版",
    "真人cs",
    "真人尺寸",
];

/// Words just before a trigger that turn it around.
const ZH_NEGATIONS: &[&str] = &["不用", "不要", "不需要", "无需", "不必", "别", "不想"];

/// English words that ask for a person on their own.
const EN_TRIGGERS: &[&str] = &[
    "agent",
    "agents",
    "human",
    "humans",
    "representative",
    "representatives",
    "operator",
    "operators",
];

/// Two-word phrases that use a trigger word for something else.
const EN_BLOCKERS: &[[&str; 2]] = &[
    ["human", "resources"],
    ["human", "resource"],
    ["human", "hair"],
    ["human", "rights"],
    ["human", "error"],
    ["human", "body"],
    ["human", "nature"],
    ["travel", "agent"],
    ["shipping", "agent"],
    ["customs", "agent"],
    ["estate", "agent"],
    ["user", "agent"],
    ["cleaning", "agent"],
    ["secret", "agent"],
    ["network", "operator"],
    ["mobile", "operator"],
    ["tour", "operator"],
    ["smooth", "operator"],
];

/// Adjectives that make "person" / "people" a request ("a real person").
const EN_REAL: &[&str] = &["real", "live", "actual"];
const EN_PERSON: &[&str] = &["person", "people", "human", "humans", "man", "woman"];

/// Verbs that, with "to"/"with" and a person word after, ask for someone.
const EN_VERBS: &[&str] = &["talk", "speak", "chat", "transfer", "connect", "put"];
const EN_FILLERS: &[&str] = &[
    "me", "to", "with", "through", "a", "an", "the", "your", "some", "one", "of", "real", "live",
    "actual",
];
const EN_SOMEONE: &[&str] = &[
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "person",
    "people",
    "staff",
    "support",
    "customer",
    "manager",
    "supervisor",
];

/// Words that negate a request found up to four words later.
const EN_NEGATIONS: &[&str] = &["no", "not", "never", "without", "dont", "nor"];

/// Whether `text` explicitly asks for a human agent.
pub fn wants_human(text: &str) -> bool {
    let normalized = normalize(text);
    chinese_request(&normalized) || english_request(&normalized)
}

fn chinese_request(normalized: &str) -> bool {
    let mut text = normalized.to_owned();
    for blocker in ZH_BLOCKERS {
        // A character no trigger contains keeps the surroundings from joining up.
        text = text.replace(blocker, "|");
    }
    ZH_TRIGGERS.iter().any(|trigger| {
        text.match_indices(trigger).any(|(at, _)| {
            let before: String = text[..at]
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            !ZH_NEGATIONS.iter().any(|n| before.contains(n))
        })
    })
}

fn english_request(normalized: &str) -> bool {
    let words: Vec<&str> = normalized.split(' ').collect();
    (0..words.len()).any(|i| request_at(&words, i) && !negated(&words, i))
}

/// Whether a request starts (or, for a lone trigger word, sits) at word `i`.
fn request_at(words: &[&str], i: usize) -> bool {
    let word = words[i];
    let next = words.get(i + 1).copied();
    if EN_TRIGGERS.contains(&word) {
        let blocked = EN_BLOCKERS.iter().any(|[a, b]| {
            (*a == word && next == Some(b)) || (*b == word && i > 0 && words[i - 1] == *a)
        });
        return !blocked;
    }
    if EN_REAL.contains(&word) {
        return next.is_some_and(|n| EN_PERSON.contains(&n));
    }
    if EN_VERBS.contains(&word) {
        let rest = words[i + 1..]
            .iter()
            .copied()
            .find(|w| !EN_FILLERS.contains(w));
        let linked = words[i + 1..]
            .iter()
            .take_while(|w| EN_FILLERS.contains(w))
            .any(|w| matches!(*w, "to" | "with" | "through"));
        return linked && rest.is_some_and(|w| EN_SOMEONE.contains(&w));
    }
    false
}

/// Whether one of the four words before `i` negates it ("don't" normalises to "don t").
fn negated(words: &[&str], i: usize) -> bool {
    let start = i.saturating_sub(4);
    let window = &words[start..i];
    window.iter().any(|w| EN_NEGATIONS.contains(w))
        || window.windows(2).any(|pair| pair == ["don", "t"])
}

#[cfg(test)]
mod tests {
    use super::wants_human;

    #[test]
    fn given_table_of_messages_when_checked_then_only_requests_for_a_person_match() {
        let cases: &[(&str, bool)] = &[
            // Chinese requests.
            ("转人工", true),
            ("人工", true),
            ("人工客服", true),
            ("我要人工服务！！", true),
            ("帮我转接人工", true),
            ("找客服", true),
            ("能不能找客服处理一下", true),
            ("有没有真人？", true),
            ("客服电话多少", true),
            ("轉人工", true),
            ("ＲＥＮＧＯＮＧ转人工", true),
            // Chinese look-alikes.
            ("你们用了人工智能吗", false),
            ("人工费怎么算", false),
            ("这里有人工作吗", false),
            ("是人工合成的宝石吗", false),
            ("不用转人工了，谢谢", false),
            ("不需要人工", false),
            ("我想退货", false),
            ("客服你好", false),
            ("", false),
            // English requests.
            ("agent", true),
            ("Agent!!", true),
            ("HUMAN", true),
            ("I want to talk to a human", true),
            ("can I speak to someone please", true),
            ("let me talk with a real person", true),
            ("real person please", true),
            ("representative", true),
            ("get me an operator", true),
            ("transfer me to customer service", true),
            ("connect me with your support team", true),
            ("are any agents available?", true),
            ("why can't I talk to a human", true),
            // English look-alikes.
            ("I need the human resources contact", false),
            ("is this wig human hair?", false),
            ("my travel agent booked it", false),
            ("what's on the agenda", false),
            ("I don't need an agent", false),
            ("no agent please, the bot is fine", false),
            ("talk is cheap", false),
            ("how do I return my shoes", false),
            ("humane treatment", false),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(text, expected)| wants_human(text) != *expected)
            .collect();
        assert!(wrong.is_empty(), "misjudged: {wrong:?}");
    }
}
