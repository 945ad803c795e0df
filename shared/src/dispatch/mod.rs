//! The dispatcher: takes replies off the outbound queue, records them in the conversation
//! (idempotent by message id, so a redelivered reply is stored once), delivers them on the
//! customer's channel and records the delivery state agents see.

use crate::domain::{Channel, DeliveryState, NewMessage, OutboundMessage};
use crate::ports::ConversationStore;
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a channel did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (timeouts, 5xx, throttling): the message is redelivered.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work (closed window, invalid recipient): recorded on the message.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Delivers messages on one channel.
#[async_trait]
pub trait ChannelSender: Send + Sync {
    /// Sends `message` to its recipient.
    async fn send(&self, message: &OutboundMessage) -> Result<(), SendError>;
}

/// The web channel: the widget polls the conversation, so a stored message is delivered.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebSender;

#[async_trait]
impl ChannelSender for WebSender {
    async fn send(&self, _message: &OutboundMessage) -> Result<(), SendError> {
        Ok(())
    }
}

/// Delivers outbound messages; see the module docs.
pub struct Dispatcher {
    store: Arc<dyn ConversationStore>,
    senders: HashMap<Channel, Arc<dyn ChannelSender>>,
}

impl Dispatcher {
    /// A dispatcher with the web channel; add others with [`Dispatcher::with_sender`].
    pub fn new(store: Arc<dyn ConversationStore>) -> Self {
        let mut senders: HashMap<Channel, Arc<dyn ChannelSender>> = HashMap::new();
        senders.insert(Channel::Web, Arc::new(WebSender));
        Self { store, senders }
    }

    /// Delivers `channel` messages through `sender`.
    pub fn with_sender(mut self, channel: Channel, sender: Arc<dyn ChannelSender>) -> Self {
        self.senders.insert(channel, sender);
        self
    }

    /// Handles one queue body. `Err` means "redeliver later" (a transient failure or a
    /// backend error); permanent delivery failures are recorded and return `Ok`.
    #[tracing::instrument(skip_all, fields(conversation, message_id))]
    pub async fn handle(&self, body: &str) -> Result<()> {
        let message = OutboundMessage::from_json(body)?;
        let span = tracing::Span::current();
        span.record(
            "conversation",
            tracing::field::display(&message.conversation_id),
        );
        span.record("message_id", tracing::field::display(&message.message_id));

        let (stored, _) = self
            .store
            .append(
                &message.conversation_id,
                NewMessage {
                    message_id: message.message_id.clone(),
                    author: message.author,
                    agent_id: message.agent_id.clone(),
                    text: message.text.clone(),
                    created_at: message.created_at,
                    sentiment: None,
                    quick_replies: message.quick_replies.clone(),
                },
            )
            .await?;
        if stored.delivery != DeliveryState::Pending {
            tracing::info!("already delivered; skipping");
            return Ok(());
        }
        let state = match self.senders.get(&message.channel) {
            None => DeliveryState::Failed(format!("channel {} is not configured", message.channel)),
            Some(sender) => match sender.send(&message).await {
                Ok(()) => DeliveryState::Delivered,
                Err(SendError::Permanent(reason)) => DeliveryState::Failed(reason),
                Err(SendError::Transient(reason)) => {
                    return Err(Error::backend(
                        format!("delivering on {}", message.channel),
                        anyhow::anyhow!(reason),
                    ));
                }
            },
        };
        if let DeliveryState::Failed(reason) = &state {
            tracing::warn!(%reason, "not delivered");
        }
        self.store
            .set_delivery(&message.conversation_id, &message.message_id, state)
            .await
    }
}
