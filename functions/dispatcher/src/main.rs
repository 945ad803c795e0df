//! Wiring for the dispatcher Lambda.

use kefu::adapters::aws::Aws;
use kefu::dispatch::Dispatcher;
use kefu::{config, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    let dispatcher = Dispatcher::new(Arc::new(aws.store(&config::required("KEFU_TABLE")?)));
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        dispatcher::handle(dispatcher, event)
    }))
    .await
}
