//! The schema and its migrations, tracked in SQLite's `user_version`.
//!
//! To change the schema, append a migration; never edit one that has shipped. A database
//! written by a newer build (a higher version than this build knows) is refused rather than
//! misread.

use super::db::SqlContext;
use crate::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: queues, conversations, messages, idempotency keys, agents.
    r#"
    CREATE TABLE queue_messages (
        id            INTEGER PRIMARY KEY AUTOINCREMENT, -- send order across the queue
        queue         TEXT    NOT NULL,
        grp           TEXT    NOT NULL,
        body          TEXT    NOT NULL,
        sent_at       INTEGER NOT NULL,
        visible_at    INTEGER NOT NULL DEFAULT 0,        -- in flight while > now
        receipt       TEXT,                              -- handle of the latest receive
        receive_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_messages_by_queue ON queue_messages (queue);
    CREATE INDEX queue_messages_by_group ON queue_messages (queue, grp, visible_at);
    CREATE UNIQUE INDEX queue_messages_by_receipt ON queue_messages (receipt);

    CREATE TABLE queue_dedup (
        queue      TEXT    NOT NULL,
        dedup_id   TEXT    NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (queue, dedup_id)
    ) WITHOUT ROWID;
    CREATE INDEX queue_dedup_by_expiry ON queue_dedup (expires_at);

    CREATE TABLE conversations (
        id                  TEXT    PRIMARY KEY,
        channel             TEXT    NOT NULL,
        customer            TEXT    NOT NULL, -- JSON
        state               TEXT    NOT NULL,
        escalation_queue    TEXT,
        escalation_priority INTEGER,
        escalation_reason   TEXT,
        waiting_since       INTEGER,
        assignee            TEXT,
        bot_misses          INTEGER NOT NULL,
        bot_seq             INTEGER NOT NULL,
        last_seq            INTEGER NOT NULL,
        version             INTEGER NOT NULL,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX conversations_waiting
        ON conversations (escalation_queue, escalation_priority DESC, waiting_since)
        WHERE state = 'waiting';

    CREATE TABLE messages (
        conversation_id TEXT    NOT NULL REFERENCES conversations (id),
        seq             INTEGER NOT NULL,
        message_id      TEXT    NOT NULL,
        author          TEXT    NOT NULL,
        agent_id        TEXT,
        text            TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        channel         TEXT    NOT NULL,
        delivery        TEXT    NOT NULL, -- JSON
        PRIMARY KEY (conversation_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX messages_by_id ON messages (conversation_id, message_id);

    CREATE TABLE idempotency (
        key        TEXT    PRIMARY KEY,
        value      TEXT    NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);

    CREATE TABLE agents (
        username      TEXT    PRIMARY KEY,
        display_name  TEXT    NOT NULL,
        password_hash TEXT    NOT NULL,
        queues        TEXT    NOT NULL, -- JSON array
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: the bot's multi-turn context on conversations, sentiment on messages.
    r#"
    ALTER TABLE conversations ADD COLUMN bot_context TEXT; -- JSON
    ALTER TABLE messages ADD COLUMN sentiment REAL;
    "#,
    // 3: quick replies offered with bot answers.
    r#"
    ALTER TABLE messages ADD COLUMN quick_replies TEXT; -- JSON array, NULL when none
    "#,
    // 4: counted leases (concurrent long polls per visitor); conversations without
    // messages found by age, to purge the lapsed ones.
    r#"
    CREATE TABLE leases (
        key        TEXT    NOT NULL,
        slot       INTEGER NOT NULL,
        holder     TEXT    NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (key, slot)
    ) WITHOUT ROWID;
    CREATE INDEX conversations_empty ON conversations (created_at) WHERE last_seq = 0;
    "#,
    // 5: disabled agent accounts; failed-login counters (per account, per address).
    r#"
    ALTER TABLE agents ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE login_failures (
        key     TEXT    PRIMARY KEY,
        count   INTEGER NOT NULL,
        last_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX login_failures_by_age ON login_failures (last_at);
    "#,
];

/// The schema version this build writes.
pub(super) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Applies the migrations the database lacks, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        // Re-read inside the write lock: another process may be migrating the same file.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("begin migration")?;
        let current: u32 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .context("read schema version")?;
        let Some(migration) = MIGRATIONS.get(current as usize) else {
            if current > VERSION {
                return Err(Error::Corrupt(format!(
                    "database schema version {current} is newer than this build's {VERSION}"
                )));
            }
            return Ok(());
        };
        tx.execute_batch(migration)
            .context("apply schema migration")?;
        tx.pragma_update(None, "user_version", current + 1)
            .context("write schema version")?;
        tx.commit().context("commit schema migration")?;
        tracing::info!(version = current + 1, "embedded store schema migrated");
    }
}
