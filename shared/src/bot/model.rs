//! The trained part of an index version: features, classifier and calibration, built
//! from the entries (and an optional labelled validation set) and stored in the bundle.

use crate::bot::calibrate::{self, Calibration, Labelled, Observation};
use crate::bot::classifier::{Blend, Classifier, Ranked, Scores, TrainConfig};
use crate::bot::faq::FaqEntry;
use crate::bot::features::{Featurizer, Hashed, SparseVec};
use crate::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;

/// Version of the model layout in the bundle.
const MODEL_VERSION: u32 = 2;

thread_local! {
    /// Score buffers per thread: a query allocates nothing proportional to the FAQ.
    static SCORES: RefCell<Scores> = RefCell::new(Scores::default());
}

/// Features, weights and calibration of one index version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaqModel {
    featurizer: Featurizer,
    classifier: Classifier,
    /// How raw scores become confidences, and where "don't know" starts.
    pub calibration: Calibration,
}

impl FaqModel {
    /// Trains on the paraphrases of `entries`; calibrates on `validation` when given
    /// (queries naming unknown entries count as out of scope), else by cross-validation.
    pub fn build(entries: &[FaqEntry], validation: Option<&[Labelled]>) -> Self {
        let hashed: Vec<(Hashed, u32)> = entries
            .iter()
            .enumerate()
            .flat_map(|(class, entry)| {
                entry
                    .paraphrases()
                    .map(move |p| (Hashed::of(p), class as u32))
            })
            .collect();
        let featurizer = Featurizer::fit_hashed(hashed.iter().map(|(doc, _)| doc));
        let samples: Vec<(SparseVec, u32)> = hashed
            .iter()
            .map(|(doc, class)| (featurizer.transform_hashed(doc), *class))
            .collect();
        drop(hashed);
        let config = TrainConfig::default();
        let classifier = Classifier::train(&samples, featurizer.len(), entries.len(), &config);
        let mut model = Self {
            featurizer,
            classifier,
            calibration: Calibration::default(),
        };
        model.calibration = match validation {
            Some(validation) if !validation.is_empty() => model.calibrate_on(entries, validation),
            _ => {
                calibrate::cross_validate(&samples, entries.len(), model.featurizer.len(), &config)
            }
        };
        tracing::info!(
            entries = entries.len(),
            features = model.featurizer.len(),
            temperature = model.calibration.temperature,
            threshold = model.calibration.threshold,
            "FAQ model trained"
        );
        model
    }

    fn calibrate_on(&self, entries: &[FaqEntry], validation: &[Labelled]) -> Calibration {
        let position: HashMap<&str, u32> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i as u32))
            .collect();
        let observations: Vec<Observation> = SCORES.with_borrow_mut(|scores| {
            validation
                .iter()
                .map(|q| {
                    let expected = q
                        .expected
                        .as_deref()
                        .and_then(|id| position.get(id).copied());
                    self.classifier
                        .score(&self.featurizer.transform(&q.text), scores);
                    Observation::new(scores, self.classifier.classes(), expected)
                })
                .collect()
        });
        calibrate::choose(&observations, None)
    }

    /// The `n` most likely entries for `text` with calibrated probabilities, best first.
    pub fn rank(&self, text: &str, n: usize) -> Vec<Ranked> {
        let x = self.featurizer.transform(text);
        if x.is_empty() {
            // Nothing in common with any paraphrase: no entry is closest.
            return Vec::new();
        }
        SCORES.with_borrow_mut(|scores| {
            self.classifier.score(&x, scores);
            self.classifier.top(scores, self.blend(), n)
        })
    }

    /// How scores become probabilities, as calibrated.
    fn blend(&self) -> Blend {
        Blend {
            temperature: self.calibration.temperature,
            similarity: self.calibration.similarity,
        }
    }

    /// Appends the model to `out` (see [`FaqModel::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MODEL_VERSION.to_le_bytes());
        out.extend_from_slice(&self.calibration.temperature.to_le_bytes());
        out.extend_from_slice(&self.calibration.similarity.to_le_bytes());
        out.extend_from_slice(&self.calibration.threshold.to_le_bytes());
        self.featurizer.write(out);
        self.classifier.write(out);
    }

    /// Reads a model written by [`FaqModel::write`]; `entries` is the entry count it must
    /// classify into.
    pub fn read(mut input: &[u8], entries: usize) -> Result<Self> {
        let header = crate::bot::features::read_array(&mut input, 4, u32::from_le_bytes)?;
        if header[0] != MODEL_VERSION {
            return Err(Error::Corrupt(format!(
                "FAQ model version {} is not supported",
                header[0]
            )));
        }
        let calibration = Calibration {
            temperature: f32::from_bits(header[1]),
            similarity: f32::from_bits(header[2]),
            threshold: f32::from_bits(header[3]),
        };
        let featurizer = Featurizer::read(&mut input)?;
        let classifier = Classifier::read(&mut input, featurizer.len())?;
        if !input.is_empty() || classifier.classes() as usize != entries {
            return Err(Error::Corrupt("FAQ model does not fit its entries".into()));
        }
        Ok(Self {
            featurizer,
            classifier,
            calibration,
        })
    }
}
