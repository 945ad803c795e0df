//! kefu's bot: what to do with each customer message, over the FAQ engine ([`kefu_faq`],
//! whose modules are re-exported here) and the ports of `kefu`. It must not depend on an
//! adapter: the Lambda mains and the local runner hand it the ports.
//!
//! - [`intent`]: explicit requests for a person.
//! - [`smalltalk`]: greetings, thanks, goodbyes, "are you there" and feedback on an answer.
//! - [`hours`]: the team's service hours, for what a handed-off customer is told.
//! - [`library`]: publishing index versions and hot-reloading the current one.
//! - [`flows`]: task flows over the shop's order API (order status, cancel, returns).
//! - [`handler`]: the inbound-queue consumer that puts these together.
//! - [`config`]: the bot's settings from the environment.
#![warn(missing_docs)]

pub mod config;
pub mod flows;
pub mod handler;
pub mod hours;
pub mod intent;
pub mod library;
pub mod policy;
pub mod smalltalk;
pub mod unanswered;

pub use kefu_faq::{calibrate, eval, faq, index, matcher, synthetic, text};

pub use calibrate::{Labelled, read_labelled};
pub use faq::{FaqEntry, SourceErrors, SourceFormat, parse_source};
pub use index::FaqIndex;
pub use intent::wants_human;
pub use library::{FaqLibrary, Published};
pub use matcher::{Decision, Match, MatcherConfig, resolve_pick};
