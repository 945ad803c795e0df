//! The trained part of an index version: features, classifier and calibration, built
//! from the entries (calibrated on an optional labelled validation set) and stored in the
//! bundle. Its layout is versioned
//! ([`FaqModel::is_current`]): a bundle from another layout is rebuilt at load.

use crate::calibrate::{self, Calibration, Labelled, TargetWrongRate};
use crate::classifier::{Blend, Classifier, Ranked, Scores, TrainConfig};
use crate::faq::FaqEntry;
use crate::features::{Featurizer, Hashed, SparseVec, read_array, read_u64};
use crate::word_vectors::Language;
use crate::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;

/// Version of the model layout in the bundle.
const MODEL_VERSION: u32 = 11;

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
    /// Trains on the paraphrases of `entries` and calibrates by cross-validation on them,
    /// or on a labelled `validation` set when given (questions naming unknown entries count
    /// as out of scope). Validation questions never train: the model is the one the bot
    /// gets from the FAQ alone. The thresholds aim at `target` wrong answers.
    pub fn build(
        entries: &[FaqEntry],
        validation: Option<&[Labelled]>,
        target: TargetWrongRate,
    ) -> Self {
        let paraphrases: Vec<(&str, u32)> = entries
            .iter()
            .enumerate()
            .flat_map(|(class, entry)| entry.paraphrases().map(move |p| (p, class as u32)))
            .collect();
        let hashed: Vec<(Hashed, u32)> = paraphrases
            .iter()
            .map(|&(p, class)| (Hashed::of(p), class))
            .collect();
        let languages: Vec<Language> = paraphrases.iter().map(|&(p, _)| Language::of(p)).collect();
        let position: HashMap<&str, u32> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i as u32))
            .collect();
        let labelled: Vec<(Hashed, Option<u32>, Language)> = validation
            .unwrap_or_default()
            .iter()
            .map(|q| {
                let expected = q.expected.as_deref().and_then(|id| position.get(id));
                (
                    Hashed::of(&q.text),
                    expected.copied(),
                    Language::of(&q.text),
                )
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
        let calibration = if labelled.is_empty() {
            calibrate::cross_validate(
                &samples,
                &languages,
                entries.len(),
                featurizer.len(),
                &config,
                target,
            )
        } else {
            let labelled: Vec<(SparseVec, Option<u32>, Language)> = labelled
                .iter()
                .map(|(doc, expected, language)| {
                    (featurizer.transform_hashed(doc), *expected, *language)
                })
                .collect();
            calibrate::calibrate_labelled(&classifier, &labelled, target)
        };
        tracing::info!(
            entries = entries.len(),
            features = featurizer.len(),
            shape = classifier.shape(),
            temperature = calibration.blend.temperature,
            thresholds = ?calibration.thresholds,
            target_wrong_rate = target.get(),
            "FAQ model trained"
        );
        Self {
            featurizer,
            classifier,
            calibration,
        }
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
            self.classifier
                .top(scores, self.calibration.blend, &self.calibration.priors, n)
        })
    }

    /// Appends the model to `out` (see [`FaqModel::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MODEL_VERSION.to_le_bytes());
        let blend = self.calibration.blend;
        for value in [blend.temperature, blend.similarity, blend.meaning] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for threshold in self.calibration.thresholds {
            out.extend_from_slice(&threshold.to_le_bytes());
        }
        out.extend_from_slice(&self.calibration.target.get().to_le_bytes());
        let priors = &self.calibration.priors;
        out.extend_from_slice(&(priors.len() as u64).to_le_bytes());
        for prior in priors {
            out.extend_from_slice(&prior.to_le_bytes());
        }
        self.featurizer.write(out);
        self.classifier.write(out);
    }

    /// Whether `bytes` (a model as [`FaqModel::write`] writes it) has this build's layout;
    /// an index whose model has another is rebuilt from its entries.
    pub fn is_current(bytes: &[u8]) -> bool {
        bytes.get(..4) == Some(&MODEL_VERSION.to_le_bytes()[..])
    }

    /// Reads a model written by [`FaqModel::write`]; `entries` is the entry count it must
    /// classify into.
    pub fn read(mut input: &[u8], entries: usize) -> Result<Self> {
        let header = read_array(&mut input, 7, u32::from_le_bytes)?;
        if header[0] != MODEL_VERSION {
            return Err(Error::Corrupt(format!(
                "FAQ model version {} is not supported",
                header[0]
            )));
        }
        let target = TargetWrongRate::new(f32::from_bits(header[6]))
            .map_err(|_| Error::Corrupt("FAQ model's target wrong-answer rate".into()))?;
        // One prior per entry, or none.
        let priors = match read_u64(&mut input)? {
            0 => Vec::new(),
            n if n == entries as u64 => read_array(&mut input, entries, f32::from_le_bytes)?,
            _ => {
                return Err(Error::Corrupt(
                    "FAQ model's priors do not fit its entries".into(),
                ));
            }
        };
        let calibration = Calibration {
            blend: Blend {
                temperature: f32::from_bits(header[1]),
                similarity: f32::from_bits(header[2]),
                meaning: f32::from_bits(header[3]),
            },
            priors,
            thresholds: [f32::from_bits(header[4]), f32::from_bits(header[5])],
            target,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::fixture;

    fn labelled(text: &str, expected: Option<&str>) -> Labelled {
        Labelled {
            text: text.into(),
            expected: expected.map(str::to_owned),
        }
    }

    #[test]
    fn given_labelled_questions_when_built_then_they_calibrate_but_never_train() {
        let entries = fixture();
        let validation = [
            labelled("寄EMS邮政", Some("courier")),
            labelled("EMS邮政可以吗", Some("courier")),
            labelled("退款多久能到", Some("refund-time")),
            labelled("包邮不", Some("shipping-fee")),
            labelled("今天天气好", None),
            labelled("track my order", Some("en-track")),
        ];
        let plain = FaqModel::build(&entries, None, TargetWrongRate::default());
        let calibrated = FaqModel::build(&entries, Some(&validation), TargetWrongRate::default());
        assert_eq!(calibrated.featurizer, plain.featurizer);
        // The same weights: validation questions only choose how scores become confidences.
        assert_eq!(calibrated.classifier, plain.classifier);
        for threshold in calibrated.calibration.thresholds {
            assert!(threshold > 0.0 && threshold <= 1.0, "{threshold}");
        }
        // ... and how often each entry is asked for: one prior per entry, kept in the
        // bundle.
        assert!(plain.calibration.priors.is_empty());
        assert_eq!(calibrated.calibration.priors.len(), entries.len());
        let mut bytes = Vec::new();
        calibrated.write(&mut bytes);
        let read = FaqModel::read(&bytes, entries.len()).expect("read");
        assert_eq!(read, calibrated);
        assert!(matches!(
            FaqModel::read(&bytes, entries.len() + 1),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn given_model_when_written_and_read_then_it_ranks_the_same() {
        let entries = fixture();
        let model = FaqModel::build(&entries, None, TargetWrongRate::default());
        let mut bytes = Vec::new();
        model.write(&mut bytes);
        let read = FaqModel::read(&bytes, entries.len()).expect("read");
        assert_eq!(read, model);
        assert_eq!(read.rank("退款要几天", 3), model.rank("退款要几天", 3));
        assert!(FaqModel::read(&bytes, entries.len() + 1).is_err());
        let mut old = bytes.clone();
        old[..4].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            FaqModel::read(&old, entries.len()),
            Err(Error::Corrupt(_))
        ));
        assert!(model.rank("", 3).is_empty(), "nothing in common");
    }
}
