use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Where a customer writes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The shop's web site chat widget.
    Web,
    /// WeChat Official Account.
    Wechat,
    /// SMS (Twilio, AWS End User Messaging, Aliyun).
    Sms,
    /// Email (SES).
    Email,
}

impl Channel {
    /// The lowercase name used in keys and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Wechat => "wechat",
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the conversation is with, on which channel: `wechat` + OpenID, `sms` + E.164 number,
/// `web` + session id. One key is one conversation (reopened when the customer comes back).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    channel: Channel,
    address: String,
}

impl ConversationKey {
    /// A key for `address` on `channel`.
    pub fn new(channel: Channel, address: impl Into<String>) -> Self {
        Self {
            channel,
            address: address.into(),
        }
    }

    /// The channel.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The customer's address on the channel.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The conversation id: a digest of the key, so it is stable, URL-safe and carries no
    /// personal data (phone numbers and emails never appear in ids, URLs or queue groups).
    pub fn conversation_id(&self) -> ConversationId {
        ConversationId(digest_id(
            'c',
            &format!("{}:{}", self.channel, self.address),
        ))
    }
}

/// A conversation id: `c` followed by 31 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConversationId(String);

impl ConversationId {
    /// Parses an id received from outside (URL path, token, queue body).
    pub fn parse(s: &str) -> crate::Result<Self> {
        if is_id(s, 'c') {
            Ok(Self(s.to_owned()))
        } else {
            Err(crate::Error::Invalid(format!(
                "malformed conversation id {:?}",
                s.chars().take(40).collect::<String>()
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConversationId {
    type Error = crate::Error;
    fn try_from(s: String) -> crate::Result<Self> {
        Self::parse(&s)
    }
}

impl From<ConversationId> for String {
    fn from(id: ConversationId) -> String {
        id.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message id, unique across the system. Derived deterministically from the platform's
/// own id (or the web client's id) so that every retry of one message maps to one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    /// The id of a message that arrived on `channel` with the platform id `platform_id`,
    /// scoped to its conversation.
    pub fn for_inbound(conversation: &ConversationId, platform_id: &str) -> Self {
        Self(digest_id('m', &format!("in:{conversation}:{platform_id}")))
    }

    /// The id of the reply produced for `inbound` (one reply per inbound message at most).
    pub fn reply_to(inbound: &MessageId) -> Self {
        Self(digest_id('m', &format!("reply:{inbound}")))
    }

    /// The id of the system note recorded beside `inbound` (at most one per message).
    pub fn note_for(inbound: &MessageId) -> Self {
        Self(digest_id('m', &format!("note:{inbound}")))
    }

    /// A fresh random id (agent messages, system notices).
    pub fn random() -> Self {
        Self(format!(
            "m{}",
            &uuid::Uuid::now_v7().simple().to_string()[..31]
        ))
    }

    /// Parses an id received from outside.
    pub fn parse(s: &str) -> crate::Result<Self> {
        if is_id(s, 'm') {
            Ok(Self(s.to_owned()))
        } else {
            Err(crate::Error::Invalid("malformed message id".into()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageId {
    type Error = crate::Error;
    fn try_from(s: String) -> crate::Result<Self> {
        Self::parse(&s)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Our ids: a one-letter kind followed by 31 lowercase hex digits.
fn is_id(s: &str, kind: char) -> bool {
    s.len() == 32
        && s.starts_with(kind)
        && s[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<kind>` followed by the first 31 hex digits of `sha256(input)`.
fn digest_id(kind: char, input: &str) -> String {
    format!(
        "{kind}{}",
        &hex::encode(Sha256::digest(input.as_bytes()))[..31]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_id_is_stable_and_hides_the_address() {
        let key = ConversationKey::new(Channel::Sms, "+8613800138000");
        let id = key.conversation_id();
        assert_eq!(
            id,
            ConversationKey::new(Channel::Sms, "+8613800138000").conversation_id()
        );
        assert_ne!(
            id,
            ConversationKey::new(Channel::Web, "+8613800138000").conversation_id()
        );
        assert!(!id.as_str().contains("138"));
        assert_eq!(ConversationId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn ids_reject_garbage() {
        assert!(ConversationId::parse("c123").is_err());
        assert!(ConversationId::parse("../../etc/passwd").is_err());
        assert!(MessageId::parse("mZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
    }

    #[test]
    fn message_ids_are_deterministic_per_platform_id() {
        let c = ConversationKey::new(Channel::Web, "s1").conversation_id();
        assert_eq!(
            MessageId::for_inbound(&c, "x"),
            MessageId::for_inbound(&c, "x")
        );
        assert_ne!(
            MessageId::for_inbound(&c, "x"),
            MessageId::for_inbound(&c, "y")
        );
        let m = MessageId::for_inbound(&c, "x");
        assert_ne!(MessageId::reply_to(&m), m);
        assert!(MessageId::parse(MessageId::random().as_str()).is_ok());
    }
}
