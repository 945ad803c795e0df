//! Wiring for the wechat-webhook Lambda.

use kefu::adapters::aws::{Aws, Rebuilt, RetryOnAuthFailure};
use kefu::channels::wechat::WechatConfig;
use kefu::{config, telemetry};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    config::install_id_secret()?;
    let inbound = Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?));
    let nonces = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    // Rebuilt when a push fails its signature check because the token was rotated.
    let app = Rebuilt::new(secrets, move || {
        let wechat = WechatConfig::from_env()?;
        Ok(wechat_webhook::app(wechat, inbound.clone(), nonces.clone()))
    })?;
    lambda_http::run(RetryOnAuthFailure::new(app)).await
}
