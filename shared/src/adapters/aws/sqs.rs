//! [`MessageQueue`] over an SQS FIFO queue.

use crate::ports::{Delivery, MessageQueue};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// SQS allows at most 10 messages per receive.
const MAX_BATCH: usize = 10;
/// SQS long polling waits at most 20 seconds.
const MAX_WAIT_SECS: u64 = 20;
/// SQS visibility timeouts are at most 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;
/// Group and deduplication ids are at most 128 characters.
const MAX_TOKEN_LEN: usize = 128;

/// An SQS FIFO queue (`*.fifo`, content-based deduplication off): the group is the
/// `MessageGroupId`, the dedup id the `MessageDeduplicationId`.
#[derive(Debug, Clone)]
pub struct SqsMessageQueue {
    client: Client,
    queue_url: String,
}

impl SqsMessageQueue {
    /// The queue at `queue_url`, reached through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
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

    async fn release(&self, receipt: &str) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| Error::backend("releasing an SQS message", e))?;
        Ok(())
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
    Ok(Delivery {
        receipt,
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
