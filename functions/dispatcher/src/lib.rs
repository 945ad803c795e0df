//! The dispatcher Lambda: an SQS FIFO trigger on the outbound queue, reporting partial
//! batch failures. Delivery lives in [`kefu::dispatch::Dispatcher`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::adapters::aws::{Aws, DynamoStore, SnsSmsSender};
use kefu::channels::Egress;
use kefu::channels::email::EmailConfig;
use kefu::channels::sms::SmsConfig;
use kefu::channels::wechat::WechatConfig;
use kefu::config;
use kefu::dispatch::Dispatcher;
use kefu::ports::{ChannelSender, IdempotencyGuard, MailTransport, MessageQueue};
use lambda_runtime::LambdaEvent;
use std::sync::Arc;

/// Handles one SQS batch from `outbound`: records in order per conversation, a failure or a
/// paused channel holding back only its own conversation (see [`kefu::lambda::sqs_fifo_batch`]).
pub async fn handle(
    dispatcher: &Dispatcher,
    outbound: &dyn MessageQueue,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(
        kefu::lambda::sqs_fifo_batch(&event.payload, outbound, |body| async move {
            dispatcher.handle(&body).await
        })
        .await,
    )
}

/// The dispatcher with a sender for every channel the environment configures.
pub fn build(aws: &Aws, store: &Arc<DynamoStore>) -> kefu::Result<Dispatcher> {
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
