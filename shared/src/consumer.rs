//! Queue consumption shared by the Lambda functions (SQS event batches) and the local
//! runner (a pump over an embedded [`MessageQueue`]).
//!
//! Both follow SQS FIFO's rule for partial batch failures: once a record fails, every later
//! record of the batch is reported failed too, so nothing overtakes a failed message.

use crate::cause_chain;
use crate::ports::MessageQueue;
pub use shutdown::{Shutdown, Trigger};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs `handle` over `(id, body)` records in order. Returns the ids to report as
/// `batchItemFailures`: the first failure and everything after it.
pub async fn fifo_batch<'a, I, F, Fut>(records: I, mut handle: F) -> Vec<String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    F: FnMut(&'a str) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    let mut failed = Vec::new();
    for (id, body) in records {
        if !failed.is_empty() {
            failed.push(id.to_owned());
            continue;
        }
        if let Err(error) = handle(body).await {
            tracing::warn!(record = id, error = %cause_chain(&error), "record failed; it and later records will be redelivered");
            failed.push(id.to_owned());
        }
    }
    failed
}

/// How a [`pump`] reads its queue.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// Messages per receive (SQS allows 10).
    pub batch: usize,
    /// Visibility timeout: how long a failed or crashed handler hides a message.
    pub visibility: Duration,
    /// Long-poll wait per receive.
    pub wait: Duration,
}

impl Default for PumpConfig {
    fn default() -> Self {
        Self {
            batch: 10,
            visibility: Duration::from_secs(30),
            wait: Duration::from_secs(1),
        }
    }
}

/// Consumes `queue` until `shutdown` fires. Messages are handled in order and deleted once
/// handled; after a failure, it and the rest of the batch are released for redelivery
/// (the same rule as [`fifo_batch`]).
pub async fn pump<F, Fut>(
    queue: Arc<dyn MessageQueue>,
    config: PumpConfig,
    shutdown: Shutdown,
    handle: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    while !shutdown.is_triggered() {
        let batch = tokio::select! {
            batch = queue.receive(config.batch, config.visibility, config.wait) => batch,
            _ = shutdown.triggered() => break,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(error = %cause_chain(&error), "receive failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut failed = false;
        for delivery in batch {
            let outcome = if failed {
                queue.release(&delivery.receipt).await
            } else if let Err(error) = handle(delivery.body).await {
                tracing::warn!(error = %cause_chain(&error), "message failed; it and the rest of the batch will be redelivered");
                failed = true;
                queue.release(&delivery.receipt).await
            } else {
                queue.delete(&delivery.receipt).await
            };
            if let Err(error) = outcome {
                // The visibility timeout redelivers it; handlers are idempotent.
                tracing::warn!(error = %cause_chain(&error), "ack failed");
            }
        }
        if failed {
            // Back off a little so a persistent failure does not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A tiny cloneable shutdown signal (a `watch` channel).
pub mod shutdown {
    use tokio::sync::watch;

    /// Fires once; every clone sees it.
    #[derive(Debug, Clone)]
    pub struct Shutdown(watch::Receiver<bool>);

    /// The sending half of [`Shutdown`].
    #[derive(Debug)]
    pub struct Trigger(watch::Sender<bool>);

    /// A new signal.
    pub fn shutdown() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Shutdown(rx))
    }

    impl Trigger {
        /// Fires the signal.
        pub fn trigger(&self) {
            let _ = self.0.send(true);
        }
    }

    impl Shutdown {
        /// Whether it fired.
        pub fn is_triggered(&self) -> bool {
            *self.0.borrow()
        }

        /// Resolves when it fires (or its trigger is dropped).
        pub async fn triggered(&self) {
            let mut rx = self.0.clone();
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[tokio::test]
    async fn given_a_failure_when_batching_then_it_and_all_later_records_fail() {
        let records = [("1", "ok"), ("2", "bad"), ("3", "ok")];
        let failed = fifo_batch(records, |body| async move {
            if body == "bad" {
                Err(Error::Invalid("bad".into()))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(failed, vec!["2".to_string(), "3".to_string()]);
    }

    #[tokio::test]
    async fn given_all_succeed_when_batching_then_nothing_fails() {
        let failed = fifo_batch([("1", "a"), ("2", "b")], |_| async { Ok(()) }).await;
        assert!(failed.is_empty());
    }
}
