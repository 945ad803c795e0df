//! The bot's message handler: one inbound customer message in, at most one reply out.
//!
//! Exactly-once effect without transactions across services: the customer message is
//! appended idempotently (by message id), the reply's id is derived from the inbound id
//! (so a redelivery produces the same reply, which the outbound queue and the dispatcher
//! deduplicate), and the conversation's `bot_seq` records which messages the bot has acted
//! on. The reply is enqueued *before* `bot_seq` is saved: a crash in between redelivers the
//! message and re-sends the same reply id instead of losing it.

use crate::faq::FaqEntry;
use crate::flows::{FlowInput, FlowStep, Flows};
use crate::hours::ServiceHours;
use crate::intent::wants_human;
use crate::library::FaqLibrary;
use crate::matcher::{Decision, Match, resolve_pick};
use crate::policy::{EscalationDecision, EscalationPolicy, PolicyInput};
use crate::smalltalk;
use crate::unanswered::{self, Unanswered};
use kefu::domain::{
    Author, BotContext, Conversation, ConversationKey, ConversationState, Customer, InboundMessage,
    MessageId, Millis, NewMessage, OutboundMessage, SCHEMA_VERSION, now_millis,
};
use kefu::ports::{BlobStore, ConversationStore, MessageQueue, WorkQueue, send_outbound};
use kefu::render::{self, Variables};
use kefu::sentiment;
use kefu::{Error, Result};
use std::sync::Arc;

/// Where the bot sends conversations it hands off, and what its answers may say.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Queue that receives escalations.
    pub default_queue: String,
    /// The shop's name, for `{{shop_name}}` in answers.
    pub shop_name: Option<String>,
    /// When people answer (`KEFU_SERVICE_HOURS`): outside them a handed-off customer is told
    /// so, with the hours.
    pub service_hours: ServiceHours,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            default_queue: "general".into(),
            shop_name: None,
            service_hours: ServiceHours::default(),
        }
    }
}

/// How far down the queue the bot looks for a customer's place in it.
const QUEUE_PLACES: usize = 100;

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
    /// With a handoff: the reply already said what happens next (outside service hours).
    told: bool,
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
    work: Option<Arc<dyn WorkQueue>>,
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
            work: None,
            policy: EscalationPolicy::default(),
            config,
        }
    }

    /// Runs task flows (order status, cancel, returns) over the shop's orders.
    pub fn with_flows(mut self, flows: Flows) -> Self {
        self.flows = Some(flows);
        self
    }

    /// Reads the agents' work queues, to tell a handed-off customer their place in line.
    pub fn with_work_queue(mut self, work: Arc<dyn WorkQueue>) -> Self {
        self.work = Some(work);
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
            let turn = self.decide(&conversation, &inbound, now).await;
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

    /// Decides in this order: a person owns it (tell the customer once what happens next,
    /// then stay quiet); the escalation policy (an explicit request, a complaint, strong
    /// anger, a VIP); a task flow; a pick from a clarifying question; a confident FAQ
    /// answer; small talk; a flow asking again; a clarifying question; and when nothing
    /// answers, ask again until the policy's no-answer limit hands off.
    ///
    /// A flow that waits for an order number and does not understand the message only
    /// falls back to asking again: another question, small talk or a request for a person
    /// is answered as what it is, and the flow keeps waiting.
    async fn decide(
        &self,
        conversation: &Conversation,
        inbound: &InboundMessage,
        now: Millis,
    ) -> Turn {
        let text = inbound.text.as_str();
        let zh = is_chinese(text);
        if conversation.human_owned() {
            return self.while_handed_off(conversation, zh, now).await;
        }
        let input = PolicyInput {
            text,
            sentiment: sentiment::score(text),
            wants_human: wants_human(text),
            consecutive_misses: 0,
            customer: &conversation.customer,
        };
        if let Some(escalation) = self.policy.decide(input) {
            return self.handoff(escalation, zh, now);
        }
        let mut fallback = None;
        if let Some(flows) = &self.flows {
            let context = conversation.bot_context.as_ref();
            let input = FlowInput {
                text,
                customer: &conversation.customer,
                request_id: inbound.message_id.as_str(),
            };
            match flows.handle(context, input).await {
                Some(step) if step.fallback => fallback = Some(step),
                Some(step) => return self.flow_turn(step, &conversation.customer),
                None => {}
            }
        }
        // What the FAQ or small talk answers leaves a waiting flow waiting; anything else
        // (a flow that let go, an old clarifying question) is over.
        let kept = fallback
            .as_ref()
            .and_then(|_| conversation.bot_context.clone());
        let index = self.faq.current();
        if let (Some(index), Some(BotContext::Clarify { options })) =
            (&index, &conversation.bot_context)
            && let Some(entry) = resolve_pick(text, options, index).and_then(|id| index.entry(&id))
        {
            return self.answer("clarified", entry, &conversation.customer);
        }
        let decision = index.as_ref().map(|index| index.answer(text));
        if let (Some(index), Some(Decision::Answer(found))) = (&index, &decision)
            && let Some(entry) = index.entry(&found.entry_id)
        {
            return Turn {
                context: kept,
                ..self.answer("answer", entry, &conversation.customer)
            };
        }
        if let Some(kind) = smalltalk::recognise(text) {
            let (reply, quick_replies) = smalltalk::reply(kind, zh);
            // Never counted as unanswered, and never as answered either.
            return Turn {
                label: "small_talk",
                reply: Some(reply),
                quick_replies,
                context: kept,
                misses: conversation.bot_misses,
                ..Turn::default()
            };
        }
        if let Some(step) = fallback {
            return self.flow_turn(step, &conversation.customer);
        }
        match decision {
            Some(Decision::Clarify { options }) => Turn {
                label: "clarify",
                reply: Some(clarifying_question(&options, zh)),
                quick_replies: options.iter().map(|m| m.question.clone()).collect(),
                context: Some(BotContext::Clarify {
                    options: options.into_iter().map(|m| m.entry_id).collect(),
                }),
                misses: conversation.bot_misses,
                ..Turn::default()
            },
            _ => self.unanswered(conversation, input, zh, now),
        }
    }

    fn flow_turn(&self, step: FlowStep, customer: &Customer) -> Turn {
        let escalation = step.handoff.map(|reason| EscalationDecision {
            reason,
            priority: self.priority_for(customer),
        });
        Turn {
            label: "flow",
            reply: Some(step.reply),
            escalation,
            context: step.next,
            note: step.note,
            ..Turn::default()
        }
    }

    /// Handed off: the first message after it hears what happens next (a person is coming,
    /// with the place in the queue; or no one is there now, with the service hours); the
    /// rest wait for the person in silence. Once a person has the conversation, silence.
    async fn while_handed_off(&self, conversation: &Conversation, zh: bool, now: Millis) -> Turn {
        let silent = Turn {
            label: "silent",
            context: conversation.bot_context.clone(),
            misses: conversation.bot_misses,
            ..Turn::default()
        };
        let told = matches!(
            conversation.bot_context,
            Some(BotContext::HandedOff { told: true })
        );
        if conversation.state != ConversationState::Waiting || told {
            return silent;
        }
        let reply = if self.config.service_hours.is_open(now) {
            person_coming(zh, self.place_in_queue(conversation).await)
        } else {
            closed_notice(zh, &self.config.service_hours)
        };
        Turn {
            label: "next_steps",
            reply: Some(reply),
            context: Some(BotContext::HandedOff { told: true }),
            ..silent
        }
    }

    /// The conversation's place among those waiting in its queue (1 = next), if known.
    async fn place_in_queue(&self, conversation: &Conversation) -> Option<usize> {
        let work = self.work.as_ref()?;
        let queue = conversation.escalation.as_ref()?.queue.as_str();
        match work.waiting(queue, QUEUE_PLACES).await {
            Ok(waiting) => waiting
                .iter()
                .position(|c| c.id == conversation.id)
                .map(|at| at + 1),
            Err(error) => {
                // Best effort: the notice goes out without the place.
                tracing::warn!(error = %kefu::cause_chain(&error), "could not read the queue");
                None
            }
        }
    }

    /// Hands off with the notice the customer sees: a person is being connected, or, outside
    /// the service hours, that no one is there now and what to do (said once: it counts as
    /// what happens next).
    fn handoff(&self, escalation: EscalationDecision, zh: bool, now: Millis) -> Turn {
        let open = self.config.service_hours.is_open(now);
        let reply = if open {
            handoff_notice(zh)
        } else {
            closed_notice(zh, &self.config.service_hours)
        };
        Turn {
            label: "escalate",
            reply: Some(reply),
            escalation: Some(escalation),
            told: !open,
            ..Turn::default()
        }
    }

    /// Nothing answered: ask again, or hand off once the policy's no-answer limit is hit.
    fn unanswered(
        &self,
        conversation: &Conversation,
        mut input: PolicyInput<'_>,
        zh: bool,
        now: Millis,
    ) -> Turn {
        input.consecutive_misses = conversation.bot_misses + 1;
        let turn = match self.policy.decide(input) {
            Some(escalation) => self.handoff(escalation, zh, now),
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
            tracing::warn!(error = %kefu::cause_chain(&error), "could not log an unanswered question");
        }
    }

    /// The priority of a handoff the policy did not decide (a flow's): VIPs first.
    fn priority_for(&self, customer: &kefu::domain::Customer) -> u8 {
        if self.policy.is_vip(customer) {
            self.policy.vip_priority
        } else {
            self.policy.default_priority
        }
    }

    fn apply(&self, conversation: &mut Conversation, turn: Turn, now: i64) -> Result<()> {
        if conversation.human_owned() {
            // Only whether the customer was told what happens next.
            conversation.bot_context = turn.context;
            return Ok(());
        }
        conversation.bot_context = turn.context;
        conversation.bot_misses = turn.misses;
        if let Some(escalation) = turn.escalation {
            conversation.bot_context = Some(BotContext::HandedOff { told: turn.told });
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

/// Said once after a handoff, within service hours.
fn person_coming(zh: bool, place: Option<usize>) -> String {
    match (zh, place) {
        (true, Some(1)) => "已收到，人工客服会在这里回复您。您排在第 1 位，马上就到您了。".into(),
        (true, Some(n)) => {
            format!(
                "已收到，人工客服会在这里回复您。您前面还有 {} 位顾客，请耐心等候。",
                n - 1
            )
        }
        (true, None) => "已收到，人工客服会尽快在这里回复您，请耐心等候。".into(),
        (false, Some(1)) => "Got it. A person will reply here; you're next in the queue.".into(),
        (false, Some(n)) => format!(
            "Got it. A person will reply here; you're number {n} in the queue. Thanks for waiting."
        ),
        (false, None) => {
            "Got it. A person will reply here as soon as possible. Thanks for waiting.".into()
        }
    }
}

/// Outside service hours: no one is there now, when they are, and what to do.
fn closed_notice(zh: bool, hours: &ServiceHours) -> String {
    let when = hours.describe(zh);
    if zh {
        format!(
            "已为您转交人工客服，但现在不在服务时间，暂时没有客服在线。服务时间：{when}。请直接在这里留言，客服上班后会第一时间回复您。"
        )
    } else {
        format!(
            "I've passed this on to our team, but no one is available right now. Our service hours are {when}. Leave your message here and it will be answered when we're back."
        )
    }
}

#[cfg(test)]
mod tests;
