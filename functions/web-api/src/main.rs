//! Wiring for the web-api Lambda.

use kefu::adapters::aws::Aws;
use kefu::{config, telemetry};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    config::install_id_secret()?;
    let aws = Aws::from_env().await;
    let state = web_api::state_from_env(
        Arc::new(aws.store(&config::required("KEFU_TABLE")?)),
        Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?)),
    )?;
    lambda_http::run(kefu::web::router(state)).await
}
