//! The domain: channels, conversations, messages and the envelopes that travel on queues.
//! Pure data and rules; no I/O.

mod channel;
mod conversation;
mod envelope;
mod ids;
mod message;
mod order;
mod text;

pub use channel::{Channel, ConversationId, ConversationKey, MessageId, max_address_chars};
pub use conversation::{BotContext, Conversation, ConversationState, Customer, Escalation};
pub use envelope::{InboundMessage, OutboundMessage, SCHEMA_VERSION};
pub use ids::{MIN_ID_SECRET_BYTES, id_secret_installed, install_id_secret};
pub use message::{Author, DeliveryState, Message, NewMessage};
pub use order::{
    CancelOutcome, Order, OrderError, OrderItem, OrderOwner, OrderStatus, ReturnKind, ReturnTicket,
    TrackingEvent,
};
pub use text::{MAX_TEXT_CHARS, clean_text, clean_text_truncated};

/// Milliseconds since the Unix epoch: the one time representation stored everywhere.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Formats [`Millis`] as RFC 3339 (UTC, millisecond precision) for APIs.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
