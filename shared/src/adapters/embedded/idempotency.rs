//! [`IdempotencyGuard`] on SQLite: keys with a time to live, first writer wins.

use super::db::{Db, SqlContext};
use super::millis;
use crate::Result;
use crate::domain::now_millis;
use crate::ports::IdempotencyGuard;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;

/// Idempotency keys in the embedded database. Expired keys count as absent and are purged
/// by later writes. Cheap to clone.
#[derive(Clone)]
pub struct SqliteIdempotencyGuard {
    db: Arc<Db>,
}

impl SqliteIdempotencyGuard {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl IdempotencyGuard for SqliteIdempotencyGuard {
    async fn put_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<Option<String>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.db
            .write("put idempotency key", move |tx| {
                let now = now_millis();
                tx.execute(
                    "DELETE FROM idempotency WHERE expires_at <= ?1",
                    params![now],
                )
                .context("purge expired idempotency keys")?;
                let stored = tx
                    .execute(
                        "INSERT INTO idempotency (key, value, expires_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO NOTHING",
                        params![key, value, now.saturating_add(millis(ttl))],
                    )
                    .context("insert idempotency key")?
                    == 1;
                if stored {
                    return Ok(None);
                }
                tx.query_row(
                    "SELECT value FROM idempotency WHERE key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .context("read idempotency key")
                .map(Some)
            })
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.db
            .read("get idempotency key", move |conn| {
                conn.query_row(
                    "SELECT value FROM idempotency WHERE key = ?1 AND expires_at > ?2",
                    params![key, now_millis()],
                    |row| row.get(0),
                )
                .optional()
                .context("read idempotency key")
            })
            .await
    }
}
