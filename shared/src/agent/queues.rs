//! `GET /v1/agent/queues`: what is waiting for a human.

use super::{AgentIdentity, AgentState};
use crate::domain::{Channel, Conversation, ConversationId, rfc3339};
use crate::http::ApiError;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use tracing::instrument;

/// Most conversations listed per queue.
const MAX_LISTED: usize = 100;

#[derive(Debug, Serialize)]
pub(super) struct QueueList {
    queues: Vec<QueueView>,
}

#[derive(Debug, Serialize)]
struct QueueView {
    name: String,
    waiting: Vec<WaitingView>,
}

#[derive(Debug, Serialize)]
struct WaitingView {
    conversation_id: ConversationId,
    channel: Channel,
    priority: u8,
    reason: String,
    waiting_since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_name: Option<String>,
}

impl From<Conversation> for WaitingView {
    fn from(c: Conversation) -> Self {
        let (priority, reason) = c
            .escalation
            .map(|e| (e.priority, e.reason))
            .unwrap_or_default();
        Self {
            conversation_id: c.id,
            channel: c.channel,
            priority,
            reason,
            waiting_since: rfc3339(c.waiting_since.unwrap_or(c.updated_at)),
            customer_name: c.customer.name,
        }
    }
}

/// The configured queues the agent works (in the configured order), each highest
/// priority first, then oldest first.
#[instrument(skip_all, fields(agent = %agent.agent_id))]
pub(super) async fn list(
    State(state): State<Arc<AgentState>>,
    agent: AgentIdentity,
) -> Result<axum::Json<QueueList>, ApiError> {
    let mut queues = Vec::with_capacity(state.queues.len());
    for name in state.queues.iter().filter(|name| agent.works(name)) {
        let waiting = state.work.waiting(name, MAX_LISTED).await?;
        queues.push(QueueView {
            name: name.clone(),
            waiting: waiting.into_iter().map(WaitingView::from).collect(),
        });
    }
    Ok(axum::Json(QueueList { queues }))
}
