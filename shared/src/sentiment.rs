//! How the customer feels, from the words they use: a lexicon score for Chinese and English,
//! and complaint intent ("我要投诉", "I'll file a chargeback").
//!
//! No model: a few hundred weighted cues in `lexicon/*.txt`, so ops and reviewers can read
//! exactly why a message scored as it did, and a wrong cue is fixed by editing one line.
//!
//! # How a message is scored
//!
//! 1. Tokens: full-width forms are folded, each Han character and each emoji is one piece,
//!    each English word one lowercased piece (apostrophes dropped: "don't" → `dont`; the
//!    word remembers whether it was written in capitals), ASCII emoticons (`:(`) one piece.
//!    Clause punctuation (`,.;!?，。！？…` and line breaks) is a break.
//! 2. Cues: pieces are matched against the lexicon longest first, so an idiom wins over its
//!    parts ("不错" is positive, not "不" + "错"; "不好意思" is neutral; "太好了" is one cue).
//! 3. Within a clause: a *negator* ("不", "没有", "not", "don't") flips the next sentiment
//!    term within [`NEGATION_SCOPE`] pieces (a negated positive keeps 80 % of its weight, a
//!    negated negative only 50 %: "not bad" is mildly positive); an *intensifier* ("非常",
//!    "very") multiplies the next term, a diminisher ("有点", "a bit") is an intensifier
//!    below one, and an intensifier right after a negator softens instead ("不太满意",
//!    "not very good" are mild); a *trailing* intensifier multiplies the term just before it
//!    ("好极了", "烦死了", "not good at all"); a term written in capitals counts 1.5×.
//! 4. A *contrast* ("但是", "but") halves what came before it: the customer's point follows.
//! 5. Punctuation: each `!` raises the magnitude by 15 % (at most four count); a run of
//!    question marks, or `?!`, is frustration and adds a small negative amount.
//! 6. The sum `x` becomes `tanh(x / 2)`, in −1 … 1: one clear cue (about ±1.5) lands near
//!    ±0.6, several strong cues approach ±1.
//!
//! # Lexicon files
//!
//! UTF-8 text; `#` starts a comment line; `[section]` lines switch the section; an entry is
//! the term, then (for weighted sections) whitespace and a number. Sections: `sentiment`
//! (weight, negative = unhappy), `negator`, `intensifier` (factor), `trailing` (factor),
//! `contrast`, `neutral` (idioms that contain a cue but mean nothing: "你好", "差不多",
//! "good morning"), `complaint` (a trailing `$` means the phrase must end its clause).
//! Terms are tokenised like messages, so "don't" and "dont" are the same entry.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::LazyLock;

/// Pieces after a negator within which a sentiment term is still negated.
pub const NEGATION_SCOPE: u32 = 3;

/// Pieces after an intensifier within which it still applies ("so very bad").
const BOOST_SCOPE: u32 = 2;

/// Pieces after a term within which a trailing intensifier still applies to it.
const TRAILING_SCOPE: u32 = 2;

/// A negated positive keeps this share of its weight, with the sign flipped.
const NEGATED_POSITIVE: f32 = -0.8;

/// A negated negative keeps this share, flipped: "not bad" is only mildly good.
const NEGATED_NEGATIVE: f32 = -0.5;

/// An intensifier right after a negator softens ("不太好", "not very good").
const NEGATED_BOOST: f32 = 0.5;

/// A term written in capitals ("SCAM") counts this much more.
const CAPS_FACTOR: f32 = 1.5;

/// What came before a contrast ("但是", "but") keeps this share.
const BEFORE_CONTRAST: f32 = 0.5;

/// Magnitude added per `!`, for at most [`MAX_EXCLAIMS`] of them.
const EXCLAIM_STEP: f32 = 0.15;
const MAX_EXCLAIMS: u32 = 4;

/// Added per run of `??` or `?!` (at most two runs count).
const FRUSTRATION: f32 = -0.5;
const MAX_FRUSTRATION: u32 = 2;

/// The raw sum is divided by this before `tanh`.
const SCALE: f32 = 2.0;

/// Only the start of very long messages (pasted emails) is read: the cost stays bounded.
const MAX_CHARS: usize = 4000;

/// How far before a complaint word a negator cancels it: Chinese puts it right before
/// ("不想投诉", "没有投诉"), English allows a few words ("don't want to complain").
const COMPLAINT_NEGATION_HAN: u32 = 2;
const COMPLAINT_NEGATION_WORDS: u32 = 3;

const LEXICON_FILES: &[(&str, &str)] = &[
    ("zh.txt", include_str!("lexicon/zh.txt")),
    ("en.txt", include_str!("lexicon/en.txt")),
    ("emoji.txt", include_str!("lexicon/emoji.txt")),
];

static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    let (lexicon, errors) = Lexicon::parse(LEXICON_FILES);
    for error in &errors {
        tracing::warn!(%error, "sentiment lexicon entry skipped");
    }
    lexicon
});

/// Parses the lexicon now rather than on the first message (call at cold start).
pub fn warm_up() {
    LazyLock::force(&LEXICON);
}

/// The sentiment of `text`, from −1.0 (furious) through 0.0 (neutral or unknown) to 1.0
/// (delighted). See the module docs for the rules.
pub fn score(text: &str) -> f32 {
    let lexicon = &*LEXICON;
    let tokens = tokenize(text, &lexicon.emoticons);
    let units = match_cues(&tokens, &lexicon.sentiment, lexicon.max_pieces);
    let raw = Tally::default().run(&units);
    // `+ 0.0` turns the −0.0 of an empty sum into 0.0.
    (raw / SCALE).tanh().clamp(-1.0, 1.0) + 0.0
}

/// Whether `text` announces or asks about a complaint: "我要投诉", "给差评", "打12315",
/// "I will file a complaint", "chargeback", "my lawyer".
///
/// Asking *how* to complain ("投诉电话是多少", "how do I file a complaint") counts: the
/// customer means to complain, and a person should hear it before it reaches a regulator.
/// Negated mentions do not ("我不想投诉", "no complaints, great service").
pub fn is_complaint(text: &str) -> bool {
    let lexicon = &*LEXICON;
    let tokens = tokenize(text, &lexicon.emoticons);
    let units = match_cues(&tokens, &lexicon.complaint, lexicon.max_pieces);
    units.iter().enumerate().any(|(i, unit)| {
        let Unit::Piece {
            cue: Some(ComplaintCue::Trigger { at_clause_end }),
            ..
        } = unit
        else {
            return false;
        };
        let ends_clause = matches!(units.get(i + 1), None | Some(Unit::Break { .. }));
        (!at_clause_end || ends_clause) && !complaint_negated(&units[..i])
    })
}

/// Whether a negator sits close enough before the complaint word whose units precede.
fn complaint_negated(before: &[Unit<'_, ComplaintCue>]) -> bool {
    let mut distance = 0;
    for unit in before.iter().rev() {
        let Unit::Piece { cue, han, .. } = unit else {
            return false;
        };
        distance += 1;
        let reach = if *han {
            COMPLAINT_NEGATION_HAN
        } else {
            COMPLAINT_NEGATION_WORDS
        };
        if distance > reach {
            return false;
        }
        if matches!(cue, Some(ComplaintCue::Negator)) {
            return true;
        }
    }
    false
}

/// The running state while a message's cues are summed.
#[derive(Default)]
struct Tally {
    contributions: Vec<f32>,
    exclaims: u32,
    frustration: u32,
    /// Pieces since the active negator.
    negation: Option<u32>,
    /// Pending intensifier factor and pieces since it.
    boost: Option<(f32, u32)>,
    /// The last term's contribution index and pieces since it.
    last: Option<(usize, u32)>,
}

impl Tally {
    fn run(mut self, units: &[Unit<'_, Cue>]) -> f32 {
        for unit in units {
            match unit {
                Unit::Break {
                    exclaims,
                    questions,
                } => {
                    self.exclaims += exclaims;
                    if *questions >= 2 || (*questions >= 1 && *exclaims >= 1) {
                        self.frustration += 1;
                    }
                    self.end_clause();
                }
                Unit::Piece { cue, caps, .. } => self.piece(*cue, *caps),
            }
        }
        let frustration = FRUSTRATION * self.frustration.min(MAX_FRUSTRATION) as f32;
        let sum: f32 = self.contributions.iter().sum::<f32>() + frustration;
        sum * (1.0 + EXCLAIM_STEP * self.exclaims.min(MAX_EXCLAIMS) as f32)
    }

    fn piece(&mut self, cue: Option<&Cue>, caps: bool) {
        match cue {
            Some(Cue::Term(weight)) => self.term(*weight, caps),
            Some(Cue::Negator) => {
                // "不是不好": a second negator cancels the first.
                self.negation = match self.negation {
                    Some(_) => None,
                    None => Some(0),
                };
            }
            Some(Cue::Intensifier(factor)) => {
                let factor = if self.negation.is_some() && *factor > 1.0 {
                    NEGATED_BOOST
                } else {
                    *factor
                };
                let pending = self.boost.map_or(1.0, |(f, _)| f);
                self.boost = Some((pending * factor, 0));
            }
            Some(Cue::Trailing(factor)) => {
                if let Some((index, age)) = self.last
                    && age <= TRAILING_SCOPE
                {
                    self.contributions[index] *= *factor;
                }
            }
            Some(Cue::Contrast) => {
                for c in &mut self.contributions {
                    *c *= BEFORE_CONTRAST;
                }
                self.end_clause();
            }
            Some(Cue::Neutral) | None => self.age(),
        }
    }

    fn term(&mut self, weight: f32, caps: bool) {
        let mut value = weight;
        if caps {
            value *= CAPS_FACTOR;
        }
        if let Some((factor, _)) = self.boost.take() {
            value *= factor;
        }
        if self.negation.take().is_some() {
            value *= if value > 0.0 {
                NEGATED_POSITIVE
            } else {
                NEGATED_NEGATIVE
            };
        }
        self.contributions.push(value);
        self.last = Some((self.contributions.len() - 1, 0));
    }

    /// A piece that is no cue: pending modifiers move one step further away.
    fn age(&mut self) {
        self.negation = self
            .negation
            .map(|n| n + 1)
            .filter(|n| *n <= NEGATION_SCOPE);
        self.boost = self
            .boost
            .map(|(f, n)| (f, n + 1))
            .filter(|(_, n)| *n <= BOOST_SCOPE);
        self.last = self.last.map(|(i, n)| (i, n + 1));
    }

    fn end_clause(&mut self) {
        self.negation = None;
        self.boost = None;
        self.last = None;
    }
}

/// What a sentiment lexicon entry does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cue {
    Term(f32),
    Negator,
    Intensifier(f32),
    Trailing(f32),
    Contrast,
    Neutral,
}

/// What a complaint lexicon entry does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ComplaintCue {
    Trigger { at_clause_end: bool },
    Negator,
    Neutral,
}

/// The parsed lexicon files.
struct Lexicon {
    sentiment: HashMap<String, Cue>,
    complaint: HashMap<String, ComplaintCue>,
    /// ASCII emoticons, longest first, recognised before ordinary tokenisation.
    emoticons: Vec<String>,
    /// The most pieces any entry spans (bounds the longest-match search).
    max_pieces: usize,
}

impl Lexicon {
    /// Parses `(name, text)` files; bad lines are reported and skipped.
    fn parse(files: &[(&str, &str)]) -> (Lexicon, Vec<String>) {
        let mut errors = Vec::new();
        let mut lines = Vec::new();
        for (name, text) in files {
            let mut section = None;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                let at = || format!("{name}:{}", number + 1);
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    section = Some(header.to_owned());
                    continue;
                }
                match &section {
                    Some(section) => lines.push((at(), section.clone(), line.to_owned())),
                    None => errors.push(format!("{}: entry before any [section]", at())),
                }
            }
        }
        let mut emoticons: Vec<String> = lines
            .iter()
            .filter(|(_, section, _)| section == "sentiment")
            .filter_map(|(_, _, line)| split_weight(line).map(|(term, _)| term.to_owned()))
            .filter(|term| term.starts_with(|c: char| c.is_ascii_punctuation()))
            .collect();
        emoticons.sort_by_key(|e| std::cmp::Reverse(e.len()));

        let mut lexicon = Lexicon {
            sentiment: HashMap::new(),
            complaint: HashMap::new(),
            emoticons,
            max_pieces: 1,
        };
        for (at, section, line) in &lines {
            if let Err(error) = lexicon.add(section, line) {
                errors.push(format!("{at}: {error}"));
            }
        }
        (lexicon, errors)
    }

    fn add(&mut self, section: &str, line: &str) -> Result<(), String> {
        match section {
            "sentiment" => {
                let (term, weight) = weighted(line)?;
                self.insert_sentiment(term, Cue::Term(weight))
            }
            "intensifier" => {
                let (term, factor) = weighted(line)?;
                self.insert_sentiment(term, Cue::Intensifier(factor))
            }
            "trailing" => {
                let (term, factor) = weighted(line)?;
                self.insert_sentiment(term, Cue::Trailing(factor))
            }
            "negator" => {
                self.insert_sentiment(line, Cue::Negator)?;
                self.insert_complaint(line, ComplaintCue::Negator)
            }
            "contrast" => self.insert_sentiment(line, Cue::Contrast),
            "neutral" => {
                self.insert_sentiment(line, Cue::Neutral)?;
                self.insert_complaint(line, ComplaintCue::Neutral)
            }
            "complaint" => {
                let (term, at_clause_end) = match line.strip_suffix('$') {
                    Some(term) => (term.trim_end(), true),
                    None => (line, false),
                };
                self.insert_complaint(term, ComplaintCue::Trigger { at_clause_end })
            }
            other => Err(format!("unknown section [{other}]")),
        }
    }

    fn insert_sentiment(&mut self, term: &str, cue: Cue) -> Result<(), String> {
        let key = self.key(term)?;
        match self.sentiment.entry(key) {
            Entry::Occupied(_) => Err(format!("`{term}` is listed twice")),
            Entry::Vacant(slot) => {
                slot.insert(cue);
                Ok(())
            }
        }
    }

    fn insert_complaint(&mut self, term: &str, cue: ComplaintCue) -> Result<(), String> {
        let key = self.key(term)?;
        match self.complaint.entry(key) {
            Entry::Occupied(_) => Err(format!("`{term}` is listed twice")),
            Entry::Vacant(slot) => {
                slot.insert(cue);
                Ok(())
            }
        }
    }

    /// The lookup key of an entry: its pieces joined as messages' pieces are.
    fn key(&mut self, term: &str) -> Result<String, String> {
        let tokens = tokenize(term, &self.emoticons);
        if tokens.is_empty() || tokens.iter().any(|t| matches!(t, Token::Break { .. })) {
            return Err(format!("`{term}` is not one phrase"));
        }
        self.max_pieces = self.max_pieces.max(tokens.len());
        Ok(join(&tokens))
    }
}

/// [`split_weight`], or why the line is not a weighted entry.
fn weighted(line: &str) -> Result<(&str, f32), String> {
    split_weight(line).ok_or_else(|| format!("`{line}` needs a term and a number"))
}

/// Splits "term<whitespace>number".
fn split_weight(line: &str) -> Option<(&str, f32)> {
    let (term, number) = line.rsplit_once(char::is_whitespace)?;
    let number: f32 = number.parse().ok()?;
    let term = term.trim();
    (!term.is_empty() && number.is_finite()).then_some((term, number))
}

/// One piece of a message or a run of clause punctuation.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// One Han character, one emoji or emoticon, or one lowercased English word.
    Piece {
        text: String,
        /// An alphanumeric word (joined to a neighbouring word with a space in keys).
        word: bool,
        /// Written in capitals ("SCAM"; at least two letters).
        caps: bool,
    },
    /// Clause punctuation, with the `!` and `?` it contained.
    Break { exclaims: u32, questions: u32 },
}

/// Splits `text` into [`Token`]s (see the module docs).
fn tokenize(text: &str, emoticons: &[String]) -> Vec<Token> {
    let text: String = text.chars().take(MAX_CHARS).map(fold_width).collect();
    let mut tokens = Vec::new();
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_punctuation()
            && let Some(emoticon) = emoticons.iter().find(|e| rest.starts_with(e.as_str()))
        {
            tokens.push(Token::Piece {
                text: emoticon.clone(),
                word: false,
                caps: false,
            });
            rest = &rest[emoticon.len()..];
            continue;
        }
        let len = if is_cjk(c) {
            tokens.push(Token::Piece {
                text: c.to_string(),
                word: false,
                caps: false,
            });
            c.len_utf8()
        } else if c.is_alphanumeric() {
            let len = rest
                .char_indices()
                .find(|&(_, c)| !(c.is_alphanumeric() && !is_cjk(c) || is_apostrophe(c)))
                .map_or(rest.len(), |(i, _)| i);
            tokens.push(word_token(&rest[..len]));
            len
        } else if let Some((exclaims, questions)) = clause_mark(c) {
            match tokens.last_mut() {
                Some(Token::Break {
                    exclaims: e,
                    questions: q,
                }) => {
                    *e += exclaims;
                    *q += questions;
                }
                _ => tokens.push(Token::Break {
                    exclaims,
                    questions,
                }),
            }
            c.len_utf8()
        } else {
            if is_symbol(c) {
                tokens.push(Token::Piece {
                    text: c.to_string(),
                    word: false,
                    caps: false,
                });
            }
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    tokens
}

fn word_token(raw: &str) -> Token {
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    Token::Piece {
        text: raw
            .chars()
            .filter(|c| !is_apostrophe(*c))
            .flat_map(char::to_lowercase)
            .collect(),
        word: true,
        caps: letters >= 2 && raw.chars().all(|c| !c.is_lowercase()),
    }
}

/// Full-width ASCII forms (Ａ, ！) and the ideographic space to their plain forms.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}')
}

/// Punctuation that ends a clause, as `(exclamation marks, question marks)` it adds.
fn clause_mark(c: char) -> Option<(u32, u32)> {
    match c {
        '!' => Some((1, 0)),
        '?' => Some((0, 1)),
        ',' | '.' | ';' | ':' | '\n' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '。' | '、'
        | '…' | '“' | '”' | '【' | '】' | '「' | '」' | '《' | '》' | '（' | '）' => {
            Some((0, 0))
        }
        _ => None,
    }
}

/// Emoji and other symbols (a lexicon entry may give them a weight); punctuation,
/// whitespace, variation selectors, joiners and skin-tone modifiers are not.
fn is_symbol(c: char) -> bool {
    !(c.is_whitespace()
        || c.is_ascii()
        || matches!(c,
            '\u{2000}'..='\u{206F}'     // general punctuation, zero-width joiner
            | '\u{3000}'..='\u{303F}'   // CJK punctuation
            | '\u{FE00}'..='\u{FE0F}'   // variation selectors
            | '\u{FF00}'..='\u{FFEF}'   // half/full-width forms
            | '\u{1F3FB}'..='\u{1F3FF}' // skin tones
        ))
}

/// Pieces joined into a lookup key: words separated by a space, everything else adjacent.
fn join(tokens: &[Token]) -> String {
    let mut key = String::new();
    let mut previous_word = false;
    for token in tokens {
        if let Token::Piece { text, word, .. } = token {
            if *word && previous_word {
                key.push(' ');
            }
            key.push_str(text);
            previous_word = *word;
        }
    }
    key
}

/// A token run matched against a lexicon.
#[derive(Debug)]
enum Unit<'a, C> {
    Piece {
        /// The entry matched, or `None` for a piece no entry covers.
        cue: Option<&'a C>,
        /// Any of its pieces written in capitals.
        caps: bool,
        /// Made of Han characters (Chinese negation reaches less far).
        han: bool,
    },
    Break {
        exclaims: u32,
        questions: u32,
    },
}

/// Longest-match segmentation of `tokens` into lexicon entries (at most `max_pieces` each).
fn match_cues<'a, C>(
    tokens: &[Token],
    lexicon: &'a HashMap<String, C>,
    max_pieces: usize,
) -> Vec<Unit<'a, C>> {
    let mut units = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Break {
            exclaims,
            questions,
        } = tokens[i]
        {
            units.push(Unit::Break {
                exclaims,
                questions,
            });
            i += 1;
            continue;
        }
        let run = tokens[i..]
            .iter()
            .take(max_pieces)
            .take_while(|t| matches!(t, Token::Piece { .. }))
            .count();
        let found = (1..=run)
            .rev()
            .find_map(|n| lexicon.get(&join(&tokens[i..i + n])).map(|cue| (n, cue)));
        let (n, cue) = found.map_or((1, None), |(n, cue)| (n, Some(cue)));
        let span = &tokens[i..i + n];
        units.push(Unit::Piece {
            cue,
            caps: span
                .iter()
                .any(|t| matches!(t, Token::Piece { caps: true, .. })),
            han: span.iter().any(
                |t| matches!(t, Token::Piece { text, word: false, .. } if text.chars().all(is_cjk)),
            ),
        });
        i += n;
    }
    units
}

/// Chinese, Japanese or Korean script: read by characters, not by spaces.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strength bands; the borders match the default escalation threshold (−0.6).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Band {
        StrongNegative,
        Negative,
        Neutral,
        Positive,
        StrongPositive,
    }

    fn band(score: f32) -> Band {
        match score {
            s if s <= -0.6 => Band::StrongNegative,
            s if s < -0.1 => Band::Negative,
            s if s <= 0.1 => Band::Neutral,
            s if s < 0.6 => Band::Positive,
            _ => Band::StrongPositive,
        }
    }

    fn misjudged(cases: &[(&str, Band)]) -> Vec<String> {
        cases
            .iter()
            .filter_map(|&(text, expected)| {
                let s = score(text);
                (band(s) != expected).then(|| format!("{text:?}: {s:.2} is not {expected:?}"))
            })
            .collect()
    }

    #[test]
    fn given_lexicon_files_when_parsed_then_every_line_is_valid() {
        let (lexicon, errors) = Lexicon::parse(LEXICON_FILES);
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(lexicon.sentiment.len() > 300, "{}", lexicon.sentiment.len());
        assert!(lexicon.emoticons.iter().any(|e| e == ":-("));
    }

    #[test]
    fn given_bad_lexicon_lines_when_parsed_then_they_are_reported_and_skipped() {
        let text = "orphan\n[sentiment]\n好 1\n好 2\n坏\n[colour]\n红\n[negator]\n, \n";
        let (lexicon, errors) = Lexicon::parse(&[("t.txt", text)]);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("t.txt:1:"), "{errors:#?}");
        assert_eq!(lexicon.sentiment.get("好"), Some(&Cue::Term(1.0)));
    }

    #[test]
    fn given_chinese_sentences_when_scored_then_sign_and_strength_match() {
        use Band::*;
        let cases = [
            ("谢谢", Positive),
            ("太好了，非常满意！", StrongPositive),
            ("不错", Positive),
            ("还行吧", Positive),
            ("质量不错，客服也很耐心，谢谢！", StrongPositive),
            ("不好", Negative),
            ("不太满意", Negative),
            ("有点失望", Negative),
            ("不差", Positive),
            ("垃圾", StrongNegative),
            ("太差了！！！", StrongNegative),
            ("你们就是骗子，气死我了", StrongNegative),
            ("非常不满意，我要投诉", StrongNegative),
            ("烦死了", StrongNegative),
            ("东西还行，但是物流太慢了", Negative),
            ("这也太坑了吧😡", StrongNegative),
            ("到底什么时候发货？？？", Negative),
            ("我想退货", Neutral),
            ("你好，请问什么时候发货", Neutral),
            ("不好意思，差不多几天能到", Neutral),
            ("补差价怎么操作", Neutral),
            ("ＴＨＸ 👍", StrongPositive),
            ("不要骗我", Negative),
            ("客服态度恶劣", StrongNegative),
            ("好几天了还没发货", Neutral),
        ];
        let wrong = misjudged(&cases);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn given_english_sentences_when_scored_then_sign_and_strength_match() {
        use Band::*;
        let cases = [
            ("thanks", Positive),
            ("Thank you so much, great service!", StrongPositive),
            ("I love it :)", StrongPositive),
            ("not bad", Positive),
            ("not good", Negative),
            ("not good at all", StrongNegative),
            ("not very good", Negative),
            ("a bit disappointed", Negative),
            ("this is terrible", StrongNegative),
            ("This is a SCAM", StrongNegative),
            ("worst shop ever, refund now!!!", StrongNegative),
            ("I'm really angry", StrongNegative),
            ("this is ridiculous", StrongNegative),
            ("I don't think it is bad", Positive),
            (
                "the shoes are nice but the delivery was awful",
                StrongNegative,
            ),
            ("where is my order??", Negative),
            ("good morning, where is my order", Neutral),
            ("how do I return the shoes", Neutral),
            ("no problem, thanks 🙂", StrongPositive),
            ("It's not that I'm unhappy, I'm just not happy", Negative),
            ("your agent was rude", StrongNegative),
            ("Hi, do you ship to Canada?", Neutral),
        ];
        let wrong = misjudged(&cases);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn given_amplifiers_when_added_then_magnitude_grows_and_sign_stays() {
        let pairs = [
            ("差", "太差"),
            ("差", "差！！！"),
            ("满意", "非常满意"),
            ("bad", "very bad"),
            ("bad", "BAD"),
            ("bad", "bad!!!"),
            ("disappointed", "extremely disappointed"),
            ("good", "good!!"),
        ];
        for (plain, amplified) in pairs {
            let (a, b) = (score(plain), score(amplified));
            assert!(
                a.signum() == b.signum() && b.abs() > a.abs(),
                "{plain:?} {a:.2} vs {amplified:?} {b:.2}"
            );
        }
    }

    #[test]
    fn given_diminishers_or_negation_when_added_then_magnitude_shrinks_or_flips() {
        assert!(score("有点差").abs() < score("差").abs());
        assert!(score("slightly annoyed").abs() < score("annoyed").abs());
        assert!(score("满意") > 0.0 && score("不满意") < 0.0);
        assert!(score("happy") > 0.0 && score("never happy") < 0.0);
        // A double negation cancels.
        assert!(score("不是不好") > 0.0);
        // Negation does not reach into the next clause.
        assert!(score("不，很好") > 0.0);
    }

    #[test]
    fn given_anything_when_scored_then_result_is_within_bounds() {
        let long = "垃圾！".repeat(5000);
        for text in [
            "",
            "   ",
            "？？？",
            "😡😡😡😡😡😡😡😡",
            long.as_str(),
            "great ".repeat(50).as_str(),
        ] {
            let s = score(text);
            assert!((-1.0..=1.0).contains(&s), "{text:.20}: {s}");
        }
        assert_eq!(score(""), 0.0);
        assert!(score("").is_sign_positive(), "no −0.0 in stored scores");
        assert!(score(&long) < -0.9);
    }

    #[test]
    fn given_complaint_messages_when_checked_then_only_complaint_intent_matches() {
        let cases: &[(&str, bool)] = &[
            ("我要投诉你们", true),
            ("再不退款我就给差评", true),
            ("不给退就投诉", true),
            ("我要打12315", true),
            ("去消协告你们", true),
            ("我要举报你们店", true),
            ("投诉电话是多少", true),
            ("I will file a complaint", true),
            ("how do I complain about this", true),
            ("I'm going to report you!", true),
            ("I'll do a chargeback with my bank", true),
            ("my lawyer will contact you", true),
            ("我不想投诉，只想退货", false),
            ("没有投诉过", false),
            ("订单号12315678", false),
            ("我想退货", false),
            ("质量很差", false),
            ("no complaints, great service", false),
            ("I'm not complaining, just asking", false),
            ("can you send the report you mentioned", false),
            ("where is my order", false),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(text, expected)| is_complaint(text) != *expected)
            .collect();
        assert!(wrong.is_empty(), "misjudged: {wrong:?}");
    }

    #[test]
    fn given_mixed_text_when_tokenized_then_pieces_and_breaks_are_separated() {
        let tokens = tokenize("Don't 退货！！:( 👍🏻", &[":(".to_owned()]);
        let texts: Vec<String> = tokens
            .iter()
            .map(|t| match t {
                Token::Piece { text, .. } => text.clone(),
                Token::Break {
                    exclaims,
                    questions,
                } => format!("<{exclaims}!{questions}?>"),
            })
            .collect();
        assert_eq!(texts, ["dont", "退", "货", "<2!0?>", ":(", "👍"]);
    }
}
