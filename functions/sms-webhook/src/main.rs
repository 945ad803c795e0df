//! Wiring for the sms-webhook Lambda.

use kefu::adapters::aws::Aws;
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sms_webhook::Handler;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    config::install_id_secret()?;
    let aws = Aws::from_env().await;
    let state = sms_webhook::state_from_env(
        Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?)),
        Arc::new(aws.store(&config::required("KEFU_TABLE")?)),
    )?;
    let handler = Handler::new(state);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
