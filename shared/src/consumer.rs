//! Queue consumption shared by the Lambda functions (SQS event batches) and the local
//! runner (a pump over an embedded [`MessageQueue`]).
//!
//! Both follow one rule for FIFO batches: records are handled in order **per message
//! group**, the groups side by side. A failure holds back only the later records of its own
//! group (they are given back unattempted, so order within the conversation holds); other
//! groups go on. A failed record spends one of its attempts and comes back after a growing
//! pause; a record held back, or paused by its handler ([`Error::Paused`], e.g. an open
//! circuit), spends none, so only messages that were themselves tried and failed reach the
//! dead-letter queue.

use crate::ports::{Delivery, MessageQueue};
use crate::{Error, cause_chain};
pub use shutdown::{Shutdown, Trigger};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How many failed attempts move a message to its dead-letter queue.
pub const MAX_ATTEMPTS: u32 = 5;
/// The pause before a failed record's first retry; it doubles with every receive.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest pause before a retry.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long a message waits when its group is still being handled by this pump.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// What became of one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: delete it.
    Done,
    /// Attempted and failed: give it back with one attempt spent, to come again after the
    /// pause.
    Failed(Duration),
    /// Not attempted (paused by its handler, or held behind its group's failure): give it
    /// back after the pause with no attempt spent.
    Deferred(Duration),
}

impl Outcome {
    /// Settles `delivery` on `queue` accordingly.
    pub async fn settle(self, queue: &dyn MessageQueue, delivery: &Delivery) -> crate::Result<()> {
        match self {
            Outcome::Done => queue.delete(&delivery.receipt).await,
            Outcome::Failed(pause) => queue.release(delivery, pause).await,
            Outcome::Deferred(pause) => queue.defer(delivery, pause).await,
        }
    }
}

/// The pause before retrying a record that failed on its `receive_count`-th receive.
pub fn retry_pause(receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Runs `handle` over `records` in order per group, the groups concurrently, and returns
/// each record's [`Outcome`] (in the records' order). After a record of a group fails or is
/// paused, the group's later records are not attempted: they are deferred as long.
pub async fn fifo_batch<'a, F, Fut>(records: &'a [Delivery], handle: F) -> Vec<Outcome>
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    let chains = by_group(records.iter().enumerate().collect());
    let handle = &handle;
    let runs = chains.into_iter().map(|chain| async move {
        let mut outcomes = Vec::with_capacity(chain.len());
        let mut held: Option<Duration> = None;
        for (index, record) in chain {
            let outcome = match held {
                Some(pause) => Outcome::Deferred(pause),
                None => outcome(record, handle(&record.body).await),
            };
            if let Outcome::Failed(pause) | Outcome::Deferred(pause) = outcome {
                held = Some(pause);
            }
            outcomes.push((index, outcome));
        }
        outcomes
    });
    let mut outcomes: Vec<(usize, Outcome)> = join_all(runs.collect()).await.concat();
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// The outcome of handling `record`, logged when it did not succeed.
fn outcome(record: &Delivery, result: crate::Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(Error::Paused(pause)) => {
            tracing::debug!(group = %record.group, ?pause, "record paused; its group waits");
            Outcome::Deferred(pause)
        }
        Err(error) => {
            let pause = retry_pause(record.receive_count);
            tracing::warn!(group = %record.group, receive_count = record.receive_count,
                ?pause, error = %cause_chain(&error),
                "record failed; it and its group's later records will be redelivered");
            Outcome::Failed(pause)
        }
    }
}

/// Splits records into one chain per group, each in the records' order, the chains in the
/// order their groups first appear.
fn by_group<T: Borrow<Delivery>>(records: Vec<(usize, T)>) -> Vec<Vec<(usize, T)>> {
    let mut chains: Vec<Vec<(usize, T)>> = Vec::new();
    for (index, record) in records {
        let group = &record.borrow().group;
        match chains.iter_mut().find(|c| &c[0].1.borrow().group == group) {
            Some(chain) => chain.push((index, record)),
            None => chains.push(vec![(index, record)]),
        }
    }
    chains
}

/// Polls `futures` together until all are done; their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// How a [`pump`] reads its queue.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// Messages per receive (SQS allows 10).
    pub batch: usize,
    /// Visibility timeout: how long a crashed handler hides a message.
    pub visibility: Duration,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Groups handled at once. Generous: a group whose provider hangs holds its slot until
    /// it times out, and other groups must still find one.
    pub concurrency: usize,
}

impl Default for PumpConfig {
    fn default() -> Self {
        Self {
            batch: 10,
            visibility: Duration::from_secs(30),
            wait: Duration::from_secs(1),
            concurrency: 64,
        }
    }
}

/// Consumes `queue` until `shutdown` fires, then finishes what it started. Each received
/// group runs as a task of its own (at most `concurrency` at once), its messages in order
/// with the rule of [`fifo_batch`]; the pump keeps receiving while groups run, so a slow or
/// failing group holds up no other.
pub async fn pump<F, Fut>(
    queue: Arc<dyn MessageQueue>,
    config: PumpConfig,
    shutdown: Shutdown,
    handle: F,
) where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = crate::Result<()>> + Send + 'static,
{
    let handle = Arc::new(handle);
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut running = JoinSet::new();
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    while !shutdown.is_triggered() {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = shutdown.triggered() => break,
        };
        let Ok(slot) = slot else { break };
        while running.try_join_next().is_some() {}
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
        let mut slot = Some(slot);
        for chain in by_group(batch.into_iter().enumerate().collect()) {
            let group = chain[0].1.group.clone();
            if !lock(&busy).insert(group.clone()) {
                // Still being handled here (it outlived its visibility timeout): never two
                // tasks for one conversation, so no reply goes out twice.
                for (_, delivery) in &chain {
                    if let Err(error) = queue.defer(delivery, BUSY_RETRY).await {
                        tracing::warn!(error = %cause_chain(&error), "defer failed");
                    }
                }
                continue;
            }
            let slot = match slot.take() {
                Some(slot) => slot,
                None => match slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let (queue, handle, busy) = (queue.clone(), handle.clone(), busy.clone());
            running.spawn(async move {
                let chain: Vec<Delivery> = chain.into_iter().map(|(_, d)| d).collect();
                run_chain(queue.as_ref(), handle.as_ref(), &chain).await;
                lock(&busy).remove(&group);
                drop(slot);
            });
        }
    }
    while running.join_next().await.is_some() {}
}

fn lock(busy: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    busy.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handles one group's messages in order and settles each at once.
async fn run_chain<F, Fut>(queue: &dyn MessageQueue, handle: &F, chain: &[Delivery])
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    let mut held: Option<Duration> = None;
    for delivery in chain {
        let outcome = match held {
            Some(pause) => Outcome::Deferred(pause),
            None => outcome(delivery, handle(delivery.body.clone()).await),
        };
        if let Outcome::Failed(pause) | Outcome::Deferred(pause) = outcome {
            held = Some(pause);
        }
        if let Err(error) = outcome.settle(queue, delivery).await {
            // The visibility timeout redelivers it; handlers are idempotent.
            tracing::warn!(error = %cause_chain(&error), "ack failed");
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

    fn record(id: &str, group: &str, body: &str) -> Delivery {
        Delivery {
            receipt: format!("r{id}"),
            message_id: id.to_owned(),
            group: group.to_owned(),
            body: body.to_owned(),
            receive_count: 1,
        }
    }

    /// Handles "ok" bodies, fails "bad", pauses "paused" for 7 s; logs what it was given.
    fn scripted(
        seen: &Mutex<Vec<String>>,
    ) -> impl Fn(&str) -> std::future::Ready<crate::Result<()>> {
        move |body: &str| {
            seen.lock().expect("log").push(body.to_owned());
            std::future::ready(match body {
                b if b.starts_with("bad") => Err(Error::Invalid("bad".into())),
                b if b.starts_with("paused") => Err(Error::Paused(Duration::from_secs(7))),
                _ => Ok(()),
            })
        }
    }

    #[tokio::test]
    async fn given_a_failure_when_batching_then_only_the_later_records_of_its_group_are_held_back()
    {
        let records = [
            record("1", "a", "ok a1"),
            record("2", "a", "bad a2"),
            record("3", "b", "ok b1"),
            record("4", "a", "ok a3"),
            record("5", "b", "ok b2"),
        ];
        let seen = Mutex::new(Vec::new());

        let outcomes = fifo_batch(&records, scripted(&seen)).await;

        let pause = retry_pause(1);
        assert_eq!(
            outcomes,
            [
                Outcome::Done,
                Outcome::Failed(pause),
                Outcome::Done,
                Outcome::Deferred(pause),
                Outcome::Done
            ]
        );
        let mut seen = seen.into_inner().expect("log");
        seen.sort();
        assert_eq!(
            seen,
            ["bad a2", "ok a1", "ok b1", "ok b2"],
            "a3 was never attempted"
        );
    }

    #[tokio::test]
    async fn given_a_paused_record_when_batching_then_it_and_its_group_are_deferred_unattempted() {
        let records = [
            record("1", "wechat", "paused w1"),
            record("2", "web", "ok v1"),
            record("3", "wechat", "ok w2"),
        ];
        let seen = Mutex::new(Vec::new());

        let outcomes = fifo_batch(&records, scripted(&seen)).await;

        let pause = Duration::from_secs(7);
        assert_eq!(
            outcomes,
            [
                Outcome::Deferred(pause),
                Outcome::Done,
                Outcome::Deferred(pause)
            ]
        );
        assert_eq!(seen.into_inner().expect("log").len(), 2);
    }

    #[tokio::test]
    async fn given_all_succeed_when_batching_then_nothing_fails() {
        let records = [record("1", "a", "ok"), record("2", "b", "ok")];
        let seen = Mutex::new(Vec::new());
        let outcomes = fifo_batch(&records, scripted(&seen)).await;
        assert_eq!(outcomes, [Outcome::Done, Outcome::Done]);
    }

    #[tokio::test(start_paused = true)]
    async fn given_two_slow_groups_when_batching_then_they_run_side_by_side() {
        let records = [
            record("1", "a", "a1"),
            record("2", "b", "b1"),
            record("3", "a", "a2"),
        ];
        let started = tokio::time::Instant::now();

        let outcomes = fifo_batch(&records, |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await;

        assert_eq!(outcomes, [Outcome::Done; 3]);
        // Virtual time: group a takes 20 s in order, group b 10 s beside it.
        assert_eq!(started.elapsed(), Duration::from_secs(20));
    }

    #[test]
    fn given_more_receives_when_pausing_then_the_pause_doubles_up_to_its_cap() {
        assert_eq!(retry_pause(1), Duration::from_millis(500));
        assert_eq!(retry_pause(2), Duration::from_secs(1));
        assert_eq!(retry_pause(4), Duration::from_secs(4));
        assert_eq!(retry_pause(1000), MAX_RETRY);
    }
}
