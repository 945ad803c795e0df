use super::{Channel, ConversationId, MessageId, Millis};
use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// A human agent (see [`Message::agent_id`]).
    Agent,
    /// kefu itself: handoff notices, state changes.
    System,
}

impl Author {
    /// The lowercase name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Bot => "bot",
            Author::Agent => "agent",
            Author::System => "system",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "customer" => Ok(Author::Customer),
            "bot" => Ok(Author::Bot),
            "agent" => Ok(Author::Agent),
            "system" => Ok(Author::System),
            other => Err(crate::Error::Corrupt(format!("unknown author {other}"))),
        }
    }
}

/// Delivery state of an outgoing message on its channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum DeliveryState {
    /// Not applicable (customer messages) or not yet attempted.
    #[default]
    Pending,
    /// Handed to the channel.
    Delivered,
    /// The channel refused it for good; the reason is shown to agents.
    Failed(String),
}

/// A message to append to a conversation; the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Idempotency key: appending the same id twice stores it once.
    pub message_id: MessageId,
    /// Who wrote it.
    pub author: Author,
    /// The agent, when `author` is [`Author::Agent`].
    pub agent_id: Option<String>,
    /// The text.
    pub text: String,
    /// When it was written.
    pub created_at: Millis,
    /// Sentiment of a customer message, −1 (angry) … 1 (happy); `None` when not scored.
    pub sentiment: Option<f32>,
    /// One-tap follow-up questions offered with a bot answer (see [`crate::render`]).
    pub quick_replies: Vec<String>,
}

/// A message stored in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Its id.
    pub message_id: MessageId,
    /// Position in the conversation: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Who wrote it.
    pub author: Author,
    /// The agent, when written by one.
    pub agent_id: Option<String>,
    /// The text.
    pub text: String,
    /// When it was written.
    pub created_at: Millis,
    /// The channel it belongs to.
    pub channel: Channel,
    /// Delivery state (outgoing messages).
    pub delivery: DeliveryState,
    /// Sentiment of a customer message, −1 … 1, when scored.
    pub sentiment: Option<f32>,
    /// One-tap follow-up questions offered with it (bot answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}
