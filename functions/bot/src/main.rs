//! Wiring for the bot Lambda: configuration, AWS clients and the FAQ index, once per cold start.

use kefu::adapters::aws::Aws;
use kefu::{config, telemetry};
use kefu_bot::library::FaqLibrary;
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    kefu::sentiment::warm_up();
    let aws = Aws::from_env().await;
    let secrets = aws.load_secrets().await?;
    config::install_id_secret()?;
    let blobs = Arc::new(aws.blobs(&config::required("KEFU_BUCKET")?));
    let faq = Arc::new(FaqLibrary::new(kefu_bot::config::faq_reload_interval()?));
    // A broken index must not stop the bot: it hands every question to a person meanwhile.
    if let Err(error) = faq.load(blobs.as_ref()).await {
        tracing::error!(error = %kefu::cause_chain(&error), "FAQ index not loaded");
    }
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let (queue, dlq) = ("KEFU_INBOUND_QUEUE_URL", "KEFU_INBOUND_DLQ_URL");
    let inbound = &kefu::lambda::source_queue(&aws, queue, dlq, store.clone())?;
    let outbound = Arc::new(aws.queue(&config::required("KEFU_OUTBOUND_QUEUE_URL")?));
    let bot = &bot::bot_from_env(store, outbound, faq, blobs, secrets)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let response = bot::handle(&bot.current(), inbound, event).await?;
        // Failed records come back from SQS; a rotated secret is re-read first.
        if !response.batch_item_failures.is_empty() {
            bot.refresh().await;
        }
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
