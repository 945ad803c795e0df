//! A softmax (multinomial logistic) regression over TF-IDF features, trained at index
//! build time on the paraphrases, in one of two shapes chosen by the FAQ's size:
//!
//! - **Dense** ([`dense`]): a weight for every (feature, entry) pair, trained to
//!   convergence with L-BFGS. A word seen only in other entries' paraphrases counts
//!   against an entry, which tells similar entries apart best. Used while the weights and
//!   the training work stay small (FAQs of up to a few hundred entries). Beside it, each
//!   entry's nearest training paraphrase by wording and by meaning ([`neighbours`]): the
//!   two similarities are added to the entry's logit with weights chosen at calibration
//!   ([`Blend`]).
//! - **Sparse**: a weight only for a (feature, entry) pair where the feature occurs in one
//!   of the entry's paraphrases; every other pair is zero. That keeps the model as small
//!   as the training data (a 10,000-entry FAQ stays a few megabytes) and a query touches
//!   only the entries sharing a feature with it. Entries sharing nothing score 0 and still
//!   take part in the softmax, so a message unlike every entry gets a low probability
//!   everywhere. Trained by AdaGrad SGD with L2 decay, in a fixed pseudo-random order.
//!
//! Either way the same paraphrases give the same model.

mod dense;
mod neighbours;

use crate::features::{SparseVec, read_array, read_u64};
use crate::word_vectors::{DIMS, Language};
use crate::{Error, Result};
use dense::Dense;
use neighbours::Neighbours;

/// How the classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrainConfig {
    /// Passes over the data at most.
    pub epochs: usize,
    /// AdaGrad base learning rate.
    pub learning_rate: f32,
    /// L2 decay per update.
    pub l2: f32,
    /// Weight updates allowed in total; large FAQs get fewer epochs.
    pub budget: u64,
    /// A feature occurring in more entries than this gets no weights: it tells them
    /// apart hardly at all, and its weights would dominate training and query time.
    pub max_feature_classes: usize,
    /// The dense model is trained when features × entries stays within this (memory and
    /// bundle size: four bytes each).
    pub max_dense_weights: usize,
    /// ... and paraphrase features × entries within this (time of one L-BFGS step; each
    /// paraphrase with a word vector has a few hundred features).
    pub max_dense_work: usize,
    /// L2 strength of the dense model, per paraphrase.
    pub dense_l2: f32,
    /// L-BFGS iterations of the dense model at most.
    pub dense_iterations: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            learning_rate: 0.5,
            l2: 1e-4,
            budget: 400_000_000,
            max_feature_classes: 1_000,
            max_dense_weights: 3_000_000,
            max_dense_work: 120_000_000,
            dense_l2: 1e-4,
            dense_iterations: 200,
        }
    }
}

/// A trained classifier of either shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Classifier {
    /// Every (feature, entry) pair has a weight; the paraphrases are kept for similarity.
    Dense(Dense, Neighbours),
    /// Only pairs seen in training have one.
    Sparse(Sparse),
}

/// Tags of the two shapes in a bundle.
const DENSE_TAG: u8 = 1;
const SPARSE_TAG: u8 = 2;

impl Classifier {
    /// Trains on `samples` (vector, class) with `features` features and `classes`
    /// classes, dense when the FAQ is small enough (see [`TrainConfig`]).
    pub fn train(
        samples: &[(SparseVec, u32)],
        features: usize,
        classes: usize,
        config: &TrainConfig,
    ) -> Self {
        let work = samples.iter().map(|(x, _)| x.len()).sum::<usize>();
        let dense = features.saturating_mul(classes) <= config.max_dense_weights
            && work.saturating_mul(classes) <= config.max_dense_work;
        // The featurizer puts the word vector's dimensions last. Only the English ones are
        // compared by meaning: their cosines are a sentence model's, while the Chinese
        // vectors' cosines made answers worse on held-out questions.
        let vectors = features.saturating_sub(DIMS);
        let english = Language::English.offset() + vectors;
        let english = english.min(features)..(english + Language::English.dims()).min(features);
        if dense {
            Self::Dense(
                Dense::train(
                    samples,
                    features,
                    classes,
                    config.dense_l2,
                    config.dense_iterations,
                ),
                Neighbours::build(samples, features, vectors, english),
            )
        } else {
            Self::Sparse(Sparse::train(samples, features, classes, config))
        }
    }

    /// Raw scores of `x` into `scores`.
    pub fn score(&self, x: &SparseVec, scores: &mut Scores) {
        match self {
            Self::Dense(model, neighbours) => {
                model.score(x, scores);
                let classes = model.classes() as usize;
                scores.nearest.resize(classes, 0.0);
                scores.meaning.resize(classes, 0.0);
                neighbours.nearest(
                    x,
                    &mut scores.dots,
                    &mut scores.nearest,
                    &mut scores.meaning,
                );
            }
            Self::Sparse(model) => model.score(x, scores),
        }
    }

    /// Which shape was trained, for logs.
    pub fn shape(&self) -> &'static str {
        match self {
            Self::Dense(..) => "dense",
            Self::Sparse(_) => "sparse",
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> u32 {
        match self {
            Self::Dense(model, _) => model.classes(),
            Self::Sparse(model) => model.classes,
        }
    }

    /// The `n` most probable classes under `blend`, with the log `priors` of the classes
    /// added to their logits (see [`prior`]), best first. Untouched classes are never
    /// listed (they all share the same low probability).
    pub fn top(&self, scores: &Scores, blend: Blend, priors: &[f32], n: usize) -> Vec<Ranked> {
        let (max, total) = normaliser(self.classes(), scores, blend, priors);
        let mut best: Vec<u32> = scores.touched.clone();
        let logit = |c: u32| scores.logit(c, blend, priors);
        let order = |a: &u32, b: &u32| logit(*b).total_cmp(&logit(*a)).then_with(|| a.cmp(b));
        // Thousands of classes may be touched; only the first `n` need ordering.
        if n == 0 {
            return Vec::new();
        }
        if n < best.len() {
            best.select_nth_unstable_by(n - 1, order);
            best.truncate(n);
        }
        best.sort_by(order);
        best.into_iter()
            .map(|class| Ranked {
                class,
                probability: (logit(class) - max).exp() / total,
            })
            .collect()
    }

    /// Appends the model to `out` (see [`Classifier::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Dense(model, neighbours) => {
                out.push(DENSE_TAG);
                model.write(out);
                neighbours.write(out);
            }
            Self::Sparse(model) => {
                out.push(SPARSE_TAG);
                model.write(out);
            }
        }
    }

    /// Reads a model written by [`Classifier::write`], advancing `input`; `features` is
    /// the size of the feature space.
    pub fn read(input: &mut &[u8], features: usize) -> Result<Self> {
        let Some((&tag, rest)) = input.split_first() else {
            return Err(Error::Corrupt("FAQ model is truncated".into()));
        };
        *input = rest;
        match tag {
            DENSE_TAG => {
                let model = Dense::read(input, features)?;
                let neighbours = Neighbours::read(input, features, model.classes())?;
                Ok(Self::Dense(model, neighbours))
            }
            SPARSE_TAG => Ok(Self::Sparse(Sparse::read(input)?)),
            other => Err(Error::Corrupt(format!("FAQ model: unknown shape {other}"))),
        }
    }
}

/// How a class's regression score and its nearest paraphrases' similarities make its
/// logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Blend {
    /// The regression score is divided by this.
    pub temperature: f32,
    /// The similarity by wording (0..=1) is multiplied by this.
    pub similarity: f32,
    /// The similarity by meaning (at most 1) is multiplied by this.
    pub meaning: f32,
}

impl Blend {
    /// The plain softmax of the regression scores.
    pub const PLAIN: Blend = Blend {
        temperature: 1.0,
        similarity: 0.0,
        meaning: 0.0,
    };

    /// The logit of a class scoring `score` whose nearest paraphrases are at `nearest` by
    /// wording and at `meaning` by meaning.
    pub fn logit(&self, score: f32, nearest: f32, meaning: f32) -> f32 {
        score / self.temperature.max(1e-3) + self.similarity * nearest + self.meaning * meaning
    }
}

/// The log prior of `class` in `priors`, learned when calibrating on labelled questions
/// (0 without one). It is added to the logits of the classes a message touches; untouched
/// classes keep logit 0, as when calibrating.
pub(crate) fn prior(priors: &[f32], class: u32) -> f32 {
    priors.get(class as usize).copied().unwrap_or(0.0)
}

/// The softmax's maximum logit and denominator over `classes` under `blend` and
/// `priors`; untouched classes have logit 0.
fn normaliser(classes: u32, scores: &Scores, blend: Blend, priors: &[f32]) -> (f32, f32) {
    let untouched = classes as usize - scores.touched.len();
    let logit = |c: u32| scores.logit(c, blend, priors);
    let mut max = if untouched > 0 { 0.0f32 } else { f32::MIN };
    for &c in &scores.touched {
        max = max.max(logit(c));
    }
    let mut total = untouched as f32 * (-max).exp();
    for &c in &scores.touched {
        total += (logit(c) - max).exp();
    }
    (max, total)
}

/// The sparse model's weights, stored by feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sparse {
    classes: u32,
    /// `offsets[f]..offsets[f + 1]` are feature `f`'s weights.
    offsets: Vec<u32>,
    /// The class of each weight.
    targets: Vec<u32>,
    weights: Vec<f32>,
}

/// Scores of one message, reusable across messages.
#[derive(Debug, Default)]
pub(crate) struct Scores {
    dense: Vec<f32>,
    seen: Vec<bool>,
    /// Classes with a nonzero contribution, in first-touch order.
    touched: Vec<u32>,
    /// Each class's nearest-paraphrase similarity by wording (empty when the model keeps
    /// none).
    nearest: Vec<f32>,
    /// ... and by meaning.
    meaning: Vec<f32>,
    /// Scratch: similarity to each paraphrase.
    dots: Vec<f32>,
}

impl Scores {
    /// The raw score of `class`.
    pub fn get(&self, class: u32) -> f32 {
        self.dense.get(class as usize).copied().unwrap_or(0.0)
    }

    /// The similarity of `class`'s nearest paraphrase by wording (0 when unknown).
    pub fn nearest(&self, class: u32) -> f32 {
        self.nearest.get(class as usize).copied().unwrap_or(0.0)
    }

    /// The similarity of `class`'s nearest paraphrase by meaning (0 when unknown).
    pub fn meaning(&self, class: u32) -> f32 {
        self.meaning.get(class as usize).copied().unwrap_or(0.0)
    }

    /// The logit of `class` under `blend`, with its log prior in `priors`.
    pub fn logit(&self, class: u32, blend: Blend, priors: &[f32]) -> f32 {
        blend.logit(self.get(class), self.nearest(class), self.meaning(class))
            + prior(priors, class)
    }

    /// The touched classes (the others scored 0).
    pub fn touched(&self) -> &[u32] {
        &self.touched
    }

    fn reset(&mut self, classes: usize) {
        if self.dense.len() != classes {
            self.dense = vec![0.0; classes];
            self.seen = vec![false; classes];
            self.touched.clear();
        }
        for &c in &self.touched {
            self.dense[c as usize] = 0.0;
            self.seen[c as usize] = false;
        }
        self.touched.clear();
        self.nearest.clear();
        self.meaning.clear();
    }
}

/// A class and its probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ranked {
    /// The class (entry position).
    pub class: u32,
    /// Softmax probability under the blend asked for.
    pub probability: f32,
}

impl Sparse {
    /// Trains on `samples` (vector, class) with `features` features and `classes` classes.
    pub fn train(
        samples: &[(SparseVec, u32)],
        features: usize,
        classes: usize,
        config: &TrainConfig,
    ) -> Self {
        let mut model = Self::support(samples, features, classes, config.max_feature_classes);
        if samples.is_empty() || classes == 0 {
            return model;
        }
        let work: u64 = samples
            .iter()
            .map(|(x, _)| model.work(x) + classes as u64 / 8)
            .sum::<u64>()
            .max(1);
        // At least one pass, however large the FAQ: the support cap bounds its work.
        let epochs = (config.budget / work).clamp(1, config.epochs as u64) as usize;
        let mut squares = vec![1e-6f32; model.weights.len()];
        let mut order: Vec<usize> = (0..samples.len()).collect();
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut scores = Scores::default();
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (x, y) = &samples[i];
                model.step(x, *y, config, &mut scores, &mut squares);
            }
        }
        model
    }

    /// The zero model with a weight slot for every (feature, class) pair seen in training,
    /// except for features seen in more than `max_classes` classes.
    fn support(
        samples: &[(SparseVec, u32)],
        features: usize,
        classes: usize,
        max_classes: usize,
    ) -> Self {
        let mut pairs: Vec<(u32, u32)> = samples
            .iter()
            .flat_map(|(x, y)| x.iter().map(move |&(f, _)| (f, *y)))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut kept = Vec::with_capacity(pairs.len());
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            if run.len() <= max_classes {
                kept.extend_from_slice(run);
            }
        }
        let pairs = kept;
        let mut offsets = vec![0u32; features + 1];
        for &(f, _) in &pairs {
            offsets[f as usize + 1] += 1;
        }
        for f in 0..features {
            offsets[f + 1] += offsets[f];
        }
        Self {
            classes: classes as u32,
            offsets,
            weights: vec![0.0; pairs.len()],
            targets: pairs.into_iter().map(|(_, c)| c).collect(),
        }
    }

    fn work(&self, x: &SparseVec) -> u64 {
        x.iter().map(|&(f, _)| self.range(f).len() as u64).sum()
    }

    fn range(&self, feature: u32) -> std::ops::Range<usize> {
        let f = feature as usize;
        match (self.offsets.get(f), self.offsets.get(f + 1)) {
            (Some(&from), Some(&to)) => from as usize..to as usize,
            _ => 0..0,
        }
    }

    /// One SGD step on one sample.
    fn step(
        &mut self,
        x: &SparseVec,
        y: u32,
        config: &TrainConfig,
        scores: &mut Scores,
        squares: &mut [f32],
    ) {
        self.score(x, scores);
        let (max, total) = normaliser(self.classes, scores, Blend::PLAIN, &[]);
        // From here on the scores hold probabilities.
        for &c in &scores.touched {
            let c = c as usize;
            scores.dense[c] = (scores.dense[c] - max).exp() / total;
        }
        for &(f, value) in x {
            for k in self.range(f) {
                let class = self.targets[k];
                let p = scores.get(class);
                let target = if class == y { 1.0 } else { 0.0 };
                let g = value * (p - target) + config.l2 * self.weights[k];
                squares[k] += g * g;
                self.weights[k] -= config.learning_rate * g / squares[k].sqrt();
            }
        }
    }

    /// Raw scores of `x` into `scores`.
    pub fn score(&self, x: &SparseVec, scores: &mut Scores) {
        scores.reset(self.classes as usize);
        for &(f, value) in x {
            for k in self.range(f) {
                let class = self.targets[k];
                let c = class as usize;
                if !scores.seen[c] {
                    scores.seen[c] = true;
                    scores.touched.push(class);
                }
                scores.dense[c] += value * self.weights[k];
            }
        }
    }

    /// Appends the model to `out` (see [`Sparse::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u64::from(self.classes).to_le_bytes());
        out.extend_from_slice(&(self.offsets.len() as u64).to_le_bytes());
        for v in &self.offsets {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.weights.len() as u64).to_le_bytes());
        for v in &self.targets {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.weights {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads a model written by [`Sparse::write`], advancing `input`.
    pub fn read(input: &mut &[u8]) -> Result<Self> {
        let corrupt = |what: &str| Error::Corrupt(format!("FAQ model: {what}"));
        let classes = u32::try_from(read_u64(input)?).map_err(|_| corrupt("class count"))?;
        let n = usize::try_from(read_u64(input)?).map_err(|_| corrupt("offsets"))?;
        let offsets = read_array(input, n, u32::from_le_bytes)?;
        let nnz = usize::try_from(read_u64(input)?).map_err(|_| corrupt("weights"))?;
        let targets = read_array(input, nnz, u32::from_le_bytes)?;
        let weights = read_array(input, nnz, f32::from_le_bytes)?;
        let consistent = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().map(|&last| last as usize) == Some(nnz)
            && targets.iter().all(|&c| c < classes);
        if !consistent {
            return Err(corrupt("inconsistent weights"));
        }
        Ok(Self {
            classes,
            offsets,
            targets,
            weights,
        })
    }
}

/// A small deterministic generator for shuffling.
pub(crate) struct XorShift(pub u64);

impl XorShift {
    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Featurizer;

    /// Training limited to the sparse shape.
    fn sparse_only() -> TrainConfig {
        TrainConfig {
            max_dense_weights: 0,
            ..TrainConfig::default()
        }
    }

    fn toy(config: &TrainConfig) -> (Featurizer, Classifier) {
        let data = [
            ("track my package", 0),
            ("where is my parcel", 0),
            ("when will my order arrive", 0),
            ("cancel my order", 1),
            ("I want to cancel", 1),
            ("stop my order please", 1),
            ("怎么退货", 2),
            ("不想要了能退吗", 2),
        ];
        let featurizer = Featurizer::fit(data.iter().map(|(t, _)| *t));
        let samples: Vec<(SparseVec, u32)> = data
            .iter()
            .map(|(t, c)| (featurizer.transform(t), *c))
            .collect();
        let model = Classifier::train(&samples, featurizer.len(), 3, config);
        (featurizer, model)
    }

    fn best(featurizer: &Featurizer, model: &Classifier, text: &str) -> Option<Ranked> {
        let mut scores = Scores::default();
        model.score(&featurizer.transform(text), &mut scores);
        model.top(&scores, Blend::PLAIN, &[], 3).first().copied()
    }

    #[test]
    fn given_toy_paraphrases_when_trained_then_new_wordings_get_their_class() {
        for config in [TrainConfig::default(), sparse_only()] {
            let (featurizer, model) = toy(&config);
            assert_eq!(
                matches!(model, Classifier::Dense(..)),
                config.max_dense_weights > 0
            );
            assert_eq!(
                best(&featurizer, &model, "where is my package").map(|r| r.class),
                Some(0)
            );
            assert_eq!(
                best(&featurizer, &model, "please cancel it").map(|r| r.class),
                Some(1)
            );
            assert_eq!(
                best(&featurizer, &model, "能退货吗").map(|r| r.class),
                Some(2)
            );
            let sure = best(&featurizer, &model, "track my package").expect("ranked");
            assert!(sure.probability > 0.6, "{sure:?}");
            // A message sharing nothing: no class stands out.
            let unsure = best(&featurizer, &model, "今天天气");
            assert!(
                unsure.is_none_or(|r| r.probability < sure.probability - 0.2),
                "{unsure:?} {sure:?}"
            );
        }
        let (featurizer, sparse) = toy(&sparse_only());
        assert!(best(&featurizer, &sparse, "今天天气").is_none());
    }

    #[test]
    fn given_feature_in_too_many_classes_when_trained_then_it_gets_no_weights() {
        let data = ["refund order", "track order", "cancel order"];
        let featurizer = Featurizer::fit(data);
        let samples: Vec<(SparseVec, u32)> = data
            .iter()
            .enumerate()
            .map(|(c, t)| (featurizer.transform(t), c as u32))
            .collect();
        let capped = TrainConfig {
            max_feature_classes: 2,
            ..sparse_only()
        };
        let model = Classifier::train(&samples, featurizer.len(), 3, &capped);
        let mut scores = Scores::default();
        model.score(&featurizer.transform("order"), &mut scores);
        assert!(scores.touched().is_empty(), "{:?}", scores.touched());
        // Uncapped, "order" has a weight in every class.
        let full = Classifier::train(&samples, featurizer.len(), 3, &sparse_only());
        full.score(&featurizer.transform("order"), &mut scores);
        assert_eq!(scores.touched().len(), 3);
        // Words of one entry keep theirs.
        model.score(&featurizer.transform("refund"), &mut scores);
        assert_eq!(scores.touched(), &[0]);
    }

    #[test]
    fn given_word_of_other_entries_when_dense_then_it_lowers_this_entry() {
        let (featurizer, dense) = toy(&TrainConfig::default());
        let (_, sparse) = toy(&sparse_only());
        let mut scores = Scores::default();
        // "stop" occurs only in entry 1's paraphrases: only the dense model holds it
        // against entry 0 (the word alone, without its word vector).
        let x = featurizer.lexical(&featurizer.transform("stop"));
        dense.score(&x, &mut scores);
        assert!(scores.get(0) < 0.0, "{}", scores.get(0));
        sparse.score(&x, &mut scores);
        assert_eq!(scores.get(0), 0.0);
    }

    #[test]
    fn given_same_data_when_trained_twice_then_models_are_identical() {
        assert_eq!(
            toy(&TrainConfig::default()).1,
            toy(&TrainConfig::default()).1
        );
        assert_eq!(toy(&sparse_only()).1, toy(&sparse_only()).1);
    }

    #[test]
    fn given_model_when_written_and_read_then_it_is_the_same() {
        for config in [TrainConfig::default(), sparse_only()] {
            let (featurizer, model) = toy(&config);
            let mut bytes = Vec::new();
            model.write(&mut bytes);
            let mut input = &bytes[..];
            assert_eq!(
                Classifier::read(&mut input, featurizer.len()).expect("read"),
                model
            );
            assert!(input.is_empty());
            let mut cut = &bytes[..bytes.len() / 2];
            assert!(Classifier::read(&mut cut, featurizer.len()).is_err());
            let mut unknown = bytes.clone();
            unknown[0] = 9;
            assert!(Classifier::read(&mut &unknown[..], featurizer.len()).is_err());
        }
    }

    #[test]
    fn given_probabilities_when_temperature_rises_then_they_flatten() {
        for config in [TrainConfig::default(), sparse_only()] {
            let (featurizer, model) = toy(&config);
            let mut scores = Scores::default();
            model.score(&featurizer.transform("cancel my order"), &mut scores);
            let at = |temperature| Blend {
                temperature,
                ..Blend::PLAIN
            };
            let sharp = model.top(&scores, at(0.5), &[], 1)[0].probability;
            let flat = model.top(&scores, at(4.0), &[], 1)[0].probability;
            assert!(sharp > flat, "{sharp} {flat}");
            let sum: f32 = model
                .top(&scores, Blend::PLAIN, &[], 10)
                .iter()
                .map(|r| r.probability)
                .sum();
            assert!(sum <= 1.0 + 1e-4);
        }
    }
}
