//! Wiring for the web-api Lambda.

use kefu::adapters::aws::{Aws, Rebuilt, RetryOnAuthFailure};
use kefu::{config, telemetry};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    config::install_id_secret()?;
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let inbound = Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?));
    // Rebuilt when a token fails to verify because the token secret was rotated.
    let app = Rebuilt::new(secrets, move || {
        let state = web_api::state_from_env(store.clone(), inbound.clone(), store.clone())?;
        Ok(kefu::web::router(state))
    })?;
    lambda_http::run(RetryOnAuthFailure::new(app)).await
}
