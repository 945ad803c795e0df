//! The bot Lambda: an SQS FIFO trigger on the inbound queue, reporting partial batch
//! failures. The decisions live in [`kefu_bot::handler::Bot`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::adapters::aws::{DynamoStore, Rebuilt, S3BlobStore, Secrets, SqsMessageQueue};
use kefu::adapters::http_orders::{HttpOrderConfig, HttpOrderSource};
use kefu::config;
use kefu::ports::MessageQueue;
use kefu_bot::flows::{FlowConfig, Flows};
use kefu_bot::handler::Bot;
use kefu_bot::library::FaqLibrary;
use lambda_runtime::LambdaEvent;
use std::sync::Arc;

/// Handles one SQS batch from `inbound`: records in order per conversation, a failure
/// holding back only its own conversation (see [`kefu::lambda::sqs_fifo_batch`]).
pub async fn handle(
    bot: &Bot,
    inbound: &dyn MessageQueue,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(
        kefu::lambda::sqs_fifo_batch(&event.payload, inbound, |body| async move {
            bot.handle(&body).await
        })
        .await,
    )
}

/// The bot over the AWS adapters, from the environment (`kefu_bot::config`), rebuilt when
/// `secrets` change. Task flows need the shop's order API (`KEFU_ORDER_API_URL`); without
/// it the bot answers from the FAQ only.
pub fn bot_from_env(
    store: Arc<DynamoStore>,
    outbound: Arc<SqsMessageQueue>,
    faq: Arc<FaqLibrary>,
    blobs: Arc<S3BlobStore>,
    secrets: Secrets,
) -> kefu::Result<Rebuilt<Bot>> {
    let bot_config = kefu_bot::config::bot_config()?;
    let rotation = secrets.clone();
    Rebuilt::new(secrets, move || {
        let bot = Bot::new(
            store.clone(),
            outbound.clone(),
            faq.clone(),
            blobs.clone(),
            bot_config.clone(),
        )
        .with_work_queue(store.clone())
        .with_policy(kefu_bot::config::escalation_policy()?);
        Ok(match config::optional("KEFU_ORDER_API_URL") {
            Some(url) => {
                let orders = order_api(url, rotation.clone())?;
                bot.with_flows(Flows::new(Arc::new(orders), FlowConfig::default()))
            }
            None => bot,
        })
    })
}

/// The shop's order API, re-reading `KEFU_ORDER_API_SECRET` from Secrets Manager when the
/// shop refuses a signature (a rotated secret).
fn order_api(url: String, secrets: Secrets) -> kefu::Result<HttpOrderSource> {
    let secret = config::required("KEFU_ORDER_API_SECRET")?;
    Ok(
        HttpOrderSource::new(HttpOrderConfig::new(url, secret))?.with_key_refresh(Arc::new(
            move || {
                let secrets = secrets.clone();
                Box::pin(async move {
                    let changed = secrets.refresh().await.ok()?;
                    changed.then(|| config::optional("KEFU_ORDER_API_SECRET"))?
                })
            },
        )),
    )
}
