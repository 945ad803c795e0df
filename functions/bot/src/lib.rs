//! The bot Lambda: an SQS FIFO trigger on the inbound queue, reporting partial batch
//! failures. The decisions live in [`kefu_bot::handler::Bot`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::ports::MessageQueue;
use kefu_bot::handler::Bot;
use lambda_runtime::LambdaEvent;

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
