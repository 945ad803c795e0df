//! Sparse TF-IDF features of a message, for the classifier.
//!
//! Each message yields feature strings of several kinds, so one wording meets another
//! however it is cut:
//!
//! - terms: the analysed terms of [`text::terms`] (jieba words and bigrams, English
//!   stems);
//! - synonyms: the synonym group of a term ([`text::synonym_group`]);
//! - characters and bigrams: every CJK character and character bigram of a run (jieba
//!   may cut the query and the paraphrase differently, or not know a word at all);
//! - grams: character 3–5-grams of each English word padded with `^`/`$` (typos,
//!   inflections the stemmer misses, compounds);
//! - pairs: consecutive English words ("not working" is not "working").
//!
//! After them come [`DIMS`] dense features, the English dimensions then the Chinese ones:
//! the message's word vector ([`word_vectors`]) in its language's dimensions, less the
//! mean vector of the paraphrases in that language and weighted by [`vector_weight`], so
//! the classifier also learns what an entry *means* and not only which words its
//! paraphrases used. Centring keeps the language out of the vector: a message without a
//! vector in one language's dimensions scores like a typical paraphrase there, and does
//! not become sure of an entry in the other language just because it lacks the vector.
//!
//! Feature strings are hashed to 64 bits (collisions are negligible at FAQ sizes); the
//! vocabulary is the sorted hashes seen in the paraphrases, each with its IDF. Values are
//! sublinear TF × IDF × the weight of the feature's kind ([`Kind::weight`]),
//! L2-normalised.

use crate::text;
use crate::word_vectors::{self, DIMS, Language, MessageVector};
use crate::{Error, Result};

/// Length of the word vector beside the unit TF-IDF vector: how much meaning counts
/// against wording. The English vectors come from a sentence model and can carry more
/// than the Chinese ones, which are word co-occurrence vectors.
fn vector_weight(language: Language) -> f32 {
    match language {
        Language::English => 2.0,
        Language::Chinese => 1.0,
    }
}

/// Longest word whose character n-grams are taken; longer ones are noise.
const MAX_GRAM_WORD: usize = 24;

/// A sparse vector: `(feature, value)` sorted by feature.
pub(crate) type SparseVec = Vec<(u32, f32)>;

/// The feature space learnt from the paraphrases.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Featurizer {
    /// Feature hashes, sorted; a feature's number is its position.
    hashes: Vec<u64>,
    /// Inverse document frequency of each feature.
    idf: Vec<f32>,
    /// The IDF of a feature no paraphrase has.
    unseen_idf: f32,
    /// Per language of [`Language::ALL`], the mean vector of the paraphrases that have
    /// one; `None` when none has, and then messages leave those dimensions empty.
    vector_means: [Option<Vec<f32>>; 2],
}

impl Featurizer {
    /// Learns the vocabulary and IDF of `docs`.
    #[cfg(test)]
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a str>) -> Self {
        let hashed: Vec<Hashed> = docs.into_iter().map(Hashed::of).collect();
        Self::fit_hashed(&hashed)
    }

    /// Learns the vocabulary and IDF of documents already hashed (see [`Hashed::of`]), so
    /// a build analyses each paraphrase once for fitting and transforming.
    pub fn fit_hashed<'a>(docs: impl IntoIterator<Item = &'a Hashed>) -> Self {
        let mut all: Vec<u64> = Vec::new();
        let mut n = 0u32;
        // Per language: paraphrases with a vector, and the sum of their vectors.
        let mut sums = Language::ALL.map(|language| (0u32, vec![0.0f32; language.dims()]));
        for doc in docs {
            n += 1;
            if let Some(vector) = &doc.vector {
                let (count, sum) = &mut sums[vector.language.index()];
                *count += 1;
                for (m, v) in sum.iter_mut().zip(&vector.values) {
                    *m += v;
                }
            }
            let mut previous = None;
            for &h in &doc.hashes {
                if previous != Some(h) {
                    all.push(h);
                    previous = Some(h);
                }
            }
        }
        // Sorting one flat list beats a hash map at 50,000+ paraphrases.
        all.sort_unstable();
        let mut hashes = Vec::new();
        let mut df = Vec::new();
        for run in all.chunk_by(|a, b| a == b) {
            hashes.push(run[0]);
            df.push(run.len() as u32);
        }
        let n = n as f32;
        Self {
            vector_means: sums.map(|(count, sum)| {
                (count > 0).then(|| sum.iter().map(|m| m / count as f32).collect())
            }),
            unseen_idf: (1.0 + n).ln() + 1.0,
            hashes,
            idf: df
                .iter()
                .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
                .collect(),
        }
    }

    /// Number of features: the lexical ones, then the word vector's.
    pub fn len(&self) -> usize {
        self.hashes.len() + DIMS
    }

    /// The lexical part of `x`, without the word vector's dimensions.
    #[cfg(test)]
    pub fn lexical(&self, x: &SparseVec) -> SparseVec {
        x.iter()
            .copied()
            .filter(|&(f, _)| (f as usize) < self.hashes.len())
            .collect()
    }

    /// The TF-IDF vector of `text` over the known features (unknown ones are dropped).
    pub fn transform(&self, text: &str) -> SparseVec {
        // A FAQ without vectors (none of its paraphrases has one) skips computing them.
        let doc = if self.vector_means.iter().any(Option::is_some) {
            Hashed::of(text)
        } else {
            Hashed::lexical(text)
        };
        self.transform_hashed(&doc)
    }

    /// The TF-IDF vector of a hashed document (see [`Featurizer::transform`]).
    pub fn transform_hashed(&self, doc: &Hashed) -> SparseVec {
        let hashes = &doc.hashes;
        let mut out: SparseVec = Vec::with_capacity(hashes.len());
        let mut unseen = 0.0f32;
        let mut i = 0;
        while i < hashes.len() {
            let h = hashes[i];
            let mut tf = 0;
            while i < hashes.len() && hashes[i] == h {
                tf += 1;
                i += 1;
            }
            let value = (1.0 + (tf as f32).ln()) * Kind::of(h).weight();
            if let Ok(feature) = self.hashes.binary_search(&h) {
                out.push((feature as u32, value * self.idf[feature]));
            } else {
                unseen += (value * self.unseen_idf).powi(2);
            }
        }
        let norm = (out.iter().map(|(_, v)| v * v).sum::<f32>() + unseen).sqrt();
        if norm > 0.0 {
            for (_, v) in &mut out {
                *v /= norm;
            }
        }
        // A message sharing no word or n-gram with any paraphrase is unlike all of them,
        // whatever its vector says: it stays empty.
        let vector = doc.vector.as_ref().filter(|_| !out.is_empty());
        if let Some(vector) = vector
            && let Some(mean) = &self.vector_means[vector.language.index()]
        {
            let first = (self.hashes.len() + vector.language.offset()) as u32;
            let weight = vector_weight(vector.language);
            let centred = vector
                .values
                .iter()
                .zip(mean)
                .map(|(v, m)| (v - m) * weight);
            out.extend((first..).zip(centred));
        }
        out
    }

    /// Appends the vocabulary to `out` (see [`Featurizer::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.unseen_idf.to_le_bytes());
        for mean in &self.vector_means {
            out.push(u8::from(mean.is_some()));
            for m in mean.iter().flatten() {
                out.extend_from_slice(&m.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.hashes.len() as u64).to_le_bytes());
        for h in &self.hashes {
            out.extend_from_slice(&h.to_le_bytes());
        }
        for v in &self.idf {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads a vocabulary written by [`Featurizer::write`], advancing `input`.
    pub fn read(input: &mut &[u8]) -> Result<Self> {
        let unseen_idf = read_array(input, 1, f32::from_le_bytes)?[0];
        let mut vector_means = [None, None];
        for (mean, language) in vector_means.iter_mut().zip(Language::ALL) {
            *mean = match read_array(input, 1, u8::from_le_bytes)?[0] {
                0 => None,
                1 => Some(read_array(input, language.dims(), f32::from_le_bytes)?),
                _ => return Err(Error::Corrupt("FAQ model: bad vector flag".into())),
            };
        }
        let n = usize::try_from(read_u64(input)?)
            .map_err(|_| Error::Corrupt("FAQ model: vocabulary too large".into()))?;
        let hashes = read_array(input, n, u64::from_le_bytes)?;
        if hashes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Corrupt("FAQ model: vocabulary out of order".into()));
        }
        let idf = read_array(input, n, f32::from_le_bytes)?;
        Ok(Self {
            hashes,
            idf,
            unseen_idf,
            vector_means,
        })
    }
}

/// The analysis of one text, done once: its sorted feature hashes (with repeats) and its
/// word vector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hashed {
    hashes: Vec<u64>,
    vector: Option<MessageVector>,
}

impl Hashed {
    /// Analyses `text` (jieba, n-grams, hashing, word vectors: the costly part of
    /// featurising).
    pub fn of(text: &str) -> Self {
        Self {
            vector: word_vectors::message_vector(text),
            ..Self::lexical(text)
        }
    }

    /// The analysis without the word vector.
    fn lexical(text: &str) -> Self {
        let mut hashes = raw_features(text);
        hashes.sort_unstable();
        Self {
            hashes,
            vector: None,
        }
    }
}

/// Reads a little-endian u64, advancing `input`.
pub(crate) fn read_u64(input: &mut &[u8]) -> Result<u64> {
    Ok(read_array(input, 1, u64::from_le_bytes)?[0])
}

/// Reads `n` little-endian values of `N` bytes each, advancing `input`.
pub(crate) fn read_array<T, const N: usize>(
    input: &mut &[u8],
    n: usize,
    decode: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let bytes = n
        .checked_mul(N)
        .filter(|&len| len <= input.len())
        .ok_or_else(|| Error::Corrupt("FAQ model is truncated".into()))?;
    let (head, tail) = input.split_at(bytes);
    *input = tail;
    Ok(head
        .chunks_exact(N)
        .map(|chunk| {
            let mut array = [0u8; N];
            array.copy_from_slice(chunk);
            decode(array)
        })
        .collect())
}

/// The kinds of feature string, hashed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Term,
    Synonym,
    Char,
    Bigram,
    Gram,
    Pair,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Term,
        Kind::Synonym,
        Kind::Char,
        Kind::Bigram,
        Kind::Gram,
        Kind::Pair,
    ];

    /// How much a feature of this kind counts against the others. A single CJK character
    /// matches however jieba cuts the query and the paraphrase, so it is the surest
    /// evidence that two Chinese wordings share a word; a bigram often straddles two
    /// words and repeats what the words say. (Measured on Chinese held-out questions:
    /// characters ×2 and bigrams ×0.75 raise top-1 and accuracy at 10% wrong.)
    fn weight(self) -> f32 {
        match self {
            Kind::Char => 2.0,
            Kind::Bigram => 0.75,
            _ => 1.0,
        }
    }

    /// The kind of a feature, from the low bits of its hash (see [`hash`]).
    fn of(hash: u64) -> Kind {
        Kind::ALL
            .get((hash & KIND_BITS) as usize)
            .copied()
            .unwrap_or(Kind::Term)
    }
}

/// The low bits of a feature hash that name its [`Kind`].
const KIND_BITS: u64 = 0b111;

/// FNV-1a over a kind and a string: stable across builds and platforms. The low bits
/// hold the kind, so a feature's weight is known from its hash alone.
fn hash(kind: Kind, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(kind as u8).chain(text.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & !KIND_BITS) | kind as u64
}

/// The hashed feature strings of `text`, with repeats.
fn raw_features(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for term in text::terms(text) {
        if let Some(group) = text::synonym_group(&term) {
            out.push(hash(Kind::Synonym, &group.to_string()));
        }
        out.push(hash(Kind::Term, &term));
    }
    let normalized = text::normalize(text);
    let mut previous: Option<&str> = None;
    for word in normalized.split(' ').filter(|w| !w.is_empty()) {
        let mut rest = word;
        while let Some(first) = rest.chars().next() {
            let cjk = text::is_cjk(first);
            let end = rest
                .char_indices()
                .find(|&(_, c)| text::is_cjk(c) != cjk)
                .map_or(rest.len(), |(i, _)| i);
            let run = &rest[..end];
            if cjk {
                cjk_grams(run, &mut out);
            } else {
                word_grams(run, &mut out);
                if let Some(previous) = previous {
                    out.push(hash(Kind::Pair, &format!("{previous} {run}")));
                }
                previous = Some(run);
            }
            rest = &rest[end..];
        }
    }
    out
}

/// Every character and character bigram of a CJK run.
fn cjk_grams(run: &str, out: &mut Vec<u64>) {
    let ends: Vec<usize> = run.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
    let mut start = 0;
    for (k, &end) in ends.iter().enumerate() {
        out.push(hash(Kind::Char, &run[start..end]));
        if let Some(&next) = ends.get(k + 1) {
            out.push(hash(Kind::Bigram, &run[start..next]));
        }
        start = end;
    }
}

/// Character 3–5-grams of `^word$`.
fn word_grams(word: &str, out: &mut Vec<u64>) {
    let chars: Vec<char> = std::iter::once('^')
        .chain(word.chars())
        .chain(std::iter::once('$'))
        .collect();
    if chars.len() > MAX_GRAM_WORD + 2 {
        return;
    }
    let mut buf = String::new();
    for n in 3..=5 {
        for window in chars.windows(n) {
            buf.clear();
            buf.extend(window);
            out.push(hash(Kind::Gram, &buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &SparseVec, b: &SparseVec) -> f32 {
        let mut sum = 0.0;
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += a[i].1 * b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }

    #[test]
    fn given_fitted_vocabulary_when_transformed_then_vectors_are_unit_and_sorted() {
        let f = Featurizer::fit(["怎么退货", "track my package", "运费怎么算"]);
        let v = f.transform("track my package please");
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "{v:?}");
        let norm = |v: &SparseVec| -> f32 { f.lexical(v).iter().map(|(_, x)| x * x).sum() };
        assert!(
            norm(&v) < 1.0 && norm(&v) > 0.5,
            "{}: 'please' is unknown",
            norm(&v)
        );
        let known = norm(&f.transform("track my package"));
        assert!((known - 1.0).abs() < 1e-4, "{known}");
        assert!(f.transform("完全无关").is_empty() || f.transform("完全无关").len() < 3);
        assert!(f.transform("").is_empty());
        assert_eq!(
            v.len() - f.lexical(&v).len(),
            Language::English.dims(),
            "a mixed FAQ has both languages' vectors"
        );
    }

    #[test]
    fn given_english_faq_when_transformed_then_word_piece_dimensions_follow_the_lexical_ones() {
        let english = ["track my package", "cancel my order", "where is my parcel"];
        let f = Featurizer::fit(english);
        let dims = Language::English.dims();
        let v = f.transform("has my parcel shipped");
        assert_eq!(v.len() - f.lexical(&v).len(), dims);
        let first = f.len() - DIMS;
        assert!(
            v.iter()
                .rev()
                .take(dims)
                .all(|&(i, _)| (first..first + dims).contains(&(i as usize)))
        );
        let zh = f.transform("我的包裹 parcel");
        assert_eq!(f.lexical(&zh), zh, "no paraphrase has a Chinese vector");
        assert!(
            f.transform("zzqx").is_empty(),
            "nothing in common: no vector either"
        );
        // Centred on the paraphrases' mean.
        let mut mean = vec![0.0f32; dims];
        for text in english {
            let x = f.transform(text);
            for (m, (_, value)) in mean.iter_mut().zip(&x[x.len() - dims..]) {
                *m += value;
            }
        }
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
    }

    #[test]
    fn given_faq_languages_when_transformed_then_each_message_gets_its_own_languages_dimensions() {
        let vector_part = |f: &Featurizer, x: &SparseVec| -> Vec<usize> {
            let first = f.len() - DIMS;
            x.iter()
                .map(|&(i, _)| i as usize)
                .filter(|&i| i >= first)
                .map(|i| i - first)
                .collect()
        };
        let chinese = Language::Chinese.offset()..DIMS;
        let f = Featurizer::fit(["怎么退货", "我的快递到哪了", "iPhone运费怎么算"]);
        let v = f.transform("包裹到哪了");
        assert_eq!(vector_part(&f, &v), chinese.clone().collect::<Vec<_>>());
        let english = f.transform("iphone shipping");
        assert!(!english.is_empty());
        assert_eq!(
            f.lexical(&english),
            english,
            "no paraphrase has an English vector"
        );
        let mixed_message = f.transform("where is my 快递 parcel");
        assert_eq!(
            vector_part(&f, &mixed_message),
            chinese.clone().collect::<Vec<_>>(),
            "any CJK text reads as Chinese"
        );
        let mixed = Featurizer::fit(["怎么退货", "我的快递到哪了", "track my package"]);
        let zh = mixed.transform("包裹到哪了");
        assert_eq!(vector_part(&mixed, &zh), chinese.collect::<Vec<_>>());
        let en = mixed.transform("where is my package");
        assert_eq!(
            vector_part(&mixed, &en),
            (0..Language::English.dims()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn given_typo_or_other_cut_when_transformed_then_it_stays_close() {
        let f = Featurizer::fit(["track my package", "cancel my order", "能发顺丰吗", "退款"]);
        let base = f.transform("track my package");
        let typo = f.transform("trak my packge");
        let other = f.transform("cancel my order");
        assert!(cosine(&base, &typo) > cosine(&other, &typo), "typo");
        // Another cut of the same Chinese words still shares most features.
        let zh = f.transform("顺丰能发");
        assert!(cosine(&zh, &f.transform("能发顺丰吗")) > 0.5);
    }

    #[test]
    fn given_feature_kinds_when_hashed_then_the_hash_names_the_kind_and_its_weight_applies() {
        for kind in Kind::ALL {
            assert_eq!(Kind::of(hash(kind, "退货")), kind);
        }
        // One paraphrase: every feature has the same IDF, so values differ by kind only.
        let f = Featurizer::fit(["退货"]);
        let x = f.transform("退货");
        let value = |kind, text| {
            let feature = f.hashes.binary_search(&hash(kind, text)).expect("feature") as u32;
            x.iter().find(|&&(g, _)| g == feature).expect("value").1
        };
        let (character, bigram) = (value(Kind::Char, "退"), value(Kind::Bigram, "退货"));
        assert!((character / bigram - 2.0 / 0.75).abs() < 1e-4);
        assert!((value(Kind::Term, "退货") / bigram - 1.0 / 0.75).abs() < 1e-4);
    }

    #[test]
    fn given_vocabulary_when_written_and_read_then_it_is_the_same() {
        let f = Featurizer::fit(["怎么退货", "track my package"]);
        let english = Featurizer::fit(["track my package", "cancel my order"]);
        let chinese = Featurizer::fit(["怎么退货", "运费怎么算"]);
        let used = |f: &Featurizer| f.vector_means.clone().map(|m| m.is_some());
        assert_eq!(
            (used(&f), used(&english), used(&chinese)),
            ([true, true], [true, false], [false, true])
        );
        for f in [&f, &english, &chinese] {
            let mut bytes = Vec::new();
            f.write(&mut bytes);
            assert_eq!(Featurizer::read(&mut &bytes[..]).expect("read"), *f);
        }
        let mut bytes = Vec::new();
        f.write(&mut bytes);
        let mut input = &bytes[..];
        assert_eq!(Featurizer::read(&mut input).expect("read"), f);
        assert!(input.is_empty());
        let mut short = &bytes[..bytes.len() - 1];
        assert!(matches!(
            Featurizer::read(&mut short),
            Err(Error::Corrupt(_))
        ));
    }
}
