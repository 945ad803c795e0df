//! `POST /v1/web/messages` (customer writes) and `GET /v1/web/messages` (long poll).

use super::WebState;
use super::visitor::Visitor;
use crate::Error;
use crate::domain::{
    Author, ConversationId, InboundMessage, Message, MessageId, NewMessage, SCHEMA_VERSION,
    now_millis, rfc3339,
};
use crate::http::{ApiError, Json, Query, message_text};
use crate::ports::{Lease, Leases, send_inbound};
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::instrument;

/// Most messages returned by one poll; clients page with `after`.
const PAGE: usize = 100;

/// Longest accepted `client_message_id`.
const MAX_CLIENT_ID_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendMessage {
    /// The widget's own id for the message; retries reuse it.
    client_message_id: String,
    text: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Accepted {
    message_id: MessageId,
    seq: u64,
}

/// Stores the message, then queues it for the bot, and only then answers 202: what the
/// client saw accepted is durably queued. A retry (same `client_message_id`) maps to the
/// same message id, so the store keeps one message and the queue's deduplication drops the
/// second send; it is still sent again in case the first attempt failed after storing.
#[instrument(skip_all, fields(conversation = %visitor.conversation))]
pub(super) async fn send(
    State(state): State<Arc<WebState>>,
    visitor: Visitor,
    Json(body): Json<SendMessage>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    check_client_message_id(&body.client_message_id)?;
    let text = message_text(&body.text)?;
    let conversation = state
        .store
        .get(&visitor.conversation)
        .await?
        .ok_or_else(|| Error::NotFound("conversation not found".into()))?;
    let message_id = MessageId::for_inbound(&conversation.id, &body.client_message_id);
    let (stored, created) = state
        .store
        .append(
            &conversation.id,
            NewMessage {
                message_id,
                author: Author::Customer,
                agent_id: None,
                sentiment: Some(crate::sentiment::score(&text)),
                text: text.clone(),
                created_at: now_millis(),
                quick_replies: Vec::new(),
            },
        )
        .await?;
    if !created && stored.text != text {
        return Err(ApiError::conflict(
            "client_message_id was already used for a different message",
        ));
    }
    let inbound = InboundMessage {
        schema: SCHEMA_VERSION,
        message_id: stored.message_id.clone(),
        conversation_id: conversation.id.clone(),
        channel: conversation.channel,
        customer: conversation.customer,
        text: stored.text,
        received_at: stored.created_at,
    };
    send_inbound(state.inbound.as_ref(), &inbound).await?;
    tracing::info!(
        seq = stored.seq,
        retry = !created,
        "customer message queued"
    );
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            message_id: stored.message_id,
            seq: stored.seq,
        }),
    ))
}

/// 1–64 characters of `[A-Za-z0-9_-]`.
fn check_client_message_id(id: &str) -> crate::Result<()> {
    let ok = (1..=MAX_CLIENT_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "client_message_id must be 1–{MAX_CLIENT_ID_CHARS} characters of A-Z, a-z, 0-9, _ or -"
        )))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PollParams {
    /// Return messages with a greater seq (default 0: from the start).
    #[serde(default)]
    after: u64,
    /// Seconds to wait for a message when there is none yet (default 0, at most
    /// [`super::WebConfig::max_wait`]).
    #[serde(default)]
    wait: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct MessageList {
    messages: Vec<MessageView>,
}

#[derive(Debug, Serialize)]
struct MessageView {
    seq: u64,
    message_id: MessageId,
    author: Author,
    /// May hold `[label](https://…)` links, which the widget draws as links.
    text: String,
    /// One-tap follow-ups, drawn as buttons that send their text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quick_replies: Vec<String>,
    created_at: String,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            seq: m.seq,
            message_id: m.message_id,
            author: m.author,
            text: m.text,
            quick_replies: m.quick_replies,
            created_at: rfc3339(m.created_at),
        }
    }
}

/// Long poll: answers as soon as there is a message after `after`, or with an empty list
/// once `wait` has passed.
#[instrument(skip_all, fields(conversation = %visitor.conversation, after = params.after))]
pub(super) async fn poll(
    State(state): State<Arc<WebState>>,
    visitor: Visitor,
    Query(params): Query<PollParams>,
) -> Result<axum::Json<MessageList>, ApiError> {
    let wait = Duration::from_secs(params.wait).min(state.config.max_wait);
    let deadline = Instant::now() + wait;
    let id = &visitor.conversation;
    if state.store.get(id).await?.is_none() {
        return Err(Error::NotFound("conversation not found".into()).into());
    }
    if wait.is_zero() {
        return read_until(&state, id, params.after, deadline).await;
    }
    let slots = state.config.max_polls_per_visitor;
    let key = format!("poll:{id}");
    let Some(lease) = state
        .polls
        .acquire(&key, slots, wait + LEASE_MARGIN)
        .await?
    else {
        tracing::info!(slots, "poll refused: the visitor's polls are all waiting");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("at most {slots} polls may wait at once for one visitor"),
        ));
    };
    let held = HeldLease {
        leases: state.polls.clone(),
        lease: Some(lease),
    };
    let answer = read_until(&state, id, params.after, deadline).await;
    held.release().await;
    answer
}

/// How much longer than its wait a poll's lease lives, so it outlasts the poll's last read.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// A poll's lease, given back when the poll answers, or (cancelled: the client went away)
/// by a task when it is dropped.
struct HeldLease {
    leases: Arc<dyn Leases>,
    lease: Option<Lease>,
}

impl HeldLease {
    async fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            release(self.leases.as_ref(), &lease).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let leases = self.leases.clone();
            tokio::spawn(async move { release(leases.as_ref(), &lease).await });
        }
    }
}

/// A lease that cannot be given back lapses by itself; only log it.
async fn release(leases: &dyn Leases, lease: &Lease) {
    if let Err(error) = leases.release(lease).await {
        tracing::warn!(error = %crate::cause_chain(&error), "poll lease not released");
    }
}

/// Reads messages after `after` until there is one or `deadline` passes.
async fn read_until(
    state: &WebState,
    id: &ConversationId,
    after: u64,
    deadline: Instant,
) -> Result<axum::Json<MessageList>, ApiError> {
    loop {
        let messages = state.store.messages(id, after, PAGE).await?;
        let now = Instant::now();
        if !messages.is_empty() || now >= deadline {
            return Ok(axum::Json(MessageList {
                messages: messages.into_iter().map(MessageView::from).collect(),
            }));
        }
        tokio::time::sleep(state.config.poll_interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_client_message_ids_when_checked_then_only_safe_short_ids_pass() {
        for ok in ["a", "msg-1_B", &"x".repeat(64)] {
            assert!(check_client_message_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "ü", "a/b", "a.b", &"x".repeat(65)] {
            assert!(
                matches!(check_client_message_id(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }
}
