//! [`DynamoStore`]: conversations, messages, work queues, idempotency keys, leases and
//! agents in one DynamoDB table.
//!
//! Table layout (single-table design; `provision::create_table` creates it):
//!
//! | Item | `pk` | `sk` | notes |
//! |---|---|---|---|
//! | conversation | `CONV#<id>` | `META` | `version`, `last_seq`; until its first message `expires_at` (TTL), `expires_at_ms`; while waiting also `gsi1pk` = `QUEUE#<queue>`, `gsi1sk` = `<9-priority>#<waiting_since:013>#<id>` |
//! | message | `CONV#<id>` | `MSG#<seq:012>` | |
//! | message-id marker | `CONV#<id>` | `MID#<message_id>` | `seq`; makes appends idempotent |
//! | idempotency key | `IDEM#<key>` | `IDEM` | `value`, `expires_at` (TTL, epoch seconds), `expires_at_ms` |
//! | agent | `AGENT#<username>` | `META` | `disabled` |
//! | failed-login counter | `AGENT#user:<username>`, `AGENT#addr:<address>` | `FAILURES` | `failures`, `last_at` (ms), `expires_at` (TTL) |
//! | lease | `LEASE#<key>` | `SLOT#<n>` | `holder`, `expires_at` (TTL), `expires_at_ms` |
//!
//! `gsi1` is a sparse index: only waiting conversations carry its keys, so querying one
//! queue's partition in key order yields the queue, highest priority then oldest first.
//! The index is eventually consistent in DynamoDB (immediately so in emulators).

mod agents;
mod codec;
mod conversations;
mod expr;
mod idempotency;
mod keys;
mod leases;

pub use keys::PARTITION_PREFIXES;

use crate::{Error, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The name of the table's one global secondary index (the agents' work queues).
pub(crate) const GSI1: &str = "gsi1";

/// The DynamoDB adapter for [`ConversationStore`](crate::ports::ConversationStore),
/// [`WorkQueue`](crate::ports::WorkQueue), [`IdempotencyGuard`](crate::ports::IdempotencyGuard)
/// and [`AgentDirectory`](crate::ports::AgentDirectory), over one table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// The store over `table`, reached through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads one item with a strongly consistent read.
    async fn get_item(&self, pk: String, sk: &str, what: &str) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, AttributeValue::S(pk))
            .key(keys::SK, AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::backend(format!("reading {what}"), e))?;
        Ok(output.item)
    }

    /// Runs `query` page by page until `limit` items or the end.
    async fn query_up_to(
        &self,
        query: QueryFluentBuilder,
        limit: usize,
        what: &str,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < limit {
            let page_size = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let page = query
                .clone()
                .limit(page_size)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::backend(format!("querying {what}"), e))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        items.truncate(limit);
        Ok(items)
    }
}
