//! The dense softmax regression: a weight for every (feature, entry) pair, so a feature
//! seen only in other entries' paraphrases counts against an entry (negative evidence).
//! Used when the FAQ is small enough for every pair to fit in memory and training time.
//!
//! Training minimises the mean cross-entropy plus an L2 penalty on the weights (not on
//! the per-entry bias) with full-batch L-BFGS: deterministic, and converged rather than
//! stopped after a fixed number of noisy passes.

use super::Scores;
use crate::features::{SparseVec, read_array, read_u64};
use crate::{Error, Result};

/// Past corrections L-BFGS remembers; each costs two copies of the weights.
const HISTORY: usize = 5;

/// Backtracking halvings tried per line search before giving up.
const MAX_HALVINGS: usize = 20;

/// Training stops once an iteration improves the objective by less than this share.
const TOLERANCE: f64 = 1e-6;

/// Weights and biases of every (feature, entry) pair.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dense {
    classes: u32,
    /// `weights[f * classes + c]`: feature `f`'s weight for class `c`.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// Fits `samples` (vector, class) with L2 strength `l2` (per sample, as in the mean
    /// loss) in at most `iterations` L-BFGS steps.
    pub fn train(
        samples: &[(SparseVec, u32)],
        features: usize,
        classes: usize,
        l2: f32,
        iterations: usize,
    ) -> Self {
        let split = features * classes;
        let mut params = vec![0.0f32; split + classes];
        if !samples.is_empty() && classes > 0 {
            let mut logits = vec![0.0f32; classes];
            minimize(&mut params, iterations, |params, gradient| {
                objective(params, gradient, samples, classes, l2, &mut logits)
            });
        }
        let bias = params.split_off(split);
        Self {
            classes: classes as u32,
            weights: params,
            bias,
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> u32 {
        self.classes
    }

    /// Raw scores of `x` for every class into `scores`.
    pub fn score(&self, x: &SparseVec, scores: &mut Scores) {
        let classes = self.classes as usize;
        scores.reset(classes);
        scores.dense.copy_from_slice(&self.bias);
        for &(f, value) in x {
            let from = f as usize * classes;
            if let Some(row) = self.weights.get(from..from + classes) {
                axpy(value, row, &mut scores.dense);
            }
        }
        scores.seen.fill(true);
        scores.touched.extend(0..self.classes);
    }

    /// Appends the model to `out` (see [`Dense::read`]).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u64::from(self.classes).to_le_bytes());
        out.extend_from_slice(&(self.weights.len() as u64).to_le_bytes());
        for v in self.bias.iter().chain(&self.weights) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads a model written by [`Dense::write`], advancing `input`; `features` is the
    /// size of the feature space it must cover.
    pub fn read(input: &mut &[u8], features: usize) -> Result<Self> {
        let corrupt = |what: &str| Error::Corrupt(format!("FAQ model: {what}"));
        let classes = u32::try_from(read_u64(input)?).map_err(|_| corrupt("class count"))?;
        let n = usize::try_from(read_u64(input)?).map_err(|_| corrupt("weights"))?;
        if Some(n) != features.checked_mul(classes as usize) {
            return Err(corrupt("weights do not fit the features"));
        }
        let bias = read_array(input, classes as usize, f32::from_le_bytes)?;
        let weights = read_array(input, n, f32::from_le_bytes)?;
        Ok(Self {
            classes,
            weights,
            bias,
        })
    }
}

/// Mean cross-entropy of `samples` plus `l2 / 2 · |weights|²` at `params`, with its
/// gradient written to `gradient`.
fn objective(
    params: &[f32],
    gradient: &mut [f32],
    samples: &[(SparseVec, u32)],
    classes: usize,
    l2: f32,
    logits: &mut [f32],
) -> f64 {
    let split = params.len() - classes;
    let (weights, bias) = params.split_at(split);
    gradient.fill(0.0);
    let (g_weights, g_bias) = gradient.split_at_mut(split);
    let mut loss = 0.0f64;
    for (x, y) in samples {
        logits.copy_from_slice(bias);
        for &(f, value) in x {
            let row = &weights[f as usize * classes..][..classes];
            for (logit, w) in logits.iter_mut().zip(row) {
                *logit += value * w;
            }
        }
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let mut total = 0.0f32;
        for logit in logits.iter_mut() {
            *logit = (*logit - max).exp();
            total += *logit;
        }
        let y = *y as usize;
        loss -= f64::from((logits[y] / total).max(1e-30).ln());
        // From here on `logits` holds the residual p - onehot(y).
        for p in logits.iter_mut() {
            *p /= total;
        }
        logits[y] -= 1.0;
        for &(f, value) in x {
            let row = &mut g_weights[f as usize * classes..][..classes];
            for (g, p) in row.iter_mut().zip(logits.iter()) {
                *g += value * p;
            }
        }
        for (g, p) in g_bias.iter_mut().zip(logits.iter()) {
            *g += p;
        }
    }
    let n = samples.len() as f32;
    let mut penalty = 0.0f64;
    for (g, w) in g_weights.iter_mut().zip(weights) {
        *g = *g / n + l2 * w;
        penalty += f64::from(w * w);
    }
    for g in g_bias.iter_mut() {
        *g /= n;
    }
    loss / f64::from(n) + 0.5 * f64::from(l2) * penalty
}

/// Minimises `objective` (value, and gradient into its second argument) from `x` with
/// limited-memory BFGS and a backtracking (Armijo) line search.
fn minimize(
    x: &mut [f32],
    iterations: usize,
    mut objective: impl FnMut(&[f32], &mut [f32]) -> f64,
) {
    let n = x.len();
    let mut gradient = vec![0.0f32; n];
    let mut value = objective(x, &mut gradient);
    let mut direction = vec![0.0f32; n];
    let mut candidate = vec![0.0f32; n];
    let mut candidate_gradient = vec![0.0f32; n];
    // Corrections (s, y, 1 / y·s), oldest first; buffers are recycled.
    let mut history: Vec<(Vec<f32>, Vec<f32>, f32)> = Vec::with_capacity(HISTORY);
    let mut alphas = [0.0f32; HISTORY];
    for _ in 0..iterations {
        // Two-loop recursion: direction = -H · gradient.
        direction.copy_from_slice(&gradient);
        for (k, (s, y, rho)) in history.iter().enumerate().rev() {
            alphas[k] = rho * dot(s, &direction);
            axpy(-alphas[k], y, &mut direction);
        }
        if let Some((s, y, _)) = history.last() {
            let gamma = dot(s, y) / dot(y, y).max(f32::MIN_POSITIVE);
            direction.iter_mut().for_each(|d| *d *= gamma);
        }
        for (k, (s, y, rho)) in history.iter().enumerate() {
            let beta = rho * dot(y, &direction);
            axpy(alphas[k] - beta, s, &mut direction);
        }
        direction.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            history.clear();
            direction
                .iter_mut()
                .zip(&gradient)
                .for_each(|(d, g)| *d = -g);
            slope = -dot(&gradient, &gradient);
        }
        if slope == 0.0 {
            break;
        }
        let mut step = if history.is_empty() {
            1.0 / dot(&gradient, &gradient).sqrt()
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            for ((c, xi), d) in candidate.iter_mut().zip(x.iter()).zip(&direction) {
                *c = xi + step * d;
            }
            let next = objective(&candidate, &mut candidate_gradient);
            if next <= value + 1e-4 * f64::from(step * slope) {
                accepted = Some(next);
                break;
            }
            step *= 0.5;
        }
        let Some(next) = accepted else { break };
        let (mut s, mut y) = if history.len() == HISTORY {
            let (s, y, _) = history.remove(0);
            (s, y)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        for i in 0..n {
            s[i] = candidate[i] - x[i];
            y[i] = candidate_gradient[i] - gradient[i];
        }
        let sy = dot(&s, &y);
        if sy > 1e-10 {
            history.push((s, y, 1.0 / sy));
        }
        x.copy_from_slice(&candidate);
        std::mem::swap(&mut gradient, &mut candidate_gradient);
        let improvement = value - next;
        value = next;
        if improvement <= TOLERANCE * value.abs().max(1.0) {
            break;
        }
    }
}

/// `a · b`. With AVX2 (nearly every x86-64 server, Lambda's included) the same sums run
/// eight lanes wide instead of four: the meaning comparison and training are mostly this.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature `dot_avx2` is compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums: vectorises, and loses less precision on long vectors. The order
    // of the sums is fixed, so every CPU gets the same result.
    let mut sums = [0.0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for k in 0..8 {
            sums[k] += ca[k] * cb[k];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    sums.iter().sum::<f32>() + tail
}

/// `y += alpha · x`, eight lanes wide with AVX2 as [`dot`].
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature `axpy_avx2` is compiled for.
        return unsafe { axpy_avx2(alpha, x, y) };
    }
    axpy_portable(alpha, x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_portable(alpha, x, y)
}

#[inline(always)]
fn axpy_portable(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_any_cpu_when_dot_and_axpy_run_then_they_equal_the_portable_sums_exactly() {
        // Lengths around the eight lanes and the tail; values with rounding to lose.
        for len in 0..40 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 1.91).cos() / 3.0).collect();
            assert_eq!(
                dot(&a, &b).to_bits(),
                dot_portable(&a, &b).to_bits(),
                "{len}"
            );
            let (mut fast, mut portable) = (b.clone(), b.clone());
            axpy(0.3, &a, &mut fast);
            axpy_portable(0.3, &a, &mut portable);
            assert_eq!(fast, portable, "{len}");
        }
    }

    #[test]
    fn given_a_quadratic_when_minimized_then_lbfgs_finds_its_minimum() {
        // f(x) = Σ k·(x_k − k)², minimum at x_k = k.
        let mut x = vec![0.0f32; 6];
        minimize(&mut x, 100, |x, g| {
            let mut f = 0.0f64;
            for (k, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                let k = k as f32 + 1.0;
                *gi = 2.0 * k * (xi - k);
                f += f64::from(k * (xi - k) * (xi - k));
            }
            f
        });
        for (k, xi) in x.iter().enumerate() {
            assert!((xi - (k as f32 + 1.0)).abs() < 1e-2, "{x:?}");
        }
    }

    #[test]
    fn given_feature_of_another_class_when_trained_then_it_counts_against_this_one() {
        // Feature 0 marks class 0, feature 1 class 1, feature 2 is shared.
        let samples = vec![(vec![(0, 0.8), (2, 0.6)], 0), (vec![(1, 0.8), (2, 0.6)], 1)];
        let model = Dense::train(&samples, 3, 2, 1e-3, 200);
        let mut scores = Scores::default();
        model.score(&vec![(1, 1.0)], &mut scores);
        assert!(scores.get(1) > 0.0, "{:?}", scores.dense);
        assert!(scores.get(0) < 0.0, "negative evidence: {:?}", scores.dense);
        assert_eq!(scores.touched(), &[0, 1]);
        let mut bytes = Vec::new();
        model.write(&mut bytes);
        let mut input = &bytes[..];
        assert_eq!(Dense::read(&mut input, 3).expect("read"), model);
        assert!(input.is_empty());
        assert!(
            Dense::read(&mut &bytes[..], 4).is_err(),
            "wrong feature count"
        );
    }
}
