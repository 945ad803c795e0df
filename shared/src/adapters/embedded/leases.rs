//! [`Leases`] on SQLite: one row per held slot; a lapsed row counts as free.

use super::db::{Db, SqlContext};
use super::millis;
use crate::Result;
use crate::domain::now_millis;
use crate::ports::{Lease, Leases};
use async_trait::async_trait;
use rusqlite::params;
use std::sync::Arc;
use std::time::Duration;

/// Leases in the embedded database, shared by every handle on it. Cheap to clone.
#[derive(Clone)]
pub struct SqliteLeases {
    db: Arc<Db>,
}

impl SqliteLeases {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Leases for SqliteLeases {
    async fn acquire(&self, key: &str, slots: u32, ttl: Duration) -> Result<Option<Lease>> {
        let key = key.to_owned();
        let holder = uuid::Uuid::new_v4().simple().to_string();
        self.db
            .write("take a lease", move |tx| {
                let now = now_millis();
                for slot in 0..slots {
                    let taken = tx
                        .execute(
                            "INSERT INTO leases (key, slot, holder, expires_at)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (key, slot) DO UPDATE
                                 SET holder = excluded.holder, expires_at = excluded.expires_at
                                 WHERE leases.expires_at <= ?5",
                            params![key, slot, holder, now.saturating_add(millis(ttl)), now],
                        )
                        .context("take a lease slot")?
                        == 1;
                    if taken {
                        return Ok(Some(Lease {
                            key: key.clone(),
                            slot,
                            holder: holder.clone(),
                        }));
                    }
                }
                Ok(None)
            })
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.db
            .write("release a lease", move |tx| {
                tx.execute(
                    "DELETE FROM leases WHERE key = ?1 AND slot = ?2 AND holder = ?3",
                    params![lease.key, lease.slot, lease.holder],
                )
                .context("delete a lease")?;
                Ok(())
            })
            .await
    }
}
