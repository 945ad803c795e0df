//! What a message asks of the order flows, by rules over the normalised text.
//!
//! The line to draw is between an *action* on the customer's own order ("我要退货",
//! "where is my order 123456") and a *question about the rules* ("退货政策是什么", "how do
//! returns work"), which the FAQ answers. An order number always makes it an action; without
//! one, returns and cancellations need a wish ("我要", "I want to", "return my …") and no
//! policy word, while tracking cues ("到哪了", "track") are specific enough on their own.

use crate::text::normalize;
use kefu::domain::ReturnKind;

/// A task the customer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Order status and parcel tracking.
    Status,
    /// Cancel an order that has not shipped.
    Cancel,
    /// Start a return or an exchange.
    Return(ReturnKind),
}

/// Chinese words for an order or a parcel.
const ZH_ORDER_NOUNS: &[&str] = &[
    "订单", "訂單", "单号", "單號", "物流", "快递", "快遞", "包裹", "发货", "發貨", "到货",
];
/// Chinese phrases that ask where an order or parcel is.
const ZH_STATUS_CUES: &[&str] = &[
    "到哪",
    "在哪",
    "哪儿了",
    "哪里了",
    "查订单",
    "查一下订单",
    "查下订单",
    "查询订单",
    "订单状态",
    "订单进度",
    "订单信息",
    "查物流",
    "查一下物流",
    "查询物流",
    "物流信息",
    "物流状态",
    "物流进度",
    "物流到",
    "快递到",
    "包裹到",
    "查快递",
    "查一下快递",
    "快递单号",
    "物流单号",
    "运单号",
    "发货了吗",
    "发货了没",
    "发货没",
    "还没发货",
    "还没到",
    "还没收到",
    "没收到货",
    "跟踪",
    "追踪",
    "查訂單",
    "物流資訊",
];
const ZH_RETURN: &[&str] = &["退货", "退貨", "退回", "寄回", "退掉", "退换", "退換"];
const ZH_EXCHANGE: &[&str] = &[
    "换货",
    "換貨",
    "调换",
    "換個",
    "换个",
    "换一个",
    "换尺码",
    "换码",
];
const ZH_CANCEL: &[&str] = &["取消"];
/// Objects that make "取消" about an order rather than, say, a subscription.
const ZH_CANCEL_OBJECTS: &[&str] = &["订单", "訂單", "这单", "那单", "下单", "购买", "掉"];
/// Words that turn a topic into a wish to act.
const ZH_WANT: &[&str] = &["要", "想", "帮我", "申请", "办理", "給我", "给我"];
/// Words that make it a question about the rules.
const ZH_POLICY: &[&str] = &[
    "政策",
    "规则",
    "规定",
    "流程",
    "条件",
    "标准",
    "怎么",
    "怎樣",
    "怎样",
    "如何",
    "多久",
    "几天",
    "多少天",
    "运费",
    "邮费",
    "费用",
    "谁承担",
    "能不能",
    "可不可以",
    "可以吗",
    "能吗",
    "支持",
    "吗",
    "么",
    "哪些",
];

const EN_ORDER_NOUNS: &[&str] = &[
    "order", "orders", "package", "parcel", "shipment", "delivery", "item", "items", "stuff",
];
const EN_STATUS_CUES: &[&str] = &[
    "where",
    "status",
    "shipped",
    "arrive",
    "arriving",
    "arrived",
    "delivered",
    "check",
    "find",
    "late",
    "yet",
];
const EN_TRACK: &[&str] = &["track", "tracking", "trace"];
const EN_RETURN: &[&str] = &["return", "returning", "returns", "send back"];
const EN_EXCHANGE: &[&str] = &["exchange", "exchanging", "swap"];
const EN_CANCEL: &[&str] = &["cancel", "cancelling", "canceling", "cancellation"];
const EN_WANT: &[&str] = &[
    "want", "wanna", "like", "need", "start", "request", "open", "file", "process", "my", "this",
    "it",
];
const EN_POLICY: &[&str] = &[
    "policy", "policies", "how", "rules", "window", "days", "long", "cost", "costs", "free", "fee",
    "fees", "work", "works", "accept", "allowed",
];

/// Words that show the customer is still talking about the order being asked for.
const ZH_FLOW_WORDS: &[&str] = &[
    "订单",
    "訂單",
    "单号",
    "單號",
    "物流",
    "快递",
    "包裹",
    "退",
    "换",
    "取消",
    "不知道",
    "不记得",
    "忘了",
    "找不到",
    "没有",
];
const EN_FLOW_WORDS: &[&str] = &[
    "order", "orders", "number", "tracking", "parcel", "package", "return", "exchange", "cancel",
    "know", "forgot", "remember", "find",
];

/// A message's normalised forms: words for English, one run without spaces for Chinese.
struct Text {
    words: Vec<String>,
    compact: String,
    has_id: bool,
}

impl Text {
    fn new(raw: &str) -> Self {
        let normalized = normalize(raw);
        Self {
            words: normalized.split(' ').map(str::to_owned).collect(),
            compact: normalized.replace(' ', ""),
            has_id: order_id(raw).is_some(),
        }
    }

    fn zh(&self, list: &[&str]) -> bool {
        list.iter().any(|w| self.compact.contains(w))
    }

    fn en(&self, list: &[&str]) -> bool {
        self.words.iter().any(|w| list.contains(&w.as_str()))
    }

    fn any(&self, zh: &[&str], en: &[&str]) -> bool {
        self.zh(zh) || self.en(en)
    }
}

/// The task `text` asks for, if any.
pub(crate) fn detect(text: &str) -> Option<Intent> {
    let t = Text::new(text);
    let returns = t.any(ZH_RETURN, EN_RETURN);
    let exchange = t.any(ZH_EXCHANGE, EN_EXCHANGE);
    let cancel = t.zh(ZH_CANCEL) || t.en(EN_CANCEL);
    let policy = t.any(ZH_POLICY, EN_POLICY);
    let want = t.any(ZH_WANT, EN_WANT);

    if cancel && (returns || exchange) {
        // "取消退货": about an existing return; a person handles that.
        return None;
    }
    if returns || exchange {
        let kind = if exchange {
            ReturnKind::Exchange
        } else {
            ReturnKind::Return
        };
        return (t.has_id || (want && !policy)).then_some(Intent::Return(kind));
    }
    if cancel {
        let about_order = t.zh(ZH_CANCEL_OBJECTS) || t.en(EN_ORDER_NOUNS) || t.en(&["it"]);
        return (t.has_id || (about_order && !policy)).then_some(Intent::Cancel);
    }
    let noun = t.any(ZH_ORDER_NOUNS, EN_ORDER_NOUNS);
    let status = t.zh(ZH_STATUS_CUES) || t.en(EN_TRACK) || (noun && t.en(EN_STATUS_CUES));
    (status || (t.has_id && noun)).then_some(Intent::Status)
}

/// Whether a message sent while a flow waits for an order number still talks about it
/// ("我不记得订单号", "123"), rather than about something else (a question about the rules
/// such as "退货政策是什么" is the FAQ's).
pub(crate) fn on_topic(text: &str) -> bool {
    let t = Text::new(text);
    text.chars()
        .any(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
        || (t.any(ZH_FLOW_WORDS, EN_FLOW_WORDS) && !t.any(ZH_POLICY, EN_POLICY))
}

/// The order number in `text`: a run of 6–20 digits (full-width digits count). A run right
/// after "订单", "单号", "order", "no" or "#" wins over others (a phone number, a date).
pub(crate) fn order_id(text: &str) -> Option<String> {
    const MARKERS: &[&str] = &["订单", "單", "单号", "order", "no", "#", "号"];
    let chars: Vec<char> = text
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if (6..=20).contains(&(i - start)) {
            let before: String = chars[start.saturating_sub(8)..start]
                .iter()
                .collect::<String>()
                .to_lowercase();
            let marked = MARKERS.iter().any(|m| before.contains(m));
            runs.push((marked, chars[start..i].iter().collect::<String>()));
        }
    }
    let marked = runs.iter().position(|(marked, _)| *marked).unwrap_or(0);
    (!runs.is_empty()).then(|| runs.swap_remove(marked).1)
}

/// A yes (`Some(true)`) or no (`Some(false)`) to "shall I cancel it?", `None` if neither.
pub(crate) fn confirmation(text: &str) -> Option<bool> {
    const ZH_NO: &[&str] = &["不", "别", "算了", "否", "先不"];
    const ZH_YES: &[&str] = &[
        "确认",
        "确定",
        "是",
        "是的",
        "对",
        "好",
        "好的",
        "嗯",
        "可以",
        "取消吧",
    ];
    const EN_NO: &[&str] = &["no", "nope", "don", "dont", "not", "keep", "wait", "stop"];
    const EN_YES: &[&str] = &[
        "yes",
        "y",
        "yeah",
        "yep",
        "confirm",
        "confirmed",
        "ok",
        "okay",
        "sure",
    ];
    let t = Text::new(text);
    if t.zh(ZH_NO) || t.en(EN_NO) {
        return Some(false);
    }
    let zh_yes = ZH_YES.contains(&t.compact.as_str())
        || t.compact.starts_with("确认")
        || t.compact.starts_with("确定");
    (zh_yes || t.en(EN_YES)).then_some(true)
}

/// The reason given along with a return request ("…因为尺码太小", "… because it is broken").
pub(crate) fn reason_in(text: &str) -> Option<String> {
    const MARKERS: &[&str] = &[
        "原因是",
        "原因：",
        "原因:",
        "因为",
        "because",
        "reason:",
        "reason is",
    ];
    let lower = text.to_ascii_lowercase();
    MARKERS
        .iter()
        .filter_map(|m| lower.find(m).map(|at| at + m.len()))
        .min()
        .and_then(|at| clean_reason(&text[at..]))
}

/// A reason as agents will read it: trimmed, one line, at most 200 characters.
pub(crate) fn clean_reason(text: &str) -> Option<String> {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = one_line.trim_matches(|c: char| c.is_whitespace() || "，,。.:：".contains(c));
    (!trimmed.is_empty()).then(|| trimmed.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_action_and_policy_messages_when_detected_then_only_actions_start_flows() {
        let exchange = Some(Intent::Return(ReturnKind::Exchange));
        let ret = Some(Intent::Return(ReturnKind::Return));
        let cases: &[(&str, Option<Intent>)] = &[
            ("我的订单123456到哪了", Some(Intent::Status)),
            ("查一下订单", Some(Intent::Status)),
            ("物流到哪了？", Some(Intent::Status)),
            ("快递怎么还没到", Some(Intent::Status)),
            ("订单号是123456", Some(Intent::Status)),
            ("where is my order 123456", Some(Intent::Status)),
            ("Track my parcel", Some(Intent::Status)),
            ("has my order shipped yet?", Some(Intent::Status)),
            ("取消订单123456", Some(Intent::Cancel)),
            ("我要取消订单", Some(Intent::Cancel)),
            ("cancel my order", Some(Intent::Cancel)),
            ("我要退货", ret),
            ("订单123456要换货", exchange),
            ("I want to return order 123456", ret),
            ("I need to exchange this for a larger size", exchange),
            // Questions about the rules are the FAQ's.
            ("退货政策是什么", None),
            ("how do returns work", None),
            ("可以退货吗", None),
            ("换货运费谁承担？", None),
            ("what is your return policy", None),
            ("怎么取消订单", None),
            ("cancellation policy?", None),
            ("多久发货", None),
            ("how long does delivery take", None),
            ("取消退货申请", None),
            ("你们支持花呗吗", None),
            ("123456", None),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(text, expected)| detect(text) != *expected)
            .map(|(text, expected)| (text, expected, detect(text)))
            .collect();
        assert!(
            wrong.is_empty(),
            "misjudged (text, expected, got): {wrong:?}"
        );
    }

    #[test]
    fn given_messages_with_numbers_when_extracting_then_the_order_number_is_found() {
        let cases: &[(&str, Option<&str>)] = &[
            ("123456", Some("123456")),
            ("是123456", Some("123456")),
            ("订单号是１２３４５６７", Some("1234567")),
            ("#880001", Some("880001")),
            ("order no. 880001 please", Some("880001")),
            ("我手机13800138000，订单123457", Some("123457")),
            ("12345", None),
            ("123456789012345678901", None),
            ("no digits", None),
        ];
        for (text, expected) in cases {
            assert_eq!(order_id(text).as_deref(), *expected, "{text}");
        }
    }

    #[test]
    fn given_answers_when_read_as_confirmation_then_yes_no_and_other_differ() {
        for yes in ["确认", "确认取消", "好的", "Yes", "ok!"] {
            assert_eq!(confirmation(yes), Some(true), "{yes}");
        }
        for no in ["不用了", "算了", "no", "don't", "不取消"] {
            assert_eq!(confirmation(no), Some(false), "{no}");
        }
        for other in ["运费多少", "what are your opening hours"] {
            assert_eq!(confirmation(other), None, "{other}");
        }
    }

    #[test]
    fn given_reason_words_when_extracting_then_the_rest_is_the_reason() {
        assert_eq!(
            reason_in("订单123456要退货，因为尺码太小了。").as_deref(),
            Some("尺码太小了")
        );
        assert_eq!(
            reason_in("I want to return order 123456 Because it is broken").as_deref(),
            Some("it is broken")
        );
        assert_eq!(reason_in("我要退货"), None);
        assert_eq!(reason_in("因为"), None);
    }

    #[test]
    fn given_messages_while_waiting_when_checked_then_order_talk_is_on_topic() {
        assert!(on_topic("我不记得订单号了"));
        assert!(on_topic("12345"));
        assert!(on_topic("I forgot the number"));
        assert!(!on_topic("运费多少"));
        assert!(!on_topic("退货政策是什么"));
        assert!(!on_topic("how do returns work"));
        assert!(!on_topic("what are your opening hours"));
    }
}
