//! Wiring for the dispatcher Lambda.

use kefu::adapters::aws::{Aws, Rebuilt};
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    config::install_id_secret()?;
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let outbound = kefu::lambda::source_queue(
        &aws,
        "KEFU_OUTBOUND_QUEUE_URL",
        "KEFU_OUTBOUND_DLQ_URL",
        store.clone(),
    )?;
    let outbound = &outbound;
    let dispatcher = Rebuilt::new(secrets, move || dispatcher::build(&aws, &store))?;
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let response = dispatcher::handle(&dispatcher.current(), outbound, event).await?;
        // A credential the provider rejected (rotated in Secrets Manager) fails its records;
        // SQS redelivers them to the dispatcher rebuilt with the new secrets.
        if !response.batch_item_failures.is_empty() {
            dispatcher.refresh().await;
        }
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
