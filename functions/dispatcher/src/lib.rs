//! The dispatcher Lambda: an SQS FIFO trigger on the outbound queue, reporting partial
//! batch failures. Delivery lives in [`kefu::dispatch::Dispatcher`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::dispatch::Dispatcher;
use kefu::ports::MessageQueue;
use lambda_runtime::LambdaEvent;

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
