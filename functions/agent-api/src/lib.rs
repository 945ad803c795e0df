//! The agent-api Lambda: the console's HTTP API behind API Gateway. The routes live in
//! [`kefu::agent`]; this crate reads the configuration, turns the claims verified by the
//! HTTP API's JWT authorizer into an [`AgentIdentity`] (Cognito mode) once Cognito has
//! confirmed that the token's account still stands, and passes on the client address that
//! login throttling counts by.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kefu::agent::{AgentAuthMode, AgentIdentity, AgentState, LoginGate};
use kefu::auth::TokenSigner;
use kefu::config;
use kefu::http::{ApiError, bearer_token};
use kefu::ports::{AccountCheck, AgentDirectory, ConversationStore, MessageQueue, WorkQueue};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Builds the agent API state from the environment and the adapters.
pub fn state_from_env(
    store: Arc<dyn ConversationStore>,
    work: Arc<dyn WorkQueue>,
    agents: Arc<dyn AgentDirectory>,
    outbound: Arc<dyn MessageQueue>,
) -> kefu::Result<AgentState> {
    let auth = AgentAuthMode::parse(&config::or("KEFU_AGENT_AUTH", "local"))?;
    Ok(AgentState {
        store,
        work,
        agents,
        outbound,
        tokens: TokenSigner::new(config::required("KEFU_TOKEN_SECRET")?)?,
        auth,
        queues: config::list("KEFU_QUEUES", &["general"]),
        login: LoginGate::default(),
        max_body_bytes: config::max_body_bytes()?,
    })
}

/// What [`request_context`] needs to know.
#[derive(Clone)]
pub struct Gateway {
    /// `KEFU_AGENT_AUTH`.
    pub auth: AgentAuthMode,
    /// In `cognito` mode, asked on every request whether the caller's access token still
    /// stands (a disabled, deleted or signed-out user is refused at once).
    pub accounts: Option<Arc<dyn AccountCheck>>,
}

/// Middleware: from the API Gateway request context, copies the client's address
/// (`sourceIp`) into a [`ConnectInfo`] extension and, in `cognito` mode, the JWT
/// authorizer's verified claims into an [`AgentIdentity`] extension, once the account
/// check accepts the bearer token (401 when it does not, 503 when Cognito cannot be
/// asked). Clients cannot set extensions, so only API Gateway's verified values can
/// produce them.
pub async fn request_context(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    let (address, identity) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => (
            context
                .http
                .source_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
            context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .and_then(|jwt| AgentIdentity::from_jwt_claims(&jwt.claims)),
        ),
        _ => (None, None),
    };
    if let Some(ip) = address {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    if let (AgentAuthMode::Cognito, Some(identity)) = (gateway.auth, identity) {
        if let Some(accounts) = &gateway.accounts {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token,
                Err(error) => return ApiError::from(error).into_response(),
            };
            match accounts.still_active(token).await {
                Ok(true) => {}
                Ok(false) => {
                    return ApiError::unauthorized(
                        "the account of this token is disabled, deleted or signed out",
                    )
                    .into_response();
                }
                Err(error) => {
                    tracing::error!(error = %kefu::cause_chain(&error), "account check failed");
                    let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    return ApiError::new(status, "the account could not be checked")
                        .into_response();
                }
            }
        }
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use kefu::agent::AgentRole;
    use std::sync::Mutex;
    use tower::ServiceExt;

    type Seen = Option<(Option<AgentIdentity>, Option<SocketAddr>)>;

    /// What a handler behind the middleware finds in the request extensions, for the
    /// recorded API Gateway event of `GET /v1/agent/queues`.
    async fn seen_by_handler(auth: AgentAuthMode) -> Seen {
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let app = Router::new()
            .route(
                "/v1/agent/queues",
                get(move |request: Request| async move {
                    let identity = request.extensions().get::<AgentIdentity>().cloned();
                    let address = request
                        .extensions()
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|info| info.0);
                    *record.lock().unwrap() = Some((identity, address));
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Gateway {
                    auth,
                    accounts: None,
                },
                request_context,
            ));
        let event = include_str!("../../../infra/events/apigw-agent-queues.json");
        let request = lambda_http::request::from_str(event).expect("an API Gateway event");
        let request = request.map(|body| axum::body::Body::from(body.to_vec()));
        let response = app.oneshot(request).await.expect("infallible");
        assert!(response.status().is_success(), "{}", response.status());
        seen.lock().unwrap().take()
    }

    #[tokio::test]
    async fn given_an_authorized_event_in_cognito_mode_then_identity_groups_and_address_are_passed()
    {
        let (identity, address) = seen_by_handler(AgentAuthMode::Cognito).await.expect("ran");
        let identity = identity.expect("identity from the JWT claims");
        assert_eq!(identity.agent_id, "8c1f5e2a-7b3d-4e6f-9a0b-1c2d3e4f5a6b");
        assert_eq!(identity.role, Some(AgentRole::Agent));
        assert_eq!(identity.queues, ["general"]);
        assert_eq!(address, Some("203.0.113.24:0".parse().unwrap()));
    }

    #[tokio::test]
    async fn given_local_mode_then_claims_are_ignored_but_the_address_is_passed() {
        let (identity, address) = seen_by_handler(AgentAuthMode::Local).await.expect("ran");
        assert_eq!(identity, None);
        assert_eq!(address, Some("203.0.113.24:0".parse().unwrap()));
    }
}
