//! The bot's message handler: one inbound customer message in, at most one reply out.
//!
//! Exactly-once effect without transactions across services: the customer message is
//! appended idempotently (by message id), the reply's id is derived from the inbound id
//! (so a redelivery produces the same reply, which the outbound queue and the dispatcher
//! deduplicate), and the conversation's `bot_seq` records which messages the bot has acted
//! on. The reply is enqueued *before* `bot_seq` is saved: a crash in between redelivers the
//! message and re-sends the same reply id instead of losing it.

use crate::bot::intent::wants_human;
use crate::bot::library::FaqLibrary;
use crate::bot::matcher::Decision;
use crate::domain::{
    Author, Conversation, ConversationKey, Escalation, InboundMessage, MessageId, NewMessage,
    OutboundMessage, SCHEMA_VERSION, now_millis,
};
use crate::ports::{BlobStore, ConversationStore, MessageQueue, send_outbound};
use crate::{Error, Result};
use std::sync::Arc;

/// Escalation policy knobs.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Queue that receives escalations.
    pub default_queue: String,
    /// Priority given to escalations (0–9).
    pub priority: u8,
    /// Consecutive unanswered messages before handing off.
    pub escalate_after_misses: u32,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            default_queue: "general".into(),
            priority: 5,
            escalate_after_misses: 2,
        }
    }
}

/// What the bot decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A human owns the conversation: record only.
    Silent,
    /// Reply from the FAQ.
    Answer { entry_id: String, text: String },
    /// Nothing confident: ask again.
    Retry { text: String },
    /// Hand off with a reason.
    Escalate { reason: &'static str, text: String },
}

/// The bot: handles inbound queue bodies.
pub struct Bot {
    store: Arc<dyn ConversationStore>,
    outbound: Arc<dyn MessageQueue>,
    faq: Arc<FaqLibrary>,
    blobs: Arc<dyn BlobStore>,
    config: BotConfig,
}

impl Bot {
    /// A bot over its ports.
    pub fn new(
        store: Arc<dyn ConversationStore>,
        outbound: Arc<dyn MessageQueue>,
        faq: Arc<FaqLibrary>,
        blobs: Arc<dyn BlobStore>,
        config: BotConfig,
    ) -> Self {
        Self {
            store,
            outbound,
            faq,
            blobs,
            config,
        }
    }

    /// Handles one inbound queue body. `Err` means "redeliver"; handling again is safe.
    #[tracing::instrument(skip_all, fields(conversation, message_id))]
    pub async fn handle(&self, body: &str) -> Result<()> {
        let inbound = InboundMessage::from_json(body)?;
        let span = tracing::Span::current();
        span.record(
            "conversation",
            tracing::field::display(&inbound.conversation_id),
        );
        span.record("message_id", tracing::field::display(&inbound.message_id));

        self.faq.refresh_if_due(self.blobs.as_ref()).await;
        let mut conversation = self.conversation_for(&inbound).await?;
        let (message, _) = self
            .store
            .append(
                &inbound.conversation_id,
                NewMessage {
                    message_id: inbound.message_id.clone(),
                    author: Author::Customer,
                    agent_id: None,
                    text: inbound.text.clone(),
                    created_at: inbound.received_at,
                    sentiment: None,
                },
            )
            .await?;

        loop {
            if message.seq <= conversation.bot_seq {
                tracing::info!("already handled");
                return Ok(());
            }
            let now = now_millis();
            conversation.reopen(now);
            let outcome = self.decide(&conversation, &inbound.text);
            match &outcome {
                Outcome::Answer { entry_id, .. } => tracing::info!(entry = %entry_id, "answer"),
                other => tracing::info!(outcome = other.label(), "decided"),
            }
            if let Some(text) = outcome.reply() {
                send_outbound(self.outbound.as_ref(), &self.reply(&inbound, text)).await?;
            }
            self.apply(&mut conversation, &outcome, now)?;
            conversation.bot_seq = message.seq;
            match self.store.save(&mut conversation).await {
                Ok(()) => return Ok(()),
                // An agent claimed or changed it meanwhile: decide again on fresh state.
                Err(Error::Conflict(_)) => {
                    conversation = self.fetch(&inbound).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn conversation_for(&self, inbound: &InboundMessage) -> Result<Conversation> {
        if let Some(existing) = self.store.get(&inbound.conversation_id).await? {
            return Ok(existing);
        }
        let key = ConversationKey::new(inbound.channel, inbound.customer.address.clone());
        if key.conversation_id() != inbound.conversation_id {
            return Err(Error::Corrupt(
                "conversation id does not match the customer's address".into(),
            ));
        }
        let fresh = Conversation::new(&key, inbound.customer.clone(), now_millis());
        self.store.create(&fresh).await
    }

    async fn fetch(&self, inbound: &InboundMessage) -> Result<Conversation> {
        self.store
            .get(&inbound.conversation_id)
            .await?
            .ok_or_else(|| Error::NotFound("conversation".into()))
    }

    fn decide(&self, conversation: &Conversation, text: &str) -> Outcome {
        if conversation.human_owned() {
            return Outcome::Silent;
        }
        let zh = is_chinese(text);
        if wants_human(text) {
            return Outcome::Escalate {
                reason: "customer_request",
                text: handoff_notice(zh),
            };
        }
        let decision = self.faq.current().map(|index| index.answer(text));
        match decision {
            Some(Decision::Answer(found)) => Outcome::Answer {
                entry_id: found.entry_id,
                text: found.answer,
            },
            _ if conversation.bot_misses + 1 >= self.config.escalate_after_misses => {
                Outcome::Escalate {
                    reason: "no_answer",
                    text: handoff_notice(zh),
                }
            }
            _ => Outcome::Retry {
                text: if zh {
                    "抱歉，我没有理解您的问题，能换个说法吗？也可以回复“人工”转人工客服。".into()
                } else {
                    "Sorry, I didn't quite get that. Could you rephrase it? You can also type \"agent\" to reach a person.".into()
                },
            },
        }
    }

    fn apply(&self, conversation: &mut Conversation, outcome: &Outcome, now: i64) -> Result<()> {
        match outcome {
            Outcome::Silent => {}
            Outcome::Answer { .. } => conversation.bot_misses = 0,
            Outcome::Retry { .. } => conversation.bot_misses += 1,
            Outcome::Escalate { reason, .. } => conversation.escalate(
                Escalation {
                    queue: self.config.default_queue.clone(),
                    priority: self.config.priority,
                    reason: (*reason).to_owned(),
                },
                now,
            )?,
        }
        Ok(())
    }

    fn reply(&self, inbound: &InboundMessage, text: &str) -> OutboundMessage {
        OutboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::reply_to(&inbound.message_id),
            conversation_id: inbound.conversation_id.clone(),
            channel: inbound.channel,
            recipient: inbound.customer.address.clone(),
            author: Author::Bot,
            agent_id: None,
            text: text.to_owned(),
            in_reply_to: Some(inbound.message_id.clone()),
            created_at: now_millis(),
        }
    }
}

impl Outcome {
    fn reply(&self) -> Option<&str> {
        match self {
            Outcome::Silent => None,
            Outcome::Answer { text, .. }
            | Outcome::Retry { text }
            | Outcome::Escalate { text, .. } => Some(text),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Silent => "silent",
            Outcome::Answer { .. } => "answer",
            Outcome::Retry { .. } => "retry",
            Outcome::Escalate { .. } => "escalate",
        }
    }
}

/// Whether to answer in Chinese: any CJK ideograph in the customer's text.
fn is_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

fn handoff_notice(zh: bool) -> String {
    if zh {
        "正在为您转接人工客服，请稍候…".into()
    } else {
        "Connecting you to a human agent, please hold on…".into()
    }
}
