//! The web-api Lambda: the chat widget's HTTP API behind API Gateway (HTTP API, payload
//! 2.0). The routes live in [`kefu::web`]; this crate reads the configuration.

use kefu::auth::{ShopIdentitySecret, TokenSigner};
use kefu::config;
use kefu::ports::{ConversationStore, Leases, MessageQueue};
use kefu::web::WebState;
use std::sync::Arc;

/// Builds the web API state from the environment and the adapters.
pub fn state_from_env(
    store: Arc<dyn ConversationStore>,
    inbound: Arc<dyn MessageQueue>,
    polls: Arc<dyn Leases>,
) -> kefu::Result<WebState> {
    Ok(WebState {
        store,
        inbound,
        polls,
        tokens: TokenSigner::new(config::required("KEFU_TOKEN_SECRET")?)?,
        shop_identity_secret: config::optional("KEFU_SHOP_IDENTITY_SECRET")
            .map(ShopIdentitySecret::new)
            .transpose()?,
        config: config::web_config()?,
    })
}
