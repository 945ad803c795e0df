//! The web-api Lambda: the chat widget's HTTP API behind API Gateway (HTTP API, payload
//! 2.0). The routes live in [`kefu::web`]; this crate reads the configuration.

use kefu::auth::{ShopIdentitySecret, TokenSigner};
use kefu::config;
use kefu::ports::{ConversationStore, Leases, MessageQueue};
use kefu::web::{WebConfig, WebState};
use std::sync::Arc;

/// Builds the web API state from the environment and the adapters.
pub fn state_from_env(
    store: Arc<dyn ConversationStore>,
    inbound: Arc<dyn MessageQueue>,
    polls: Arc<dyn Leases>,
) -> anyhow::Result<WebState> {
    let max_polls_per_visitor = config::number(
        "KEFU_MAX_POLLS_PER_VISITOR",
        kefu::web::MAX_POLLS_PER_VISITOR,
    )?;
    anyhow::ensure!(
        max_polls_per_visitor >= 1,
        "KEFU_MAX_POLLS_PER_VISITOR must be at least 1"
    );
    Ok(WebState {
        store,
        inbound,
        polls,
        tokens: TokenSigner::new(config::required("KEFU_TOKEN_SECRET")?)?,
        shop_identity_secret: config::optional("KEFU_SHOP_IDENTITY_SECRET")
            .map(ShopIdentitySecret::new)
            .transpose()?,
        config: WebConfig {
            cors_origins: config::list("KEFU_CORS_ORIGINS", &[]),
            max_body_bytes: config::number("KEFU_MAX_BODY_BYTES", 16 * 1024)?,
            max_polls_per_visitor,
            ..WebConfig::default()
        },
    })
}
