//! Wiring for the email-webhook Lambda.

use email_webhook::email_prefix;
use kefu::adapters::PrefixedBlobs;
use kefu::adapters::aws::Aws;
use kefu::ports::BlobStore;
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    aws.load_secrets().await?;
    config::install_id_secret()?;
    let prefix = email_prefix(&config::or("KEFU_EMAIL_PREFIX", "email/"));
    let bucket: Arc<dyn BlobStore> = Arc::new(aws.blobs(&config::required("KEFU_BUCKET")?));
    let mail: Arc<dyn BlobStore> = Arc::new(PrefixedBlobs::new(bucket, prefix));
    let handler = email_webhook::handler_from_env(
        Arc::new(aws.queue(&config::required("KEFU_INBOUND_QUEUE_URL")?)),
        Arc::new(aws.store(&config::required("KEFU_TABLE")?)),
        mail,
    )?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
