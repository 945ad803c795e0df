//! Text analysis shared by indexing and querying, so both see the same terms.
//!
//! 1. [`normalize`]: full-width forms folded to half-width, common traditional characters
//!    to simplified (`t2s.txt`), lowercase, and everything that is not a letter or digit
//!    (punctuation, emoji, symbols) becomes a word break.
//! 2. Each maximal run of CJK characters is segmented with jieba (dictionary only, no HMM:
//!    unknown words fall apart into characters), and some character bigrams are added (see
//!    `segment_cjk`), so a query still meets a paraphrase when jieba cuts the two
//!    differently ("优惠券" / "优惠", "满减" missing from the dictionary).
//! 3. Other runs are words (letters and digits); English words are stemmed.
//! 4. A small stopword list for both languages drops words that carry no topic.
//!
//! [`synonym_group`] relates words of the shop's domain (`synonyms.txt`, editable by ops):
//! the matcher adds a shared feature for each group, so 快递 meets 物流 without the two
//! becoming one word.
//!
//! The analysis is registered in tantivy as [`TOKENIZER`]. Changing what it produces must
//! bump [`ANALYZER_VERSION`]: bundles built by another version are rebuilt at load.

use jieba_rs::Jieba;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use tantivy::tokenizer::{
    Language, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer, TokenizerManager,
};

/// Name under which the analysis is registered in a tantivy index.
pub const TOKENIZER: &str = "kefu";

/// Version of the analysis; stored in every bundle.
pub const ANALYZER_VERSION: u16 = 2;

/// Words longer than this are noise (pasted URLs, keyboard mashing) and are dropped.
const MAX_WORD_CHARS: usize = 40;

/// One dictionary for the process: building it takes a noticeable time.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Function words that say nothing about what the customer asks.
const STOPWORDS: &[&str] = &[
    // Chinese particles, pronouns and question words.
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "哦",
    "嘛",
    "哈",
    "嗯",
    "呗",
    "么",
    "啦",
    "我",
    "你",
    "您",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "是",
    "在",
    "就",
    "都",
    "也",
    "和",
    "与",
    "还",
    "请",
    "请问",
    "一下",
    "这个",
    "那个",
    "怎么",
    "怎么样",
    "怎样",
    "如何",
    "什么",
    "可以",
    "能",
    "能不能",
    "可不可以",
    "是不是",
    "想",
    "要",
    "一个",
    // English function words.
    "a",
    "an",
    "the",
    "is",
    "are",
    "am",
    "was",
    "were",
    "be",
    "been",
    "being",
    "do",
    "does",
    "did",
    "i",
    "me",
    "my",
    "mine",
    "you",
    "your",
    "yours",
    "we",
    "our",
    "us",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "to",
    "of",
    "in",
    "on",
    "at",
    "for",
    "with",
    "and",
    "or",
    "but",
    "so",
    "if",
    "can",
    "could",
    "would",
    "should",
    "will",
    "shall",
    "may",
    "might",
    "must",
    "please",
    "what",
    "how",
    "s",
    "t",
    "d",
    "ll",
    "re",
    "ve",
    "m",
];

static STOPWORD_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOPWORDS.iter().copied().collect());

/// Traditional → simplified pairs, two characters each, whitespace separated.
const T2S: &str = include_str!("t2s.txt");

/// Synonym groups of the shop's domain, one group per line.
const SYNONYMS: &str = include_str!("synonyms.txt");

static T2S_MAP: LazyLock<HashMap<char, char>> = LazyLock::new(|| {
    T2S.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| {
            let mut chars = pair.chars();
            match (chars.next(), chars.next(), chars.next()) {
                (Some(from), Some(to), None) if from != to => Some((from, to)),
                _ => None,
            }
        })
        .collect()
});

/// Analysed term → group number. A word in several groups keeps its first.
static SYNONYM_MAP: LazyLock<HashMap<String, u32>> = LazyLock::new(|| parse_synonyms(SYNONYMS));

/// Reads synonym groups: one per line, words separated by whitespace, `#` lines are notes.
/// Each word is keyed by its analysed form, so "Shipping" and "shipped" meet "ship".
fn parse_synonyms(source: &str) -> HashMap<String, u32> {
    let mut map = HashMap::new();
    let groups = source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    for (group, line) in groups.enumerate() {
        for word in line.split_whitespace() {
            let key = if word.chars().any(is_cjk) {
                normalize(word)
            } else {
                match terms(word).into_iter().next() {
                    Some(stem) => stem,
                    None => continue,
                }
            };
            map.entry(key).or_insert(group as u32);
        }
    }
    map
}

/// The synonym group of an analysed term (as [`terms`] returns it), if it has one.
pub fn synonym_group(term: &str) -> Option<u32> {
    SYNONYM_MAP.get(term).copied()
}

/// Builds the jieba dictionary now rather than on the first message (call at cold start).
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// Folds width, lowercases, and turns every run of non-alphanumeric characters into one
/// space. The result is what stopwords, intents and paraphrase comparison work on.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_break = false;
    for c in text.chars().map(fold_width).map(simplify) {
        if c.is_alphanumeric() {
            if pending_break && !out.is_empty() {
                out.push(' ');
            }
            pending_break = false;
            out.extend(c.to_lowercase());
        } else {
            pending_break = true;
        }
    }
    out
}

/// Full-width ASCII forms (Ａ, ９, ！) and the ideographic space to their plain forms.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// A traditional Chinese character to its simplified form, when it is a common one.
fn simplify(c: char) -> char {
    if is_cjk(c) {
        T2S_MAP.get(&c).copied().unwrap_or(c)
    } else {
        c
    }
}

/// The words of the CJK runs of normalised text, stopwords included, as jieba's search
/// mode cuts them: each word, and the known shorter words inside a long one ("退货流程",
/// "退货", "流程"), with unknown words guessed by its HMM.
pub fn cjk_words(normalized: &str) -> Vec<&str> {
    normalized
        .split(|c: char| !is_cjk(c))
        .filter(|run| !run.is_empty())
        .flat_map(|run| {
            JIEBA
                .cut_for_search(run, true)
                .into_iter()
                .map(|token| token.word)
        })
        .collect()
}

/// Whether `c` belongs to a script written without spaces (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}'   // Han extension A
        | '\u{4E00}'..='\u{9FFF}'   // Han
        | '\u{AC00}'..='\u{D7AF}'   // Hangul
        | '\u{F900}'..='\u{FAFF}'   // Han compatibility
        | '\u{20000}'..='\u{2EBEF}' // Han extensions B–F
    )
}

fn is_stopword(word: &str) -> bool {
    STOPWORD_SET.contains(word)
}

/// Splits normalised text into unstemmed tokens.
fn segment(normalized: &str, tokens: &mut Vec<Token>) {
    let mut push = |text: &str, from: usize, tokens: &mut Vec<Token>| {
        tokens.push(Token {
            offset_from: from,
            offset_to: from + text.len(),
            position: tokens.len(),
            text: text.to_owned(),
            position_length: 1,
        });
    };
    let mut offset = 0;
    for word in normalized.split(' ') {
        let mut rest = word;
        let mut run_offset = offset;
        while let Some(first) = rest.chars().next() {
            let cjk = is_cjk(first);
            let end = rest
                .char_indices()
                .find(|&(_, c)| is_cjk(c) != cjk)
                .map_or(rest.len(), |(i, _)| i);
            let run = &rest[..end];
            if cjk {
                segment_cjk(run, run_offset, tokens, &mut push);
            } else if run.chars().count() <= MAX_WORD_CHARS && !is_stopword(run) {
                push(run, run_offset, tokens);
            }
            rest = &rest[end..];
            run_offset += end;
        }
        offset += word.len() + 1;
    }
}

/// jieba words plus two kinds of character bigram: those inside words of three or more
/// characters ("优惠券" → "优惠", "惠券"), so a shorter form still matches, and those
/// joining single characters jieba could not place ("满减" → "满", "减", "满减"), which
/// recovers words missing from its dictionary. Bigrams across two known words ("几天|能")
/// would only add noise.
fn segment_cjk(
    run: &str,
    run_offset: usize,
    tokens: &mut Vec<Token>,
    push: &mut impl FnMut(&str, usize, &mut Vec<Token>),
) {
    let words = JIEBA.cut(run, false);
    for word in &words {
        if !is_stopword(word.word) {
            push(word.word, run_offset + word.byte_start, tokens);
        }
    }
    let mut emitted: Vec<&str> = Vec::new();
    let mut bigram = |start: usize, end: usize, tokens: &mut Vec<Token>| {
        let text = &run[start..end];
        if !is_stopword(text) && !emitted.contains(&text) {
            emitted.push(text);
            push(text, run_offset + start, tokens);
        }
    };
    for word in &words {
        let chars: Vec<(usize, char)> = word.word.char_indices().collect();
        if chars.len() < 3 {
            continue;
        }
        for pair in chars.windows(2) {
            let start = word.byte_start + pair[0].0;
            bigram(
                start,
                start + pair[0].1.len_utf8() + pair[1].1.len_utf8(),
                tokens,
            );
        }
    }
    let single =
        |word: &jieba_rs::Token<'_>| word.word.chars().count() == 1 && !is_stopword(word.word);
    for pair in words.windows(2) {
        if single(&pair[0]) && single(&pair[1]) {
            bigram(pair[0].byte_start, pair[1].byte_end, tokens);
        }
    }
}

/// The kefu analysis as a tantivy [`Tokenizer`] (before stemming; see [`analyzer`]).
#[derive(Clone, Default)]
pub struct KefuTokenizer {
    tokens: Vec<Token>,
}

/// Token stream over tokens computed up front.
pub struct KefuTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    next: usize,
}

impl Tokenizer for KefuTokenizer {
    type TokenStream<'a> = KefuTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> KefuTokenStream<'a> {
        self.tokens.clear();
        segment(&normalize(text), &mut self.tokens);
        KefuTokenStream {
            tokens: &mut self.tokens,
            next: 0,
        }
    }
}

impl TokenStream for KefuTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// The full analysis: segmentation, then English stemming (which leaves CJK alone).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(KefuTokenizer::default())
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Registers the analysis as [`TOKENIZER`].
pub fn register(tokenizers: &TokenizerManager) {
    tokenizers.register(TOKENIZER, analyzer());
}

/// The terms of `text`, in order, as the index sees them.
pub fn terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(std::mem::take(&mut stream.token_mut().text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_full_width_and_punctuation_when_normalized_then_plain_words_remain() {
        assert_eq!(normalize("ＡＢＣ１２３！"), "abc123");
        assert_eq!(normalize("  退货，怎么办？？😀 OK!  "), "退货 怎么办 ok");
        assert_eq!(normalize("Hello,\u{3000}World"), "hello world");
        assert_eq!(normalize("🙂🙂"), "");
    }

    #[test]
    fn given_traditional_chinese_when_normalized_then_it_reads_as_simplified() {
        assert_eq!(normalize("這個訂單還沒發貨"), "这个订单还没发货");
        assert_eq!(terms("運費怎麼算"), terms("运费怎么算"));
        // Characters without a simplified form are left alone.
        assert_eq!(normalize("退款"), "退款");
    }

    #[test]
    fn given_synonym_table_when_looked_up_then_related_words_share_a_group() {
        let courier = synonym_group("快递").expect("快递 has a group");
        assert_eq!(synonym_group("物流"), Some(courier));
        assert_eq!(synonym_group("包裹"), Some(courier));
        let stem = terms("shipping").remove(0);
        assert_eq!(synonym_group(&stem), Some(courier));
        assert_eq!(synonym_group("发票"), synonym_group("开票"));
        assert_ne!(synonym_group("发票"), Some(courier));
        assert_eq!(synonym_group("天气"), None);
    }

    #[test]
    fn given_ops_synonym_source_when_parsed_then_notes_and_blanks_are_skipped() {
        let map = parse_synonyms("# note\n\n售后 维修\nRefunds refund\n");
        assert_eq!(map.get("售后"), Some(&0));
        assert_eq!(map.get("维修"), Some(&0));
        assert_eq!(map.get("refund"), Some(&1));
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn given_mixed_text_when_cut_into_cjk_words_then_long_words_also_yield_their_parts() {
        let normalized = normalize("iPhone 的售后服务中心在哪");
        let words = cjk_words(&normalized);
        assert!(words.contains(&"售后服务"), "{words:?}");
        assert!(
            words.contains(&"服务") && words.contains(&"中心"),
            "{words:?}"
        );
        assert!(words.contains(&"的"), "stopwords stay: {words:?}");
        assert!(words.iter().all(|w| w.chars().all(is_cjk)), "{words:?}");
        assert!(cjk_words("hello world").is_empty());
    }

    #[test]
    fn given_chinese_when_analyzed_then_words_and_bigrams_without_stopwords() {
        let terms = terms("我想退货，怎么办？");
        assert!(terms.contains(&"退货".to_owned()), "{terms:?}");
        assert!(!terms.iter().any(|t| t == "我" || t == "想"), "{terms:?}");
        // "退货" is both a jieba word and a bigram: counted once.
        assert_eq!(
            terms.iter().filter(|t| *t == "退货").count(),
            1,
            "{terms:?}"
        );
    }

    #[test]
    fn given_differently_segmented_paraphrases_when_analyzed_then_bigrams_overlap() {
        let a: HashSet<_> = terms("顺丰快递能发吗").into_iter().collect();
        let b: HashSet<_> = terms("可以发顺丰吗").into_iter().collect();
        assert!(a.contains("顺丰") && b.contains("顺丰"), "{a:?} {b:?}");
    }

    #[test]
    fn given_english_when_analyzed_then_words_are_stemmed_and_stopwords_dropped() {
        assert_eq!(
            terms("How do I return the shoes I ordered?"),
            vec!["return", "shoe", "order"]
        );
        assert_eq!(terms("Refunds"), terms("refund"));
    }

    #[test]
    fn given_mixed_scripts_when_analyzed_then_runs_are_split_and_cjk_is_not_stemmed() {
        let terms = terms("iPhone15怎么退款");
        assert_eq!(terms[0], "iphone15");
        assert!(terms.contains(&"退款".to_owned()), "{terms:?}");
    }

    #[test]
    fn given_only_noise_when_analyzed_then_no_terms() {
        assert!(terms("").is_empty());
        assert!(terms("？！。。。 😀").is_empty());
        assert!(terms("the of and").is_empty());
        assert!(terms(&"x".repeat(MAX_WORD_CHARS + 1)).is_empty());
    }

    #[test]
    fn given_registered_analyzer_when_used_through_tantivy_then_terms_match() {
        let manager = TokenizerManager::default();
        register(&manager);
        let mut analyzer = manager.get(TOKENIZER).expect("registered");
        let mut stream = analyzer.token_stream("Shipping 运费");
        let mut seen = Vec::new();
        while stream.advance() {
            seen.push(stream.token().text.clone());
        }
        assert_eq!(seen, terms("Shipping 运费"));
        assert_eq!(seen[0], "ship");
    }
}
