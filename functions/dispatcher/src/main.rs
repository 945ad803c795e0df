//! Wiring for the dispatcher Lambda.

use kefu::adapters::aws::Aws;
use kefu::adapters::aws::{Rebuilt, SnsSmsSender};
use kefu::channels::Egress;
use kefu::channels::email::EmailConfig;
use kefu::channels::sms::SmsConfig;
use kefu::channels::wechat::WechatConfig;
use kefu::dispatch::Dispatcher;
use kefu::ports::ChannelSender;
use kefu::ports::IdempotencyGuard;
use kefu::ports::MailTransport;
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
    let dispatcher = Rebuilt::new(secrets, move || build(&aws, &store))?;
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

fn build(aws: &Aws, store: &Arc<kefu::adapters::aws::DynamoStore>) -> anyhow::Result<Dispatcher> {
    let email = EmailConfig::from_env()?.map(|mailbox| {
        let ses = aws.ses_transport(config::optional("KEFU_SES_CONFIGURATION_SET"));
        (mailbox, Arc::new(ses) as Arc<dyn MailTransport>)
    });
    let sms = SmsConfig::from_env()?;
    // Without a Twilio number, SMS replies go out through SNS (End User Messaging) when it
    // has a number or sender id to send from.
    let sns = (sms.sns_origination_number.is_some() || sms.sns_sender_id.is_some()).then(|| {
        let sender = SnsSmsSender::new(aws.sdk_config(), &sms, store.clone());
        Arc::new(sender) as Arc<dyn ChannelSender>
    });
    kefu::channels::senders(
        Dispatcher::new(store.clone()),
        Egress {
            wechat: WechatConfig::from_env()?.as_ref(),
            sms: &sms,
            sms_fallback: sns,
            email,
        },
        &(store.clone() as Arc<dyn IdempotencyGuard>),
    )
}
