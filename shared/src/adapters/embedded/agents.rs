//! [`AgentDirectory`] on SQLite.

use super::db::{Db, SqlContext};
use crate::domain::Millis;
use crate::ports::{AgentAccount, AgentDirectory, LoginFailures};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;

/// Local agent accounts in the embedded database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteAgentDirectory {
    db: Arc<Db>,
}

impl SqliteAgentDirectory {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The oldest `last_at` that still counts at `now`.
fn cutoff(now: Millis, forget_after: Duration) -> Millis {
    now.saturating_sub(i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl AgentDirectory for SqliteAgentDirectory {
    async fn agent(&self, username: &str) -> Result<Option<AgentAccount>> {
        let username = username.to_owned();
        self.db
            .read("get agent", move |conn| {
                let row = conn
                    .query_row(
                        "SELECT username, display_name, password_hash, queues, disabled,
                                created_at
                         FROM agents WHERE username = ?1",
                        params![username],
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, bool>(4)?,
                                row.get::<_, i64>(5)?,
                            ))
                        },
                    )
                    .optional()
                    .context("read agent")?;
                let Some((username, display_name, password_hash, queues, disabled, created_at)) =
                    row
                else {
                    return Ok(None);
                };
                let queues = serde_json::from_str(&queues).map_err(|e| {
                    Error::Corrupt(format!("stored queues of agent {username}: {e}"))
                })?;
                Ok(Some(AgentAccount {
                    username,
                    display_name,
                    password_hash,
                    queues,
                    disabled,
                    created_at,
                }))
            })
            .await
    }

    async fn create_agent(&self, account: &AgentAccount) -> Result<bool> {
        let queues = serde_json::to_string(&account.queues)
            .map_err(|e| Error::backend("encode agent queues", e))?;
        let account = account.clone();
        self.db
            .write("create agent", move |tx| {
                let created = tx
                    .execute(
                        "INSERT INTO agents
                             (username, display_name, password_hash, queues, disabled,
                              created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (username) DO NOTHING",
                        params![
                            account.username,
                            account.display_name,
                            account.password_hash,
                            queues,
                            account.disabled,
                            account.created_at,
                        ],
                    )
                    .context("insert agent")?;
                Ok(created == 1)
            })
            .await
    }

    async fn update_agent(&self, account: &AgentAccount) -> Result<bool> {
        let queues = serde_json::to_string(&account.queues)
            .map_err(|e| Error::backend("encode agent queues", e))?;
        let account = account.clone();
        self.db
            .write("update agent", move |tx| {
                let updated = tx
                    .execute(
                        "UPDATE agents
                         SET display_name = ?2, password_hash = ?3, queues = ?4, disabled = ?5
                         WHERE username = ?1",
                        params![
                            account.username,
                            account.display_name,
                            account.password_hash,
                            queues,
                            account.disabled,
                        ],
                    )
                    .context("update agent")?;
                Ok(updated == 1)
            })
            .await
    }

    async fn delete_agent(&self, username: &str) -> Result<bool> {
        let username = username.to_owned();
        self.db
            .write("delete agent", move |tx| {
                let deleted = tx
                    .execute("DELETE FROM agents WHERE username = ?1", params![username])
                    .context("delete agent")?;
                Ok(deleted == 1)
            })
            .await
    }

    async fn note_login_failure(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<LoginFailures> {
        let key = key.to_owned();
        let cutoff = cutoff(now, forget_after);
        self.db
            .write("count login failure", move |tx| {
                // Forgotten counters go first, so the table stays as small as the window.
                tx.execute(
                    "DELETE FROM login_failures WHERE last_at <= ?1",
                    params![cutoff],
                )
                .context("forget old login failures")?;
                let count = tx
                    .query_row(
                        "INSERT INTO login_failures (key, count, last_at) VALUES (?1, 1, ?2)
                         ON CONFLICT (key) DO UPDATE
                             SET count = count + 1, last_at = max(last_at, excluded.last_at)
                         RETURNING count",
                        params![key, now],
                        |row| row.get::<_, u32>(0),
                    )
                    .context("count login failure")?;
                Ok(LoginFailures {
                    count,
                    last_at: now,
                })
            })
            .await
    }

    async fn login_failures(
        &self,
        key: &str,
        now: Millis,
        forget_after: Duration,
    ) -> Result<Option<LoginFailures>> {
        let key = key.to_owned();
        let cutoff = cutoff(now, forget_after);
        self.db
            .read("read login failures", move |conn| {
                conn.query_row(
                    "SELECT count, last_at FROM login_failures WHERE key = ?1 AND last_at > ?2",
                    params![key, cutoff],
                    |row| {
                        Ok(LoginFailures {
                            count: row.get(0)?,
                            last_at: row.get(1)?,
                        })
                    },
                )
                .optional()
                .context("read login failures")
            })
            .await
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.db
            .write("clear login failures", move |tx| {
                tx.execute("DELETE FROM login_failures WHERE key = ?1", params![key])
                    .context("clear login failures")?;
                Ok(())
            })
            .await
    }
}
