//! Messaging channels other than the web widget: WeChat, SMS and email.
//!
//! Each channel has an *ingress* (the platform's webhook: verify the signature, parse the
//! body strictly, normalise it into an [`InboundMessage`] and enqueue it — nothing else, so
//! the platform gets its answer within its deadline) and an *egress* (a
//! [`crate::ports::ChannelSender`] the dispatcher delivers replies with).
//!
//! Exactly-once comes from the ids: a message's id is derived from the platform's own id
//! ([`MessageId::for_inbound`]), so a platform retry enqueues the same id again — dropped by
//! the FIFO queue's deduplication window, and after it by the store's idempotent append and
//! the bot's `bot_seq`.

pub mod email;
pub mod sms;
pub mod wechat;

use crate::domain::{
    Channel, ConversationKey, Customer, InboundMessage, MessageId, Millis, SCHEMA_VERSION,
    clean_text, clean_text_truncated,
};
use crate::http::ApiError;
use crate::ports::{MessageQueue, send_inbound};
use axum::Router;
use axum::response::IntoResponse;

/// A customer message as a platform delivered it, before it becomes an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The channel it came on.
    pub channel: Channel,
    /// The customer's address: OpenID, E.164 number, email address.
    pub address: String,
    /// The customer's display name, when the platform gives one.
    pub name: Option<String>,
    /// The platform's id of this message (`MsgId`, `MessageSid`, `Message-ID`, …): a
    /// redelivery carries the same one.
    pub platform_id: String,
    /// The text (for media, a description such as `[图片]`).
    pub text: String,
    /// When the platform received it.
    pub received_at: Millis,
}

impl Incoming {
    /// The envelope for the inbound queue. This is where every channel's text enters the
    /// domain: control characters and escape sequences are stripped, line ends become LF
    /// and the text is cut at [`crate::domain::MAX_TEXT_CHARS`] characters.
    pub fn into_envelope(self) -> InboundMessage {
        let key = ConversationKey::new(self.channel, self.address.clone());
        let conversation_id = key.conversation_id();
        InboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::for_inbound(&conversation_id, &self.platform_id),
            conversation_id,
            channel: self.channel,
            customer: Customer {
                address: self.address,
                name: self.name.as_deref().and_then(display_name),
                verified_id: None,
            },
            text: clean_text_truncated(&self.text),
            received_at: self.received_at,
        }
    }
}

/// Longest customer display name kept, in characters.
const MAX_NAME_CHARS: usize = 100;

/// A display name as the platform gave it, cleaned like text and cut; `None` when empty.
fn display_name(raw: &str) -> Option<String> {
    let name: String = clean_text(raw)
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Normalises and enqueues one customer message; returns the envelope sent.
/// `Error::Invalid` (nothing queued) for an address no customer of the channel can have
/// ([`ConversationKey::parse`]).
pub async fn enqueue(
    queue: &dyn MessageQueue,
    incoming: Incoming,
) -> crate::Result<InboundMessage> {
    ConversationKey::parse(incoming.channel, &incoming.address)?;
    let envelope = incoming.into_envelope();
    send_inbound(queue, &envelope).await?;
    Ok(envelope)
}

/// The channels the dispatcher can deliver on besides the web, as configured.
#[cfg(feature = "channels")]
pub struct Egress<'a> {
    /// The WeChat Official Account, when configured.
    pub wechat: Option<&'a wechat::WechatConfig>,
    /// The SMS providers: replies go through Twilio when it has a sending number.
    pub sms: &'a sms::SmsConfig,
    /// The SMS sender used when Twilio has no sending number (SNS in AWS).
    pub sms_fallback: Option<std::sync::Arc<dyn crate::ports::ChannelSender>>,
    /// The support mailbox and where its mail goes (SES in AWS, a Maildir or a relay
    /// locally).
    pub email: Option<(
        email::EmailConfig,
        std::sync::Arc<dyn crate::ports::MailTransport>,
    )>,
}

/// Adds the senders of the configured channels to `dispatcher`, each at its platform's
/// pace (sends per second per process: `KEFU_RATE_WECHAT`, default 20; `KEFU_RATE_SMS`,
/// default 1; `KEFU_RATE_EMAIL`, default 14, SES's default sending rate).
#[cfg(feature = "channels")]
pub fn senders(
    mut dispatcher: crate::dispatch::Dispatcher,
    egress: Egress<'_>,
    guard: &std::sync::Arc<dyn crate::ports::IdempotencyGuard>,
) -> crate::Result<crate::dispatch::Dispatcher> {
    use crate::dispatch::RateLimit;
    use crate::ports::ChannelSender;
    use std::sync::Arc;
    let rate = |name: &str, default: f64| -> crate::Result<Option<RateLimit>> {
        let per_second: f64 = crate::config::number(name, default)?;
        if per_second <= 0.0 {
            return Err(crate::Error::Config(format!("{name} must be above 0")));
        }
        Ok(Some(RateLimit {
            per_second,
            burst: per_second.ceil() as u32,
        }))
    };
    if let Some(config) = egress.wechat {
        let sender = wechat::WechatSender::new(config, guard.clone())?;
        let limit = rate("KEFU_RATE_WECHAT", 20.0)?;
        dispatcher = dispatcher.with_sender(Channel::Wechat, Arc::new(sender), limit);
    }
    // Twilio with a sending number; else the fallback (SNS) when there is one; else Twilio
    // answering from the number each customer wrote to.
    let twilio = |twilio: &sms::TwilioConfig| -> crate::Result<Arc<dyn ChannelSender>> {
        let sender: Arc<dyn ChannelSender> = Arc::new(sms::TwilioSender::new(
            twilio,
            &egress.sms.default_country,
            guard.clone(),
        )?);
        Ok(sender)
    };
    let sms_sender = match (&egress.sms.twilio, egress.sms_fallback) {
        (Some(config), _) if config.from.is_some() => Some(twilio(config)?),
        (_, Some(fallback)) => Some(fallback),
        (Some(config), None) => {
            tracing::warn!(
                "no SMS sending number is set (KEFU_TWILIO_FROM): replies go from the number each customer wrote to"
            );
            Some(twilio(config)?)
        }
        (None, None) => None,
    };
    if let Some(sender) = sms_sender {
        dispatcher = dispatcher.with_sender(Channel::Sms, sender, rate("KEFU_RATE_SMS", 1.0)?);
    }
    if let Some((config, transport)) = egress.email {
        let sender = email::EmailSender::new(transport, guard.clone(), config);
        let limit = rate("KEFU_RATE_EMAIL", 14.0)?;
        dispatcher = dispatcher.with_sender(Channel::Email, Arc::new(sender), limit);
    }
    Ok(dispatcher)
}

/// The routes of a channel whose secrets are not configured: every request gets a 404 that
/// says so (a channel is never open by default).
pub fn disabled(channel: Channel, settings: &'static str, paths: &[&str]) -> Router {
    let mut router = Router::new();
    for path in paths {
        router = router.route(
            path,
            axum::routing::any(move || async move {
                ApiError::not_found(format!(
                    "the {channel} channel is not configured (set {settings})"
                ))
                .into_response()
            }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(platform_id: &str) -> Incoming {
        Incoming {
            channel: Channel::Sms,
            address: "+8613800138000".into(),
            name: None,
            platform_id: platform_id.into(),
            text: "你好".into(),
            received_at: 1,
        }
    }

    #[test]
    fn given_the_same_platform_id_when_normalised_twice_then_the_message_id_is_the_same() {
        let first = incoming("SM1").into_envelope();
        let again = incoming("SM1").into_envelope();
        let other = incoming("SM2").into_envelope();
        assert_eq!(first.message_id, again.message_id);
        assert_ne!(first.message_id, other.message_id);
        assert_eq!(
            first.conversation_id,
            ConversationKey::new(Channel::Sms, "+8613800138000").conversation_id()
        );
    }

    #[test]
    fn given_control_characters_and_escapes_in_a_text_when_normalised_then_stripped_and_lines_end_in_lf()
     {
        let mut dirty = incoming("SM3");
        dirty.text = "a\u{0}b\u{1b}[31mred\u{1b}[0m\r\nnext\rline\tcol\u{7}\u{9b}2J\u{7f}".into();
        assert_eq!(dirty.into_envelope().text, "abred\nnext\nline\tcol");
    }
}
