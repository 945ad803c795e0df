//! Helpers shared by the contract bodies: unique names, fixtures, deadlines.

use kefu::domain::{
    Author, Channel, Conversation, ConversationKey, Customer, Escalation, MessageId, NewMessage,
    now_millis,
};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// A name no other test uses, so suites can share one backend.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A fresh conversation (random customer address) in the bot state.
pub fn new_conversation(channel: Channel) -> Conversation {
    let address = unique("customer-");
    let customer = Customer {
        address: address.clone(),
        name: Some("顾客".into()),
        verified_id: None,
    };
    Conversation::new(
        &ConversationKey::new(channel, address),
        customer,
        now_millis(),
    )
}

/// A handoff to `queue` with `priority`.
pub fn escalation(queue: &str, priority: u8) -> Escalation {
    Escalation {
        queue: queue.into(),
        priority,
        reason: "customer_request".into(),
    }
}

/// A customer message with a random id.
pub fn customer_message(text: &str) -> NewMessage {
    NewMessage {
        message_id: MessageId::random(),
        author: Author::Customer,
        agent_id: None,
        text: text.into(),
        created_at: now_millis(),
        sentiment: None,
        quick_replies: Vec::new(),
    }
}

/// Calls `attempt` until it yields `Some`, or `None` once `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, mut attempt: F) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt().await? {
            return Ok(Some(value));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
