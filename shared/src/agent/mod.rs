//! Agent API: the console's backend. Agents log in (local accounts) or arrive with a
//! Cognito identity, see the waiting queues, claim a conversation, read it, reply and
//! resolve it.
//!
//! | Route | Does |
//! |---|---|
//! | `POST /v1/agent/login` | local accounts: username + password → agent token |
//! | `GET /v1/agent/queues` | conversations waiting in each queue the agent works |
//! | `POST /v1/agent/conversations/{id}/claim` | take a waiting conversation (one owner) |
//! | `GET /v1/agent/conversations/{id}` | the conversation and its messages (`?after=<seq>`) |
//! | `POST /v1/agent/conversations/{id}/messages` | the owner replies |
//! | `POST /v1/agent/conversations/{id}/resolve` | the owner closes it |
//!
//! Authentication depends on [`AgentAuthMode`]; see [`AgentIdentity`]. Authorization:
//! an agent reads and claims only conversations it owns or that were handed to a person in
//! one of its queues ([`AgentIdentity::may_see`]); any other is 404, as if it did not
//! exist. Replying and resolving need ownership (else 409). Logins are throttled
//! ([`LoginLimits`]).

mod conversations;
mod identity;
mod login;
mod queues;
mod service;

pub use identity::{
    AGENT_ROLE_GROUP, AgentAuthMode, AgentIdentity, AgentRole, COGNITO_AGENT_CLAIMS,
    COGNITO_GROUPS_CLAIM, QUEUE_GROUP_PREFIX,
};
pub use login::{LoginGate, LoginLimits, disable_agent, ensure_agent, provision_agent};
pub use service::{claim, reply, resolve, show};

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
    /// The skill-group queues (`KEFU_QUEUES`); each agent is shown those it works.
    pub queues: Vec<String>,
    /// Login throttling and this instance's password-check slots.
    pub login: LoginGate,
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
