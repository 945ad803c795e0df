//! Static word vectors the bot is compiled with (`shared/faq/assets/`, made by
//! `infra/assets/word-vectors.sh`): English word pieces distilled from the
//! all-MiniLM-L6-v2 sentence model (alone, then refined on sentences and mapped into the
//! model's space), and common Chinese words.
//!
//! A message's vector is the mean of its words' vectors, so a wording no paraphrase used
//! still lands near the paraphrases that mean the same ("missing" near "lost", "top up"
//! near "add money", "多久" near "几天"). A message with CJK text is read as Chinese (by
//! its words as jieba's search mode cuts them; a word the table lacks takes the mean of its
//! characters), any other as English (by its word pieces). The two languages' vectors are
//! not comparable: each has its own dimensions among the classifier's features (see
//! `features.rs`).

use crate::text;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Dimensions of both languages' vectors together.
pub(crate) const DIMS: usize = Language::English.dims() + Language::Chinese.dims();

/// Each table: `KEFUWV01`, rows and dims (u32 LE), a f32 scale per row, then rows × dims
/// int8 values; its words one per line, in row order.
const PIECE_VECTORS: &[u8] = include_bytes!("../assets/word-vectors.bin");
/// The English model's word pieces ("##" marks a continuation).
const PIECES: &str = include_str!("../assets/word-pieces.txt");
const CHINESE_VECTORS: &[u8] = include_bytes!("../assets/zh-word-vectors.bin");
const CHINESE_WORDS: &str = include_str!("../assets/zh-words.txt");
const MAGIC: &[u8] = b"KEFUWV01";
/// Longer words are not split (BERT's own limit); they add nothing to the vector.
const MAX_WORD_CHARS: usize = 100;

static ENGLISH: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(PIECE_VECTORS, PIECES, Language::English.dims())
        .expect("shared/faq/assets/word-vectors.bin matches word-pieces.txt")
});
static CHINESE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(CHINESE_VECTORS, CHINESE_WORDS, Language::Chinese.dims())
        .expect("shared/faq/assets/zh-word-vectors.bin matches zh-words.txt")
});

/// The language a message is read in: whose vectors it gets, and whose "don't know"
/// threshold applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    English,
    Chinese,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::English, Language::Chinese];

    /// Chinese when `text` has CJK text, English otherwise.
    pub fn of(text: &str) -> Self {
        if text.chars().any(text::is_cjk) {
            Language::Chinese
        } else {
            Language::English
        }
    }

    /// Dimensions of the language's vectors.
    pub const fn dims(self) -> usize {
        match self {
            Language::English => 256,
            Language::Chinese => 200,
        }
    }

    /// Position in [`Language::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Where the language's vector starts within the [`DIMS`] of both.
    pub fn offset(self) -> usize {
        Language::ALL[..self.index()].iter().map(|l| l.dims()).sum()
    }
}

/// A message's unit-length vector, [`Language::dims`] long, in its language's space.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MessageVector {
    pub language: Language,
    pub values: Vec<f32>,
}

/// Words (or word pieces) and their vectors.
struct Table {
    ids: HashMap<&'static str, u32>,
    dims: usize,
    scales: Vec<f32>,
    values: &'static [u8],
}

impl Table {
    fn parse(bytes: &'static [u8], words: &'static str, expected_dims: usize) -> Option<Self> {
        let header = bytes.get(..16)?;
        let field = |at: usize| {
            u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes")) as usize
        };
        let (rows, dims) = (field(8), field(12));
        let ids: HashMap<&str, u32> = words.lines().zip(0u32..).collect();
        let scales_end = 16 + rows * 4;
        if &header[..8] != MAGIC
            || dims != expected_dims
            || words.lines().count() != rows
            || ids.len() != rows
            || bytes.len() != scales_end + rows * dims
        {
            return None;
        }
        let scales = bytes[16..scales_end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
            .collect();
        Some(Self {
            ids,
            dims,
            scales,
            values: &bytes[scales_end..],
        })
    }

    /// Appends the word pieces of one lowercase word (greedy longest match first, as
    /// BERT's WordPiece does); a word with a part no piece covers adds none.
    fn pieces(&self, word: &str, out: &mut Vec<u32>) {
        let bounds: Vec<usize> = word
            .char_indices()
            .map(|(i, _)| i)
            .chain([word.len()])
            .collect();
        if bounds.len() > MAX_WORD_CHARS + 1 {
            return;
        }
        let kept = out.len();
        let mut key = String::new();
        let mut start = 0;
        while start + 1 < bounds.len() {
            let found = (start + 1..bounds.len()).rev().find_map(|end| {
                key.clear();
                if start > 0 {
                    key.push_str("##");
                }
                key.push_str(&word[bounds[start]..bounds[end]]);
                self.ids.get(key.as_str()).map(|&id| (id, end))
            });
            let Some((id, end)) = found else {
                out.truncate(kept);
                return;
            };
            out.push(id);
            start = end;
        }
    }

    /// Adds row `id`, times `weight`, to `sum`.
    fn add_row(&self, id: u32, weight: f32, sum: &mut [f32]) {
        let row = id as usize;
        let scale = self.scales[row] * weight;
        let values = &self.values[row * self.dims..(row + 1) * self.dims];
        for (s, &v) in sum.iter_mut().zip(values) {
            *s += f32::from(v as i8) * scale;
        }
    }

    /// Adds the vector of one Chinese word to `sum`: its own, or else the mean of its
    /// characters' (jieba keeps words the table lacks); `false` if it has neither.
    fn add_chinese_word(&self, word: &str, sum: &mut [f32]) -> bool {
        if let Some(&id) = self.ids.get(word) {
            self.add_row(id, 1.0, sum);
            return true;
        }
        let mut key = [0u8; 4];
        let chars: Vec<u32> = word
            .chars()
            .filter_map(|c| self.ids.get(&*c.encode_utf8(&mut key)).copied())
            .collect();
        for &id in &chars {
            self.add_row(id, 1.0 / chars.len() as f32, sum);
        }
        !chars.is_empty()
    }
}

/// The unit-length mean vector of the words of `text`, in Chinese if it has CJK text and
/// in English otherwise; `None` when no word of it has one.
pub(crate) fn message_vector(text: &str) -> Option<MessageVector> {
    let normalized = text::normalize(text);
    let language = Language::of(&normalized);
    let mut sum = vec![0.0f32; language.dims()];
    let mut any = false;
    if language == Language::Chinese {
        let table = &*CHINESE;
        for word in text::cjk_words(&normalized) {
            any |= table.add_chinese_word(word, &mut sum);
        }
    } else {
        let table = &*ENGLISH;
        let mut ids = Vec::new();
        for word in normalized.split(' ') {
            table.pieces(word, &mut ids);
        }
        for &id in &ids {
            table.add_row(id, 1.0, &mut sum);
        }
        any = !ids.is_empty();
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    (any && norm > 0.0).then(|| MessageVector {
        language,
        values: sum.iter().map(|v| v / norm).collect(),
    })
}

/// Parses the tables now rather than on the first message (call at cold start).
pub(crate) fn warm_up() {
    LazyLock::force(&ENGLISH);
    LazyLock::force(&CHINESE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &str, b: &str) -> f32 {
        let (a, b) = (message_vector(a).expect("a"), message_vector(b).expect("b"));
        assert_eq!(a.language, b.language);
        a.values.iter().zip(&b.values).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn given_shipped_assets_when_parsed_then_they_have_their_vocabularies() {
        for (table, words, word) in [
            (&*ENGLISH, PIECES, "card"),
            (&*CHINESE, CHINESE_WORDS, "快递"),
        ] {
            assert_eq!(table.scales.len(), words.lines().count());
            assert_eq!(
                table.ids.get(word),
                Some(&(words.lines().position(|p| p == word).expect("word") as u32))
            );
        }
        assert_eq!((ENGLISH.dims, CHINESE.dims), (256, 200));
        assert_eq!(
            (Language::English.offset(), Language::Chinese.offset()),
            (0, 256)
        );
        assert!(
            Table::parse(&PIECE_VECTORS[..PIECE_VECTORS.len() - 1], PIECES, 256).is_none(),
            "truncated"
        );
        assert!(
            Table::parse(PIECE_VECTORS, "card\n", 256).is_none(),
            "other vocabulary"
        );
        assert!(
            Table::parse(CHINESE_VECTORS, PIECES, 200).is_none(),
            "another table's words"
        );
        assert!(
            Table::parse(PIECE_VECTORS, PIECES, 200).is_none(),
            "other dimensions"
        );
    }

    #[test]
    fn given_words_when_split_then_pieces_follow_wordpiece() {
        let table = &*ENGLISH;
        let mut ids = Vec::new();
        table.pieces("unaffordable", &mut ids);
        let names: Vec<&str> = ids
            .iter()
            .map(|&i| PIECES.lines().nth(i as usize).expect("piece"))
            .collect();
        assert!(
            names.len() > 1 && names[1..].iter().all(|p| p.starts_with("##")),
            "{names:?}"
        );
        assert_eq!(names.concat().replace("##", ""), "unaffordable");
        ids.clear();
        table.pieces("\u{1F600}x", &mut ids);
        assert!(ids.is_empty(), "a part no piece covers drops the word");
        table.pieces(&"a".repeat(MAX_WORD_CHARS + 1), &mut ids);
        assert!(ids.is_empty(), "too long");
    }

    #[test]
    fn given_paraphrases_when_embedded_then_meaning_beats_unrelated_words() {
        let v = message_vector("My card has not arrived yet").expect("english");
        assert_eq!(v.language, Language::English);
        let norm: f32 = v.values.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let same = cosine(
            "my card still hasn't come",
            "when will my new card be delivered",
        );
        let other = cosine(
            "my card still hasn't come",
            "what is the exchange rate for euros",
        );
        assert!(same > other + 0.1, "{same} vs {other}");
        assert!(message_vector("").is_none() && message_vector("?!").is_none());
    }

    #[test]
    fn given_chinese_paraphrases_when_embedded_then_meaning_beats_unrelated_words() {
        let v = message_vector("我的快递什么时候到").expect("chinese");
        assert_eq!(v.language, Language::Chinese);
        assert_eq!(v.values.len(), Language::Chinese.dims());
        // Uncentred, all Chinese vectors are alike; the features centre them.
        let same = cosine("我的快递什么时候到", "包裹几天能送到");
        let other = cosine("我的快递什么时候到", "怎么开发票");
        assert!(same > other + 0.02, "{same} vs {other}");
        assert_eq!(
            message_vector("iPhone手机壳").expect("mixed").language,
            Language::Chinese,
            "any CJK text makes a message Chinese"
        );
        assert_eq!(
            message_vector("退貨").expect("traditional").values,
            message_vector("退货").expect("simplified").values
        );
    }

    #[test]
    fn given_word_missing_from_table_when_embedded_then_its_characters_stand_in() {
        let table = &*CHINESE;
        let word = "快递费退";
        assert!(!table.ids.contains_key(word));
        let (mut whole, mut parts) = (vec![0.0f32; 200], vec![0.0f32; 200]);
        assert!(table.add_chinese_word(word, &mut whole));
        for c in ["快", "递", "费", "退"] {
            table.add_chinese_word(c, &mut parts);
        }
        for (w, p) in whole.iter().zip(&parts) {
            assert!((w * 4.0 - p).abs() < 1e-3, "{w} vs {p}");
        }
        assert!(
            !table.add_chinese_word("\u{3400}\u{3401}", &mut whole),
            "no known character"
        );
    }
}
