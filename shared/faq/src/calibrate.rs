//! The "don't know" threshold and how scores become probabilities, chosen without test
//! queries.
//!
//! By default by K-fold cross-validation on the FAQ's own paraphrases: each fold holds out
//! some paraphrases of the remaining entries (in-scope questions in new words) and every
//! paraphrase of a few whole entries (questions the FAQ cannot answer), trains on the rest
//! and records what the model says. A large FAQ is cut into more, smaller folds and only
//! the first few run, until a few thousand questions are observed: the build then costs
//! about two trainings however big the FAQ is. When ops provide a labelled validation
//! file, the model trained on the paraphrases is observed on its questions instead
//! (`calibrate_labelled`): they calibrate, they never train. They also show how often
//! customers ask for each entry, which paraphrases cannot (an FAQ lists each entry a few
//! times; customers ask some entries far more often): each entry gets a log prior added to
//! its logit ([`fit_priors`]). The temperature and the weights of
//! the nearest-paraphrase similarities minimise the held-out negative log-likelihood; the
//! threshold is the lowest confidence at which answering stays within the stated
//! [`TargetWrongRate`] (default [`DEFAULT_TARGET_WRONG_RATE`]), so the most questions are
//! answered. The target is for customers' questions; on paraphrases, questions out of
//! scope are weighed as a fifth of all ([`OUT_OF_SCOPE_PRIOR`]) and the target is
//! corrected for how much more often held-out paraphrases are answered wrongly than
//! customers' questions ([`TargetWrongRate::on_paraphrases`]: 8% for 5%), so paraphrases
//! held out of the FAQ (`infra/bench/holdout.sh`) land near the corrected rate. Each
//! language has its own threshold, chosen on its own questions when there are
//! [`MIN_LANGUAGE_QUESTIONS`] of them: in a mixed FAQ one language's entries may be surer
//! than the other's, and one threshold for both would answer the other too rarely.

use crate::classifier::{Blend, Classifier, Scores, TrainConfig, XorShift, prior};
use crate::faq::FaqEntry;
use crate::features::SparseVec;
use crate::word_vectors::Language;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashSet;

/// Share of all questions the bot may answer wrongly at the calibrated threshold unless
/// ops state another ([`TargetWrongRate`]): a wrong answer costs more than a handoff.
pub const DEFAULT_TARGET_WRONG_RATE: f32 = 0.05;

/// The share of all questions (in scope or not) the bot may answer wrongly at the
/// calibrated threshold: a wrong entry, or an answer to a question no entry answers. The
/// threshold is the lowest confidence expected to stay within it, so the most questions
/// are answered. Between 0 and 1, both excluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetWrongRate(f32);

impl TargetWrongRate {
    /// `rate` when it is a share strictly between 0 and 1.
    pub fn new(rate: f32) -> Result<Self> {
        if rate > 0.0 && rate < 1.0 {
            Ok(Self(rate))
        } else {
            Err(Error::Invalid(format!(
                "target wrong-answer rate {rate} is not a share between 0 and 1 (e.g. 0.05)"
            )))
        }
    }

    /// The share.
    pub fn get(self) -> f32 {
        self.0
    }

    /// The share of paraphrases held out of the FAQ that may be answered wrongly for
    /// customers to meet this rate (see [`CUSTOMER_TO_PARAPHRASE_WRONG`]).
    pub fn on_paraphrases(self) -> f32 {
        (self.0 / CUSTOMER_TO_PARAPHRASE_WRONG).min(MAX_PARAPHRASE_WRONG)
    }
}

/// Customers' questions are answered wrongly less often than paraphrases held out of the
/// FAQ at the same threshold, by about this factor. Measured on MASSIVE's validation split
/// (customers' questions, never the test queries), calibrated on paraphrases for 5% and
/// 10%: 0.54 and 0.50 of the paraphrases' rate with no question out of scope, 0.84 with a
/// fifth out of scope. In-scope questions are answered wrongly alike; the out-of-scope
/// stand-ins (a removed entry's paraphrases, close to the entries kept) are answered more
/// often than real ones, and a shop's traffic need not be a fifth out of scope.
const CUSTOMER_TO_PARAPHRASE_WRONG: f32 = 0.625;

/// The paraphrases' wrong-answer rate never aims higher than this.
const MAX_PARAPHRASE_WRONG: f32 = 0.9;

impl Default for TargetWrongRate {
    fn default() -> Self {
        Self(DEFAULT_TARGET_WRONG_RATE)
    }
}

impl std::str::FromStr for TargetWrongRate {
    type Err = Error;

    /// Parses a share such as `0.05`.
    fn from_str(text: &str) -> Result<Self> {
        let rate = text.trim().parse::<f32>().map_err(|_| {
            Error::Invalid(format!(
                "target wrong-answer rate {text:?} is not a number (e.g. 0.05)"
            ))
        })?;
        Self::new(rate)
    }
}

impl std::fmt::Display for TargetWrongRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Share of questions assumed to be outside the FAQ when calibrating on paraphrases.
const OUT_OF_SCOPE_PRIOR: f32 = 0.2;

/// Folds of the cross-validation.
const FOLDS: usize = 5;

/// In-scope paraphrases held out per fold at most: a large FAQ is cut into more, smaller
/// folds, so each fold trains on nearly everything and stays as costly as one build.
const MAX_HELD_PER_FOLD: usize = 2_000;

/// Folds stop running once this many held-out questions are observed: a few thousand
/// pin the threshold down, and each fold costs a training.
const ENOUGH_OBSERVATIONS: usize = 4_000;

/// In-scope questions a language needs for a threshold of its own; with fewer it takes
/// the threshold chosen on all questions.
const MIN_LANGUAGE_QUESTIONS: usize = 50;

/// Temperatures tried (geometric grid).
const TEMPERATURES: [f32; 12] = [
    0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0,
];

/// Weights of the nearest-paraphrase similarity by wording tried (0: the regression alone).
const SIMILARITY_WEIGHTS: [f32; 8] = [0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0];

/// Weights of the nearest-paraphrase similarity by meaning tried.
const MEANING_WEIGHTS: [f32; 5] = [0.0, 2.0, 4.0, 8.0, 16.0];

/// A labelled question: the format of `queries.jsonl` and `val.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Labelled {
    /// The customer's message.
    pub text: String,
    /// Id of the entry that answers it; `null` when no entry does. Required: a question
    /// whose label was left out (or misspelt) must not pass as one no entry answers.
    #[serde(deserialize_with = "Option::deserialize")]
    pub expected: Option<String>,
}

/// Reads labelled questions, one JSON object per line (`{"text", "expected"}`); blank
/// lines are skipped, and a bad line is reported with its number.
pub fn read_labelled(bytes: &[u8]) -> Result<Vec<Labelled>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::Invalid(format!("labelled questions are not UTF-8: {e}")))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| Error::Invalid(format!("line {}: {e}", n + 1)))
        })
        .collect()
}

/// How many of `questions` name an entry `entries` lack. Calibration reads them as
/// questions no entry answers, which ops should hear of: a retired entry, or a typo.
pub fn unknown_labels(entries: &[FaqEntry], questions: &[Labelled]) -> usize {
    let ids: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    questions
        .iter()
        .filter(|q| q.expected.as_deref().is_some_and(|id| !ids.contains(id)))
        .count()
}

/// The outcome of calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// How the classifier's scores and similarities become probabilities.
    pub(crate) blend: Blend,
    /// Each entry's log prior, added to its logit: how much more often customers ask for
    /// it than its paraphrases say. Learned from a labelled validation set only (see
    /// [`fit_priors`]); empty otherwise.
    pub(crate) priors: Vec<f32>,
    /// Answer a message in the language of [`Language::ALL`] when the calibrated
    /// confidence reaches this.
    pub thresholds: [f32; 2],
    /// The wrong-answer rate the thresholds were chosen for.
    pub target: TargetWrongRate,
}

impl Calibration {
    /// The threshold for messages in `language`.
    pub(crate) fn threshold(&self, language: Language) -> f32 {
        self.thresholds[language.index()]
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Self {
            blend: Blend::PLAIN,
            priors: Vec::new(),
            thresholds: [0.5; 2],
            target: TargetWrongRate::default(),
        }
    }
}

/// What the model said about one held-out question.
pub(crate) struct Observation {
    /// The expected class, `None` when out of scope.
    pub expected: Option<u32>,
    /// The question's language.
    pub language: Language,
    /// Each touched class with its raw score and its nearest paraphrases' similarities
    /// by wording and by meaning.
    pub scores: Vec<(u32, f32, f32, f32)>,
    /// Classes the softmax runs over.
    pub classes: u32,
}

impl Observation {
    /// Records `scores` for a question in `language` expecting `expected`.
    pub fn new(scores: &Scores, classes: u32, expected: Option<u32>, language: Language) -> Self {
        Self {
            expected,
            language,
            scores: scores
                .touched()
                .iter()
                .map(|&c| (c, scores.get(c), scores.nearest(c), scores.meaning(c)))
                .collect(),
            classes,
        }
    }

    /// Each touched class's logit under `blend` and `priors`, with the softmax's maximum
    /// logit and denominator (untouched classes have logit 0).
    fn logits(&self, blend: Blend, priors: &[f32]) -> (Vec<(u32, f32)>, f32, f32) {
        let untouched = self.classes as usize - self.scores.len();
        let logits: Vec<(u32, f32)> = self
            .scores
            .iter()
            .map(|&(c, s, near, meaning)| (c, blend.logit(s, near, meaning) + prior(priors, c)))
            .collect();
        let floor = if untouched > 0 { 0.0f32 } else { f32::MIN };
        let max = logits.iter().map(|&(_, z)| z).fold(floor, f32::max);
        let total = untouched as f32 * (-max).exp()
            + logits.iter().map(|&(_, z)| (z - max).exp()).sum::<f32>();
        (logits, max, total)
    }

    /// Best class, its probability under `blend` and `priors`, and the expected class's
    /// probability.
    fn at(&self, blend: Blend, priors: &[f32]) -> (Option<u32>, f32, f32) {
        let (logits, max, total) = self.logits(blend, priors);
        let mut best: Option<(u32, f32)> = None;
        for &(c, z) in &logits {
            if best.is_none_or(|(bc, bz)| z > bz || (z == bz && c < bc)) {
                best = Some((c, z));
            }
        }
        let probability = |z: f32| (z - max).exp() / total;
        let p_best = best.map_or(0.0, |(_, z)| probability(z));
        let p_expected = self.expected.map_or(0.0, |e| {
            let z = logits
                .iter()
                .find(|(c, _)| *c == e)
                .map_or(0.0, |&(_, z)| z);
            probability(z)
        });
        (best.map(|(c, _)| c), p_best, p_expected)
    }
}

/// Cross-validates on `samples` (vector, entry), in `languages`, over `classes` entries.
pub(crate) fn cross_validate(
    samples: &[(SparseVec, u32)],
    languages: &[Language],
    classes: usize,
    features: usize,
    config: &TrainConfig,
    target: TargetWrongRate,
) -> Calibration {
    let folds = FOLDS.max(samples.len().div_ceil(MAX_HELD_PER_FOLD));
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut entry_rank: Vec<usize> = (0..classes).collect();
    rng.shuffle(&mut entry_rank);
    let mut fold_of_entry = vec![usize::MAX; classes];
    if classes >= FOLDS * 2 {
        for (rank, &entry) in entry_rank.iter().enumerate() {
            fold_of_entry[entry] = rank % folds;
        }
    }
    // Paraphrase folds within each entry, so every entry loses at most its share.
    let mut per_entry: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, (_, class)) in samples.iter().enumerate() {
        per_entry[*class as usize].push(i);
    }
    let mut fold_of_sample = vec![usize::MAX; samples.len()];
    for members in &mut per_entry {
        if members.len() < 2 {
            continue;
        }
        rng.shuffle(members);
        let offset = (rng.next() % folds as u64) as usize;
        for (k, &i) in members.iter().enumerate() {
            fold_of_sample[i] = (k + offset) % folds;
        }
    }
    let mut observations = Vec::new();
    let mut scores = Scores::default();
    for fold in 0..folds {
        if observations.len() >= ENOUGH_OBSERVATIONS {
            break;
        }
        let (mut train, mut held) = (Vec::new(), Vec::new());
        for (i, sample) in samples.iter().enumerate() {
            let class = sample.1 as usize;
            if fold_of_entry[class] == fold {
                held.push((i, None));
            } else if fold_of_sample[i] == fold {
                held.push((i, Some(sample.1)));
            } else {
                train.push(sample.clone());
            }
        }
        if train.is_empty() || held.is_empty() {
            continue;
        }
        let model = Classifier::train(&train, features, classes, config);
        for (i, expected) in held {
            let question = (&samples[i].0, expected, languages[i]);
            observations.push(observe(&model, question, &mut scores));
        }
    }
    choose(&observations, Some(OUT_OF_SCOPE_PRIOR), Vec::new(), target)
}

/// Calibrates `model` (trained on the paraphrases only) on a labelled validation set
/// (vector, entry or `None` when out of scope, language): its questions are new to the
/// model, so what it says about them is what it will say about customers' questions.
/// They also say how often each entry is asked for, which the paraphrases cannot: the
/// entries' priors are fitted under the first blend, then blend and thresholds are chosen
/// again with them.
pub(crate) fn calibrate_labelled(
    model: &Classifier,
    labelled: &[(SparseVec, Option<u32>, Language)],
    target: TargetWrongRate,
) -> Calibration {
    let mut scores = Scores::default();
    let observations: Vec<Observation> = labelled
        .iter()
        .map(|(x, expected, language)| observe(model, (x, *expected, *language), &mut scores))
        .collect();
    let first = choose(&observations, None, Vec::new(), target);
    let priors = fit_priors(&observations, first.blend, model.classes());
    choose(&observations, None, priors, target)
}

/// Strength of the Gaussian prior (mean 0, variance 1/this) on each entry's log prior: an
/// entry needs a few validation questions before its prior moves far.
const PRIOR_STRENGTH: f32 = 1.0;

/// Steps of gradient descent fitting the priors (the objective is convex and smooth).
const PRIOR_STEPS: usize = 500;

/// Each entry's log prior maximising the likelihood of the in-scope `observations`' entries
/// under `blend` (a bias per class, as in vector scaling), with a Gaussian prior of
/// [`PRIOR_STRENGTH`] keeping entries with few questions near 0. Empty when there is
/// nothing in scope.
fn fit_priors(observations: &[Observation], blend: Blend, classes: u32) -> Vec<f32> {
    let in_scope: Vec<(&Observation, u32)> = observations
        .iter()
        .filter_map(|o| o.expected.map(|e| (o, e)))
        .collect();
    if in_scope.is_empty() {
        return Vec::new();
    }
    let mut priors = vec![0.0f32; classes as usize];
    let mut gradient = vec![0.0f32; classes as usize];
    // The mean loss's gradient is 1/2-Lipschitz at most, so a step of 1 is safe.
    let step = 1.0 / in_scope.len() as f32;
    for _ in 0..PRIOR_STEPS {
        gradient.fill(0.0);
        for (o, expected) in &in_scope {
            let (logits, max, total) = o.logits(blend, &priors);
            for (c, z) in logits {
                gradient[c as usize] += (z - max).exp() / total;
            }
            gradient[*expected as usize] -= 1.0;
        }
        for (p, g) in priors.iter_mut().zip(&gradient) {
            *p -= step * (g + PRIOR_STRENGTH * *p);
        }
    }
    priors
}

/// What `model` says about a question (vector, expected entry, language); a message
/// sharing no feature gets no candidate, as in the matcher.
fn observe(
    model: &Classifier,
    (x, expected, language): (&SparseVec, Option<u32>, Language),
    scores: &mut Scores,
) -> Observation {
    if x.is_empty() {
        return Observation {
            expected,
            language,
            scores: Vec::new(),
            classes: model.classes(),
        };
    }
    model.score(x, scores);
    Observation::new(scores, model.classes(), expected, language)
}

/// The blend and thresholds best for `observations` with the entries' `priors`, for
/// `target` wrong answers. With `oos_prior`, the observations are paraphrases held out of
/// the FAQ: in-scope and out-of-scope ones are weighed as if they came in that proportion,
/// and may be answered wrongly at [`TargetWrongRate::on_paraphrases`]; without it, they
/// are customers' questions, weighed as they come, and meet the target itself.
pub(crate) fn choose(
    observations: &[Observation],
    oos_prior: Option<f32>,
    priors: Vec<f32>,
    target: TargetWrongRate,
) -> Calibration {
    let in_scope: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.expected.is_some())
        .collect();
    if in_scope.is_empty() {
        return Calibration {
            target,
            ..Calibration::default()
        };
    }
    let blend = MEANING_WEIGHTS
        .iter()
        .flat_map(|&meaning| SIMILARITY_WEIGHTS.iter().map(move |&s| (meaning, s)))
        .flat_map(|(meaning, similarity)| {
            TEMPERATURES.iter().map(move |&temperature| Blend {
                temperature,
                similarity,
                meaning,
            })
        })
        .map(|blend| (nll(&in_scope, blend, &priors), blend))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(Blend::PLAIN, |(_, blend)| blend);
    let budget = if oos_prior.is_some() {
        target.on_paraphrases()
    } else {
        target.get()
    };
    let overall = threshold(observations, blend, &priors, oos_prior, budget);
    let thresholds = Language::ALL.map(|language| {
        let own: Vec<&Observation> = observations
            .iter()
            .filter(|o| o.language == language)
            .collect();
        let own_in_scope = own.iter().filter(|o| o.expected.is_some()).count();
        if own_in_scope >= MIN_LANGUAGE_QUESTIONS {
            threshold(own, blend, &priors, oos_prior, budget)
        } else {
            overall
        }
    });
    let right = in_scope
        .iter()
        .filter(|o| o.at(blend, &priors).0 == o.expected)
        .count();
    let outcome = outcome(observations, blend, &priors, thresholds);
    tracing::info!(
        held_out = observations.len(),
        accuracy = right as f32 / in_scope.len() as f32,
        nll = nll(&in_scope, blend, &priors) / in_scope.len() as f32,
        target = target.get(),
        budget,
        right_in_scope = outcome.0,
        wrong_in_scope = outcome.1,
        answered_out_of_scope = outcome.2,
        temperature = blend.temperature,
        similarity = blend.similarity,
        meaning = blend.meaning,
        english_threshold = thresholds[Language::English.index()],
        chinese_threshold = thresholds[Language::Chinese.index()],
        "FAQ model calibrated on held-out questions"
    );
    Calibration {
        blend,
        priors,
        thresholds,
        target,
    }
}

fn nll(in_scope: &[&Observation], blend: Blend, priors: &[f32]) -> f32 {
    in_scope
        .iter()
        .map(|o| -(o.at(blend, priors).2.max(1e-6)).ln())
        .sum::<f32>()
}

/// At their language's threshold: the shares of in-scope questions answered rightly and
/// wrongly, and of out-of-scope questions answered.
fn outcome(
    observations: &[Observation],
    blend: Blend,
    priors: &[f32],
    thresholds: [f32; 2],
) -> (f32, f32, f32) {
    let (mut in_scope, mut right, mut wrong, mut out, mut answered_out) = (0, 0, 0, 0, 0);
    for o in observations {
        let (best, confidence, _) = o.at(blend, priors);
        let answered = best.is_some() && confidence >= thresholds[o.language.index()];
        match o.expected {
            Some(expected) => {
                in_scope += 1;
                right += usize::from(answered && best == Some(expected));
                wrong += usize::from(answered && best != Some(expected));
            }
            None => {
                out += 1;
                answered_out += usize::from(answered);
            }
        }
    }
    let share = |part: usize, whole: usize| part as f32 / whole.max(1) as f32;
    (
        share(right, in_scope),
        share(wrong, in_scope),
        share(answered_out, out),
    )
}

/// The lowest threshold keeping wrong answers within `budget` (a share of all questions).
fn threshold<'a>(
    observations: impl IntoIterator<Item = &'a Observation>,
    blend: Blend,
    priors: &[f32],
    oos_prior: Option<f32>,
    budget: f32,
) -> f32 {
    let observations: Vec<&Observation> = observations.into_iter().collect();
    let n_in = observations.iter().filter(|o| o.expected.is_some()).count() as f32;
    let n_out = observations.len() as f32 - n_in;
    // Weight of one wrong answer, as a share of all questions.
    let (w_in, w_out) = match oos_prior {
        Some(prior) if n_out > 0.0 => ((1.0 - prior) / n_in, prior / n_out),
        Some(_) => (1.0 / n_in, 0.0),
        None => {
            let n = observations.len() as f32;
            (1.0 / n, 1.0 / n)
        }
    };
    let mut points: Vec<(f32, f32)> = observations
        .iter()
        .map(|o| {
            let (best, confidence, _) = o.at(blend, priors);
            let cost = match o.expected {
                Some(e) if best == Some(e) => 0.0,
                Some(_) => w_in,
                None => w_out,
            };
            (confidence, cost)
        })
        .collect();
    points.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut wrong = 0.0;
    let mut threshold = 1.0f32;
    let mut i = 0;
    while i < points.len() {
        // Questions with the same confidence are answered together.
        let level = points[i].0;
        let mut j = i;
        while j < points.len() && points[j].0 == level {
            wrong += points[j].1;
            j += 1;
        }
        if wrong > budget {
            break;
        }
        threshold = level;
        i = j;
    }
    threshold.clamp(0.05, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_labelled_lines_when_read_then_blank_lines_skip_and_a_bad_line_is_named() {
        let questions = read_labelled(
            "{\"text\":\"运费多少\",\"expected\":\"fee\"}\n\n{\"text\":\"hi\",\"expected\":null}\n"
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].expected.as_deref(), Some("fee"));
        assert_eq!(questions[1].expected, None);

        for (bytes, line) in [
            (
                &b"{\"text\":\"a\",\"expected\":null}\nnot json\n"[..],
                "line 2: ",
            ),
            (
                &b"{\"text\":\"a\"}\n"[..],
                "line 1: missing field `expected`",
            ),
            (
                &b"{\"text\":\"a\",\"expected\":3}\n"[..],
                "line 1: invalid type",
            ),
            (&b"\xff\n"[..], "labelled questions are not UTF-8"),
        ] {
            let Err(Error::Invalid(message)) = read_labelled(bytes) else {
                panic!("accepted {bytes:?}");
            };
            assert!(message.starts_with(line), "{message}");
        }
    }

    fn observation(expected: Option<u32>, scores: &[(u32, f32)]) -> Observation {
        Observation {
            expected,
            language: Language::English,
            scores: scores.iter().map(|&(c, s)| (c, s, 0.0, 0.0)).collect(),
            classes: 4,
        }
    }

    #[test]
    fn given_held_out_results_when_threshold_is_chosen_then_wrong_answers_stay_in_budget() {
        // Ten questions: confident right answers, then wrong and out-of-scope ones lower.
        let mut observations: Vec<Observation> =
            (0..7).map(|_| observation(Some(0), &[(0, 6.0)])).collect();
        observations.push(observation(Some(1), &[(0, 3.0), (1, 1.0)]));
        observations.push(observation(None, &[(2, 2.0)]));
        observations.push(observation(None, &[(3, 0.5)]));
        let calibration = choose(&observations, None, Vec::new(), TargetWrongRate::default());
        let blend = calibration.blend;
        let confident = observations[0].at(blend, &[]).1;
        let wrong = observations[7].at(blend, &[]).1;
        // One wrong answer (10%) would exceed the budget: the threshold sits above it.
        let threshold = calibration.threshold(Language::English);
        assert!(threshold > wrong, "{calibration:?} wrong at {wrong}");
        assert!(threshold <= confident, "{calibration:?}");
        assert_eq!(
            calibration.threshold(Language::Chinese),
            threshold,
            "no Chinese questions: the threshold of all"
        );
    }

    #[test]
    fn given_languages_with_their_own_confidence_when_chosen_then_each_gets_its_threshold() {
        // English questions are answered surely, Chinese ones less so; both are mostly
        // right, and each language's wrong answers come at its lower confidences.
        let mut observations = Vec::new();
        for (language, right, wrong) in
            [(Language::English, 6.0, 3.0), (Language::Chinese, 3.0, 1.5)]
        {
            for k in 0..MIN_LANGUAGE_QUESTIONS {
                let (class, score) = if k % 10 == 0 { (1, wrong) } else { (0, right) };
                observations.push(Observation {
                    language,
                    ..observation(Some(0), &[(class, score)])
                });
            }
        }
        let calibration = choose(&observations, None, Vec::new(), TargetWrongRate::default());
        let (english, chinese) = (
            calibration.threshold(Language::English),
            calibration.threshold(Language::Chinese),
        );
        assert!(chinese < english, "{calibration:?}");
        let blend = calibration.blend;
        for o in &observations {
            let (best, confidence, _) = o.at(blend, &[]);
            if best == o.expected {
                assert!(
                    confidence >= calibration.threshold(o.language),
                    "{calibration:?}"
                );
            }
        }
        // Fewer questions in a language than it takes: the threshold of all.
        observations.truncate(MIN_LANGUAGE_QUESTIONS + 10);
        let calibration = choose(&observations, None, Vec::new(), TargetWrongRate::default());
        assert_eq!(
            calibration.threshold(Language::Chinese),
            threshold(
                &observations,
                calibration.blend,
                &[],
                None,
                DEFAULT_TARGET_WRONG_RATE
            )
        );
    }

    #[test]
    fn given_meaning_that_tells_entries_apart_when_chosen_then_it_gets_weight() {
        // The regression scores both entries alike; the nearest paraphrase by meaning is
        // closer in the expected one.
        let observations: Vec<Observation> = (0..20)
            .map(|k| {
                let expected = k % 2;
                let meaning = |c| if c == expected { 0.9 } else { 0.2 };
                Observation {
                    expected: Some(expected),
                    language: Language::English,
                    scores: (0..2).map(|c| (c, 1.0, 0.0, meaning(c))).collect(),
                    classes: 2,
                }
            })
            .collect();
        let calibration = choose(&observations, None, Vec::new(), TargetWrongRate::default());
        assert!(calibration.blend.meaning > 0.0, "{calibration:?}");
        for o in &observations {
            assert_eq!(o.at(calibration.blend, &[]).0, o.expected);
        }
    }

    #[test]
    fn given_questions_that_mostly_ask_for_one_entry_when_priors_are_fitted_then_it_wins_ties() {
        // The regression scores entries 0 and 1 alike (a tie goes to 0); customers ask
        // for entry 1 four times as often, and never for entry 2.
        let observations: Vec<Observation> = (0..50)
            .map(|k| {
                observation(
                    Some(if k % 5 == 0 { 0 } else { 1 }),
                    &[(0, 1.0), (1, 1.0), (2, 0.5)],
                )
            })
            .collect();
        let plain = choose(&observations, None, Vec::new(), TargetWrongRate::default());
        let right = |c: &Calibration| {
            observations
                .iter()
                .filter(|o| o.at(c.blend, &c.priors).0 == o.expected)
                .count()
        };
        assert_eq!(right(&plain), 10, "ties go to entry 0");
        let priors = fit_priors(&observations, plain.blend, 4);
        assert!(priors[1] > priors[0], "{priors:?}");
        assert!(priors[2] < 0.0, "never asked for: {priors:?}");
        assert_eq!(priors[3], 0.0, "never seen at all: {priors:?}");
        let calibrated = choose(
            &observations,
            None,
            priors.clone(),
            TargetWrongRate::default(),
        );
        assert_eq!(calibrated.priors, priors);
        assert_eq!(right(&calibrated), 40, "entry 1 now wins");
        // Nothing in scope: no priors.
        let out_of_scope = [observation(None, &[(0, 1.0)])];
        assert!(fit_priors(&out_of_scope, plain.blend, 4).is_empty());
    }

    #[test]
    fn given_shares_when_a_target_wrong_rate_is_parsed_then_only_those_between_0_and_1_pass() {
        assert_eq!(
            "0.05".parse::<TargetWrongRate>().ok(),
            Some(TargetWrongRate(0.05))
        );
        assert_eq!(
            " 0.1 ".parse::<TargetWrongRate>().ok(),
            Some(TargetWrongRate(0.1))
        );
        assert_eq!(TargetWrongRate::default().get(), DEFAULT_TARGET_WRONG_RATE);
        for bad in ["0", "1", "-0.05", "1.5", "NaN", "inf", "5%", ""] {
            let Err(Error::Invalid(message)) = bad.parse::<TargetWrongRate>() else {
                panic!("accepted {bad:?}");
            };
            assert!(message.contains("e.g. 0.05"), "{bad}: {message}");
        }
    }

    #[test]
    fn given_a_stated_target_when_the_threshold_is_chosen_then_wrong_answers_stay_within_it() {
        // 100 in-scope questions: the surer the model, the likelier it is right; one in
        // three of the 30 least sure is answered wrongly.
        let observations: Vec<Observation> = (0..100)
            .map(|k| {
                let score = 10.0 - k as f32 * 0.08;
                let class = if k >= 70 && k % 3 == 0 { 1 } else { 0 };
                observation(Some(0), &[(class, score)])
            })
            .collect();
        let mut previous: Option<(f32, f32)> = None;
        for rate in [0.02, 0.05, 0.1] {
            let target = TargetWrongRate::new(rate).expect("valid");
            let calibration = choose(&observations, None, Vec::new(), target);
            assert_eq!(calibration.target, target);
            let threshold = calibration.threshold(Language::English);
            let (mut right, mut wrong) = (0, 0);
            for o in &observations {
                let (best, confidence, _) = o.at(calibration.blend, &[]);
                if confidence >= threshold {
                    if best == o.expected {
                        right += 1;
                    } else {
                        wrong += 1;
                    }
                }
            }
            let wrong = wrong as f32 / 100.0;
            assert!(wrong <= rate, "{rate}: {wrong} wrong at {threshold}");
            // The lowest such threshold: one more wrong answer would break the target.
            assert!(
                wrong + 0.01 > rate - 0.01,
                "{rate}: only {wrong} wrong at {threshold}"
            );
            if let Some((low_rate_threshold, low_rate_right)) = previous {
                assert!(threshold < low_rate_threshold, "{rate}: {threshold}");
                assert!(right as f32 > low_rate_right, "{rate}: {right} right");
            }
            previous = Some((threshold, right as f32));
        }
    }

    #[test]
    fn given_paraphrases_when_the_threshold_is_chosen_then_the_target_is_corrected_for_them() {
        let target = TargetWrongRate::new(0.05).expect("valid");
        assert!((target.on_paraphrases() - 0.08).abs() < 1e-6, "{target:?}");
        let loose = TargetWrongRate::new(0.8).expect("valid");
        assert_eq!(loose.on_paraphrases(), MAX_PARAPHRASE_WRONG);
        // 100 in-scope questions, every fifth of the 50 least sure answered wrongly, and
        // no question out of scope: as paraphrases they may be answered wrongly at 8%,
        // as customers' questions at 5%.
        let observations: Vec<Observation> = (0..100)
            .map(|k| {
                let class = if k >= 50 && k % 5 == 4 { 1 } else { 0 };
                observation(Some(0), &[(class, 10.0 - k as f32 * 0.08)])
            })
            .collect();
        let customers = choose(&observations, None, Vec::new(), target);
        let paraphrases = choose(&observations, Some(OUT_OF_SCOPE_PRIOR), Vec::new(), target);
        let answered = |c: &Calibration| {
            observations
                .iter()
                .filter(|o| o.at(c.blend, &[]).1 >= c.threshold(Language::English))
                .count()
        };
        assert!(
            answered(&paraphrases) > answered(&customers),
            "{customers:?} {paraphrases:?}"
        );
        assert_eq!(paraphrases.target, target);
    }

    #[test]
    fn given_nothing_in_scope_when_chosen_then_defaults() {
        assert_eq!(
            choose(&[], None, Vec::new(), TargetWrongRate::default()),
            Calibration::default()
        );
    }
}
