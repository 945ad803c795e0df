//! The nearest paraphrase of each entry, twice: by wording (cosine over the TF-IDF part of
//! the vectors the regression reads) and by meaning (cosine over a range of their
//! word-vector dimensions: the English ones, whose cosines are a sentence model's).
//!
//! The regression weighs features; this remembers whole paraphrases, so a message that is
//! nearly one paraphrase gets its entry even when the paraphrase's features are shared
//! with other entries, or when the regression's single weight per dimension cannot tell
//! the paraphrase's meaning from its neighbours'. Wordings are stored as an inverted index
//! (a message visits only the paraphrases sharing a feature with it); meanings as one unit
//! row per paraphrase, compared with every message that has a word vector.

use super::dense::dot;
use crate::features::{SparseVec, read_array, read_u64};
use crate::{Error, Result};
use std::ops::Range;

/// Training paraphrases by feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Neighbours {
    /// The entry of each paraphrase.
    owners: Vec<u32>,
    /// `offsets[f]..offsets[f + 1]` are feature `f`'s postings.
    offsets: Vec<u32>,
    /// Paraphrase of each posting.
    paraphrases: Vec<u32>,
    /// The feature's value in that paraphrase.
    values: Vec<f32>,
    /// The features compared by meaning.
    meaning: Range<usize>,
    /// Each paraphrase's features in `meaning` at unit length (zeros without them), one
    /// row per paraphrase.
    meanings: Vec<f32>,
}

impl Neighbours {
    /// Indexes `samples` (vector, entry) over `features` features, of which only those
    /// below `lexical` are posted: the word-vector dimensions after them are in every
    /// paraphrase of their language, and visiting every paraphrase per dimension would
    /// cost more than the rest of a query while adding little to what the regression
    /// makes of them. The features in `meaning` are kept whole, to compare by meaning.
    pub fn build(
        samples: &[(SparseVec, u32)],
        features: usize,
        lexical: usize,
        meaning: Range<usize>,
    ) -> Self {
        let width = meaning.len();
        let mut meanings = vec![0.0f32; samples.len() * width];
        for ((x, _), row) in samples.iter().zip(meanings.chunks_mut(width.max(1))) {
            for (f, value) in meaning_of(x, &meaning) {
                row[f] = value;
            }
        }
        let posted = |x: &SparseVec| {
            let end = x.partition_point(|&(f, _)| (f as usize) < lexical);
            x[..end].to_vec()
        };
        let samples: Vec<(SparseVec, u32)> = samples.iter().map(|(x, c)| (posted(x), *c)).collect();
        let mut offsets = vec![0u32; features + 1];
        for (x, _) in &samples {
            for &(f, _) in x {
                offsets[f as usize + 1] += 1;
            }
        }
        for f in 0..features {
            offsets[f + 1] += offsets[f];
        }
        let total = offsets[features] as usize;
        let mut next = offsets.clone();
        let mut paraphrases = vec![0u32; total];
        let mut values = vec![0.0f32; total];
        for (i, (x, _)) in samples.iter().enumerate() {
            for &(f, value) in x {
                let slot = &mut next[f as usize];
                paraphrases[*slot as usize] = i as u32;
                values[*slot as usize] = value;
                *slot += 1;
            }
        }
        Self {
            owners: samples.iter().map(|(_, class)| *class).collect(),
            offsets,
            paraphrases,
            values,
            meaning,
            meanings,
        }
    }

    /// Writes each class's highest cosine with `x` by wording into `nearest` (0 where no
    /// paraphrase shares a feature) and by meaning into `meaning` (0 where `x` or every
    /// paraphrase lacks a word vector); `dots` is scratch space.
    pub fn nearest(
        &self,
        x: &SparseVec,
        dots: &mut Vec<f32>,
        nearest: &mut [f32],
        meaning: &mut [f32],
    ) {
        dots.clear();
        dots.resize(self.owners.len(), 0.0);
        for &(f, value) in x {
            let f = f as usize;
            let (Some(&from), Some(&to)) = (self.offsets.get(f), self.offsets.get(f + 1)) else {
                continue;
            };
            let range = from as usize..to as usize;
            for (&p, &v) in self.paraphrases[range.clone()]
                .iter()
                .zip(&self.values[range])
            {
                dots[p as usize] += value * v;
            }
        }
        highest_per_owner(dots, &self.owners, nearest);
        let mut query = vec![0.0f32; self.meaning.len()];
        let mut any = false;
        for (f, value) in meaning_of(x, &self.meaning) {
            query[f] = value;
            any = true;
        }
        dots.clear();
        if any {
            dots.extend(
                self.meanings
                    .chunks(query.len())
                    .map(|row| dot(row, &query)),
            );
        }
        highest_per_owner(dots, &self.owners, meaning);
    }

    /// Appends the index to `out` (see [`Neighbours::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.owners.len() as u64).to_le_bytes());
        for v in &self.owners {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.offsets.len() as u64).to_le_bytes());
        for v in &self.offsets {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.paraphrases {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for end in [self.meaning.start, self.meaning.end] {
            out.extend_from_slice(&(end as u64).to_le_bytes());
        }
        for v in &self.meanings {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads an index written by [`Neighbours::write`], advancing `input`; `features` and
    /// `classes` are the model's.
    pub fn read(input: &mut &[u8], features: usize, classes: u32) -> Result<Self> {
        let corrupt = || Error::Corrupt("FAQ model: inconsistent neighbours".into());
        let n = usize::try_from(read_u64(input)?).map_err(|_| corrupt())?;
        let owners = read_array(input, n, u32::from_le_bytes)?;
        let m = usize::try_from(read_u64(input)?).map_err(|_| corrupt())?;
        if m != features + 1 {
            return Err(corrupt());
        }
        let offsets = read_array(input, m, u32::from_le_bytes)?;
        let total = offsets.last().map_or(0, |&last| last as usize);
        let paraphrases = read_array(input, total, u32::from_le_bytes)?;
        let values = read_array(input, total, f32::from_le_bytes)?;
        let mut end = || usize::try_from(read_u64(input)?).map_err(|_| corrupt());
        let meaning = end()?..end()?;
        if meaning.start > meaning.end || meaning.end > features {
            return Err(corrupt());
        }
        let meanings = read_array(input, n * meaning.len(), f32::from_le_bytes)?;
        let consistent = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && owners.iter().all(|&c| c < classes)
            && paraphrases.iter().all(|&p| (p as usize) < n);
        if !consistent {
            return Err(corrupt());
        }
        Ok(Self {
            owners,
            offsets,
            paraphrases,
            values,
            meaning,
            meanings,
        })
    }
}

/// The features of `x` in `range` at unit length, as (position in `range`, value).
fn meaning_of<'a>(
    x: &'a SparseVec,
    range: &Range<usize>,
) -> impl Iterator<Item = (usize, f32)> + 'a {
    let from = x.partition_point(|&(f, _)| (f as usize) < range.start);
    let to = x.partition_point(|&(f, _)| (f as usize) < range.end);
    let part = &x[from..to];
    let norm = part.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    let start = range.start;
    part.iter()
        .filter(move |_| norm > 0.0)
        .map(move |&(f, v)| (f as usize - start, v / norm))
}

/// Writes into `best` each owner's highest value in `values` (0 for owners without one).
fn highest_per_owner(values: &[f32], owners: &[u32], best: &mut [f32]) {
    best.fill(0.0);
    for (&value, &owner) in values.iter().zip(owners) {
        if let Some(best) = best.get_mut(owner as usize) {
            *best = best.max(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_paraphrases_when_asked_then_each_class_gets_its_closest_cosine() {
        let samples = vec![
            (vec![(0, 1.0)], 0),
            (vec![(0, 0.6), (1, 0.8)], 0),
            (vec![(2, 1.0)], 1),
            (vec![(1, 0.6), (2, 0.8)], 1),
        ];
        let index = Neighbours::build(&samples, 4, 4, 4..4);
        let mut dots = Vec::new();
        let (mut nearest, mut meaning) = (vec![0.0; 3], vec![0.0; 3]);
        index.nearest(&vec![(1, 1.0)], &mut dots, &mut nearest, &mut meaning);
        assert_eq!(nearest, vec![0.8, 0.6, 0.0]);
        assert_eq!(meaning, vec![0.0; 3], "no features kept for meaning");
        index.nearest(&vec![(3, 1.0)], &mut dots, &mut nearest, &mut meaning);
        assert_eq!(nearest, vec![0.0; 3], "feature 3 is in no paraphrase");
        let lexical_only = Neighbours::build(&samples, 4, 2, 4..4);
        lexical_only.nearest(
            &vec![(1, 1.0), (2, 1.0)],
            &mut dots,
            &mut nearest,
            &mut meaning,
        );
        assert_eq!(nearest, vec![0.8, 0.6, 0.0], "feature 2 is not posted");
        let mut bytes = Vec::new();
        index.write(&mut bytes);
        let mut input = &bytes[..];
        assert_eq!(Neighbours::read(&mut input, 4, 3).expect("read"), index);
        assert!(input.is_empty());
        assert!(
            Neighbours::read(&mut &bytes[..], 4, 1).is_err(),
            "class 1 unknown"
        );
    }

    #[test]
    fn given_word_vectors_when_asked_then_each_class_gets_its_closest_meaning() {
        // Feature 0 is a word; 1 and 2 are the dimensions compared by meaning; 3 is a
        // dimension outside them (another language's).
        let samples = vec![
            (vec![(0, 1.0), (1, 3.0), (2, 4.0)], 0),
            (vec![(0, 1.0), (1, -1.0)], 0),
            (vec![(2, 2.0)], 1),
            (vec![(3, 1.0)], 2),
        ];
        let index = Neighbours::build(&samples, 4, 1, 1..3);
        let mut dots = Vec::new();
        let (mut nearest, mut meaning) = (vec![0.0; 3], vec![0.0; 3]);
        index.nearest(&vec![(1, 1.0)], &mut dots, &mut nearest, &mut meaning);
        assert_eq!(nearest, vec![0.0; 3], "no word in common");
        // Unit lengths: class 0's best is (0.6, 0.8), not (-1, 0); class 1 is (0, 1).
        assert_eq!(meaning, vec![0.6, 0.0, 0.0]);
        index.nearest(
            &vec![(2, 5.0), (3, 9.0)],
            &mut dots,
            &mut nearest,
            &mut meaning,
        );
        assert_eq!(meaning, vec![0.8, 1.0, 0.0], "dimension 3 is not compared");
        index.nearest(&vec![(0, 1.0)], &mut dots, &mut nearest, &mut meaning);
        assert_eq!(
            meaning,
            vec![0.0; 3],
            "a message without a vector has no meaning"
        );
        let mut bytes = Vec::new();
        index.write(&mut bytes);
        assert_eq!(
            Neighbours::read(&mut &bytes[..], 4, 3).expect("read"),
            index
        );
        assert!(
            Neighbours::read(&mut &bytes[..], 2, 3).is_err(),
            "another feature count does not fit"
        );
    }
}
