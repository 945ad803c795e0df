//! Small talk: greetings, "are you there", thanks, goodbyes, acknowledgements and feedback on
//! the last answer ("没用", "that didn't help"), in Chinese and English.
//!
//! Only a *whole* short message counts: every part of it must be a lexicon phrase, a
//! neutral word ("客服", "亲", "there", "so much") or a sentence particle ("啊", "呢"). So
//! "你好，在吗" is small talk, while "你好，运费怎么算" is the shipping question.

use crate::text::{is_cjk, normalize};

/// What a small-talk message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTalk {
    /// "你好", "hi".
    Greeting,
    /// "在吗", "are you there".
    Presence,
    /// "谢谢", "thx".
    Thanks,
    /// "再见", "bye", "没事了".
    Goodbye,
    /// "好的", "嗯", "ok".
    Ack,
    /// The last answer did not help: "没用", "不对", "that didn't help".
    Feedback,
}

/// Longer messages are never small talk (in normalised characters).
const MAX_CHARS: usize = 40;

/// Chinese phrases, matched longest first inside a run of Han characters.
const ZH: &[(&str, SmallTalk)] = {
    use SmallTalk::*;
    &[
        ("你好", Greeting),
        ("您好", Greeting),
        ("你们好", Greeting),
        ("大家好", Greeting),
        ("哈喽", Greeting),
        ("哈啰", Greeting),
        ("哈罗", Greeting),
        ("嗨", Greeting),
        ("早上好", Greeting),
        ("上午好", Greeting),
        ("中午好", Greeting),
        ("下午好", Greeting),
        ("晚上好", Greeting),
        ("早安", Greeting),
        ("在吗", Presence),
        ("在么", Presence),
        ("在嘛", Presence),
        ("在不在", Presence),
        ("在线吗", Presence),
        ("有人吗", Presence),
        ("有人在吗", Presence),
        ("有人么", Presence),
        ("有没有人", Presence),
        ("人呢", Presence),
        ("还在吗", Presence),
        ("谢谢", Thanks),
        ("谢了", Thanks),
        ("谢啦", Thanks),
        ("多谢", Thanks),
        ("感谢", Thanks),
        ("辛苦了", Thanks),
        ("辛苦", Thanks),
        ("麻烦了", Thanks),
        ("再见", Goodbye),
        ("拜拜", Goodbye),
        ("拜", Goodbye),
        ("回头见", Goodbye),
        ("下次见", Goodbye),
        ("晚安", Goodbye),
        ("没事了", Goodbye),
        ("没有了", Goodbye),
        ("没别的了", Goodbye),
        ("没问题了", Goodbye),
        ("好的", Ack),
        ("好滴", Ack),
        ("好哒", Ack),
        ("好吧", Ack),
        ("好", Ack),
        ("嗯", Ack),
        ("恩", Ack),
        ("哦", Ack),
        ("噢", Ack),
        ("知道了", Ack),
        ("明白了", Ack),
        ("明白", Ack),
        ("了解", Ack),
        ("收到", Ack),
        ("可以", Ack),
        ("行", Ack),
        ("懂了", Ack),
        ("对", Ack),
        ("是的", Ack),
        ("没用", Feedback),
        ("没有用", Feedback),
        ("没啥用", Feedback),
        ("没帮助", Feedback),
        ("没有帮助", Feedback),
        ("不对", Feedback),
        ("不是这个", Feedback),
        ("不是这个意思", Feedback),
        ("不是我要的", Feedback),
        ("不是我问的", Feedback),
        ("答非所问", Feedback),
        ("说的不对", Feedback),
        ("没解决", Feedback),
        ("没有解决", Feedback),
        ("还是不行", Feedback),
        ("不行", Feedback),
        ("看不懂", Feedback),
        ("听不懂", Feedback),
    ]
};

/// Words that may stand beside a phrase without changing it ("客服你好", "非常感谢").
const ZH_NEUTRAL: &[&str] = &[
    "客服",
    "亲亲",
    "亲",
    "小姐姐",
    "小哥哥",
    "小哥",
    "老板",
    "店家",
    "掌柜",
    "美女",
    "帅哥",
    "机器人",
    "您",
    "你们",
    "你",
    "非常",
    "十分",
    "万分",
    "真是",
    "真",
    "太",
    "很",
    "也",
    "那",
    "那就",
    "这样",
    "先",
];

/// Sentence particles, skipped one character at a time.
const ZH_PARTICLES: &str = "啊呀呢哈啦吧嘛哦喔哟呐哇嗷了的么";

/// English phrases, as normalised words, matched longest first.
const EN: &[(&str, SmallTalk)] = {
    use SmallTalk::*;
    &[
        ("hi", Greeting),
        ("hii", Greeting),
        ("hello", Greeting),
        ("helo", Greeting),
        ("hallo", Greeting),
        ("hey", Greeting),
        ("heya", Greeting),
        ("hiya", Greeting),
        ("howdy", Greeting),
        ("greetings", Greeting),
        ("yo", Greeting),
        ("good morning", Greeting),
        ("good afternoon", Greeting),
        ("good evening", Greeting),
        ("morning", Greeting),
        ("what s up", Greeting),
        ("whats up", Greeting),
        ("are you there", Presence),
        ("are you still there", Presence),
        ("you there", Presence),
        ("still there", Presence),
        ("anyone there", Presence),
        ("anybody there", Presence),
        ("is anyone there", Presence),
        ("is anybody there", Presence),
        ("is someone there", Presence),
        ("is there anyone", Presence),
        ("is there anybody", Presence),
        ("anyone", Presence),
        ("anybody", Presence),
        ("thanks", Thanks),
        ("thank you", Thanks),
        ("thank u", Thanks),
        ("thanks a lot", Thanks),
        ("many thanks", Thanks),
        ("thx", Thanks),
        ("thnx", Thanks),
        ("thanx", Thanks),
        ("tks", Thanks),
        ("ty", Thanks),
        ("cheers", Thanks),
        ("appreciate it", Thanks),
        ("much appreciated", Thanks),
        ("bye", Goodbye),
        ("bye bye", Goodbye),
        ("goodbye", Goodbye),
        ("good bye", Goodbye),
        ("see you", Goodbye),
        ("see ya", Goodbye),
        ("cya", Goodbye),
        ("good night", Goodbye),
        ("take care", Goodbye),
        ("have a nice day", Goodbye),
        ("have a good day", Goodbye),
        ("that s all", Goodbye),
        ("thats all", Goodbye),
        ("nothing else", Goodbye),
        ("ok", Ack),
        ("okay", Ack),
        ("okey", Ack),
        ("k", Ack),
        ("kk", Ack),
        ("alright", Ack),
        ("all right", Ack),
        ("sure", Ack),
        ("cool", Ack),
        ("great", Ack),
        ("nice", Ack),
        ("perfect", Ack),
        ("fine", Ack),
        ("got it", Ack),
        ("i see", Ack),
        ("understood", Ack),
        ("noted", Ack),
        ("yes", Ack),
        ("yeah", Ack),
        ("yep", Ack),
        ("sounds good", Ack),
        ("that didn t help", Feedback),
        ("that did not help", Feedback),
        ("didn t help", Feedback),
        ("did not help", Feedback),
        ("that doesn t help", Feedback),
        ("doesn t help", Feedback),
        ("not helpful", Feedback),
        ("unhelpful", Feedback),
        ("no help", Feedback),
        ("useless", Feedback),
        ("wrong", Feedback),
        ("that s wrong", Feedback),
        ("that s not it", Feedback),
        ("not what i asked", Feedback),
        ("that s not what i asked", Feedback),
        ("not what i meant", Feedback),
        ("you didn t answer my question", Feedback),
        ("doesn t answer my question", Feedback),
    ]
};

/// Words that may stand beside an English phrase ("hi there", "thanks so much").
const EN_NEUTRAL: &[&str] = &[
    "there", "guys", "team", "all", "again", "so", "very", "much", "a", "lot", "you", "u", "dear",
    "sir", "madam", "mate", "friend", "everyone", "folks", "bot", "oh", "well", "just", "really",
    "then", "at",
];

/// The small talk `text` is, if the whole message is small talk.
pub fn recognise(text: &str) -> Option<SmallTalk> {
    let normalized = normalize(text);
    if normalized.is_empty() || normalized.chars().count() > MAX_CHARS {
        return None;
    }
    let mut found = Vec::new();
    let mut english = Vec::new();
    for token in normalized.split(' ') {
        // A token may mix scripts ("hi客服"): Han runs and other runs are read apart.
        let mut rest = token;
        while let Some(first) = rest.chars().next() {
            let han = is_cjk(first);
            let end = rest
                .char_indices()
                .find(|&(_, c)| is_cjk(c) != han)
                .map_or(rest.len(), |(at, _)| at);
            let (run, tail) = rest.split_at(end);
            if han {
                read_english(&english, &mut found)?;
                english.clear();
                read_chinese(run, &mut found)?;
            } else {
                english.push(run);
            }
            rest = tail;
        }
    }
    read_english(&english, &mut found)?;
    strongest(&found)
}

/// When a message mixes kinds, the reply fits the one that matters most: feedback, then a
/// goodbye (it thanks too), thanks, "are you there", a greeting, an acknowledgement.
fn strongest(found: &[SmallTalk]) -> Option<SmallTalk> {
    use SmallTalk::*;
    [Feedback, Goodbye, Thanks, Presence, Greeting, Ack]
        .into_iter()
        .find(|kind| found.contains(kind))
}

/// Consumes a Han run with phrases, neutral words and particles; `None` if anything is left.
fn read_chinese(run: &str, found: &mut Vec<SmallTalk>) -> Option<()> {
    let mut rest = run;
    while !rest.is_empty() {
        let phrase = ZH
            .iter()
            .filter(|(p, _)| rest.starts_with(p))
            .max_by_key(|(p, _)| p.len());
        let neutral = ZH_NEUTRAL
            .iter()
            .filter(|w| rest.starts_with(*w))
            .max_by_key(|w| w.len());
        let phrase_len = phrase.map_or(0, |(p, _)| p.len());
        let neutral_len = neutral.map_or(0, |n| n.len());
        if let Some((p, kind)) = phrase.filter(|_| phrase_len >= neutral_len) {
            // The longer match wins: "你们好" over "你们", "你好" over "你".
            found.push(*kind);
            rest = &rest[p.len()..];
        } else if neutral_len > 0 {
            rest = &rest[neutral_len..];
        } else {
            let c = rest.chars().next()?;
            if !ZH_PARTICLES.contains(c) {
                return None;
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(())
}

/// Consumes English words with phrases and neutral words; `None` if a word is left.
fn read_english(words: &[&str], found: &mut Vec<SmallTalk>) -> Option<()> {
    let mut i = 0;
    while i < words.len() {
        let phrase = EN
            .iter()
            .filter_map(|(p, kind)| {
                let n = p.split(' ').count();
                let here = words.get(i..i + n)?;
                (here.join(" ") == *p).then_some((n, *kind))
            })
            .max_by_key(|(n, _)| *n);
        match phrase {
            Some((n, kind)) => {
                found.push(kind);
                i += n;
            }
            None if EN_NEUTRAL.contains(&words[i]) => i += 1,
            None => return None,
        }
    }
    Some(())
}

/// The reply to small talk, in Chinese or English, and the one-tap follow-ups to offer.
pub fn reply(kind: SmallTalk, zh: bool) -> (String, Vec<String>) {
    let (zh_text, en_text) = match kind {
        SmallTalk::Greeting => (
            "您好！请问有什么可以帮您？可以直接问我运费、发货、退换货等问题，或发送订单号查询物流。",
            "Hi! How can I help? Ask me about shipping, delivery or returns, or send your order number to track it.",
        ),
        SmallTalk::Presence => ("在的！请问有什么可以帮您？", "I'm here! How can I help?"),
        SmallTalk::Thanks => (
            "不客气！还有其他问题随时问我。",
            "You're welcome! If there's anything else, just ask.",
        ),
        SmallTalk::Goodbye => (
            "感谢您的咨询，祝您购物愉快，再见！",
            "Thanks for getting in touch. Have a nice day!",
        ),
        SmallTalk::Ack => (
            "好的。还有什么可以帮您的吗？",
            "OK. Is there anything else I can help with?",
        ),
        SmallTalk::Feedback => (
            "抱歉没能帮到您。回复“人工”，我马上为您转接人工客服；也可以换个说法再问我。",
            "Sorry that didn't help. Type \"agent\" and I'll connect you to a person right away, or try asking in other words.",
        ),
    };
    let offer = match (kind, zh) {
        (SmallTalk::Feedback, true) => vec!["人工".to_owned()],
        (SmallTalk::Feedback, false) => vec!["agent".to_owned()],
        _ => Vec::new(),
    };
    let text = if zh { zh_text } else { en_text };
    (text.to_owned(), offer)
}

#[cfg(test)]
mod tests {
    use super::SmallTalk::*;
    use super::*;

    #[test]
    fn given_table_of_messages_when_recognised_then_only_whole_small_talk_matches() {
        let cases: &[(&str, Option<SmallTalk>)] = &[
            ("你好", Some(Greeting)),
            ("您好！", Some(Greeting)),
            ("客服你好", Some(Greeting)),
            ("亲，你好呀", Some(Greeting)),
            ("hi", Some(Greeting)),
            ("Hello there!", Some(Greeting)),
            ("hey guys", Some(Greeting)),
            ("good morning", Some(Greeting)),
            ("在吗", Some(Presence)),
            ("在吗？", Some(Presence)),
            ("你好，在吗", Some(Presence)),
            ("有人吗??", Some(Presence)),
            ("are you there?", Some(Presence)),
            ("hello, anyone there?", Some(Presence)),
            ("谢谢", Some(Thanks)),
            ("非常感谢！", Some(Thanks)),
            ("谢谢你啊", Some(Thanks)),
            ("thx", Some(Thanks)),
            ("Thank you so much", Some(Thanks)),
            ("ok thanks", Some(Thanks)),
            ("再见", Some(Goodbye)),
            ("好的，谢谢，没事了", Some(Goodbye)),
            ("bye", Some(Goodbye)),
            ("thanks, bye!", Some(Goodbye)),
            ("好的", Some(Ack)),
            ("嗯", Some(Ack)),
            ("嗯嗯", Some(Ack)),
            ("ok", Some(Ack)),
            ("OK!", Some(Ack)),
            ("got it", Some(Ack)),
            ("没用", Some(Feedback)),
            ("不对", Some(Feedback)),
            ("不对啊", Some(Feedback)),
            ("that didn't help", Some(Feedback)),
            ("That did not help.", Some(Feedback)),
            ("not helpful", Some(Feedback)),
            ("谢谢，不过没用", None),
            // A greeting inside a real question is the question.
            ("你好，运费怎么算", None),
            ("在吗？我想退货", None),
            ("hi, where is my order", None),
            ("hello I want to return my shoes", None),
            ("好评", None),
            ("不好", None),
            ("没用过", None),
            ("ok so how long does shipping take", None),
            ("you", None),
            ("客服", None),
            ("", None),
            ("123456", None),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(text, expected)| recognise(text) != *expected)
            .map(|(text, expected)| (text, expected, recognise(text)))
            .collect();
        assert!(
            wrong.is_empty(),
            "misjudged (text, expected, got): {wrong:?}"
        );
    }

    #[test]
    fn given_each_kind_when_replied_then_the_language_fits_and_feedback_offers_a_person() {
        for kind in [Greeting, Presence, Thanks, Goodbye, Ack, Feedback] {
            let (zh, _) = reply(kind, true);
            let (en, _) = reply(kind, false);
            assert!(zh.chars().any(is_cjk), "{kind:?}: {zh}");
            assert!(!en.chars().any(is_cjk), "{kind:?}: {en}");
        }
        let (_, offer) = reply(Feedback, true);
        assert!(offer.iter().all(|o| crate::wants_human(o)) && !offer.is_empty());
        let (_, offer) = reply(Feedback, false);
        assert!(offer.iter().all(|o| crate::wants_human(o)) && !offer.is_empty());
    }
}
