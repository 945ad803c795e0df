//! [`IdempotencyGuard`] on the table.
//!
//! Each key expires twice over: `expires_at` (epoch seconds) lets DynamoDB's TTL delete it
//! eventually (hours later, at no cost), and `expires_at_ms` is what reads and conditional
//! writes compare against, so an expired item that TTL has not deleted yet counts as absent.

use super::codec::{self, n, s};
use super::{DynamoStore, Item, keys};
use crate::domain::now_millis;
use crate::ports::IdempotencyGuard;
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use std::time::Duration;

/// A put can lose to a key that expires before it can be read back; retry that few times.
const PUT_ATTEMPTS: u32 = 3;

/// The value of a stored key, if it has not expired at `now_ms`.
fn live_value(item: &Item, now_ms: i64) -> Result<Option<String>> {
    let expires_at_ms: i64 = codec::number(item, "expires_at_ms")?;
    if expires_at_ms <= now_ms {
        return Ok(None);
    }
    codec::string(item, "value").map(Some)
}

#[async_trait]
impl IdempotencyGuard for DynamoStore {
    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<Option<String>> {
        for _ in 0..PUT_ATTEMPTS {
            let now_ms = now_millis();
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            let expires_at_ms = now_ms.saturating_add(ttl_ms);
            // Round up so TTL never deletes a key before it expired.
            let expires_at_secs = expires_at_ms.saturating_add(999) / 1000;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(keys::PK, s(keys::idempotency_pk(key)))
                .item(keys::SK, s(keys::IDEM))
                .item("value", s(value))
                .item("expires_at", n(expires_at_secs))
                .item("expires_at_ms", n(expires_at_ms))
                .condition_expression("attribute_not_exists(pk) OR expires_at_ms <= :now")
                .expression_attribute_values(":now", n(now_ms))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let stored = match result {
                Ok(_) => return Ok(None),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        match failed.item() {
                            Some(item) => live_value(item, now_ms)?,
                            None => self.get(key).await?,
                        }
                    }
                    _ => return Err(Error::backend("storing an idempotency key", e)),
                },
            };
            if stored.is_some() {
                return Ok(stored);
            }
        }
        Err(Error::Conflict(format!(
            "idempotency key kept changing over {PUT_ATTEMPTS} attempts"
        )))
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let item = self
            .get_item(keys::idempotency_pk(key), keys::IDEM, "an idempotency key")
            .await?;
        match item {
            Some(item) => live_value(&item, now_millis()),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn given_an_item_when_read_before_and_after_expiry_then_only_the_live_one_counts() {
        let item = HashMap::from([
            ("value".to_owned(), s("done")),
            ("expires_at_ms".to_owned(), n(1_000)),
        ]);
        assert_eq!(live_value(&item, 999).expect("valid"), Some("done".into()));
        assert_eq!(live_value(&item, 1_000).expect("valid"), None);
    }
}
