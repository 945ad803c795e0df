//! What every SMS provider's webhook does with one received SMS once it is verified and
//! parsed: drop retries, act on keywords, drop messages of opted-out numbers, enqueue the
//! rest for the bot.

use super::SmsState;
use super::keywords::{Keyword, START_CONFIRMATION, STOP_CONFIRMATION};
use super::phone::PhoneNumber;
use crate::Result;
use crate::channels::{Incoming, enqueue};
use crate::domain::{Channel, Millis};
use std::time::Duration;

/// How long a provider's message id is remembered: longer than any provider retries.
const SEEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The SMS providers, for idempotency keys and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Twilio,
    Sns,
    Aliyun,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Sns => "sns",
            Provider::Aliyun => "aliyun",
        }
    }
}

/// One SMS as a provider delivered it, verified and normalised.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub provider: Provider,
    pub from: PhoneNumber,
    /// The provider's id of this SMS; a retry carries the same one.
    pub platform_id: String,
    pub text: String,
    pub received_at: Millis,
}

/// What became of a received SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Queued for the bot.
    Enqueued,
    /// A retry of an SMS already handled.
    Duplicate,
    /// A keyword, handled here; the text answers it (where the provider lets us reply).
    Reply(String),
    /// The number opted out: nothing is stored for the bot to answer.
    OptedOut,
    /// Nothing to answer (no text, no media).
    Empty,
}

/// Handles one received SMS; see the module docs. `Err` only for backend failures, so the
/// provider retries.
pub(crate) async fn accept(state: &SmsState, received: Received) -> Result<Outcome> {
    let seen_key = format!(
        "sms-in:{}:{}",
        received.provider.as_str(),
        received.platform_id
    );
    if state.guard.get(&seen_key).await?.is_some() {
        tracing::info!(
            provider = received.provider.as_str(),
            "retry of a handled SMS"
        );
        return Ok(Outcome::Duplicate);
    }
    if let Some(keyword) = Keyword::parse(&received.text) {
        let reply = match keyword {
            Keyword::Stop => {
                let changed = state.opt_outs.opt_out(&received.from).await?;
                tracing::info!(from = %received.from, changed, "SMS opt-out");
                STOP_CONFIRMATION.to_owned()
            }
            Keyword::Start => {
                let changed = state.opt_outs.opt_in(&received.from).await?;
                tracing::info!(from = %received.from, changed, "SMS opt-in");
                START_CONFIRMATION.to_owned()
            }
            Keyword::Help => state.config.help_text.clone(),
        };
        // The register changes idempotently above; marking after it means a crash in
        // between re-runs the change, and only the first to mark answers.
        return Ok(match mark_seen(state, &seen_key).await? {
            true => Outcome::Reply(reply),
            false => Outcome::Duplicate,
        });
    }
    if state.opt_outs.is_opted_out(&received.from).await? {
        tracing::info!(from = %received.from, "SMS from an opted-out number; not stored");
        return Ok(Outcome::OptedOut);
    }
    if crate::domain::clean_text(&received.text).is_empty() {
        tracing::info!(from = %received.from, "empty SMS; nothing to answer");
        return Ok(Outcome::Empty);
    }
    // Cleaned and cut at the length limit on the way into the envelope: a customer cannot
    // shorten an SMS the provider already took, so nothing is refused for length.
    let text = received.text;
    let envelope = enqueue(
        state.inbound.as_ref(),
        Incoming {
            channel: Channel::Sms,
            address: received.from.as_str().to_owned(),
            name: None,
            platform_id: format!("{}:{}", received.provider.as_str(), received.platform_id),
            text,
            received_at: received.received_at,
        },
    )
    .await?;
    // Marked only once queued: a failed enqueue must stay retryable. The queue's own
    // deduplication covers a retry racing this mark.
    mark_seen(state, &seen_key).await?;
    tracing::info!(
        provider = received.provider.as_str(),
        conversation = %envelope.conversation_id,
        message_id = %envelope.message_id,
        "SMS queued"
    );
    Ok(Outcome::Enqueued)
}

/// Marks an SMS handled; `false` when someone marked it first.
async fn mark_seen(state: &SmsState, key: &str) -> Result<bool> {
    Ok(state
        .guard
        .put_if_absent(key, "1", SEEN_TTL)
        .await?
        .is_none())
}
