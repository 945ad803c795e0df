//! The bot's message handler: one inbound customer message in, at most one reply out.
//!
//! Exactly-once effect without transactions across services: the customer message is
//! appended idempotently (by message id), the reply's id is derived from the inbound id
//! (so a redelivery produces the same reply, which the outbound queue and the dispatcher
//! deduplicate), and the conversation's `bot_seq` records which messages the bot has acted
//! on. The reply is enqueued *before* `bot_seq` is saved: a crash in between redelivers the
//! message and re-sends the same reply id instead of losing it.

use crate::bot::faq::FaqEntry;
use crate::bot::intent::wants_human;
use crate::bot::library::FaqLibrary;
use crate::bot::matcher::{Decision, Match, resolve_pick};
use crate::bot::policy::{EscalationDecision, EscalationPolicy, PolicyInput};
use crate::bot::sentiment;
use crate::bot::unanswered::{self, Unanswered};
use crate::domain::{
    Author, BotContext, Conversation, ConversationKey, Customer, InboundMessage, MessageId,
    NewMessage, OutboundMessage, SCHEMA_VERSION, now_millis,
};
use crate::flows::{FlowInput, Flows};
use crate::ports::{BlobStore, ConversationStore, MessageQueue, send_outbound};
use crate::render::{self, Variables};
use crate::{Error, Result};
use std::sync::Arc;

/// Where the bot sends conversations it hands off, and what its answers may say.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Queue that receives escalations.
    pub default_queue: String,
    /// The shop's name, for `{{shop_name}}` in answers.
    pub shop_name: Option<String>,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            default_queue: "general".into(),
            shop_name: None,
        }
    }
}

/// What the bot does with one customer message.
#[derive(Debug, Clone, Default)]
struct Turn {
    /// For logs: which path decided.
    label: &'static str,
    /// The reply, if any (none while a human owns the conversation).
    reply: Option<String>,
    /// One-tap follow-ups offered with the reply.
    quick_replies: Vec<String>,
    /// Hand the conversation to a person.
    escalation: Option<EscalationDecision>,
    /// The conversation's next `bot_context`.
    context: Option<BotContext>,
    /// Consecutive unanswered messages after this one.
    misses: u32,
    /// A record for agents, stored as a system message.
    note: Option<String>,
    /// Nothing answered it: log the question for `kefu faq unanswered`.
    unanswered: bool,
}

/// The bot: handles inbound queue bodies.
pub struct Bot {
    store: Arc<dyn ConversationStore>,
    outbound: Arc<dyn MessageQueue>,
    faq: Arc<FaqLibrary>,
    blobs: Arc<dyn BlobStore>,
    flows: Option<Flows>,
    policy: EscalationPolicy,
    config: BotConfig,
}

impl Bot {
    /// A bot over its ports, with the default escalation policy and no task flows.
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
            flows: None,
            policy: EscalationPolicy::default(),
            config,
        }
    }

    /// Runs task flows (order status, cancel, returns) over the shop's orders.
    pub fn with_flows(mut self, flows: Flows) -> Self {
        self.flows = Some(flows);
        self
    }

    /// Uses `policy` to decide handoffs.
    pub fn with_policy(mut self, policy: EscalationPolicy) -> Self {
        self.policy = policy;
        self
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
                    sentiment: Some(sentiment::score(&inbound.text)),
                    quick_replies: Vec::new(),
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
            let turn = self.decide(&conversation, &inbound).await;
            tracing::info!(outcome = turn.label, escalate = ?turn.escalation.map(|e| e.reason), "decided");
            if let Some(note) = &turn.note {
                self.store
                    .append(
                        &inbound.conversation_id,
                        system_note(&inbound.message_id, note),
                    )
                    .await?;
            }
            if turn.unanswered {
                self.log_unanswered(&inbound).await;
            }
            if let Some(text) = &turn.reply {
                let reply = self.reply(&inbound, text, &turn.quick_replies);
                send_outbound(self.outbound.as_ref(), &reply).await?;
            }
            self.apply(&mut conversation, turn, now)?;
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

    /// Decides in this order: a person owns it (stay quiet); the escalation policy (an
    /// explicit request, a complaint, strong anger, a VIP); a task flow; the FAQ; and when
    /// nothing answers, ask again until the policy's no-answer limit hands off.
    async fn decide(&self, conversation: &Conversation, inbound: &InboundMessage) -> Turn {
        let text = inbound.text.as_str();
        if conversation.human_owned() {
            return Turn {
                label: "silent",
                context: conversation.bot_context.clone(),
                misses: conversation.bot_misses,
                ..Turn::default()
            };
        }
        let zh = is_chinese(text);
        let input = PolicyInput {
            text,
            sentiment: sentiment::score(text),
            wants_human: wants_human(text),
            consecutive_misses: 0,
            customer: &conversation.customer,
        };
        if let Some(escalation) = self.policy.decide(input) {
            return handoff(escalation, zh);
        }
        if let Some(flows) = &self.flows {
            let context = conversation.bot_context.as_ref();
            let input = FlowInput {
                text,
                customer: &conversation.customer,
                request_id: inbound.message_id.as_str(),
            };
            if let Some(step) = flows.handle(context, input).await {
                let escalation = step.handoff.map(|reason| EscalationDecision {
                    reason,
                    priority: self.priority_for(&conversation.customer),
                });
                return Turn {
                    label: "flow",
                    reply: Some(step.reply),
                    escalation,
                    context: step.next,
                    note: step.note,
                    ..Turn::default()
                };
            }
        }
        let Some(index) = self.faq.current() else {
            return self.unanswered(conversation, input, zh);
        };
        if let Some(BotContext::Clarify { options }) = &conversation.bot_context
            && let Some(entry) = resolve_pick(text, options, &index).and_then(|id| index.entry(&id))
        {
            return self.answer("clarified", entry, &conversation.customer);
        }
        match index.answer(text) {
            Decision::Answer(found) => match index.entry(&found.entry_id) {
                Some(entry) => self.answer("answer", entry, &conversation.customer),
                None => self.unanswered(conversation, input, zh),
            },
            Decision::Clarify { options } => Turn {
                label: "clarify",
                reply: Some(clarifying_question(&options, zh)),
                quick_replies: options.iter().map(|m| m.question.clone()).collect(),
                context: Some(BotContext::Clarify {
                    options: options.into_iter().map(|m| m.entry_id).collect(),
                }),
                misses: conversation.bot_misses,
                ..Turn::default()
            },
            Decision::NoAnswer { .. } => self.unanswered(conversation, input, zh),
        }
    }

    /// Nothing answered: ask again, or hand off once the policy's no-answer limit is hit.
    fn unanswered(
        &self,
        conversation: &Conversation,
        mut input: PolicyInput<'_>,
        zh: bool,
    ) -> Turn {
        input.consecutive_misses = conversation.bot_misses + 1;
        let turn = match self.policy.decide(input) {
            Some(escalation) => handoff(escalation, zh),
            None => Turn {
                label: "retry",
                reply: Some(ask_again(zh)),
                misses: input.consecutive_misses,
                ..Turn::default()
            },
        };
        Turn {
            unanswered: true,
            ..turn
        }
    }

    /// Best effort: a lost log entry must not redeliver the customer's message.
    async fn log_unanswered(&self, inbound: &InboundMessage) {
        let item = Unanswered {
            message_id: inbound.message_id.clone(),
            conversation_id: inbound.conversation_id.clone(),
            text: inbound.text.clone(),
            at: inbound.received_at,
            best: None,
            locale: None,
        };
        if let Err(error) = unanswered::record(self.blobs.as_ref(), &item).await {
            tracing::warn!(error = %crate::cause_chain(&error), "could not log an unanswered question");
        }
    }

    /// The priority of a handoff the policy did not decide (a flow's): VIPs first.
    fn priority_for(&self, customer: &crate::domain::Customer) -> u8 {
        if self.policy.is_vip(customer) {
            self.policy.vip_priority
        } else {
            self.policy.default_priority
        }
    }

    fn apply(&self, conversation: &mut Conversation, turn: Turn, now: i64) -> Result<()> {
        if conversation.human_owned() {
            return Ok(());
        }
        conversation.bot_context = turn.context;
        conversation.bot_misses = turn.misses;
        if let Some(escalation) = turn.escalation {
            conversation.bot_context = None;
            conversation.escalate(escalation.into_escalation(&self.config.default_queue), now)?;
        }
        Ok(())
    }

    /// An FAQ entry's answer, its variables filled in for this customer.
    fn answer(&self, label: &'static str, entry: &FaqEntry, customer: &Customer) -> Turn {
        let variables = Variables {
            customer_name: customer.name.as_deref(),
            shop_name: self.config.shop_name.as_deref(),
        };
        Turn {
            label,
            reply: Some(render::fill(&entry.answer, &variables)),
            quick_replies: entry.quick_replies.clone(),
            ..Turn::default()
        }
    }

    fn reply(
        &self,
        inbound: &InboundMessage,
        text: &str,
        quick_replies: &[String],
    ) -> OutboundMessage {
        OutboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::reply_to(&inbound.message_id),
            conversation_id: inbound.conversation_id.clone(),
            channel: inbound.channel,
            recipient: inbound.customer.address.clone(),
            author: Author::Bot,
            agent_id: None,
            text: text.to_owned(),
            quick_replies: quick_replies.to_vec(),
            in_reply_to: Some(inbound.message_id.clone()),
            created_at: now_millis(),
        }
    }
}

/// Hands off with the notice the customer sees.
fn handoff(escalation: EscalationDecision, zh: bool) -> Turn {
    Turn {
        label: "escalate",
        reply: Some(handoff_notice(zh)),
        escalation: Some(escalation),
        ..Turn::default()
    }
}

/// A record for agents beside the customer's message (id derived from it: stored once).
fn system_note(inbound: &MessageId, note: &str) -> NewMessage {
    NewMessage {
        message_id: MessageId::note_for(inbound),
        author: Author::System,
        agent_id: None,
        text: note.to_owned(),
        created_at: now_millis(),
        sentiment: None,
        quick_replies: Vec::new(),
    }
}

/// "您是想问：1. A 2. B？" with the options' questions, numbered as `resolve_pick` reads them.
fn clarifying_question(options: &[Match], zh: bool) -> String {
    let listed: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{}. {}", i + 1, m.question))
        .collect();
    if zh {
        format!("您是想问：\n{}\n请回复序号。", listed.join("\n"))
    } else {
        format!(
            "Did you mean:\n{}\nPlease reply with the number.",
            listed.join("\n")
        )
    }
}

fn ask_again(zh: bool) -> String {
    if zh {
        "抱歉，我没有理解您的问题，能换个说法吗？也可以回复“人工”转人工客服。".into()
    } else {
        "Sorry, I didn't quite get that. Could you rephrase it? You can also type \"agent\" to reach a person.".into()
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
