//! Wiring for the bot Lambda: configuration, AWS clients and the FAQ index, once per cold start.

use kefu::adapters::aws::{Aws, Rebuilt};
use kefu::adapters::http_orders::{HttpOrderConfig, HttpOrderSource};
use kefu::{config, telemetry};
use kefu_bot::flows::{FlowConfig, Flows};
use kefu_bot::handler::{Bot, BotConfig};
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
    // A broken index must not stop the bot: it then hands every question to a human,
    // and the library retries at its next reload check.
    if let Err(error) = faq.load(blobs.as_ref()).await {
        tracing::error!(error = %kefu::cause_chain(&error), "FAQ index not loaded");
    }
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let inbound = kefu::lambda::source_queue(
        &aws,
        "KEFU_INBOUND_QUEUE_URL",
        "KEFU_INBOUND_DLQ_URL",
        store.clone(),
    )?;
    let inbound = &inbound;
    let outbound = Arc::new(aws.queue(&config::required("KEFU_OUTBOUND_QUEUE_URL")?));
    let service_hours = kefu_bot::config::service_hours()?;
    let rotation = secrets.clone();
    let bot = Rebuilt::new(secrets, move || {
        let bot = Bot::new(
            store.clone(),
            outbound.clone(),
            faq.clone(),
            blobs.clone(),
            BotConfig {
                default_queue: config::or("KEFU_DEFAULT_QUEUE", "general"),
                shop_name: config::optional("KEFU_SHOP_NAME"),
                service_hours: service_hours.clone(),
            },
        )
        .with_work_queue(store.clone())
        .with_policy(kefu_bot::config::escalation_policy()?);
        // Task flows need the shop's order API; without it the bot answers from the FAQ only.
        Ok(match config::optional("KEFU_ORDER_API_URL") {
            Some(url) => {
                let secret = config::required("KEFU_ORDER_API_SECRET")?;
                let rotation = rotation.clone();
                let orders = HttpOrderSource::new(HttpOrderConfig::new(url, secret))?
                    .with_key_refresh(Arc::new(move || {
                        let rotation = rotation.clone();
                        Box::pin(async move {
                            let changed = rotation.refresh().await.ok()?;
                            changed.then(|| config::optional("KEFU_ORDER_API_SECRET"))?
                        })
                    }));
                bot.with_flows(Flows::new(Arc::new(orders), FlowConfig::default()))
            }
            None => bot,
        })
    })?;
    let bot = &bot;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let response = bot::handle(&bot.current(), inbound, event).await?;
        // Failed records come back from SQS; a rotated order API secret is re-read first.
        if !response.batch_item_failures.is_empty() {
            bot.refresh().await;
        }
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
