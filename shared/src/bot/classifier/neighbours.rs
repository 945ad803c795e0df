//! The nearest paraphrase of each entry: cosine similarity between a message and every
//! training paraphrase, over the TF-IDF part of the vectors the regression reads.
//!
//! The regression weighs features; this remembers whole wordings, so a message that is
//! nearly one paraphrase gets its entry even when the paraphrase's features are shared
//! with other entries. Stored as an inverted index: a message visits only the paraphrases
//! sharing a feature with it.

use crate::bot::features::{SparseVec, read_array, read_u64};
use crate::{Error, Result};

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
}

impl Neighbours {
    /// Indexes `samples` (vector, entry) over `features` features, of which only those
    /// below `lexical` are posted: the word-vector dimensions after them are in every
    /// paraphrase of their language, and visiting every paraphrase per dimension would
    /// cost more than the rest of a query while adding little to what the regression
    /// makes of them.
    pub fn build(samples: &[(SparseVec, u32)], features: usize, lexical: usize) -> Self {
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
        }
    }

    /// Writes each class's highest cosine with `x` into `nearest` (0 where no paraphrase
    /// shares a feature); `dots` is scratch space.
    pub fn nearest(&self, x: &SparseVec, dots: &mut Vec<f32>, nearest: &mut [f32]) {
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
        nearest.fill(0.0);
        for (&dot, &owner) in dots.iter().zip(&self.owners) {
            if let Some(best) = nearest.get_mut(owner as usize) {
                *best = best.max(dot);
            }
        }
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
        })
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
        let index = Neighbours::build(&samples, 4, 4);
        let mut dots = Vec::new();
        let mut nearest = vec![0.0; 3];
        index.nearest(&vec![(1, 1.0)], &mut dots, &mut nearest);
        assert_eq!(nearest, vec![0.8, 0.6, 0.0]);
        index.nearest(&vec![(3, 1.0)], &mut dots, &mut nearest);
        assert_eq!(nearest, vec![0.0; 3], "feature 3 is in no paraphrase");
        let lexical_only = Neighbours::build(&samples, 4, 2);
        lexical_only.nearest(&vec![(1, 1.0), (2, 1.0)], &mut dots, &mut nearest);
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
}
