//! Wiring for the dispatcher Lambda.

use kefu::adapters::aws::Aws;
use kefu::channels::sms::SmsConfig;
use kefu::channels::wechat::WechatConfig;
use kefu::dispatch::Dispatcher;
use kefu::ports::IdempotencyGuard;
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let store = Arc::new(aws.store(&config::required("KEFU_TABLE")?));
    let dispatcher = kefu::channels::senders(
        Dispatcher::new(store.clone()),
        WechatConfig::from_env()?.as_ref(),
        &SmsConfig::from_env()?,
        &(store as Arc<dyn IdempotencyGuard>),
    )?;
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        dispatcher::handle(dispatcher, event)
    }))
    .await
}
