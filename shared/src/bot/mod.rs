//! The bot's FAQ brain and its message handler.
//!
//! - [`faq`]: the FAQ source format (JSON Lines or CSV) and its strict parser.
//! - [`text`]: text analysis shared by indexing and querying (Chinese and English).
//! - [`index`]: the tantivy index over paraphrases, packed as one bundle.
//! - [`matcher`]: message → [`Decision`] with a calibrated confidence; `features`,
//!   `classifier`, `model`, `word_vectors` and [`calibrate`] are the trained model behind
//!   it.
//! - [`eval`]: accuracy, wrong answers and latency on a labelled question set.
//! - [`intent`]: explicit requests for a person.
//! - [`smalltalk`]: greetings, thanks, goodbyes, "are you there" and feedback on an answer.
//! - [`hours`]: the team's service hours, for what a handed-off customer is told.
//! - [`library`]: publishing index versions and hot-reloading the current one.
//! - [`handler`]: the inbound-queue consumer that puts these together.

mod bundle;
pub mod calibrate;
mod classifier;
pub mod eval;
pub mod faq;
mod features;
pub mod handler;
pub mod hours;
pub mod index;
pub mod intent;
pub mod library;
pub mod matcher;
mod model;
pub mod policy;
pub mod sentiment;
pub mod smalltalk;
pub mod synthetic;
pub mod text;
pub mod unanswered;
mod word_vectors;

pub use calibrate::{Labelled, read_labelled};
pub use faq::{FaqEntry, SourceErrors, SourceFormat, parse_source};
pub use index::FaqIndex;
pub use intent::wants_human;
pub use library::{FaqLibrary, Published, publish};
pub use matcher::{Decision, Match, MatcherConfig, resolve_pick};
