//! The bot Lambda: an SQS FIFO trigger on the inbound queue, reporting partial batch
//! failures. The decisions live in [`kefu::bot::handler::Bot`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use kefu::bot::handler::Bot;
use lambda_runtime::LambdaEvent;

/// Handles one SQS batch: records in order, stopping at the first failure (FIFO).
pub async fn handle(
    bot: &Bot,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(kefu::lambda::sqs_fifo_batch(&event.payload, |body| bot.handle(body)).await)
}
