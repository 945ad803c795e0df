use super::ids::derive as digest_id;
use serde::{Deserialize, Serialize};
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

    /// A key for an address a platform delivered: `Error::Invalid` when it is empty, longer
    /// than any such address, or has characters none has (see [`max_address_chars`]).
    pub fn parse(channel: Channel, address: &str) -> crate::Result<Self> {
        let max = max_address_chars(channel);
        let chars = address.chars().count();
        let well_formed = match channel {
            // OpenIDs are 28 characters of base64url.
            Channel::Wechat => address
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            Channel::Sms => {
                address.len() > 1
                    && address.starts_with('+')
                    && address[1..].bytes().all(|b| b.is_ascii_digit())
            }
            Channel::Email => address.contains('@') && !address.chars().any(char::is_whitespace),
            Channel::Web => !address.chars().any(char::is_control),
        };
        if (1..=max).contains(&chars) && well_formed {
            Ok(Self::new(channel, address))
        } else {
            Err(crate::Error::Invalid(format!(
                "malformed {channel} address ({chars} characters; at most {max})"
            )))
        }
    }

    /// The conversation id: an HMAC of the key under the deployment's `KEFU_ID_SECRET`, so
    /// it is stable, URL-safe, carries no personal data (phone numbers and emails never
    /// appear in ids, URLs or queue groups) and cannot be recomputed from an address
    /// without the secret.
    pub fn conversation_id(&self) -> ConversationId {
        ConversationId(digest_id(
            'c',
            &format!("{}:{}", self.channel, self.address),
        ))
    }
}

/// The longest address a customer can have on `channel`, in characters: an OpenID (28 in
/// practice), an E.164 number with `+`, an email address (RFC 5321), a web visitor or shop
/// customer id with its prefix.
pub fn max_address_chars(channel: Channel) -> usize {
    match channel {
        Channel::Wechat => 64,
        Channel::Sms => 16,
        Channel::Email => 254,
        Channel::Web => 160,
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

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
    fn given_a_phone_number_when_its_conversation_id_is_derived_then_an_unkeyed_digest_does_not_recompute_it()
     {
        let id = ConversationKey::new(Channel::Sms, "+8613800138000").conversation_id();
        let unkeyed = format!(
            "c{}",
            &hex::encode(Sha256::digest(b"sms:+8613800138000"))[..31]
        );
        assert_ne!(id.as_str(), unkeyed, "anyone could enumerate phone numbers");
        let message = MessageId::for_inbound(&id, "SM1");
        let unkeyed = format!(
            "m{}",
            &hex::encode(Sha256::digest(format!("in:{id}:SM1").as_bytes()))[..31]
        );
        assert_ne!(message.as_str(), unkeyed);
    }

    #[test]
    fn given_an_id_under_another_deployments_key_then_it_differs_and_under_one_key_it_is_stable() {
        let key = ConversationKey::new(Channel::Sms, "+8613800138000");
        let here = key.conversation_id();
        let elsewhere = super::super::ids::derive_with(
            b"another-deployment-id-secret",
            'c',
            "sms:+8613800138000",
        );
        assert_ne!(here.as_str(), elsewhere);
        assert_eq!(key.conversation_id(), here);
    }

    #[test]
    fn given_platform_addresses_when_parsed_then_bounded_per_channel() {
        let ok = [
            (Channel::Wechat, "oKefuCustomer0001_-x"),
            (Channel::Sms, "+8613800138000"),
            (Channel::Email, "li.wei@example.com"),
            (Channel::Web, "u:shop customer 42"),
        ];
        for (channel, address) in ok {
            assert!(
                ConversationKey::parse(channel, address).is_ok(),
                "{address}"
            );
        }
        let bad = [
            (Channel::Wechat, "o".repeat(10 * 1024)),
            (Channel::Wechat, "o<script>".into()),
            (Channel::Wechat, String::new()),
            (Channel::Sms, "+86138001380001234".into()),
            (Channel::Sms, "13800138000".into()),
            (Channel::Email, format!("{}@example.com", "a".repeat(250))),
            (Channel::Email, "no-at-sign".into()),
            (Channel::Web, "v:".to_owned() + &"x".repeat(200)),
            (Channel::Web, "v:\u{0}".into()),
        ];
        for (channel, address) in bad {
            assert!(
                matches!(
                    ConversationKey::parse(channel, &address),
                    Err(crate::Error::Invalid(_))
                ),
                "{address:.40}"
            );
        }
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
