//! No channel holds up another: the bot and the dispatcher run as the local runner runs them
//! (queue consumers over the embedded queues), the WeChat sender talks to a local mock of the
//! WeChat API that can be switched off, and web visitors ask the demo FAQ meanwhile.
//!
//! The head-of-line delay (a web answer's delay while WeChat replies fail) is printed:
//! `cargo test --workspace --test head_of_line -- --nocapture`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use kefu::adapters::embedded::{EmbeddedStore, INBOUND, OUTBOUND};
use kefu::channels::wechat::{WechatConfig, WechatSender};
use kefu::consumer::shutdown::shutdown;
use kefu::consumer::{PumpConfig, Trigger, pump};
use kefu::dispatch::Dispatcher;
use kefu::domain::{
    Author, Channel, Conversation, ConversationKey, Customer, DeliveryState, MessageId,
    OutboundMessage, SCHEMA_VERSION, now_millis,
};
use kefu::ports::{BlobStore, ConversationStore, IdempotencyGuard, MessageQueue, send_outbound};
use kefu::ports::{ChannelSender, SendError};
use kefu::web::{WebConfig, WebState};
use kefu_bot::handler::{Bot, BotConfig};
use kefu_bot::library::{FaqLibrary, publish};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// "Within seconds": generous, this is not a benchmark.
const PROMPTLY: Duration = Duration::from_secs(5);

/// One custom-send request the mock received.
#[derive(Debug, Clone)]
struct Send {
    touser: String,
    content: String,
    accepted: bool,
}

#[derive(Default)]
struct MockState {
    down: AtomicBool,
    sends: Mutex<Vec<Send>>,
}

/// The WeChat API: answers 503 to everything while down.
struct MockWechat {
    state: Arc<MockState>,
    base: String,
}

impl MockWechat {
    async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/cgi-bin/stable_token", axum::routing::post(stable_token))
            .route(
                "/cgi-bin/message/custom/send",
                axum::routing::post(custom_send),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { state, base }
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    fn sends(&self) -> Vec<Send> {
        self.state.sends.lock().unwrap().clone()
    }
}

async fn stable_token(State(state): State<Arc<MockState>>) -> (StatusCode, axum::Json<Value>) {
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
    }
    let token = json!({"access_token": "ACCESS-TOKEN", "expires_in": 7200});
    (StatusCode::OK, axum::Json(token))
}

async fn custom_send(
    State(state): State<Arc<MockState>>,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    let accepted = !state.down.load(Ordering::SeqCst);
    state.sends.lock().unwrap().push(Send {
        touser: body["touser"].as_str().unwrap_or_default().to_owned(),
        content: body["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        accepted,
    });
    if accepted {
        (
            StatusCode::OK,
            axum::Json(json!({"errcode": 0, "errmsg": "ok"})),
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})))
    }
}

/// The real WeChat sender, counting the sends the dispatcher asked it for per reply text
/// (with the API down, a send fails at the token fetch and never reaches the mock's send).
struct Counted {
    inner: WechatSender,
    calls: Arc<Mutex<HashMap<String, u32>>>,
}

#[async_trait::async_trait]
impl ChannelSender for Counted {
    async fn send(&self, message: &OutboundMessage) -> Result<(), SendError> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(message.text.clone())
            .or_default() += 1;
        self.inner.send(message).await
    }
}

/// The bot and the dispatcher consuming the embedded queues, a web API, and the mock.
struct Rig {
    _dir: tempfile::TempDir,
    storage: EmbeddedStore,
    store: Arc<dyn ConversationStore>,
    outbound: Arc<dyn MessageQueue>,
    web: Router,
    wechat: MockWechat,
    /// Sends asked of the WeChat sender, per reply text.
    send_calls: Arc<Mutex<HashMap<String, u32>>>,
    stop: Trigger,
}

async fn rig() -> Rig {
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

    let wechat = MockWechat::start().await;
    let mut config = WechatConfig::new("token", "wx1234567890abcdef", "secret");
    config.api_base = wechat.base.clone();
    let guard: Arc<dyn IdempotencyGuard> = Arc::new(storage.idempotency());
    let send_calls = Arc::new(Mutex::new(HashMap::new()));
    let sender = Counted {
        inner: WechatSender::new(&config, guard).unwrap(),
        calls: send_calls.clone(),
    };
    let bot = Arc::new(Bot::new(
        store.clone(),
        outbound.clone(),
        faq,
        blobs,
        BotConfig::default(),
    ));
    let dispatcher = Arc::new(Dispatcher::new(store.clone()).with_sender(
        Channel::Wechat,
        Arc::new(sender),
        None,
    ));

    let (stop, signal) = shutdown();
    // As the local runner runs them (its tests use a 2 s visibility timeout).
    let pumped = PumpConfig {
        visibility: Duration::from_secs(2),
        ..PumpConfig::default()
    };
    tokio::spawn(pump(inbound.clone(), pumped.clone(), signal.clone(), {
        move |body| {
            let bot = bot.clone();
            async move { bot.handle(&body).await }
        }
    }));
    tokio::spawn(pump(outbound.clone(), pumped, signal, {
        move |body| {
            let dispatcher = dispatcher.clone();
            async move { dispatcher.handle(&body).await }
        }
    }));

    let tokens = kefu::auth::TokenSigner::new("head-of-line-test-secret-0123456789").unwrap();
    let web = kefu::web::router(WebState {
        store: store.clone(),
        polls: Arc::new(storage.leases()),
        inbound,
        tokens,
        shop_identity_secret: None,
        config: WebConfig {
            poll_interval: Duration::from_millis(20),
            ..WebConfig::default()
        },
    });
    Rig {
        _dir: dir,
        storage,
        store,
        outbound,
        web,
        wechat,
        send_calls,
        stop,
    }
}

async fn call(web: &Router, method: &str, uri: &str, token: Option<&str>, body: Value) -> Value {
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
    let response = web
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

impl Rig {
    /// Queues `per_customer` bot replies to each of `customers` WeChat followers (as the
    /// bot would after they wrote); returns the replies in the order they were queued.
    async fn wechat_replies(&self, customers: usize, per_customer: usize) -> Vec<OutboundMessage> {
        let mut replies = Vec::new();
        for customer in 0..customers {
            let openid = format!("oKefuFollower{customer:04}");
            let key = ConversationKey::new(Channel::Wechat, &openid);
            let conversation = Conversation::new(&key, Customer::default(), now_millis());
            self.store.create(&conversation).await.unwrap();
            for n in 0..per_customer {
                let reply = OutboundMessage {
                    schema: SCHEMA_VERSION,
                    message_id: MessageId::random(),
                    conversation_id: conversation.id.clone(),
                    channel: Channel::Wechat,
                    recipient: openid.clone(),
                    author: Author::Bot,
                    agent_id: None,
                    text: format!("reply {n} to {openid}"),
                    quick_replies: Vec::new(),
                    in_reply_to: None,
                    created_at: now_millis(),
                };
                send_outbound(self.outbound.as_ref(), &reply).await.unwrap();
                replies.push(reply);
            }
        }
        replies
    }

    /// A web visitor asks the demo FAQ; returns how long the bot's answer took to show in
    /// the widget, `None` when it did not come within `patience`.
    async fn web_answer_delay(&self, patience: Duration) -> Option<Duration> {
        let session = call(&self.web, "POST", "/v1/web/sessions", None, json!({})).await;
        let token = session["visitor_token"].as_str().unwrap().to_owned();
        let asked = Instant::now();
        let question = json!({"client_message_id": "q1", "text": "运费怎么算"});
        call(
            &self.web,
            "POST",
            "/v1/web/messages",
            Some(&token),
            question,
        )
        .await;
        while asked.elapsed() < patience {
            let polled = call(
                &self.web,
                "GET",
                "/v1/web/messages?after=0&wait=0",
                Some(&token),
                Value::Null,
            )
            .await;
            let answered = polled["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["author"] == "bot"));
            if answered {
                return Some(asked.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// What waits in the outbound dead-letter queue (taken out to look at it).
    async fn dead_replies(&self) -> Vec<OutboundMessage> {
        let dlq = self.storage.dead_letter_queue(OUTBOUND);
        let mut dead = Vec::new();
        loop {
            let batch = dlq
                .receive(10, Duration::from_secs(60), Duration::ZERO)
                .await
                .unwrap();
            if batch.is_empty() {
                return dead;
            }
            dead.extend(
                batch
                    .iter()
                    .map(|d| OutboundMessage::from_json(&d.body).unwrap()),
            );
        }
    }

    async fn delivery(&self, reply: &OutboundMessage) -> Option<DeliveryState> {
        self.store
            .find_message(&reply.conversation_id, &reply.message_id)
            .await
            .unwrap()
            .map(|m| m.delivery)
    }

    /// Waits until every reply is recorded delivered; false after `patience`.
    async fn all_delivered(&self, replies: &[OutboundMessage], patience: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < patience {
            let mut done = true;
            for reply in replies {
                done &= self.delivery(reply).await == Some(DeliveryState::Delivered);
            }
            if done {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

fn report(case: &str, delay: Option<Duration>, patience: Duration) {
    match delay {
        Some(delay) => println!("head-of-line: {case}: web answer after {delay:.2?}"),
        None => println!("head-of-line: {case}: no web answer within {patience:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_the_wechat_api_down_and_two_replies_failing_when_a_web_visitor_asks_then_the_answer_comes_within_seconds()
 {
    let rig = rig().await;
    rig.wechat.set_down(true);
    rig.wechat_replies(2, 1).await;
    // Let the dispatcher take the WeChat replies first, as in the incident.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let patience = Duration::from_secs(90);
    let delay = rig.web_answer_delay(patience).await;

    report("2 failing WeChat replies", delay, patience);
    let delay = delay.expect("the web visitor got an answer");
    assert!(delay < PROMPTLY, "web answer took {delay:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_twenty_wechat_replies_failing_when_web_visitors_ask_then_nothing_unattempted_reaches_the_dead_letter_queue()
 {
    let rig = rig().await;
    rig.wechat.set_down(true);
    rig.wechat_replies(10, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let patience = Duration::from_secs(60);
    let mut delays = Vec::new();
    for _ in 0..3 {
        delays.push(rig.web_answer_delay(patience).await);
    }
    // The dispatcher keeps trying the WeChat replies for a while.
    tokio::time::sleep(Duration::from_secs(6)).await;

    report("20 failing WeChat replies", delays[0], patience);
    let dead = rig.dead_replies().await;
    let calls = rig.send_calls.lock().unwrap().clone();
    for reply in &dead {
        assert_eq!(
            reply.channel,
            Channel::Wechat,
            "a web reply was dead-lettered"
        );
        // Every attempt asks the sender at least once.
        let sent = calls.get(&reply.text).copied().unwrap_or(0);
        assert!(
            sent >= 5,
            "{:?} dead-lettered after {sent} sends",
            reply.text
        );
    }
    for delay in delays {
        let delay = delay.expect("every web visitor got an answer");
        assert!(delay < PROMPTLY, "web answer took {delay:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn given_the_wechat_api_back_when_twenty_replies_waited_then_each_is_delivered_once_in_order()
{
    let rig = rig().await;
    rig.wechat.set_down(true);
    let replies = rig.wechat_replies(10, 2).await;
    // The replies fail for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;

    rig.wechat.set_down(false);

    assert!(
        rig.all_delivered(&replies, Duration::from_secs(60)).await,
        "every waiting reply was delivered"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted: Vec<Send> = rig
        .wechat
        .sends()
        .into_iter()
        .filter(|s| s.accepted)
        .collect();
    let mut per_customer: HashMap<&str, Vec<&str>> = HashMap::new();
    for send in &accepted {
        per_customer
            .entry(send.touser.as_str())
            .or_default()
            .push(send.content.as_str());
    }
    for reply in &replies {
        let times = accepted.iter().filter(|s| s.content == reply.text).count();
        assert_eq!(times, 1, "{:?} delivered {times} times", reply.text);
    }
    for (customer, contents) in per_customer {
        let expected = [
            format!("reply 0 to {customer}"),
            format!("reply 1 to {customer}"),
        ];
        assert_eq!(contents, expected, "order for {customer}");
    }
    assert!(rig.dead_replies().await.is_empty());
}
