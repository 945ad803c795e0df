//! [`MessageQueue`] over an SQS FIFO queue.
//!
//! SQS counts every receive (`ApproximateReceiveCount`), including the receives of messages
//! that were given back unattempted ([`MessageQueue::defer`]: held behind their group's
//! failure, or waiting for a paused channel), and that count cannot be lowered. So with
//! [`SqsMessageQueue::with_dead_letters`] the queue counts failed attempts itself, in the
//! idempotency table, and moves a message to the dead-letter queue after its last allowed
//! attempt; the queue's redrive policy stays as a high backstop for consumers that crash
//! before they can count.

use crate::ports::{Delivery, IdempotencyGuard, MessageQueue};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// SQS allows at most 10 messages per receive.
const MAX_BATCH: usize = 10;
/// SQS long polling waits at most 20 seconds.
const MAX_WAIT_SECS: u64 = 20;
/// SQS visibility timeouts are at most 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;
/// Group and deduplication ids are at most 128 characters.
const MAX_TOKEN_LEN: usize = 128;
/// How long a failed attempt is remembered: SQS's longest message retention.
const ATTEMPT_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// An SQS FIFO queue (`*.fifo`, content-based deduplication off): the group is the
/// `MessageGroupId`, the dedup id the `MessageDeduplicationId`.
#[derive(Clone)]
pub struct SqsMessageQueue {
    client: Client,
    queue_url: String,
    dead_letters: Option<DeadLetters>,
}

/// Where a message goes after its last allowed attempt, and the ledger of attempts.
#[derive(Clone)]
struct DeadLetters {
    queue_url: String,
    max_attempts: u32,
    attempts: Arc<dyn IdempotencyGuard>,
}

impl std::fmt::Debug for SqsMessageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsMessageQueue")
            .field("queue_url", &self.queue_url)
            .field(
                "dead_letters",
                &self.dead_letters.as_ref().map(|d| &d.queue_url),
            )
            .finish()
    }
}

impl SqsMessageQueue {
    /// The queue at `queue_url`, reached through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letters: None,
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Counts failed attempts in `attempts` and moves a message to `dead_letter_url` (a FIFO
    /// queue) when its `max_attempts`-th attempt fails (at least 1). Without this, only the
    /// queue's redrive policy moves messages, counting every receive.
    pub fn with_dead_letters(
        mut self,
        dead_letter_url: impl Into<String>,
        max_attempts: u32,
        attempts: Arc<dyn IdempotencyGuard>,
    ) -> Self {
        self.dead_letters = Some(DeadLetters {
            queue_url: dead_letter_url.into(),
            max_attempts: max_attempts.max(1),
            attempts,
        });
        self
    }

    /// Hides a received message for `delay` from now.
    async fn hide(&self, receipt: &str, delay: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(clamp_i32(delay.as_secs(), MAX_VISIBILITY_SECS))
            .send()
            .await
            .map_err(|e| Error::backend("changing an SQS message's visibility", e))?;
        Ok(())
    }

    /// Moves a message to the dead-letter queue: sent there first (deduplicated by its
    /// message id, so a retry of this move sends it once), then deleted here.
    async fn dead_letter(&self, delivery: &Delivery, dead_letters: &DeadLetters) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&dead_letters.queue_url)
            .message_group_id(sqs_token(&delivery.group))
            .message_deduplication_id(sqs_token(&delivery.message_id))
            .message_body(&delivery.body)
            .send()
            .await
            .map_err(|e| Error::backend("sending an SQS message to the dead-letter queue", e))?;
        tracing::warn!(group = %delivery.group, attempts = dead_letters.max_attempts,
            "message failed its last attempt; moved to the dead-letter queue");
        self.delete(&delivery.receipt).await
    }
}

/// Records the failed attempt of `delivery` and returns how many attempts failed so far
/// (at most `max`). Attempt `n` is the key `sqs-attempt:<message id>:<n>`, written once with
/// the receive count it failed on, so recording one receive twice counts it once.
async fn record_failed_attempt(
    ledger: &dyn IdempotencyGuard,
    delivery: &Delivery,
    max: u32,
) -> Result<u32> {
    let receive = delivery.receive_count.to_string();
    for n in 1..=max {
        let key = format!("sqs-attempt:{}:{n}", delivery.message_id);
        match ledger.put_if_absent(&key, &receive, ATTEMPT_TTL).await? {
            None => return Ok(n),
            Some(earlier) if earlier == receive => return Ok(n),
            Some(_) => {}
        }
    }
    Ok(max)
}

#[async_trait]
impl MessageQueue for SqsMessageQueue {
    async fn send(&self, group: &str, dedup_id: &str, body: &str) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(sqs_token(group))
            .message_deduplication_id(sqs_token(dedup_id))
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::backend("sending an SQS message", e))?;
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(clamp_i32(max as u64, MAX_BATCH as u64))
            .visibility_timeout(clamp_i32(visibility.as_secs(), MAX_VISIBILITY_SECS))
            .wait_time_seconds(clamp_i32(wait.as_secs(), MAX_WAIT_SECS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| Error::backend("receiving SQS messages", e))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(into_delivery)
            .collect()
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| Error::backend("deleting an SQS message", e))?;
        Ok(())
    }

    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        if let Some(dead_letters) = &self.dead_letters {
            let failed = record_failed_attempt(
                dead_letters.attempts.as_ref(),
                delivery,
                dead_letters.max_attempts,
            )
            .await?;
            if failed >= dead_letters.max_attempts {
                return self.dead_letter(delivery, dead_letters).await;
            }
        }
        self.hide(&delivery.receipt, delay).await
    }

    async fn defer(&self, delivery: &Delivery, delay: Duration) -> Result<()> {
        self.hide(&delivery.receipt, delay).await
    }
}

fn into_delivery(message: aws_sdk_sqs::types::Message) -> Result<Delivery> {
    let attributes = message.attributes.unwrap_or_default();
    let receipt = message
        .receipt_handle
        .ok_or_else(|| Error::Corrupt("SQS message without receipt handle".into()))?;
    let group = attributes
        .get(&MessageSystemAttributeName::MessageGroupId)
        .cloned()
        .ok_or_else(|| Error::Corrupt("SQS message without MessageGroupId".into()))?;
    let receive_count = attributes
        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let message_id = message
        .message_id
        .ok_or_else(|| Error::Corrupt("SQS message without message id".into()))?;
    Ok(Delivery {
        receipt,
        message_id,
        group,
        body: message.body.unwrap_or_default(),
        receive_count,
    })
}

/// A value SQS accepts as group or deduplication id: the value itself when it fits
/// (at most 128 printable ASCII characters), else its SHA-256 in hex, which is stable, so
/// deduplication and ordering still hold. kefu's ids (32 hex characters) always fit.
fn sqs_token(value: &str) -> String {
    let fits = !value.is_empty()
        && value.len() <= MAX_TOKEN_LEN
        && value.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        value.to_owned()
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
}

fn clamp_i32(value: u64, max: u64) -> i32 {
    // `max` is far below i32::MAX, so the conversion cannot fail.
    i32::try_from(value.min(max)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_kefu_id_when_made_an_sqs_token_then_it_is_unchanged() {
        assert_eq!(
            sqs_token("m0123456789abcdef0123456789abcde"),
            "m0123456789abcdef0123456789abcde"
        );
    }

    #[test]
    fn given_an_overlong_or_spaced_id_when_made_an_sqs_token_then_it_is_a_stable_digest() {
        let long = "x".repeat(129);
        assert_eq!(sqs_token(&long).len(), 64);
        assert_eq!(sqs_token(&long), sqs_token(&long));
        assert_ne!(sqs_token("a b"), "a b");
        assert_ne!(sqs_token(""), "");
    }

    #[test]
    fn given_limits_when_clamped_then_sqs_bounds_hold() {
        assert_eq!(clamp_i32(50, MAX_BATCH as u64), 10);
        assert_eq!(clamp_i32(3, MAX_WAIT_SECS), 3);
        assert_eq!(clamp_i32(u64::MAX, MAX_VISIBILITY_SECS), 43_200);
    }
}
