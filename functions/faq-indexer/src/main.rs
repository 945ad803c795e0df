//! Wiring for the FAQ indexer Lambda.

use kefu::adapters::aws::Aws;
use kefu::{config, telemetry};
use kefu_bot::calibrate::TargetWrongRate;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(&config::or("KEFU_LOG", "info"), true);
    let aws = Aws::from_env().await;
    aws.load_secrets().await?;
    let blobs = aws.blobs(&config::required("KEFU_BUCKET")?);
    let target = config::number("KEFU_FAQ_TARGET_WRONG_RATE", TargetWrongRate::default())?;
    let blobs = &blobs;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        faq_indexer::handle(blobs, target, event)
    }))
    .await
}
