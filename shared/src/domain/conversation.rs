use super::{Channel, ConversationId, ConversationKey, Millis};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Where a conversation is in its life.
///
/// ```text
///   Bot ──escalate──► Waiting ──claim──► Assigned ──resolve──► Resolved
///    ▲                   │                                        │
///    └────────────── reopen (customer writes again) ◄─────────────┘
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationState {
    /// The bot is answering.
    Bot,
    /// Handed off; waiting in an agent queue.
    Waiting,
    /// An agent owns it.
    Assigned,
    /// Closed by an agent; the next customer message reopens it.
    Resolved,
}

impl ConversationState {
    /// The lowercase name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Bot => "bot",
            ConversationState::Waiting => "waiting",
            ConversationState::Assigned => "assigned",
            ConversationState::Resolved => "resolved",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "bot" => Ok(Self::Bot),
            "waiting" => Ok(Self::Waiting),
            "assigned" => Ok(Self::Assigned),
            "resolved" => Ok(Self::Resolved),
            other => Err(Error::Corrupt(format!("unknown state {other}"))),
        }
    }
}

/// The customer on the other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Customer {
    /// Address on the channel (OpenID, E.164 number, email, web session id).
    pub address: String,
    /// Display name, when known.
    pub name: Option<String>,
    /// The shop's own customer id, when the shop vouched for it (signed web identity).
    pub verified_id: Option<String>,
}

/// Why and where a conversation was handed to humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Skill-group queue, e.g. `general`.
    pub queue: String,
    /// 0 (lowest) … 9 (highest).
    pub priority: u8,
    /// Recorded reason, e.g. `customer_request`, `no_answer`.
    pub reason: String,
}

/// Multi-turn state the bot keeps between customer messages. Stored as JSON with the
/// conversation, so adding a variant needs no schema change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BotContext {
    /// The bot asked "did you mean A or B?"; the next message may pick one.
    Clarify {
        /// The FAQ entry ids offered, in the order shown.
        options: Vec<String>,
    },
    /// A task flow (order status, return request, …) is collecting what it needs.
    Flow {
        /// The flow's name, e.g. `order_status`.
        flow: String,
        /// The slot being asked for, e.g. `order_id`.
        slot: String,
        /// Failed attempts at filling it so far.
        tries: u32,
        /// Slots filled so far.
        filled: std::collections::BTreeMap<String, String>,
    },
    /// Handed to a person; whether the customer was told what happens next (a person is
    /// coming, or the service hours), which the bot says once per handoff.
    HandedOff {
        /// Told already: later messages wait for the person in silence.
        told: bool,
    },
}

/// A conversation between one customer and the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id (derived from the key).
    pub id: ConversationId,
    /// The channel.
    pub channel: Channel,
    /// The customer.
    pub customer: Customer,
    /// Life-cycle state.
    pub state: ConversationState,
    /// The current (or last) handoff.
    pub escalation: Option<Escalation>,
    /// Since when it waits in a queue (set while `Waiting`).
    pub waiting_since: Option<Millis>,
    /// The agent who owns it (set while `Assigned`).
    pub assignee: Option<String>,
    /// Consecutive customer messages the bot could not answer.
    pub bot_misses: u32,
    /// Highest customer-message seq the bot has acted on (makes bot effects idempotent).
    pub bot_seq: u64,
    /// What the bot is in the middle of (a clarifying question, a task flow), if anything.
    pub bot_context: Option<BotContext>,
    /// Highest message seq (maintained by the store on append).
    pub last_seq: u64,
    /// Optimistic-concurrency version, bumped by every [`crate::ports::ConversationStore::save`].
    pub version: u64,
    /// Created.
    pub created_at: Millis,
    /// Last changed.
    pub updated_at: Millis,
}

impl Conversation {
    /// Whether it never got a message and has outlived
    /// [`EMPTY_CONVERSATION_TTL`](crate::ports::EMPTY_CONVERSATION_TTL) at `now`.
    pub fn lapsed(&self, now: Millis) -> bool {
        let ttl = Millis::try_from(crate::ports::EMPTY_CONVERSATION_TTL.as_millis())
            .unwrap_or(Millis::MAX);
        self.last_seq == 0 && self.created_at.saturating_add(ttl) <= now
    }

    /// A new conversation in the bot state.
    pub fn new(key: &ConversationKey, customer: Customer, now: Millis) -> Self {
        Self {
            id: key.conversation_id(),
            channel: key.channel(),
            customer,
            state: ConversationState::Bot,
            escalation: None,
            waiting_since: None,
            assignee: None,
            bot_misses: 0,
            bot_seq: 0,
            bot_context: None,
            last_seq: 0,
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Hands the conversation to a human queue. Only from `Bot`.
    pub fn escalate(&mut self, escalation: Escalation, now: Millis) -> Result<()> {
        if self.state != ConversationState::Bot {
            return Err(self.illegal("escalate"));
        }
        self.state = ConversationState::Waiting;
        self.escalation = Some(escalation);
        self.waiting_since = Some(now);
        self.bot_misses = 0;
        self.updated_at = now;
        Ok(())
    }

    /// An agent takes it. From `Waiting`; claiming again by the owner is a no-op.
    pub fn claim(&mut self, agent: &str, now: Millis) -> Result<()> {
        match self.state {
            ConversationState::Waiting => {
                self.state = ConversationState::Assigned;
                self.assignee = Some(agent.to_owned());
                self.waiting_since = None;
                self.updated_at = now;
                Ok(())
            }
            ConversationState::Assigned if self.assignee.as_deref() == Some(agent) => Ok(()),
            ConversationState::Assigned => Err(Error::Conflict(
                "conversation is assigned to another agent".into(),
            )),
            _ => Err(self.illegal("claim")),
        }
    }

    /// The owner closes it.
    pub fn resolve(&mut self, agent: &str, now: Millis) -> Result<()> {
        match self.state {
            ConversationState::Assigned if self.assignee.as_deref() == Some(agent) => {
                self.state = ConversationState::Resolved;
                self.updated_at = now;
                Ok(())
            }
            ConversationState::Assigned => Err(Error::Conflict(
                "conversation is assigned to another agent".into(),
            )),
            _ => Err(self.illegal("resolve")),
        }
    }

    /// The customer wrote again after resolution: back to the bot.
    pub fn reopen(&mut self, now: Millis) {
        if self.state == ConversationState::Resolved {
            self.state = ConversationState::Bot;
            self.assignee = None;
            self.bot_misses = 0;
            self.bot_context = None;
            self.updated_at = now;
        }
    }

    /// Whether a human owns (or is about to own) the conversation, so the bot stays quiet.
    pub fn human_owned(&self) -> bool {
        matches!(
            self.state,
            ConversationState::Waiting | ConversationState::Assigned
        )
    }

    fn illegal(&self, action: &str) -> Error {
        Error::Conflict(format!(
            "cannot {action} a conversation in state {}",
            self.state.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation {
        Conversation::new(
            &ConversationKey::new(Channel::Web, "s"),
            Customer::default(),
            1,
        )
    }

    fn esc() -> Escalation {
        Escalation {
            queue: "general".into(),
            priority: 5,
            reason: "customer_request".into(),
        }
    }

    #[test]
    fn full_lifecycle_with_reopen() {
        let mut c = conv();
        c.escalate(esc(), 2).unwrap();
        assert_eq!(c.state, ConversationState::Waiting);
        assert!(c.human_owned());
        c.claim("alice", 3).unwrap();
        c.claim("alice", 4).unwrap();
        assert_eq!(
            c.claim("bob", 4).unwrap_err().to_string(),
            "conflict: conversation is assigned to another agent"
        );
        assert!(c.resolve("bob", 5).is_err());
        c.resolve("alice", 5).unwrap();
        c.reopen(6);
        assert_eq!(c.state, ConversationState::Bot);
        assert_eq!(c.assignee, None);
    }

    #[test]
    fn illegal_transitions_are_conflicts() {
        let mut c = conv();
        assert!(matches!(c.claim("a", 1), Err(Error::Conflict(_))));
        assert!(matches!(c.resolve("a", 1), Err(Error::Conflict(_))));
        c.escalate(esc(), 1).unwrap();
        assert!(matches!(c.escalate(esc(), 1), Err(Error::Conflict(_))));
    }
}
