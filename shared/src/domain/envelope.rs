//! Versioned envelopes carried by the inbound and outbound queues.

use super::{Author, Channel, ConversationId, Customer, MessageId, Millis};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The envelope schema version written by this build. Readers reject other versions
/// loudly (into the DLQ) instead of misreading them.
pub const SCHEMA_VERSION: u16 = 1;

/// A customer message, normalised from any channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundMessage {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u16,
    /// Idempotency key (derived from the platform's message id).
    pub message_id: MessageId,
    /// The conversation (also the FIFO group).
    pub conversation_id: ConversationId,
    /// The channel.
    pub channel: Channel,
    /// The customer.
    pub customer: Customer,
    /// The text (for non-text messages, a description).
    pub text: String,
    /// When the platform received it.
    pub received_at: Millis,
}

/// A reply on its way to the customer's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundMessage {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u16,
    /// Idempotency key.
    pub message_id: MessageId,
    /// The conversation (also the FIFO group).
    pub conversation_id: ConversationId,
    /// The channel to deliver on.
    pub channel: Channel,
    /// The customer's address on the channel.
    pub recipient: String,
    /// Who wrote it.
    pub author: Author,
    /// The agent, when written by one.
    pub agent_id: Option<String>,
    /// The text; links and variables as in [`crate::render`] (variables already filled).
    pub text: String,
    /// One-tap follow-up questions; each channel shows them as it can.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    /// The customer message it answers, if any.
    pub in_reply_to: Option<MessageId>,
    /// When it was written.
    pub created_at: Millis,
}

macro_rules! codec {
    ($t:ty) => {
        impl $t {
            /// Serialises for a queue body.
            pub fn to_json(&self) -> String {
                serde_json::to_string(self).expect("envelope serialises")
            }

            /// Parses a queue body, rejecting unknown schema versions.
            pub fn from_json(body: &str) -> Result<Self> {
                let v: Self = serde_json::from_str(body)
                    .map_err(|e| Error::Corrupt(format!("{}: {e}", stringify!($t))))?;
                if v.schema != SCHEMA_VERSION {
                    return Err(Error::Corrupt(format!(
                        "{} schema {} is not supported (expected {SCHEMA_VERSION})",
                        stringify!($t),
                        v.schema
                    )));
                }
                Ok(v)
            }
        }
    };
}
codec!(InboundMessage);
codec!(OutboundMessage);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConversationKey;

    fn inbound() -> InboundMessage {
        let c = ConversationKey::new(Channel::Web, "s").conversation_id();
        InboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::for_inbound(&c, "1"),
            conversation_id: c,
            channel: Channel::Web,
            customer: Customer::default(),
            text: "你好".into(),
            received_at: 5,
        }
    }

    #[test]
    fn round_trips() {
        let m = inbound();
        assert_eq!(InboundMessage::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn rejects_other_schema_versions_and_unknown_fields() {
        let mut m = inbound();
        m.schema = 2;
        assert!(InboundMessage::from_json(&m.to_json()).is_err());
        let mut v: serde_json::Value = serde_json::from_str(&inbound().to_json()).unwrap();
        v["surprise"] = 1.into();
        assert!(InboundMessage::from_json(&v.to_string()).is_err());
    }
}
