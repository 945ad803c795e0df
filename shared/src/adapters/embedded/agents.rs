//! [`AgentDirectory`] on SQLite.

use super::db::{Db, SqlContext};
use crate::ports::{AgentAccount, AgentDirectory};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

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

#[async_trait]
impl AgentDirectory for SqliteAgentDirectory {
    async fn agent(&self, username: &str) -> Result<Option<AgentAccount>> {
        let username = username.to_owned();
        self.db
            .read("get agent", move |conn| {
                let row = conn
                    .query_row(
                        "SELECT username, display_name, password_hash, queues, created_at
                         FROM agents WHERE username = ?1",
                        params![username],
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, i64>(4)?,
                            ))
                        },
                    )
                    .optional()
                    .context("read agent")?;
                let Some((username, display_name, password_hash, queues, created_at)) = row else {
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
                             (username, display_name, password_hash, queues, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (username) DO NOTHING",
                        params![
                            account.username,
                            account.display_name,
                            account.password_hash,
                            queues,
                            account.created_at,
                        ],
                    )
                    .context("insert agent")?;
                Ok(created == 1)
            })
            .await
    }
}
