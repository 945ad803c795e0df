//! SMS segmenting: how long a text is in SMS terms, and how to split it into parts.
//!
//! A text that fits the GSM 03.38 alphabet is sent in GSM-7: 160 septets in one SMS, 153
//! per part of a concatenated SMS (the header takes the rest); the extension table's
//! characters (`€ [ ] { } \ ^ ~ |` and form feed) take two septets. Any other character
//! makes the whole text UCS-2: 70 UTF-16 units in one SMS, 67 per part. Parts never split
//! a character (so never a surrogate pair or an escape sequence) and end at whitespace or
//! punctuation when one is near.

/// The encoding a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, 7 bits per character.
    Gsm7,
    /// UCS-2 (UTF-16 units), for everything else (Chinese, emoji, …).
    Ucs2,
}

impl Encoding {
    /// Units that fit one single SMS.
    pub fn single_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }

    /// Units per part of a concatenated SMS.
    pub fn part_limit(self) -> usize {
        match self {
            Encoding::Gsm7 => 153,
            Encoding::Ucs2 => 67,
        }
    }

    /// Units `c` takes in this encoding.
    pub fn units(self, c: char) -> usize {
        match self {
            Encoding::Gsm7 if is_gsm7_extension(c) => 2,
            Encoding::Gsm7 => 1,
            Encoding::Ucs2 => c.len_utf16(),
        }
    }
}

/// GSM 03.38 default alphabet (the escape itself excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 extension table: sent as escape + character.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

fn is_gsm7_basic(c: char) -> bool {
    GSM7_BASIC.contains(c)
}

fn is_gsm7_extension(c: char) -> bool {
    GSM7_EXTENSION.contains(c)
}

/// The encoding `text` needs.
pub fn encoding(text: &str) -> Encoding {
    if text
        .chars()
        .all(|c| is_gsm7_basic(c) || is_gsm7_extension(c))
    {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The length of `text` in units of `encoding` (septets or UTF-16 units).
pub fn units(text: &str, encoding: Encoding) -> usize {
    text.chars().map(|c| encoding.units(c)).sum()
}

/// Splits `text` into the SMS it is sent as: one when it fits a single SMS, else parts
/// of at most [`Encoding::part_limit`] units. Empty text gives no parts.
pub fn split(text: &str) -> Vec<String> {
    let encoding = encoding(text);
    if units(text, encoding) <= encoding.single_limit() {
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![text.to_owned()]
        };
    }
    split_by(text, encoding.part_limit(), |c| encoding.units(c))
}

/// Splits `text` into pieces of at most `max` UTF-16 units each, for APIs that segment
/// themselves but cap the length of one request (Twilio: 1600 characters).
pub fn split_utf16(text: &str, max: usize) -> Vec<String> {
    split_by(text, max, char::len_utf16)
}

/// Where a part may end: after whitespace or punctuation (ASCII or CJK).
fn is_break(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || matches!(
            c,
            '，' | '。' | '！' | '？' | '；' | '：' | '、' | '）' | '》' | '」' | '…'
        )
}

/// How far back from a full part we look for a break: farther would make parts short.
const BREAK_WINDOW: usize = 3; // a third of the part

/// Greedy split by `cost` per char with at most `max` per part; parts end at a break
/// character in the last third of the part when there is one, and the whitespace at a
/// boundary is dropped. Never returns an empty part.
fn split_by(text: &str, max: usize, cost: impl Fn(char) -> usize) -> Vec<String> {
    let max = max.max(2); // a part must hold any one character
    let mut parts = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        // Skip whitespace left over from the previous boundary.
        while start < chars.len() && chars[start].is_whitespace() && !parts.is_empty() {
            start += 1;
        }
        if start >= chars.len() {
            break;
        }
        let mut used = 0;
        let mut end = start;
        while end < chars.len() && used + cost(chars[end]) <= max {
            used += cost(chars[end]);
            end += 1;
        }
        if end < chars.len() {
            let earliest = start + (end - start) * (BREAK_WINDOW - 1) / BREAK_WINDOW;
            if let Some(at) = (earliest..end).rev().find(|&i| is_break(chars[i])) {
                end = at + 1;
            }
        }
        let part: String = chars[start..end].iter().collect();
        let trimmed = part.trim_end();
        parts.push(if trimmed.is_empty() {
            part
        } else {
            trimmed.to_owned()
        });
        start = end;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_short_texts_when_split_then_one_part_each() {
        assert_eq!(split("Hello"), vec!["Hello"]);
        assert_eq!(split(&"a".repeat(160)).len(), 1);
        assert_eq!(split(&"好".repeat(70)).len(), 1);
        assert!(split("").is_empty());
    }

    #[test]
    fn given_gsm_text_when_measured_then_extension_characters_count_two() {
        assert_eq!(encoding("Price: 5€ [sale]"), Encoding::Gsm7);
        assert_eq!(units("5€", Encoding::Gsm7), 3);
        // 80 euro signs are 160 septets: one SMS; 81 are two parts.
        assert_eq!(split(&"€".repeat(80)).len(), 1);
        let parts = split(&"€".repeat(81));
        assert_eq!(parts.len(), 2);
        assert!(
            parts
                .iter()
                .all(|p| units(p, Encoding::Gsm7) <= 153 && p.chars().all(|c| c == '€'))
        );
    }

    #[test]
    fn given_long_english_when_split_then_parts_of_153_ending_at_words() {
        let text = "Your order has shipped and will arrive soon. ".repeat(8);
        assert!(text.len() > 160);
        let parts = split(&text);
        assert!(parts.len() >= 3);
        for part in &parts {
            assert!(units(part, Encoding::Gsm7) <= 153, "{part}");
            assert!(!part.starts_with(' ') && !part.ends_with(' '));
        }
        // Every part but the last ends at a word boundary.
        for part in &parts[..parts.len() - 1] {
            let last = part.chars().last().unwrap();
            assert!(last == '.' || text.contains(&format!("{part} ")), "{part}");
        }
        let joined: String = parts.join(" ");
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }

    #[test]
    fn given_chinese_when_split_then_ucs2_parts_of_67_at_punctuation() {
        let sentence = "您的订单已发货，预计三天内送达。";
        let text = sentence.repeat(10);
        assert_eq!(encoding(&text), Encoding::Ucs2);
        let parts = split(&text);
        assert_eq!(parts.concat(), text);
        for part in &parts {
            assert!(units(part, Encoding::Ucs2) <= 67);
        }
        assert!(parts[0].ends_with('，') || parts[0].ends_with('。'));
    }

    #[test]
    fn given_one_non_gsm_character_when_split_then_the_whole_text_is_ucs2() {
        let text = format!("{}é中", "a".repeat(68));
        assert_eq!(encoding(&text), Encoding::Ucs2);
        assert_eq!(split(&text).len(), 1); // 70 units
        let text = format!("{}中", "a".repeat(70));
        assert_eq!(split(&text).len(), 2);
    }

    #[test]
    fn given_emoji_when_split_then_no_surrogate_pair_is_cut() {
        let text = "😀".repeat(50); // 100 UTF-16 units, no break characters
        let parts = split(&text);
        assert_eq!(parts.concat(), text);
        assert_eq!(units(&parts[0], Encoding::Ucs2), 66); // 33 emoji, not 33.5
        for part in &parts {
            assert!(part.chars().all(|c| c == '😀'));
            assert!(units(part, Encoding::Ucs2) <= 67);
        }
    }

    #[test]
    fn given_a_limit_in_utf16_units_when_split_then_each_piece_fits() {
        let text = "word ".repeat(500);
        let pieces = split_utf16(text.trim(), 1600);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.encode_utf16().count() <= 1600));
        assert_eq!(split_utf16("short", 1600), vec!["short"]);
    }
}
