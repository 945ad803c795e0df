//! Wiring for the wechat-webhook Lambda.

use kefu::adapters::aws::Aws;
use kefu::channels::wechat::WechatConfig;
use kefu::{config, telemetry};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    config::install_id_secret()?;
    let wechat = WechatConfig::from_env()?;
    let aws = Aws::from_env().await;
    let inbound = Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?));
    let nonces = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    lambda_http::run(wechat_webhook::app(wechat, inbound, nonces)).await
}
