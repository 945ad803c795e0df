//! The agent-api Lambda: the console's HTTP API behind API Gateway. The routes live in
//! [`kefu::agent`]; this crate reads the configuration and, in Cognito mode, turns the
//! claims verified by the HTTP API's JWT authorizer into an [`AgentIdentity`].

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use kefu::agent::{AgentAuthMode, AgentIdentity, AgentState};
use kefu::auth::TokenSigner;
use kefu::config;
use kefu::ports::{AgentDirectory, ConversationStore, MessageQueue, WorkQueue};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use std::sync::Arc;

/// Builds the agent API state from the environment and the adapters.
pub fn state_from_env(
    store: Arc<dyn ConversationStore>,
    work: Arc<dyn WorkQueue>,
    agents: Arc<dyn AgentDirectory>,
    outbound: Arc<dyn MessageQueue>,
) -> anyhow::Result<AgentState> {
    let auth = match config::or("KEFU_AGENT_AUTH", "local").as_str() {
        "local" => AgentAuthMode::Local,
        "cognito" => AgentAuthMode::Cognito,
        other => anyhow::bail!("KEFU_AGENT_AUTH must be local or cognito, not {other}"),
    };
    Ok(AgentState {
        store,
        work,
        agents,
        outbound,
        tokens: TokenSigner::new(config::required("KEFU_TOKEN_SECRET")?)?,
        auth,
        queues: config::list("KEFU_QUEUES", &["general"]),
        max_body_bytes: config::number("KEFU_MAX_BODY_BYTES", 16 * 1024)?,
    })
}

/// Middleware: copies the JWT authorizer's verified claims (API Gateway request context)
/// into an [`AgentIdentity`] request extension. Clients cannot set extensions, so only
/// API Gateway's verified claims can produce one.
pub async fn cognito_identity(mut request: Request, next: Next) -> Response {
    let identity = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .and_then(|jwt| AgentIdentity::from_jwt_claims(&jwt.claims)),
        _ => None,
    };
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}
