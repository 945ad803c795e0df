//! kefu's FAQ engine: from an FAQ source to a decision on one customer message.
//!
//! - [`faq`]: the FAQ source format (JSON Lines or CSV) and its strict parser;
//!   answers are checked against `kefu_template`'s syntax.
//! - [`text`]: text analysis shared by training and asking (Chinese and English).
//! - [`index`]: [`FaqIndex`], the trained model with the tantivy index over the
//!   paraphrases, packed as one bundle; [`matcher`]: message → [`Decision`] with a
//!   calibrated confidence; [`calibrate`]: the "don't know" thresholds.
//! - [`eval`]: accuracy, wrong answers and latency on a labelled question set;
//!   [`synthetic`]: generated FAQs for benchmarks.
//!
//! It does no I/O beyond its own temporary index files and depends on no kefu crate but `kefu-template`:
//! publishing versions to a blob store and answering customers are the bot's.
#![warn(missing_docs)]

mod bundle;
pub mod calibrate;
mod classifier;
mod error;
pub mod eval;
pub mod faq;
mod features;
pub mod index;
pub mod matcher;
mod model;
pub mod synthetic;
pub mod text;
mod word_vectors;

pub use calibrate::{Labelled, TargetWrongRate, read_labelled};
pub use error::{Error, Result};
pub use faq::{FaqEntry, SourceErrors, SourceFormat, parse_source};
pub use index::FaqIndex;
pub use matcher::{Decision, Match, MatcherConfig, resolve_pick};

/// Loads the word segmenter's dictionary and the word vectors now rather than on the first
/// message (call at cold start).
pub fn warm_up() {
    text::warm_up();
    word_vectors::warm_up();
}
