//! Wiring for the agent-api Lambda.

use agent_api::Gateway;
use kefu::adapters::aws::{Aws, Rebuilt, RetryOnAuthFailure};
use kefu::agent::AgentAuthMode;
use kefu::ports::AccountCheck;
use kefu::{config, telemetry};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let outbound = Arc::new(aws.queue(&config::required("KEFU_OUTBOUND_QUEUE_URL")?));
    let accounts: Arc<dyn AccountCheck> = Arc::new(aws.cognito_accounts());
    // Rebuilt when a token fails to verify because the token secret was rotated.
    let app = Rebuilt::new(secrets, move || {
        let state = agent_api::state_from_env(
            store.clone(),
            store.clone(),
            store.clone(),
            outbound.clone(),
        )?;
        let gateway = Gateway {
            auth: state.auth,
            accounts: (state.auth == AgentAuthMode::Cognito).then(|| accounts.clone()),
        };
        Ok(
            kefu::agent::router(state).layer(axum::middleware::from_fn_with_state(
                gateway,
                agent_api::request_context,
            )),
        )
    })?;
    lambda_http::run(RetryOnAuthFailure::new(app)).await
}
