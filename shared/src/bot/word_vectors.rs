//! Static English word-piece vectors, distilled from the all-MiniLM-L6-v2 sentence model
//! (`shared/assets/`, made by `infra/assets/word-vectors.sh`).
//!
//! A message's vector is the mean of its word pieces' vectors, so a wording no paraphrase
//! used still lands near the paraphrases that mean the same ("missing" near "lost", "top
//! up" near "add money"). A message with Chinese (or other CJK) text gets no vector: the
//! model knows those scripts only character by character, and the few Latin words and
//! digits in such a message measured worse than none.

use crate::bot::text;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Dimensions of a vector.
pub(crate) const DIMS: usize = 256;

/// `KEFUWV01`, rows and dims (u32 LE), a f32 scale per row, then rows × dims int8 values.
const VECTORS: &[u8] = include_bytes!("../../assets/word-vectors.bin");
/// The model's word pieces, one per line, in row order ("##" marks a continuation).
const PIECES: &str = include_str!("../../assets/word-pieces.txt");
const MAGIC: &[u8] = b"KEFUWV01";
/// Longer words are not split (BERT's own limit); they add nothing to the vector.
const MAX_WORD_CHARS: usize = 100;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(VECTORS, PIECES).expect("shared/assets/word-vectors.bin matches word-pieces.txt")
});

/// The word pieces and their vectors.
struct Table {
    ids: HashMap<&'static str, u32>,
    scales: Vec<f32>,
    values: &'static [u8],
}

impl Table {
    fn parse(bytes: &'static [u8], pieces: &'static str) -> Option<Self> {
        let header = bytes.get(..16)?;
        let field = |at: usize| {
            u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes")) as usize
        };
        let (rows, dims) = (field(8), field(12));
        let ids: HashMap<&str, u32> = pieces.lines().zip(0u32..).collect();
        let scales_end = 16 + rows * 4;
        if &header[..8] != MAGIC
            || dims != DIMS
            || pieces.lines().count() != rows
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

    fn add_row(&self, id: u32, sum: &mut [f32]) {
        let row = id as usize;
        let scale = self.scales[row];
        let values = &self.values[row * DIMS..(row + 1) * DIMS];
        for (s, &v) in sum.iter_mut().zip(values) {
            *s += f32::from(v as i8) * scale;
        }
    }
}

/// The unit-length mean vector of the word pieces of `text`; `None` when it has none,
/// or has CJK text.
pub(crate) fn message_vector(text: &str) -> Option<Vec<f32>> {
    let normalized = text::normalize(text);
    if normalized.chars().any(text::is_cjk) {
        return None;
    }
    let table = &*TABLE;
    let mut ids = Vec::new();
    for word in normalized.split(' ') {
        table.pieces(word, &mut ids);
    }
    if ids.is_empty() {
        return None;
    }
    let mut sum = vec![0.0f32; DIMS];
    for &id in &ids {
        table.add_row(id, &mut sum);
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    (norm > 0.0).then(|| sum.iter().map(|v| v / norm).collect())
}

/// Parses the table now rather than on the first message (call at cold start).
pub(crate) fn warm_up() {
    LazyLock::force(&TABLE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &str, b: &str) -> f32 {
        let (a, b) = (message_vector(a).expect("a"), message_vector(b).expect("b"));
        a.iter().zip(&b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn given_shipped_asset_when_parsed_then_it_has_the_model_vocabulary() {
        let table = &*TABLE;
        assert_eq!(table.scales.len(), PIECES.lines().count());
        assert_eq!(
            table.ids.get("card"),
            Some(&(PIECES.lines().position(|p| p == "card").expect("card") as u32))
        );
        assert!(
            Table::parse(&VECTORS[..VECTORS.len() - 1], PIECES).is_none(),
            "truncated"
        );
        assert!(
            Table::parse(VECTORS, "card\n").is_none(),
            "other vocabulary"
        );
    }

    #[test]
    fn given_words_when_split_then_pieces_follow_wordpiece() {
        let table = &*TABLE;
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
        let norm: f32 = v.iter().map(|x| x * x).sum();
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
        assert!(
            message_vector("退款多久到账").is_none(),
            "Chinese is left to the lexical features"
        );
        assert!(
            message_vector("iPhone手机壳").is_none(),
            "and so is a mixed message"
        );
        assert!(message_vector("").is_none() && message_vector("?!").is_none());
    }
}
