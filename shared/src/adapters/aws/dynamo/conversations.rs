//! [`ConversationStore`] and [`WorkQueue`] on the table.

use super::codec::{self, n, s};
use super::expr::Update;
use super::{DynamoStore, GSI1, Item, keys};
use crate::domain::{
    Conversation, ConversationId, DeliveryState, Message, MessageId, NewMessage, now_millis,
};
use crate::ports::{ConversationStore, EMPTY_CONVERSATION_TTL, WorkQueue};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update as TransactUpdate,
};
use rand::Rng;
use std::time::Duration;

/// How often an append re-reads `last_seq` after losing a race before giving up.
const APPEND_ATTEMPTS: u32 = 100;
/// First and largest back-off between append attempts (full jitter in between).
const APPEND_BACKOFF_BASE_MS: u64 = 5;
const APPEND_BACKOFF_CAP_MS: u64 = 200;

impl DynamoStore {
    /// The conversation's item, unless it lapsed without a message.
    async fn conversation_item(&self, id: &ConversationId) -> Result<Option<Item>> {
        let item = self
            .get_item(keys::conversation_pk(id), keys::META, "a conversation")
            .await?;
        Ok(item.filter(|item| !lapsed(item, now_millis())))
    }

    /// One attempt to store `message` as seq `last_seq + 1`. `Ok(false)` when the
    /// transaction was cancelled: `last_seq` moved, or the message id is already stored.
    async fn try_append(&self, message: &Message, last_seq: u64) -> Result<bool> {
        let pk = keys::conversation_pk(&message.conversation_id);
        let bump = TransactUpdate::builder()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(keys::META))
            // The first message keeps the conversation: it no longer lapses.
            .update_expression("SET last_seq = :next REMOVE expires_at, expires_at_ms")
            .condition_expression("last_seq = :seen")
            .expression_attribute_values(":next", n(message.seq))
            .expression_attribute_values(":seen", n(last_seq))
            .build()
            .map_err(|e| Error::backend("building an append", e))?;
        let marker = put_new(&self.table, codec::marker_item(message))?;
        let body = put_new(&self.table, codec::message_item(message))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(bump).build())
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().put(body).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::backend("appending a message", e)),
        }
    }

    async fn message_seq(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
    ) -> Result<Option<u64>> {
        let marker = self
            .get_item(
                keys::conversation_pk(id),
                &keys::marker_sk(message_id),
                "a message id",
            )
            .await?;
        marker.map(|item| codec::number(&item, "seq")).transpose()
    }
}

/// Whether an item still carries the lapse time of a conversation without messages, and
/// it has passed (TTL deletes such items only eventually).
fn lapsed(item: &Item, now_ms: i64) -> bool {
    codec::number::<i64>(item, "expires_at_ms").is_ok_and(|at| at <= now_ms)
}

/// A `Put` that only succeeds if the item does not exist yet.
fn put_new(table: &str, item: Item) -> Result<Put> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| Error::backend("building an append", e))
}

/// Full-jitter exponential back-off for append attempt `attempt` (0-based).
fn append_backoff(attempt: u32) -> Duration {
    let ceiling = APPEND_BACKOFF_BASE_MS
        .saturating_mul(1 << attempt.min(16))
        .min(APPEND_BACKOFF_CAP_MS);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling))
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn create(&self, conversation: &Conversation) -> Result<Conversation> {
        let ttl_ms = i64::try_from(EMPTY_CONVERSATION_TTL.as_millis()).unwrap_or(i64::MAX);
        let lapses_at_ms = conversation.created_at.saturating_add(ttl_ms);
        let mut item = codec::conversation_item(conversation)?;
        if conversation.last_seq == 0 {
            item.insert(
                "expires_at".into(),
                n(lapses_at_ms.saturating_add(999) / 1000),
            );
            item.insert("expires_at_ms".into(), n(lapses_at_ms));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // A lapsed conversation that TTL has not deleted yet is replaced.
            .condition_expression("attribute_not_exists(pk) OR expires_at_ms <= :now")
            .expression_attribute_values(":now", n(now_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(conversation.clone()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        Some(stored) => codec::conversation(stored),
                        None => self.get(&conversation.id).await?.ok_or_else(|| {
                            Error::Conflict("conversation vanished while being created".into())
                        }),
                    }
                }
                _ => Err(Error::backend("creating a conversation", e)),
            },
        }
    }

    async fn get(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        self.conversation_item(id)
            .await?
            .map(|item| codec::conversation(&item))
            .transpose()
    }

    async fn save(&self, conversation: &mut Conversation) -> Result<()> {
        let mut update = Update::default();
        for (name, value) in codec::conversation_state(conversation)? {
            update.set_or_remove(name, value);
        }
        update.set_or_remove("version", Some(n(conversation.version + 1)));
        let version = update.name("version");
        let expected = update.value(n(conversation.version));
        update.condition(format!("{version} = {expected}"));
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::conversation_pk(&conversation.id)))
            .key(keys::SK, s(keys::META))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match update.apply(request).send().await {
            Ok(_) => {
                conversation.version += 1;
                Ok(())
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    // Without an old item the conversation does not exist at all; emulators
                    // may omit the item, so ask before deciding.
                    let exists = match failed.item() {
                        Some(_) => true,
                        None => self.conversation_item(&conversation.id).await?.is_some(),
                    };
                    Err(if exists {
                        Error::Conflict("the conversation changed since it was read".into())
                    } else {
                        Error::NotFound(format!("conversation {}", conversation.id))
                    })
                }
                _ => Err(Error::backend("saving a conversation", e)),
            },
        }
    }

    async fn append(&self, id: &ConversationId, message: NewMessage) -> Result<(Message, bool)> {
        for attempt in 0..APPEND_ATTEMPTS {
            let meta = self
                .conversation_item(id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("conversation {id}")))?;
            let last_seq: u64 = codec::number(&meta, "last_seq")?;
            if last_seq >= keys::MAX_SEQ {
                return Err(Error::Invalid("the conversation is full".into()));
            }
            let stored = Message {
                conversation_id: id.clone(),
                message_id: message.message_id.clone(),
                seq: last_seq + 1,
                author: message.author,
                agent_id: message.agent_id.clone(),
                text: message.text.clone(),
                created_at: message.created_at,
                channel: codec::conversation_channel(&meta)?,
                delivery: DeliveryState::Pending,
                sentiment: message.sentiment,
                quick_replies: message.quick_replies.clone(),
            };
            if self.try_append(&stored, last_seq).await? {
                return Ok((stored, true));
            }
            // Cancelled: either this id is stored already (a retry) or another append won
            // the seq; the marker tells which.
            if let Some(existing) = self.find_message(id, &message.message_id).await? {
                return Ok((existing, false));
            }
            tokio::time::sleep(append_backoff(attempt)).await;
        }
        Err(Error::Conflict(format!(
            "gave up appending to conversation {id} after {APPEND_ATTEMPTS} contended attempts"
        )))
    }

    async fn messages(
        &self,
        id: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        if limit == 0 || after >= keys::MAX_SEQ {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(keys::conversation_pk(id)))
            .expression_attribute_values(":from", s(keys::message_sk(after + 1)))
            .expression_attribute_values(":to", s(keys::message_sk(keys::MAX_SEQ)))
            .consistent_read(true);
        self.query_up_to(query, limit, "messages")
            .await?
            .iter()
            .map(codec::message)
            .collect()
    }

    async fn find_message(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
    ) -> Result<Option<Message>> {
        let Some(seq) = self.message_seq(id, message_id).await? else {
            return Ok(None);
        };
        let item = self
            .get_item(
                keys::conversation_pk(id),
                &keys::message_sk(seq),
                "a message",
            )
            .await?
            .ok_or_else(|| {
                Error::Corrupt(format!("message id marker points at missing seq {seq}"))
            })?;
        codec::message(&item).map(Some)
    }

    async fn set_delivery(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
        state: DeliveryState,
    ) -> Result<()> {
        let seq = self
            .message_seq(id, message_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("message {message_id}")))?;
        let (delivery, reason) = codec::delivery(&state);
        let mut update = Update::default();
        update.set_or_remove("delivery", Some(delivery));
        update.set_or_remove("delivery_reason", reason);
        let pk = update.name(keys::PK);
        update.condition(format!("attribute_exists({pk})"));
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::conversation_pk(id)))
            .key(keys::SK, s(keys::message_sk(seq)));
        match update.apply(request).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::NotFound(format!("message {message_id}")))
            }
            Err(e) => Err(Error::backend("recording a delivery state", e)),
        }
    }
}

#[async_trait]
impl WorkQueue for DynamoStore {
    async fn waiting(&self, queue: &str, limit: usize) -> Result<Vec<Conversation>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :queue")
            .expression_attribute_values(":queue", s(keys::queue_pk(queue)))
            .scan_index_forward(true);
        self.query_up_to(query, limit, "a work queue")
            .await?
            .iter()
            .map(codec::conversation)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_many_attempts_when_backing_off_then_the_wait_stays_under_the_cap() {
        for attempt in [0, 1, 5, 40, u32::MAX] {
            assert!(append_backoff(attempt) <= Duration::from_millis(APPEND_BACKOFF_CAP_MS));
        }
    }
}
