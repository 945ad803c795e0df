//! Agent API: the console's backend. Agents log in (local accounts) or arrive with a
//! Cognito identity, see the waiting queues, claim a conversation, read it, reply and
//! resolve it.
//!
//! | Route | Does |
//! |---|---|
//! | `POST /v1/agent/login` | local accounts: username + password → agent token |
//! | `GET /v1/agent/queues` | conversations waiting in each configured queue |
//! | `POST /v1/agent/conversations/{id}/claim` | take a waiting conversation (one owner) |
//! | `GET /v1/agent/conversations/{id}` | the conversation and its messages (`?after=<seq>`) |
//! | `POST /v1/agent/conversations/{id}/messages` | the owner replies |
//! | `POST /v1/agent/conversations/{id}/resolve` | the owner closes it |
//!
//! Authentication depends on [`AgentAuthMode`]; see [`AgentIdentity`].

mod conversations;
mod identity;
mod login;
mod queues;
mod service;

pub use identity::{AgentAuthMode, AgentIdentity, COGNITO_AGENT_CLAIMS};
pub use login::ensure_agent;
pub use service::{claim, reply, resolve};

use crate::auth::TokenSigner;
use crate::ports::{AgentDirectory, ConversationStore, MessageQueue, WorkQueue};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// What the agent API needs.
#[derive(Clone)]
pub struct AgentState {
    /// Conversations and messages.
    pub store: Arc<dyn ConversationStore>,
    /// Waiting conversations per queue.
    pub work: Arc<dyn WorkQueue>,
    /// Local agent accounts (used in [`AgentAuthMode::Local`]).
    pub agents: Arc<dyn AgentDirectory>,
    /// The outbound queue (`KEFU_OUTBOUND_QUEUE_URL`) for agent replies.
    pub outbound: Arc<dyn MessageQueue>,
    /// Signs and checks agent tokens (`KEFU_TOKEN_SECRET`).
    pub tokens: TokenSigner,
    /// `KEFU_AGENT_AUTH`.
    pub auth: AgentAuthMode,
    /// The skill-group queues shown to agents (`KEFU_QUEUES`).
    pub queues: Vec<String>,
    /// Request body limit (`KEFU_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
}

/// The agent API. Serve it with `lambda_http::run` or `axum::serve`; it has no fallback
/// of its own, so it can be merged with other routers.
pub fn router(state: AgentState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let login = match state.auth {
        AgentAuthMode::Local => post(login::login),
        AgentAuthMode::Cognito => post(login::handled_by_cognito),
    };
    let routes = Router::new()
        .route("/v1/agent/login", login)
        .route("/v1/agent/queues", get(queues::list))
        .route("/v1/agent/conversations/{id}", get(conversations::show))
        .route(
            "/v1/agent/conversations/{id}/claim",
            post(conversations::claim),
        )
        .route(
            "/v1/agent/conversations/{id}/messages",
            post(conversations::send),
        )
        .route(
            "/v1/agent/conversations/{id}/resolve",
            post(conversations::resolve),
        )
        .with_state(Arc::new(state));
    crate::http::api_layers(routes, max_body_bytes)
}
