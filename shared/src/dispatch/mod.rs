//! The dispatcher: takes replies off the outbound queue, records them in the conversation
//! (idempotent by message id, so a redelivered reply is stored once), delivers them on the
//! customer's channel and records the delivery state agents see.
//!
//! Delivery respects a per-channel rate (a token bucket per process) and retries transient
//! failures a few times with growing pauses; what still fails goes back to the queue, which
//! redelivers it later and finally moves it to the dead-letter queue. Permanent failures
//! are recorded on the message ("not delivered: reason") and never retried.
//!
//! Each channel has a circuit breaker (per process): after a few transient failures in a
//! row its provider is taken to be down, and its replies are not attempted but given back
//! to the queue ([`Error::Paused`]) to wait, spending none of their attempts, while one
//! probe at a time (after 1 s, then doubling up to 5 minutes) finds out when it is back.
//! The reply is already stored as pending, and its conversation's later replies wait
//! behind it in the queue, so once the provider answers each is delivered once, in order.

use crate::domain::{Channel, DeliveryState, NewMessage, OutboundMessage};
use crate::ports::{ChannelSender, ConversationStore, SendError};
use crate::{Error, Result};
use async_trait::async_trait;
use circuit::Circuit;
pub use circuit::CircuitPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

mod circuit;

/// The web channel: the widget polls the conversation, so a stored message is delivered.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebSender;

#[async_trait]
impl ChannelSender for WebSender {
    async fn send(&self, _message: &OutboundMessage) -> Result<(), SendError> {
        Ok(())
    }
}

/// How often a transient failure is retried in place, and how long to pause before each
/// retry, before the message goes back to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pauses before the 2nd, 3rd, … attempt; empty means one attempt.
    pub pauses: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            pauses: vec![Duration::from_millis(250), Duration::from_secs(1)],
        }
    }
}

/// At most `per_second` sends on a channel, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained sends per second.
    pub per_second: f64,
    /// Sends allowed at once after a quiet period.
    pub burst: u32,
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            refilled: Instant::now(),
        }
    }

    /// Takes a token, first waiting for one if the bucket is empty.
    async fn take(&mut self) {
        let capacity = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.refilled = now;
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.refilled = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// One channel's sender, its rate and its circuit.
struct Route {
    sender: Arc<dyn ChannelSender>,
    bucket: Option<Mutex<Bucket>>,
    circuit: Circuit,
}

/// Delivers outbound messages; see the module docs.
pub struct Dispatcher {
    store: Arc<dyn ConversationStore>,
    routes: HashMap<Channel, Route>,
    retry: RetryPolicy,
    circuit: CircuitPolicy,
}

impl Dispatcher {
    /// A dispatcher with the web channel; add others with [`Dispatcher::with_sender`].
    pub fn new(store: Arc<dyn ConversationStore>) -> Self {
        let dispatcher = Self {
            store,
            routes: HashMap::new(),
            retry: RetryPolicy::default(),
            circuit: CircuitPolicy::default(),
        };
        dispatcher.with_sender(Channel::Web, Arc::new(WebSender), None)
    }

    /// Delivers `channel` messages through `sender`, at most at `limit` when given.
    pub fn with_sender(
        mut self,
        channel: Channel,
        sender: Arc<dyn ChannelSender>,
        limit: Option<RateLimit>,
    ) -> Self {
        let bucket = limit.map(|limit| Mutex::new(Bucket::new(limit)));
        let circuit = Circuit::new(self.circuit.clone());
        self.routes.insert(
            channel,
            Route {
                sender,
                bucket,
                circuit,
            },
        );
        self
    }

    /// Opens each channel's circuit as `policy` says (default: after 3 transient failures
    /// in a row, for 1 s doubling up to 5 minutes).
    pub fn with_circuit(mut self, policy: CircuitPolicy) -> Self {
        for route in self.routes.values_mut() {
            route.circuit = Circuit::new(policy.clone());
        }
        self.circuit = policy;
        self
    }

    /// Retries transient failures as `retry` says (default: after 250 ms and 1 s).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sends with the channel's rate and the retry policy.
    async fn deliver(&self, route: &Route, message: &OutboundMessage) -> Result<(), SendError> {
        let mut pauses = self.retry.pauses.iter();
        loop {
            if let Some(bucket) = &route.bucket {
                bucket.lock().await.take().await;
            }
            match route.sender.send(message).await {
                // Once the circuit is open, retrying in place only burns time.
                Err(SendError::Transient(reason)) => match pauses.next() {
                    Some(pause) if !route.circuit.is_open() => {
                        tracing::info!(%reason, "transient delivery failure; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    _ => return Err(SendError::Transient(reason)),
                },
                done => return done,
            }
        }
    }

    /// Handles one queue body. `Err` means "redeliver later" (a transient failure or a
    /// backend error); permanent delivery failures are recorded and return `Ok`.
    #[tracing::instrument(skip_all, fields(conversation, message_id))]
    pub async fn handle(&self, body: &str) -> Result<()> {
        let message = OutboundMessage::from_json(body)?;
        let span = tracing::Span::current();
        span.record(
            "conversation",
            tracing::field::display(&message.conversation_id),
        );
        span.record("message_id", tracing::field::display(&message.message_id));

        let (stored, _) = self
            .store
            .append(
                &message.conversation_id,
                NewMessage {
                    message_id: message.message_id.clone(),
                    author: message.author,
                    agent_id: message.agent_id.clone(),
                    text: message.text.clone(),
                    created_at: message.created_at,
                    sentiment: None,
                    quick_replies: message.quick_replies.clone(),
                },
            )
            .await?;
        if stored.delivery != DeliveryState::Pending {
            tracing::info!("already delivered; skipping");
            return Ok(());
        }
        let state = match self.routes.get(&message.channel) {
            None => DeliveryState::Failed(format!("channel {} is not configured", message.channel)),
            Some(route) => {
                let pass = route.circuit.admit().map_err(|wait| {
                    tracing::debug!(channel = %message.channel, ?wait, "channel paused; the reply waits");
                    Error::Paused(wait)
                })?;
                match self.deliver(route, &message).await {
                    Ok(()) => {
                        pass.succeeded();
                        DeliveryState::Delivered
                    }
                    Err(SendError::Permanent(reason)) => {
                        pass.succeeded();
                        DeliveryState::Failed(reason)
                    }
                    Err(SendError::Transient(reason)) => {
                        pass.failed();
                        return Err(Error::backend(
                            format!("delivering on {}", message.channel),
                            reason,
                        ));
                    }
                }
            }
        };
        if let DeliveryState::Failed(reason) = &state {
            tracing::warn!(%reason, "not delivered");
        }
        self.store
            .set_delivery(&message.conversation_id, &message.message_id, state)
            .await
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::adapters::embedded::EmbeddedStore;
    use crate::domain::{
        Author, Conversation, ConversationKey, Customer, MessageId, SCHEMA_VERSION, now_millis,
    };
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails with each of `script` in turn, then succeeds; counts calls.
    struct Scripted {
        script: std::sync::Mutex<Vec<SendError>>,
        calls: AtomicU32,
    }

    impl Scripted {
        fn new(mut script: Vec<SendError>) -> Arc<Self> {
            script.reverse();
            Arc::new(Self {
                script: std::sync::Mutex::new(script),
                calls: AtomicU32::new(0),
            })
        }
    }

    #[async_trait]
    impl ChannelSender for Scripted {
        async fn send(&self, _: &OutboundMessage) -> Result<(), SendError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.script.lock().expect("script").pop() {
                Some(error) => Err(error),
                None => Ok(()),
            }
        }
    }

    async fn setup(sender: Arc<Scripted>) -> (tempfile::TempDir, Dispatcher, OutboundMessage) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn ConversationStore> = Arc::new(
            EmbeddedStore::open(dir.path())
                .expect("store")
                .conversations(),
        );
        let key = ConversationKey::new(Channel::Sms, "+8613800138000");
        let conversation = Conversation::new(&key, Customer::default(), now_millis());
        store.create(&conversation).await.expect("created");
        let message = OutboundMessage {
            schema: SCHEMA_VERSION,
            message_id: MessageId::random(),
            conversation_id: conversation.id.clone(),
            channel: Channel::Sms,
            recipient: "+8613800138000".into(),
            author: Author::Bot,
            agent_id: None,
            text: "您好".into(),
            quick_replies: Vec::new(),
            in_reply_to: None,
            created_at: now_millis(),
        };
        let dispatcher = Dispatcher::new(store)
            .with_sender(Channel::Sms, sender, None)
            .with_retry(RetryPolicy {
                pauses: vec![Duration::from_millis(1), Duration::from_millis(1)],
            });
        (dir, dispatcher, message)
    }

    async fn delivery(dispatcher: &Dispatcher, message: &OutboundMessage) -> DeliveryState {
        let stored = dispatcher
            .store
            .find_message(&message.conversation_id, &message.message_id)
            .await
            .expect("read")
            .expect("stored");
        stored.delivery
    }

    fn transient() -> SendError {
        SendError::Transient("503".into())
    }

    #[tokio::test]
    async fn given_two_transient_failures_when_dispatched_then_the_third_try_delivers() {
        let sender = Scripted::new(vec![transient(), transient()]);
        let (_dir, dispatcher, message) = setup(sender.clone()).await;

        dispatcher
            .handle(&message.to_json())
            .await
            .expect("delivered");

        assert_eq!(sender.calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Delivered
        );
    }

    #[tokio::test]
    async fn given_only_transient_failures_when_dispatched_then_it_goes_back_to_the_queue_pending()
    {
        let sender = Scripted::new(vec![transient(), transient(), transient()]);
        let (_dir, dispatcher, message) = setup(sender.clone()).await;

        let result = dispatcher.handle(&message.to_json()).await;

        assert!(result.is_err(), "the queue must redeliver it");
        assert_eq!(sender.calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Pending
        );
        // The redelivery succeeds and is recorded once.
        dispatcher
            .handle(&message.to_json())
            .await
            .expect("delivered");
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Delivered
        );
    }

    #[tokio::test]
    async fn given_a_permanent_failure_when_dispatched_then_it_is_recorded_and_not_retried() {
        let reason = "the customer opted out (STOP)";
        let sender = Scripted::new(vec![SendError::Permanent(reason.into())]);
        let (_dir, dispatcher, message) = setup(sender.clone()).await;

        dispatcher
            .handle(&message.to_json())
            .await
            .expect("recorded");
        dispatcher
            .handle(&message.to_json())
            .await
            .expect("redelivery skipped");

        assert_eq!(sender.calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Failed(reason.into())
        );
    }

    #[tokio::test]
    async fn given_a_provider_failing_in_a_row_when_the_next_reply_comes_then_it_waits_unsent() {
        let sender = Scripted::new(vec![transient(); 9]);
        let (_dir, dispatcher, message) = setup(sender.clone()).await;
        for _ in 0..3 {
            assert!(dispatcher.handle(&message.to_json()).await.is_err());
        }
        assert_eq!(sender.calls.load(Ordering::SeqCst), 9);

        let result = dispatcher.handle(&message.to_json()).await;

        assert!(
            matches!(result, Err(Error::Paused(wait)) if wait <= Duration::from_secs(1)),
            "{result:?}"
        );
        assert_eq!(sender.calls.load(Ordering::SeqCst), 9, "not attempted");
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Pending,
            "stored, waiting"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_an_open_circuit_when_its_pause_passed_and_the_provider_is_back_then_the_reply_is_delivered_once()
     {
        let sender = Scripted::new(vec![transient(); 9]);
        let (_dir, dispatcher, message) = setup(sender.clone()).await;
        for _ in 0..3 {
            assert!(dispatcher.handle(&message.to_json()).await.is_err());
        }
        tokio::time::advance(Duration::from_secs(1)).await;

        dispatcher
            .handle(&message.to_json())
            .await
            .expect("the probe delivers");
        dispatcher
            .handle(&message.to_json())
            .await
            .expect("a redelivery is skipped");

        assert_eq!(sender.calls.load(Ordering::SeqCst), 10);
        assert_eq!(
            delivery(&dispatcher, &message).await,
            DeliveryState::Delivered
        );
    }

    #[tokio::test(start_paused = true)]
    async fn given_two_per_second_when_five_sends_are_due_then_they_spread_over_two_seconds() {
        let mut bucket = Bucket::new(RateLimit {
            per_second: 2.0,
            burst: 1,
        });
        let started = Instant::now();
        for _ in 0..5 {
            bucket.take().await;
        }
        // Virtual time: the first send is free, the next four wait 0.5 s each.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
