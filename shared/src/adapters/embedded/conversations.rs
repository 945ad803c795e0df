//! [`ConversationStore`] and [`WorkQueue`] on SQLite: conversations with optimistic
//! versioning, messages with gapless per-conversation sequence numbers.

use super::db::{Db, SqlContext};
use super::sql_limit;
use crate::domain::{
    Author, BotContext, Channel, Conversation, ConversationId, ConversationState, Customer,
    DeliveryState, Escalation, Message, MessageId, NewMessage, now_millis,
};
use crate::ports::{ConversationStore, EMPTY_CONVERSATION_TTL, WorkQueue};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use std::sync::Arc;

const CONVERSATION_COLUMNS: &str = "id, channel, customer, state, escalation_queue, \
     escalation_priority, escalation_reason, waiting_since, assignee, bot_misses, bot_seq, \
     last_seq, version, created_at, updated_at, bot_context";

const MESSAGE_COLUMNS: &str = "conversation_id, message_id, seq, author, agent_id, text, created_at, channel, delivery, \
     sentiment, quick_replies";

/// Conversations and their messages in the embedded database; also the agents' work queues
/// (a query over waiting conversations). Cheap to clone.
#[derive(Clone)]
pub struct SqliteConversationStore {
    db: Arc<Db>,
}

impl SqliteConversationStore {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ConversationStore for SqliteConversationStore {
    async fn create(&self, conversation: &Conversation) -> Result<Conversation> {
        let row = ConversationRow::encode(conversation)?;
        let id = conversation.id.clone();
        self.db
            .write("create conversation", move |tx| {
                // Purge conversations that lapsed without a message (this one included).
                tx.execute(
                    "DELETE FROM conversations WHERE last_seq = 0 AND created_at <= ?1",
                    params![lapse_cutoff()],
                )
                .context("purge lapsed conversations")?;
                tx.execute(
                    &format!(
                        "INSERT INTO conversations ({CONVERSATION_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                         ON CONFLICT (id) DO NOTHING"
                    ),
                    params![
                        row.id,
                        row.channel,
                        row.customer,
                        row.state,
                        row.escalation_queue,
                        row.escalation_priority,
                        row.escalation_reason,
                        row.waiting_since,
                        row.assignee,
                        row.bot_misses,
                        row.bot_seq,
                        row.last_seq,
                        row.version,
                        row.created_at,
                        row.updated_at,
                        row.bot_context,
                    ],
                )
                .context("insert conversation")?;
                read_conversation(tx, &id)?
                    .ok_or_else(|| Error::NotFound(format!("conversation {id}")))
            })
            .await
    }

    async fn get(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let id = id.clone();
        self.db
            .read("get conversation", move |conn| load_conversation(conn, &id))
            .await
    }

    async fn save(&self, conversation: &mut Conversation) -> Result<()> {
        let row = ConversationRow::encode(conversation)?;
        self.db
            .write("save conversation", move |tx| {
                let written = tx
                    .execute(
                        "UPDATE conversations SET
                             customer = ?3, state = ?4, escalation_queue = ?5,
                             escalation_priority = ?6, escalation_reason = ?7,
                             waiting_since = ?8, assignee = ?9, bot_misses = ?10,
                             bot_seq = ?11, updated_at = ?12, bot_context = ?13,
                             version = version + 1
                         WHERE id = ?1 AND version = ?2",
                        params![
                            row.id,
                            row.version,
                            row.customer,
                            row.state,
                            row.escalation_queue,
                            row.escalation_priority,
                            row.escalation_reason,
                            row.waiting_since,
                            row.assignee,
                            row.bot_misses,
                            row.bot_seq,
                            row.updated_at,
                            row.bot_context,
                        ],
                    )
                    .context("update conversation")?;
                if written == 1 {
                    return Ok(());
                }
                let exists = tx
                    .query_row(
                        "SELECT 1 FROM conversations WHERE id = ?1",
                        params![row.id],
                        |_| Ok(()),
                    )
                    .optional()
                    .context("check conversation")?
                    .is_some();
                Err(if exists {
                    Error::Conflict(format!(
                        "conversation {} changed since version {}",
                        row.id, row.version
                    ))
                } else {
                    Error::NotFound(format!("conversation {}", row.id))
                })
            })
            .await?;
        conversation.version += 1;
        Ok(())
    }

    async fn append(&self, id: &ConversationId, message: NewMessage) -> Result<(Message, bool)> {
        let id = id.clone();
        self.db
            .write("append message", move |tx| {
                if let Some(stored) = load_message(tx, &id, &message.message_id)? {
                    return Ok((stored, false));
                }
                let (channel, last_seq): (String, u64) = tx
                    .query_row(
                        "SELECT channel, last_seq FROM conversations
                         WHERE id = ?1 AND NOT (last_seq = 0 AND created_at <= ?2)",
                        params![id.as_str(), lapse_cutoff()],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .context("read conversation sequence")?
                    .ok_or_else(|| Error::NotFound(format!("conversation {id}")))?;
                let stored = Message {
                    conversation_id: id.clone(),
                    message_id: message.message_id,
                    seq: last_seq + 1,
                    author: message.author,
                    agent_id: message.agent_id,
                    text: message.text,
                    created_at: message.created_at,
                    channel: parse_channel(&channel)?,
                    delivery: DeliveryState::Pending,
                    sentiment: message.sentiment,
                    quick_replies: message.quick_replies,
                };
                let quick_replies = match stored.quick_replies.as_slice() {
                    [] => None,
                    replies => Some(encode_json("quick replies", &replies)?),
                };
                tx.execute(
                    &format!(
                        "INSERT INTO messages ({MESSAGE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        stored.conversation_id.as_str(),
                        stored.message_id.as_str(),
                        stored.seq,
                        stored.author.as_str(),
                        stored.agent_id,
                        stored.text,
                        stored.created_at,
                        channel,
                        encode_json("delivery state", &stored.delivery)?,
                        stored.sentiment,
                        quick_replies,
                    ],
                )
                .context("insert message")?;
                tx.execute(
                    "UPDATE conversations SET last_seq = ?2 WHERE id = ?1",
                    params![id.as_str(), stored.seq],
                )
                .context("advance conversation sequence")?;
                Ok((stored, true))
            })
            .await
    }

    async fn messages(
        &self,
        id: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let id = id.clone();
        self.db
            .read("list messages", move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages
                         WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                    ))
                    .context("list messages")?;
                let rows = stmt
                    .query_map(
                        params![id.as_str(), after, sql_limit(limit)],
                        MessageRow::read,
                    )
                    .context("list messages")?;
                rows.map(|row| row.context("read message")?.decode())
                    .collect()
            })
            .await
    }

    async fn find_message(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
    ) -> Result<Option<Message>> {
        let (id, message_id) = (id.clone(), message_id.clone());
        self.db
            .read("find message", move |conn| {
                load_message(conn, &id, &message_id)
            })
            .await
    }

    async fn set_delivery(
        &self,
        id: &ConversationId,
        message_id: &MessageId,
        state: DeliveryState,
    ) -> Result<()> {
        let (id, message_id) = (id.clone(), message_id.clone());
        let state = encode_json("delivery state", &state)?;
        self.db
            .write("set delivery state", move |tx| {
                let written = tx
                    .execute(
                        "UPDATE messages SET delivery = ?3
                         WHERE conversation_id = ?1 AND message_id = ?2",
                        params![id.as_str(), message_id.as_str(), state],
                    )
                    .context("update delivery state")?;
                if written == 0 {
                    return Err(Error::NotFound(format!("message {message_id} in {id}")));
                }
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl WorkQueue for SqliteConversationStore {
    async fn waiting(&self, queue: &str, limit: usize) -> Result<Vec<Conversation>> {
        let queue = queue.to_owned();
        self.db
            .read("list waiting conversations", move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {CONVERSATION_COLUMNS} FROM conversations
                         WHERE state = 'waiting' AND escalation_queue = ?1
                         ORDER BY escalation_priority DESC, waiting_since ASC, id
                         LIMIT ?2"
                    ))
                    .context("list waiting conversations")?;
                let rows = stmt
                    .query_map(params![queue, sql_limit(limit)], ConversationRow::read)
                    .context("list waiting conversations")?;
                rows.map(|row| row.context("read conversation")?.decode())
                    .collect()
            })
            .await
    }
}

/// The conversation, unless it lapsed without a message.
fn load_conversation(conn: &Connection, id: &ConversationId) -> Result<Option<Conversation>> {
    Ok(read_conversation(conn, id)?.filter(|c| !c.lapsed(now_millis())))
}

/// The stored row, lapsed or not.
fn read_conversation(conn: &Connection, id: &ConversationId) -> Result<Option<Conversation>> {
    conn.query_row(
        &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1"),
        params![id.as_str()],
        ConversationRow::read,
    )
    .optional()
    .context("read conversation")?
    .map(ConversationRow::decode)
    .transpose()
}

/// Conversations without messages created at or before this have lapsed.
fn lapse_cutoff() -> i64 {
    now_millis().saturating_sub(super::millis(EMPTY_CONVERSATION_TTL))
}

fn load_message(
    conn: &Connection,
    id: &ConversationId,
    message_id: &MessageId,
) -> Result<Option<Message>> {
    conn.query_row(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND message_id = ?2"
        ),
        params![id.as_str(), message_id.as_str()],
        MessageRow::read,
    )
    .optional()
    .context("read message")?
    .map(MessageRow::decode)
    .transpose()
}

/// A conversation as stored: plain column values, in [`CONVERSATION_COLUMNS`] order.
struct ConversationRow {
    id: String,
    channel: String,
    customer: String,
    state: String,
    escalation_queue: Option<String>,
    escalation_priority: Option<u8>,
    escalation_reason: Option<String>,
    waiting_since: Option<i64>,
    assignee: Option<String>,
    bot_misses: u32,
    bot_seq: u64,
    last_seq: u64,
    version: u64,
    created_at: i64,
    updated_at: i64,
    bot_context: Option<String>, // JSON
}

impl ConversationRow {
    fn encode(c: &Conversation) -> Result<Self> {
        Ok(Self {
            id: c.id.as_str().to_owned(),
            channel: c.channel.as_str().to_owned(),
            customer: encode_json("customer", &c.customer)?,
            state: c.state.as_str().to_owned(),
            escalation_queue: c.escalation.as_ref().map(|e| e.queue.clone()),
            escalation_priority: c.escalation.as_ref().map(|e| e.priority),
            escalation_reason: c.escalation.as_ref().map(|e| e.reason.clone()),
            waiting_since: c.waiting_since,
            assignee: c.assignee.clone(),
            bot_misses: c.bot_misses,
            bot_seq: c.bot_seq,
            last_seq: c.last_seq,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            bot_context: c
                .bot_context
                .as_ref()
                .map(|context| encode_json("bot context", context))
                .transpose()?,
        })
    }

    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            channel: row.get(1)?,
            customer: row.get(2)?,
            state: row.get(3)?,
            escalation_queue: row.get(4)?,
            escalation_priority: row.get(5)?,
            escalation_reason: row.get(6)?,
            waiting_since: row.get(7)?,
            assignee: row.get(8)?,
            bot_misses: row.get(9)?,
            bot_seq: row.get(10)?,
            last_seq: row.get(11)?,
            version: row.get(12)?,
            created_at: row.get(13)?,
            updated_at: row.get(14)?,
            bot_context: row.get(15)?,
        })
    }

    fn decode(self) -> Result<Conversation> {
        let escalation = match (
            self.escalation_queue,
            self.escalation_priority,
            self.escalation_reason,
        ) {
            (Some(queue), Some(priority), Some(reason)) => Some(Escalation {
                queue,
                priority,
                reason,
            }),
            (None, None, None) => None,
            _ => {
                return Err(Error::Corrupt(format!(
                    "conversation {} has a partial escalation",
                    self.id
                )));
            }
        };
        Ok(Conversation {
            id: parse_conversation_id(&self.id)?,
            channel: parse_channel(&self.channel)?,
            customer: decode_json::<Customer>("customer", &self.customer)?,
            state: ConversationState::parse(&self.state)?,
            escalation,
            waiting_since: self.waiting_since,
            assignee: self.assignee,
            bot_misses: self.bot_misses,
            bot_seq: self.bot_seq,
            bot_context: self
                .bot_context
                .as_deref()
                .map(|json| decode_json::<BotContext>("bot context", json))
                .transpose()?,
            last_seq: self.last_seq,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A message as stored, in [`MESSAGE_COLUMNS`] order.
struct MessageRow {
    conversation_id: String,
    message_id: String,
    seq: u64,
    author: String,
    agent_id: Option<String>,
    text: String,
    created_at: i64,
    channel: String,
    delivery: String,
    sentiment: Option<f32>,
    quick_replies: Option<String>,
}

impl MessageRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            conversation_id: row.get(0)?,
            message_id: row.get(1)?,
            seq: row.get(2)?,
            author: row.get(3)?,
            agent_id: row.get(4)?,
            text: row.get(5)?,
            created_at: row.get(6)?,
            channel: row.get(7)?,
            delivery: row.get(8)?,
            sentiment: row.get(9)?,
            quick_replies: row.get(10)?,
        })
    }

    fn decode(self) -> Result<Message> {
        Ok(Message {
            conversation_id: parse_conversation_id(&self.conversation_id)?,
            message_id: MessageId::parse(&self.message_id)
                .map_err(|_| Error::Corrupt(format!("stored message id {:?}", self.message_id)))?,
            seq: self.seq,
            author: Author::parse(&self.author)?,
            agent_id: self.agent_id,
            text: self.text,
            created_at: self.created_at,
            channel: parse_channel(&self.channel)?,
            delivery: decode_json("delivery state", &self.delivery)?,
            sentiment: self.sentiment,
            quick_replies: match &self.quick_replies {
                Some(json) => decode_json("quick replies", json)?,
                None => Vec::new(),
            },
        })
    }
}

fn parse_conversation_id(s: &str) -> Result<ConversationId> {
    ConversationId::parse(s).map_err(|_| Error::Corrupt(format!("stored conversation id {s:?}")))
}

/// Parses a channel's lowercase name through its serde representation, so a new channel
/// needs no change here.
fn parse_channel(s: &str) -> Result<Channel> {
    let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        s.into_deserializer();
    Channel::deserialize(name).map_err(|_| Error::Corrupt(format!("unknown channel {s:?}")))
}

fn encode_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::backend(format!("encode {what}"), e))
}

fn decode_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("stored {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_name_parses_back() {
        for channel in [Channel::Web, Channel::Wechat, Channel::Sms, Channel::Email] {
            assert_eq!(parse_channel(channel.as_str()).unwrap(), channel);
        }
        assert!(matches!(parse_channel("fax"), Err(Error::Corrupt(_))));
    }
}
