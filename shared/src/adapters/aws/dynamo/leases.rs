//! [`Leases`] on the table: one item per slot (`LEASE#<key>`, `SLOT#<n>`), taken with a
//! conditional put that succeeds when the slot is free or its lease has lapsed.
//!
//! Like idempotency keys, a lease expires twice over: `expires_at_ms` is what the condition
//! compares, `expires_at` (epoch seconds) lets TTL delete the item later.

use super::codec::{n, s};
use super::{DynamoStore, keys};
use crate::domain::now_millis;
use crate::ports::{Lease, Leases};
use crate::{Error, Result};
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
impl Leases for DynamoStore {
    async fn acquire(&self, key: &str, slots: u32, ttl: Duration) -> Result<Option<Lease>> {
        let holder = uuid::Uuid::new_v4().simple().to_string();
        for slot in 0..slots {
            let now_ms = now_millis();
            let expires_at_ms =
                now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(keys::PK, s(keys::lease_pk(key)))
                .item(keys::SK, s(keys::lease_sk(slot)))
                .item("holder", s(&holder))
                .item("expires_at", n(expires_at_ms.saturating_add(999) / 1000))
                .item("expires_at_ms", n(expires_at_ms))
                .condition_expression("attribute_not_exists(pk) OR expires_at_ms <= :now")
                .expression_attribute_values(":now", n(now_ms))
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Some(Lease {
                        key: key.to_owned(),
                        slot,
                        holder,
                    }));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::backend("taking a lease", e)),
            }
        }
        Ok(None)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::lease_pk(&lease.key)))
            .key(keys::SK, s(keys::lease_sk(lease.slot)))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(&lease.holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Lapsed and taken by another holder (or already gone): nothing of ours to free.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::backend("releasing a lease", e)),
        }
    }
}
