//! `/v1/agent/conversations/{id}`: read, claim, reply, resolve.

use super::{AgentIdentity, AgentState, service};
use crate::domain::{
    Author, Channel, Conversation, ConversationId, ConversationState, DeliveryState, Escalation,
    Message, MessageId, rfc3339,
};
use crate::http::{ApiError, Json, Query, message_text};
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::instrument;

/// Most messages returned at once; the console pages with `after`.
const PAGE: usize = 500;

/// The conversation id from the path; malformed → 400.
fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    let id = ConversationId::parse(raw)?;
    tracing::Span::current().record("conversation", id.as_str());
    Ok(id)
}

#[derive(Debug, Serialize)]
pub(super) struct ConversationView {
    id: ConversationId,
    channel: Channel,
    state: ConversationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<Escalation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_name: Option<String>,
    /// The shop's customer id, when the shop vouched for the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    last_seq: u64,
    created_at: String,
    updated_at: String,
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id,
            channel: c.channel,
            state: c.state,
            assignee: c.assignee,
            escalation: c.escalation,
            waiting_since: c.waiting_since.map(rfc3339),
            customer_name: c.customer.name,
            customer_id: c.customer.verified_id,
            last_seq: c.last_seq,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct ConversationOnly {
    conversation: ConversationView,
}

impl From<Conversation> for ConversationOnly {
    fn from(c: Conversation) -> Self {
        Self {
            conversation: c.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct ConversationWithMessages {
    conversation: ConversationView,
    messages: Vec<MessageView>,
}

#[derive(Debug, Serialize)]
struct MessageView {
    seq: u64,
    message_id: MessageId,
    author: Author,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_id: Option<String>,
    text: String,
    /// Follow-ups the customer was offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quick_replies: Vec<String>,
    created_at: String,
    /// `pending`, `delivered` or `failed`.
    delivery: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_error: Option<String>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        let (delivery, delivery_error) = match m.delivery {
            DeliveryState::Pending => ("pending", None),
            DeliveryState::Delivered => ("delivered", None),
            DeliveryState::Failed(reason) => ("failed", Some(reason)),
        };
        Self {
            seq: m.seq,
            message_id: m.message_id,
            author: m.author,
            agent_id: m.agent_id,
            text: m.text,
            quick_replies: m.quick_replies,
            created_at: rfc3339(m.created_at),
            delivery,
            delivery_error,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowParams {
    /// Only messages with a greater seq (default 0: all).
    #[serde(default)]
    after: u64,
}

/// An agent reads a conversation it owns or one handed to a person in its queues, e.g.
/// before claiming it; any other is 404, as if it did not exist.
#[instrument(skip_all, fields(agent = %agent.agent_id, conversation))]
pub(super) async fn show(
    State(state): State<Arc<AgentState>>,
    agent: AgentIdentity,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<axum::Json<ConversationWithMessages>, ApiError> {
    let id = conversation_id(&id)?;
    let conversation = service::show(state.store.as_ref(), &id, &agent).await?;
    let messages = state.store.messages(&id, params.after, PAGE).await?;
    Ok(axum::Json(ConversationWithMessages {
        conversation: conversation.into(),
        messages: messages.into_iter().map(MessageView::from).collect(),
    }))
}

/// 200 with the conversation, now owned by the caller; 409 when someone else owns it or it
/// is not waiting.
#[instrument(skip_all, fields(agent = %agent.agent_id, conversation))]
pub(super) async fn claim(
    State(state): State<Arc<AgentState>>,
    agent: AgentIdentity,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationOnly>, ApiError> {
    let id = conversation_id(&id)?;
    let conversation = service::claim(state.store.as_ref(), &id, &agent).await?;
    tracing::info!("conversation claimed");
    Ok(axum::Json(conversation.into()))
}

/// 200 with the resolved conversation; 409 unless the caller owns it.
#[instrument(skip_all, fields(agent = %agent.agent_id, conversation))]
pub(super) async fn resolve(
    State(state): State<Arc<AgentState>>,
    agent: AgentIdentity,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationOnly>, ApiError> {
    let id = conversation_id(&id)?;
    let conversation = service::resolve(state.store.as_ref(), &id, &agent).await?;
    tracing::info!("conversation resolved");
    Ok(axum::Json(conversation.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendMessage {
    text: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Sent {
    message_id: MessageId,
    seq: u64,
}

/// 201 once the reply is stored and queued for delivery; 409 unless the caller owns the
/// conversation.
#[instrument(skip_all, fields(agent = %agent.agent_id, conversation))]
pub(super) async fn send(
    State(state): State<Arc<AgentState>>,
    agent: AgentIdentity,
    Path(id): Path<String>,
    Json(body): Json<SendMessage>,
) -> Result<(StatusCode, axum::Json<Sent>), ApiError> {
    let id = conversation_id(&id)?;
    let text = message_text(&body.text)?;
    let message = service::reply(
        state.store.as_ref(),
        state.outbound.as_ref(),
        &id,
        &agent,
        text,
    )
    .await?;
    tracing::info!(seq = message.seq, "agent reply queued");
    Ok((
        StatusCode::CREATED,
        axum::Json(Sent {
            message_id: message.message_id,
            seq: message.seq,
        }),
    ))
}
