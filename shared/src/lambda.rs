//! Lambda event glue shared by the SQS-triggered functions.

use crate::consumer::fifo_batch;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use std::future::Future;

/// Runs `handle` over an SQS FIFO batch in order and builds the partial-failure response:
/// the first failed record and every record after it are returned for redelivery.
pub async fn sqs_fifo_batch<'a, F, Fut>(event: &'a SqsEvent, handle: F) -> SqsBatchResponse
where
    F: FnMut(&'a str) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    let records = event.records.iter().map(|r| {
        (
            r.message_id.as_deref().unwrap_or_default(),
            r.body.as_deref().unwrap_or_default(),
        )
    });
    let failed = fifo_batch(records, handle).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut item = BatchItemFailure::default();
            item.item_identifier = id;
            item
        })
        .collect();
    response
}
