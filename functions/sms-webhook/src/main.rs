//! Wiring for the sms-webhook Lambda.

use kefu::adapters::aws::{Aws, Rebuilt};
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sms_webhook::Handler;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    config::install_id_secret()?;
    let inbound = Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?));
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let handler = Rebuilt::new(secrets, move || {
        let state = sms_webhook::state_from_env(inbound.clone(), store.clone())?;
        Ok(Handler::new(state))
    })?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let response = handler.current().handle(event.payload.clone()).await?;
        // A request refused under the cached credentials (a rotated Twilio auth token, an
        // Aliyun path token) is answered again once the secrets are re-read.
        if refused(&response) && handler.refresh().await {
            return handler.current().handle(event.payload).await;
        }
        Ok(response)
    }))
    .await
}

fn refused(response: &Value) -> bool {
    matches!(response["statusCode"].as_u64(), Some(401 | 403 | 404))
}
