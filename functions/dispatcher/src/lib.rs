//! The dispatcher Lambda: an SQS FIFO trigger on the outbound queue, reporting partial
//! batch failures. Delivery lives in [`kefu::dispatch::Dispatcher`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::dispatch::Dispatcher;
use lambda_runtime::LambdaEvent;

/// Handles one SQS batch: records in order, stopping at the first failure (FIFO).
pub async fn handle(
    dispatcher: &Dispatcher,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(kefu::lambda::sqs_fifo_batch(&event.payload, |body| dispatcher.handle(body)).await)
}
