//! Handler tests across functions: web-api → inbound queue → bot → outbound queue →
//! dispatcher → conversation, with the embedded adapters and the demo FAQ. Covers the
//! exactly-once guarantees (client retries, failures between steps, redeliveries),
//! escalation and the human handoff.

use async_trait::async_trait;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{EmbeddedStore, INBOUND, OUTBOUND};
use kefu::agent::{AgentAuthMode, AgentState, ensure_agent};
use kefu::auth::TokenSigner;
use kefu::dispatch::Dispatcher;
use kefu::domain::{Author, ConversationId, ConversationState, Message};
use kefu::ports::{BlobStore, ConversationStore, Delivery, MessageQueue};
use kefu::web::{WebConfig, WebState};
use kefu_bot::flows::{FlowConfig, Flows};
use kefu_bot::handler::{Bot, BotConfig};
use kefu_bot::library::{FaqLibrary, publish};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tower::ServiceExt;

/// Fails the first `n` sends, then behaves like the queue it wraps: a crash between the
/// bot storing a message and enqueueing its reply.
struct FailingSends {
    inner: Arc<dyn MessageQueue>,
    failures_left: AtomicU32,
}

#[async_trait]
impl MessageQueue for FailingSends {
    async fn send(&self, group: &str, dedup_id: &str, body: &str) -> kefu::Result<()> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(kefu::Error::backend(
                "send",
                anyhow::anyhow!("injected failure"),
            ));
        }
        self.inner.send(group, dedup_id, body).await
    }
    async fn receive(&self, max: usize, v: Duration, w: Duration) -> kefu::Result<Vec<Delivery>> {
        self.inner.receive(max, v, w).await
    }
    async fn delete(&self, receipt: &str) -> kefu::Result<()> {
        self.inner.delete(receipt).await
    }
    async fn release(&self, delivery: &Delivery, delay: Duration) -> kefu::Result<()> {
        self.inner.release(delivery, delay).await
    }
    async fn defer(&self, delivery: &Delivery, delay: Duration) -> kefu::Result<()> {
        self.inner.defer(delivery, delay).await
    }
}

/// Fails the first `n` conversation saves: a crash after the reply was enqueued but before
/// the bot recorded that it acted.
struct FailingSaves {
    inner: Arc<dyn ConversationStore>,
    failures_left: AtomicU32,
}

#[async_trait]
impl ConversationStore for FailingSaves {
    async fn create(
        &self,
        c: &kefu::domain::Conversation,
    ) -> kefu::Result<kefu::domain::Conversation> {
        self.inner.create(c).await
    }
    async fn get(&self, id: &ConversationId) -> kefu::Result<Option<kefu::domain::Conversation>> {
        self.inner.get(id).await
    }
    async fn save(&self, c: &mut kefu::domain::Conversation) -> kefu::Result<()> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(kefu::Error::backend(
                "save",
                anyhow::anyhow!("injected failure"),
            ));
        }
        self.inner.save(c).await
    }
    async fn append(
        &self,
        id: &ConversationId,
        m: kefu::domain::NewMessage,
    ) -> kefu::Result<(Message, bool)> {
        self.inner.append(id, m).await
    }
    async fn messages(
        &self,
        id: &ConversationId,
        after: u64,
        limit: usize,
    ) -> kefu::Result<Vec<Message>> {
        self.inner.messages(id, after, limit).await
    }
    async fn find_message(
        &self,
        id: &ConversationId,
        message_id: &kefu::domain::MessageId,
    ) -> kefu::Result<Option<Message>> {
        self.inner.find_message(id, message_id).await
    }
    async fn set_delivery(
        &self,
        id: &ConversationId,
        message_id: &kefu::domain::MessageId,
        state: kefu::domain::DeliveryState,
    ) -> kefu::Result<()> {
        self.inner.set_delivery(id, message_id, state).await
    }
}

struct System {
    _dir: tempfile::TempDir,
    storage: EmbeddedStore,
    store: Arc<dyn ConversationStore>,
    inbound: Arc<dyn MessageQueue>,
    outbound: Arc<dyn MessageQueue>,
    web: axum::Router,
    agent: axum::Router,
    bot: Bot,
    dispatcher: Dispatcher,
}

/// Faults to inject into the bot's ports.
#[derive(Default)]
struct Faults {
    failed_reply_sends: u32,
    failed_saves: u32,
}

async fn system(faults: Faults) -> System {
    let dir = tempfile::tempdir().unwrap();
    let storage = EmbeddedStore::open(dir.path()).unwrap();
    let store: Arc<dyn ConversationStore> = Arc::new(storage.conversations());
    let inbound: Arc<dyn MessageQueue> = Arc::new(storage.queue(INBOUND));
    let outbound: Arc<dyn MessageQueue> = Arc::new(storage.queue(OUTBOUND));
    let blobs: Arc<dyn BlobStore> = Arc::new(storage.blobs());
    let faq_source = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/faq/faq.jsonl");
    blobs
        .put("faq/source/faq.jsonl", std::fs::read(faq_source).unwrap())
        .await
        .unwrap();
    publish(blobs.as_ref(), "faq/source/faq.jsonl")
        .await
        .unwrap();
    let faq = Arc::new(FaqLibrary::default());
    faq.load(blobs.as_ref()).await.unwrap();

    let tokens = TokenSigner::new("pipeline-test-secret-0123456789abcdef").unwrap();
    let agents = Arc::new(storage.agents());
    let queues = vec!["general".to_string()];
    ensure_agent(agents.as_ref(), "alice", "pw-alice", "Alice", &queues)
        .await
        .unwrap();
    ensure_agent(agents.as_ref(), "bob", "pw-bob", "Bob", &queues)
        .await
        .unwrap();

    let bot_store: Arc<dyn ConversationStore> = Arc::new(FailingSaves {
        inner: store.clone(),
        failures_left: AtomicU32::new(faults.failed_saves),
    });
    let bot_outbound: Arc<dyn MessageQueue> = Arc::new(FailingSends {
        inner: outbound.clone(),
        failures_left: AtomicU32::new(faults.failed_reply_sends),
    });
    let bot =
        Bot::new(bot_store, bot_outbound, faq, blobs, BotConfig::default()).with_flows(Flows::new(
            Arc::new(kefu::adapters::demo_orders::DemoOrderSource::new()),
            FlowConfig::default(),
        ));
    let dispatcher = Dispatcher::new(store.clone());
    let web = kefu::web::router(WebState {
        store: store.clone(),
        inbound: inbound.clone(),
        polls: Arc::new(storage.leases()),
        tokens: tokens.clone(),
        shop_identity_secret: None,
        config: WebConfig {
            poll_interval: Duration::from_millis(20),
            ..WebConfig::default()
        },
    });
    let agent = kefu::agent::router(AgentState {
        store: store.clone(),
        work: Arc::new(storage.conversations()),
        agents,
        outbound: outbound.clone(),
        tokens,
        auth: AgentAuthMode::Local,
        queues,
        login: Default::default(),
        max_body_bytes: 16 * 1024,
    });
    System {
        _dir: dir,
        storage,
        store,
        inbound,
        outbound,
        web,
        agent,
        bot,
        dispatcher,
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl System {
    async fn session(&self) -> (ConversationId, String) {
        let (status, body) = call(&self.web, "POST", "/v1/web/sessions", None, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            ConversationId::parse(body["conversation_id"].as_str().unwrap()).unwrap(),
            body["visitor_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn say(&self, token: &str, client_id: &str, text: &str) -> Value {
        let (status, body) = call(
            &self.web,
            "POST",
            "/v1/web/messages",
            Some(token),
            json!({"client_message_id": client_id, "text": text}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    /// Everything the widget sees, without waiting.
    async fn poll(&self, token: &str) -> Value {
        let uri = "/v1/web/messages?after=0&wait=0";
        let (status, body) = call(&self.web, "GET", uri, Some(token), Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Runs the bot and the dispatcher until both queues are empty, like the Lambda
    /// triggers would: failed messages are released and redelivered.
    async fn drain(&self) {
        for _ in 0..50 {
            let (bot, dispatcher) = (&self.bot, &self.dispatcher);
            let a = drain_once(
                self.inbound.as_ref(),
                |b| async move { bot.handle(&b).await },
            )
            .await;
            let b = drain_once(self.outbound.as_ref(), |b| async move {
                dispatcher.handle(&b).await
            })
            .await;
            if a == 0 && b == 0 {
                return;
            }
        }
        panic!("queues did not drain");
    }

    async fn history(&self, id: &ConversationId) -> Vec<Message> {
        self.store.messages(id, 0, 1000).await.unwrap()
    }

    async fn agent_token(&self, user: &str, password: &str) -> String {
        let (status, body) = call(
            &self.agent,
            "POST",
            "/v1/agent/login",
            None,
            json!({"username": user, "password": password}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// Receives once and handles the batch as the consumers do (in order per conversation, a
/// failure holding back only its own); returns how many were received. What fails comes back
/// at once: the pauses between retries are the consumers' business.
async fn drain_once<F, Fut>(queue: &dyn MessageQueue, handle: F) -> usize
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = kefu::Result<()>>,
{
    use kefu::consumer::{Outcome, fifo_batch};
    let batch = queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    let outcomes = fifo_batch(&batch, |body| handle(body.to_owned())).await;
    for (delivery, outcome) in batch.iter().zip(outcomes) {
        let outcome = match outcome {
            Outcome::Failed(_) => Outcome::Failed(Duration::ZERO),
            Outcome::Deferred(_) => Outcome::Deferred(Duration::ZERO),
            Outcome::Done => Outcome::Done,
        };
        outcome.settle(queue, delivery).await.unwrap();
    }
    batch.len()
}

fn authors(history: &[Message]) -> Vec<Author> {
    history.iter().map(|m| m.author).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_client_retry_when_the_same_message_is_posted_three_times_then_one_message_and_one_reply()
 {
    let system = system(Faults::default()).await;
    let (conversation, token) = system.session().await;

    let first = system.say(&token, "retry-1", "运费怎么算").await;
    let second = system.say(&token, "retry-1", "运费怎么算").await;
    let third = system.say(&token, "retry-1", "运费怎么算").await;
    system.drain().await;

    assert_eq!(first, second);
    assert_eq!(first, third);
    let history = system.history(&conversation).await;
    assert_eq!(
        authors(&history),
        vec![Author::Customer, Author::Bot],
        "{history:#?}"
    );
    assert!(
        history[1].text.contains("包邮"),
        "answered from the FAQ: {}",
        history[1].text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_an_answer_with_a_variable_and_quick_replies_then_the_widget_gets_them_filled_in() {
    let system = system(Faults::default()).await;
    let (_, token) = system.session().await;
    system.say(&token, "quick-1", "运费怎么算").await;
    system.drain().await;

    let body = system.poll(&token).await;
    let answer = &body["messages"][1];
    // shipping-fee-zh: "{{customer_name|亲}}，单笔订单…"; an anonymous visitor has no name.
    let text = answer["text"].as_str().unwrap();
    assert!(text.starts_with("亲，单笔订单实付满99元"), "{text}");
    assert_eq!(
        answer["quick_replies"],
        json!(["退货运费谁出？", "退款多久能到账？"])
    );
    assert!(body["messages"][0].get("quick_replies").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_failure_between_storing_and_replying_when_redelivered_then_answered_once() {
    let system = system(Faults {
        failed_reply_sends: 1,
        ..Faults::default()
    })
    .await;
    let (conversation, token) = system.session().await;

    system
        .say(&token, "m1", "How long does a refund take?")
        .await;
    system.drain().await;

    let history = system.history(&conversation).await;
    assert_eq!(
        authors(&history),
        vec![Author::Customer, Author::Bot],
        "{history:#?}"
    );
    let stats = system
        .storage
        .dead_letter_queue(INBOUND)
        .depth()
        .await
        .unwrap();
    assert_eq!(stats.total(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_failure_after_the_reply_was_queued_when_redelivered_then_still_one_reply() {
    let system = system(Faults {
        failed_saves: 1,
        ..Faults::default()
    })
    .await;
    let (conversation, token) = system.session().await;

    system.say(&token, "m1", "退货流程是什么").await;
    system.drain().await;

    let history = system.history(&conversation).await;
    assert_eq!(
        authors(&history),
        vec![Author::Customer, Author::Bot],
        "{history:#?}"
    );
    let stored = system.store.get(&conversation).await.unwrap().unwrap();
    assert_eq!(stored.bot_seq, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_request_for_a_person_then_the_conversation_waits_in_the_queue_with_its_reason() {
    let system = system(Faults::default()).await;
    let (conversation, token) = system.session().await;

    system.say(&token, "m1", "我要转人工").await;
    system.drain().await;

    let history = system.history(&conversation).await;
    assert_eq!(authors(&history), vec![Author::Customer, Author::Bot]);
    assert!(
        history[1].text.contains("正在为您转接人工客服"),
        "{}",
        history[1].text
    );
    let stored = system.store.get(&conversation).await.unwrap().unwrap();
    assert_eq!(stored.state, ConversationState::Waiting);
    let escalation = stored.escalation.unwrap();
    assert_eq!(
        (escalation.queue.as_str(), escalation.reason.as_str()),
        ("general", "customer_request")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_two_unanswerable_messages_in_a_row_then_the_bot_hands_off_with_reason_no_answer() {
    let system = system(Faults::default()).await;
    let (conversation, token) = system.session().await;

    system.say(&token, "m1", "qwertyuiop zxcvb").await;
    system.drain().await;
    let after_one = system.store.get(&conversation).await.unwrap().unwrap();
    assert_eq!(after_one.state, ConversationState::Bot);
    assert_eq!(after_one.bot_misses, 1);

    system.say(&token, "m2", "asdfgh jkl poiuy").await;
    system.drain().await;

    let stored = system.store.get(&conversation).await.unwrap().unwrap();
    assert_eq!(stored.state, ConversationState::Waiting);
    assert_eq!(stored.escalation.unwrap().reason, "no_answer");
    let history = system.history(&conversation).await;
    assert_eq!(
        authors(&history),
        vec![Author::Customer, Author::Bot, Author::Customer, Author::Bot]
    );
    assert!(
        history[3].text.contains("human agent"),
        "{}",
        history[3].text
    );
    let logged = kefu_bot::unanswered::list(&system.storage.blobs(), None)
        .await
        .unwrap();
    assert_eq!(
        logged.len(),
        2,
        "both questions logged for `kefu faq unanswered`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_handoff_when_an_agent_claims_and_replies_then_the_widget_sees_the_reply_and_the_bot_stays_quiet()
 {
    let system = system(Faults::default()).await;
    let (conversation, token) = system.session().await;
    system.say(&token, "m1", "agent please").await;
    system.drain().await;

    let alice = system.agent_token("alice", "pw-alice").await;
    let bob = system.agent_token("bob", "pw-bob").await;
    let (status, queues) = call(
        &system.agent,
        "GET",
        "/v1/agent/queues",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let waiting = &queues["queues"][0]["waiting"];
    assert_eq!(
        waiting[0]["conversation_id"],
        conversation.as_str(),
        "{queues}"
    );

    let claim = format!("/v1/agent/conversations/{conversation}/claim");
    assert_eq!(
        call(&system.agent, "POST", &claim, Some(&alice), Value::Null)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&system.agent, "POST", &claim, Some(&bob), Value::Null)
            .await
            .0,
        StatusCode::CONFLICT
    );

    // The customer writes while a human owns the conversation: recorded, no bot reply.
    system.say(&token, "m2", "运费怎么算").await;
    system.drain().await;
    let (status, _) = call(
        &system.agent,
        "POST",
        &format!("/v1/agent/conversations/{conversation}/messages"),
        Some(&alice),
        json!({"text": "您好，我是客服小李。"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    system.drain().await;

    let polled = system.poll(&token).await;
    let seen: Vec<(&str, &str)> = polled["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["author"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[2], ("customer", "运费怎么算"));
    assert_eq!(seen[3], ("agent", "您好，我是客服小李。"));
    let delivered = system.history(&conversation).await;
    assert_eq!(
        delivered[3].delivery,
        kefu::domain::DeliveryState::Delivered
    );

    // Resolved, then the customer writes again: the bot answers again.
    let resolve = format!("/v1/agent/conversations/{conversation}/resolve");
    assert_eq!(
        call(&system.agent, "POST", &resolve, Some(&alice), Value::Null)
            .await
            .0,
        StatusCode::OK
    );
    system
        .say(&token, "m3", "How long does a refund take?")
        .await;
    system.drain().await;
    let history = system.history(&conversation).await;
    assert_eq!(history.last().unwrap().author, Author::Bot);
    assert_eq!(
        system
            .store
            .get(&conversation)
            .await
            .unwrap()
            .unwrap()
            .state,
        ConversationState::Bot
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_poison_message_when_it_keeps_failing_then_it_ends_in_the_dead_letter_queue() {
    let system = system(Faults::default()).await;
    system
        .inbound
        .send("cpoison", "mpoison", "{\"schema\":99}")
        .await
        .unwrap();
    for _ in 0..10 {
        let bot = &system.bot;
        drain_once(
            system.inbound.as_ref(),
            |b| async move { bot.handle(&b).await },
        )
        .await;
    }
    let dlq = system
        .storage
        .dead_letter_queue(INBOUND)
        .depth()
        .await
        .unwrap();
    assert_eq!(dlq.total(), 1);
    assert_eq!(
        system.storage.queue(INBOUND).depth().await.unwrap().total(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_redelivered_reply_then_the_dispatcher_stores_it_once() {
    let system = system(Faults::default()).await;
    let (conversation, token) = system.session().await;
    system.say(&token, "m1", "运费怎么算").await;
    let bot = &system.bot;
    drain_once(
        system.inbound.as_ref(),
        |b| async move { bot.handle(&b).await },
    )
    .await;
    let batch = system
        .outbound
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    // Handled twice (a redelivery after a lost ack), stored and delivered once.
    system.dispatcher.handle(&batch[0].body).await.unwrap();
    system.dispatcher.handle(&batch[0].body).await.unwrap();
    assert_eq!(
        authors(&system.history(&conversation).await),
        vec![Author::Customer, Author::Bot]
    );
}

/// The bot's replies in a conversation's history.
fn bot_texts(history: &[Message]) -> Vec<&str> {
    history
        .iter()
        .filter(|m| m.author == Author::Bot)
        .map(|m| m.text.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_visitor_asked_for_an_order_number_when_they_ask_another_question_then_it_is_answered()
 {
    for (start, question, answer_part) in [
        ("查一下订单", "下单后还能改收货地址吗？", "修改地址"),
        (
            "where is my order",
            "can I change my delivery address after ordering?",
            "Change address",
        ),
    ] {
        let system = system(Faults::default()).await;
        let (conversation, token) = system.session().await;
        system.say(&token, "m1", start).await;
        system.drain().await;
        system.say(&token, "m2", question).await;
        system.drain().await;
        let history = system.history(&conversation).await;
        let replies = bot_texts(&history);
        assert_eq!(replies.len(), 2, "{replies:?}");
        assert!(
            replies[1].contains(answer_part),
            "{question:?}: {}",
            replies[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_visitor_who_greets_and_asks_if_anyone_is_there_then_the_bot_replies_and_keeps_the_conversation()
 {
    for words in [["你好", "在吗", "谢谢"], ["hi", "are you there?", "thx"]] {
        let system = system(Faults::default()).await;
        let (conversation, token) = system.session().await;
        for (n, text) in words.iter().enumerate() {
            system.say(&token, &format!("m{n}"), text).await;
            system.drain().await;
        }
        let history = system.history(&conversation).await;
        let replies = bot_texts(&history);
        assert_eq!(replies.len(), 3, "{replies:?}");
        for reply in &replies {
            assert!(
                !reply.contains("没有理解") && !reply.contains("didn't quite get"),
                "{reply}"
            );
        }
        let stored = system.store.get(&conversation).await.unwrap().unwrap();
        assert_eq!(
            stored.state,
            ConversationState::Bot,
            "handed off for saying hello"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_handoff_when_the_visitor_keeps_writing_then_one_reply_says_what_happens_next() {
    for (request, again, person) in [
        ("我要转人工", ["在吗", "还在吗", "??"], "人工客服"),
        ("agent please", ["hello?", "anyone?", "??"], "person"),
    ] {
        let system = system(Faults::default()).await;
        let (conversation, token) = system.session().await;
        system.say(&token, "m1", request).await;
        system.drain().await;
        for (n, text) in again.iter().enumerate() {
            system.say(&token, &format!("again-{n}"), text).await;
            system.drain().await;
        }
        let history = system.history(&conversation).await;
        let replies = bot_texts(&history);
        assert_eq!(
            replies.len(),
            2,
            "the handoff notice, then one more: {replies:?}"
        );
        assert!(replies[1].contains(person), "{}", replies[1]);
    }
}
