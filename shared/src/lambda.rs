//! Lambda event glue shared by the SQS-triggered functions.

use crate::consumer::{Outcome, fifo_batch};
use crate::ports::{Delivery, MessageQueue};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;

/// Runs `handle` over an SQS FIFO batch with the rule of [`fifo_batch`] (in order per
/// message group, a failure holding back only its own group) and builds the partial-failure
/// response. `queue` is the queue the batch came from: a failed record is released there
/// (an attempt spent; after the last one it moves to the dead-letter queue), a record held
/// back or paused is deferred there (no attempt spent), each with its pause as visibility
/// timeout. Only the records not handled are reported as `batchItemFailures`.
pub async fn sqs_fifo_batch<F, Fut>(
    event: &SqsEvent,
    queue: &dyn MessageQueue,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    let mut failed = Vec::new();
    let mut records = Vec::with_capacity(event.records.len());
    for record in &event.records {
        match delivery(record) {
            Some(delivery) => records.push(delivery),
            None => {
                // Without receipt or group it cannot be settled here; the queue's
                // visibility timeout and redrive policy take care of it.
                tracing::error!(record = ?record.message_id, "SQS record without receipt handle or MessageGroupId");
                failed.push(record.message_id.clone().unwrap_or_default());
            }
        }
    }
    let outcomes = fifo_batch(&records, |body| handle(body.to_owned())).await;
    for (record, outcome) in records.iter().zip(outcomes) {
        if outcome == Outcome::Done {
            continue;
        }
        if let Err(error) = outcome.settle(queue, record).await {
            // Redelivered after the queue's visibility timeout instead.
            tracing::warn!(error = %crate::cause_chain(&error), "could not give the record back");
        }
        failed.push(record.message_id.clone());
    }
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

/// The record as a queue delivery; `None` without the fields a FIFO record always has.
fn delivery(record: &SqsMessage) -> Option<Delivery> {
    Some(Delivery {
        receipt: record.receipt_handle.clone()?,
        message_id: record.message_id.clone()?,
        group: record.attributes.get("MessageGroupId")?.clone(),
        body: record.body.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    })
}

/// The queue a function's SQS trigger reads: its URL in `url_var`; with a dead-letter queue
/// URL in `dlq_var`, failed attempts are counted in `attempts` and a message moves there
/// after [`MAX_ATTEMPTS`](crate::consumer::MAX_ATTEMPTS) of them. Without it only the
/// queue's redrive policy moves messages, counting every receive.
#[cfg(feature = "aws")]
pub fn source_queue(
    aws: &crate::adapters::aws::Aws,
    url_var: &str,
    dlq_var: &str,
    attempts: std::sync::Arc<dyn crate::ports::IdempotencyGuard>,
) -> crate::Result<crate::adapters::aws::SqsMessageQueue> {
    let queue = aws.queue(&crate::config::required(url_var)?);
    Ok(match crate::config::optional(dlq_var) {
        Some(dlq) => queue.with_dead_letters(dlq, crate::consumer::MAX_ATTEMPTS, attempts),
        None => {
            tracing::warn!(
                "{dlq_var} is not set: the redrive policy alone moves failed messages, counting every receive"
            );
            queue
        }
    })
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::Error;
    use crate::adapters::embedded::EmbeddedStore;
    use std::time::Duration;

    /// The records an SQS trigger would hand over for these deliveries.
    fn event(deliveries: &[Delivery]) -> SqsEvent {
        let records: Vec<_> = deliveries
            .iter()
            .map(|d| {
                serde_json::json!({
                    "messageId": d.message_id,
                    "receiptHandle": d.receipt,
                    "body": d.body,
                    "attributes": {
                        "MessageGroupId": d.group,
                        "ApproximateReceiveCount": d.receive_count.to_string(),
                    },
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SQS event")
    }

    fn failures(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[tokio::test]
    async fn given_a_failing_and_a_paused_group_when_a_batch_is_handled_then_only_their_records_are_reported()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path()).expect("store");
        let queue = store.queue("outbound").with_max_receives(2);
        for (group, body) in [
            ("a", "bad a1"),
            ("a", "a2"),
            ("b", "b1"),
            ("w", "paused w1"),
            ("w", "w2"),
            ("b", "b2"),
        ] {
            let dedup = body.replace(' ', "-");
            queue.send(group, &dedup, body).await.expect("sent");
        }
        let batch = queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .expect("received");
        assert_eq!(batch.len(), 6);
        let id = |body: &str| {
            batch
                .iter()
                .find(|d| d.body == body)
                .map(|d| d.message_id.clone())
                .expect("in the batch")
        };

        let response = sqs_fifo_batch(&event(&batch), &queue, |body| async move {
            match body.as_str() {
                b if b.starts_with("bad") => Err(Error::Invalid("bad".into())),
                b if b.starts_with("paused") => Err(Error::Paused(Duration::ZERO)),
                _ => Ok(()),
            }
        })
        .await;

        let mut reported = failures(&response);
        reported.sort();
        let mut expected = vec![id("bad a1"), id("a2"), id("paused w1"), id("w2")];
        expected.sort();
        assert_eq!(reported, expected, "group b is not reported");
        // Only "bad a1" spent an attempt: one more failure of it is its last (2).
        let again = queue
            .receive(10, Duration::from_secs(30), Duration::from_secs(2))
            .await
            .expect("received");
        let counts: Vec<(&str, u32)> = again
            .iter()
            .map(|d| (d.body.as_str(), d.receive_count))
            .collect();
        assert!(counts.contains(&("paused w1", 1)), "{counts:?}");
        assert!(counts.contains(&("w2", 1)), "{counts:?}");
    }
}
