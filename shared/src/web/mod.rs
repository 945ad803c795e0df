//! Web widget API: the shop's chat widget opens a session, posts customer messages and
//! long-polls for replies.
//!
//! | Route | Does |
//! |---|---|
//! | `POST /v1/web/sessions` | opens (or, for a shop-verified customer, resumes) a conversation; returns a visitor token |
//! | `POST /v1/web/messages` | stores a customer message and queues it for the bot; idempotent by `client_message_id` |
//! | `GET /v1/web/messages?after=&wait=` | messages after a seq, waiting up to `wait` seconds for the first; 429 while the token already holds [`WebConfig::max_polls_per_visitor`] waiting polls |
//!
//! The same [`router`] runs in Lambda (`lambda_http::run`) and in the local runner
//! (`axum::serve`). CORS is answered here for the configured origins only (exact match).
//! Behind an HTTP API that has its own `CorsConfiguration` (the SAM template sets one from
//! the same `KEFU_CORS_ORIGINS`), API Gateway answers preflights and replaces these
//! headers; both must list the same origins.

mod messages;
mod session;
mod visitor;

use crate::auth::{ShopIdentitySecret, TokenSigner};
use crate::ports::{ConversationStore, Leases, MessageQueue};
use axum::Router;
use axum::routing::post;
use http::HeaderValue;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Longest long poll a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// Default of [`WebConfig::max_polls_per_visitor`]: one poll, and one more while a page
/// reloads or a second tab is open.
pub const MAX_POLLS_PER_VISITOR: u32 = 2;

/// What the web API needs.
#[derive(Clone)]
pub struct WebState {
    /// Conversations and messages.
    pub store: Arc<dyn ConversationStore>,
    /// The inbound queue (`KEFU_INBOUND_QUEUE_URL`).
    pub inbound: Arc<dyn MessageQueue>,
    /// Leases that cap each visitor's concurrent long polls across every instance (on
    /// Lambda each waiting poll is an instance of its own).
    pub polls: Arc<dyn Leases>,
    /// Signs and checks visitor tokens (`KEFU_TOKEN_SECRET`).
    pub tokens: TokenSigner,
    /// `KEFU_SHOP_IDENTITY_SECRET`; without it, sessions with an identity are refused.
    pub shop_identity_secret: Option<ShopIdentitySecret>,
    /// Limits and CORS.
    pub config: WebConfig,
}

/// Tunables of the web API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Origins allowed to call the API from a browser (`KEFU_CORS_ORIGINS`), matched
    /// exactly, e.g. `https://shop.example.com`. Empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// Request body limit (`KEFU_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Upper bound for `wait` on `GET /v1/web/messages`.
    pub max_wait: Duration,
    /// How often a long poll re-reads the store.
    pub poll_interval: Duration,
    /// Concurrent waiting polls one visitor token may hold (`KEFU_MAX_POLLS_PER_VISITOR`);
    /// more get 429.
    pub max_polls_per_visitor: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            max_body_bytes: 16 * 1024,
            max_wait: MAX_WAIT,
            poll_interval: Duration::from_secs(1),
            max_polls_per_visitor: MAX_POLLS_PER_VISITOR,
        }
    }
}

/// The web widget API. Serve it with `lambda_http::run` or `axum::serve`; it has no
/// fallback of its own, so it can be merged with other routers.
pub fn router(state: WebState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let max_body_bytes = state.config.max_body_bytes;
    let routes = Router::new()
        .route("/v1/web/sessions", post(session::create))
        .route("/v1/web/messages", post(messages::send).get(messages::poll))
        .with_state(Arc::new(state));
    let router = crate::http::api_layers(routes, max_body_bytes);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for exactly `origins`; `None` when no origin is configured (same-origin only).
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| {
            let origin = origin.trim().trim_end_matches('/');
            match HeaderValue::from_str(origin) {
                Ok(value) if origin.starts_with("http://") || origin.starts_with("https://") => {
                    Some(value)
                }
                _ => {
                    tracing::warn!(origin, "ignoring malformed CORS origin");
                    None
                }
            }
        })
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods(crate::http::API_METHODS)
            .allow_headers([AUTHORIZATION, CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}
